"""The SLO gates end to end: what the data cannot show is a finding, never zero events or a full window."""

import shutil

import pytest

from phase8_assets_tests.conftest import DATA, gate_report

pytestmark = pytest.mark.slow


def test_unmatched_selectors_and_short_data_fail_the_slo_gates_closed(tmp_path, home):
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    for day in sorted((root / "evidence/otel").glob("*.jsonl"))[:-1]:
        day.unlink()  # only the evaluation day's metrics are left: 01:00 to 12:00
    slos = root / "policy/slo/chatterbox-slos.yaml"
    text = slos.read_text()
    # chat-api's failures counted by the pre-1.21 attribute name, which the data does not have
    slos.write_text(text.replace('http.response.status_code: "~5.."', 'http.status_code: "~5.."', 1))
    report = gate_report([root], home)
    gates = {g["gate"]: g for g in report["gates"]}
    for name in ("slo_burn_rate", "error_budget"):
        assert gates[name]["status"] == "fail"
        (selector,) = [f for f in gates[name]["findings"] if f["rule"] == "sli-selector"]
        assert selector["subject"] == "chat-api-availability" and selector["severity"] == "error"
        assert selector["observed"] == (
            "ratioMetric.bad: http.server.request.duration{service.name='chat-api', http.status_code='~5..'} names "
            "http.status_code, which occurs in no stream (attribute keys: "
            + ", ".join(selector["details"]["attribute_keys"])
            + ")"
        )
        assert "http.response.status_code" in selector["details"]["attribute_keys"]
        assert selector["evidence"] == f"{slos}#0"  # the first document of the file
    coverage = [f for f in gates["error_budget"]["findings"] if f["rule"] == "window-coverage"]
    assert coverage and all(f["observed"].startswith("data covers 11h 0m of the ") for f in coverage)
    assert all(f["details"]["covered_fraction"] < 0.9 for f in coverage)
    warned = {f["rule"] for f in gates["slo_burn_rate"]["findings"] if f["severity"] == "warning"}
    assert {"insufficient-coverage:slow-burn-1d", "insufficient-coverage:slow-burn-3d"} <= warned

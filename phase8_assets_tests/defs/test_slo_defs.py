"""The SLO gates end to end: what the data cannot show is a finding, never zero events or a full window."""

import json
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


def test_sli_data_that_stopped_does_not_cover_the_days_since(tmp_path, home):
    """chat-api stops exporting on 17 November: 26 of the 30 days are covered, under the 90 % minimum."""
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    for day in sorted((root / "evidence/otel").glob("*.jsonl")):
        if day.name >= "metrics-2026-11-17":
            lines = [json.loads(line) for line in day.read_text().splitlines() if line.strip()]
            for doc in lines:
                doc["resourceMetrics"] = [
                    rm for rm in doc["resourceMetrics"] if "chat-api" not in json.dumps(rm["resource"])
                ]
            day.write_text("".join(json.dumps(doc) + "\n" for doc in lines if doc["resourceMetrics"]))
    gates = {g["gate"]: g for g in gate_report([root], home)["gates"]}
    assert gates["error_budget"]["status"] == "fail"
    coverage = {f["subject"]: f for f in gates["error_budget"]["findings"] if f["rule"] == "window-coverage"}
    assert coverage["chat-api-availability"]["severity"] == "error"
    assert coverage["chat-api-availability"]["observed"].endswith("none after 2026-11-17T00:00:00Z)")
    assert coverage["chat-api-availability"]["details"]["covered_fraction"] < 0.9


def test_every_objective_of_an_slo_is_judged_end_to_end(tmp_path, home):
    """A contractual 99 % objective before the 99.9 % one: the canary's 2.5 % errors burn the 99 %
    budget at 2.5x (no page), the 99.9 % one at 25x, which blocks."""
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    shutil.copytree(DATA / "scenarios/slo-fast-burn", root / "scenarios/slo-fast-burn")
    slos = root / "policy/slo/chatterbox-slos.yaml"
    text = slos.read_text()
    first = "  objectives:\n    - displayName: availability\n      target: 0.999\n"
    assert text.startswith("apiVersion") and first in text
    slos.write_text(text.replace(first, first.replace("  objectives:\n", "  objectives:\n    - displayName: "
                                                      "contractual SLA\n      target: 0.99\n"), 1))  # fmt: skip
    gates = {g["gate"]: g for g in gate_report([root / "scenarios/slo-fast-burn"], home)["gates"]}
    assert gates["slo_burn_rate"]["status"] == "fail"
    errors = {(f["subject"], f["rule"]) for f in gates["slo_burn_rate"]["findings"] if f["severity"] == "error"}
    assert errors == {("chat-api-availability/availability", "burn-rate:fast-burn-1h")}


def test_a_service_that_stopped_exporting_a_day_ago_fails_both_gates(tmp_path, home):
    """chat-api's metrics stop at 2026-11-19T12:00 while the other services keep writing the same
    files: the files are fresh and 29 of 30 days are covered, which passed both gates. Its SLIs are
    now stale in both, and the budget summary no longer counts them as within budget."""
    root = shutil.copytree(DATA, tmp_path / "root", ignore=shutil.ignore_patterns("scenarios"))
    cut = "1795089600000000000"  # 2026-11-19T12:00:00Z
    for day in sorted((root / "evidence/otel").glob("*.jsonl")):
        docs = [json.loads(line) for line in day.read_text().splitlines() if line.strip()]
        for doc in docs:
            doc["resourceMetrics"] = [
                rm for rm in doc["resourceMetrics"]
                if "chat-api" not in json.dumps(rm["resource"]) or max(int(t) for t in _times(rm)) <= int(cut)
            ]  # fmt: skip
        day.write_text("".join(json.dumps(doc) + "\n" for doc in docs if doc["resourceMetrics"]))
    gates = {g["gate"]: g for g in gate_report([root], home)["gates"]}
    assert gates["evidence_freshness"]["status"] == "pass"
    for name in ("slo_burn_rate", "error_budget"):
        assert gates[name]["status"] == "fail"
        stale = {f["subject"]: f for f in gates[name]["findings"] if f["rule"] == "sli-max-age"}
        assert set(stale) == {"chat-api-availability", "chat-api-latency"}
        assert stale["chat-api-availability"]["observed"].endswith(
            "(newest point 2026-11-19T12:00:00Z); the SLI's data stopped"
        )
    assert gates["error_budget"]["summary"].startswith("2 of 4 SLO(s) within their error budget")


def _times(rm: dict) -> list[str]:
    return [p["timeUnixNano"] for sm in rm["scopeMetrics"] for m in sm["metrics"]
            for kind in ("histogram", "sum") if kind in m for p in m[kind]["dataPoints"]]  # fmt: skip

"""Fail closed, everywhere: every gate of ``GATES`` fails when its own evidence is removed, stale,
corrupt or empty, whatever the rest of the root says.

One ``release_gate`` run per way of breaking evidence (four in all), each on a copy of the demo
root with every evidence kind broken that way; each gate is then asked for a ``fail`` with an error
finding about its *own* evidence (``GateSpec.evidence``), so another gate's broken evidence cannot be
what failed it. A gate added to ``GATES`` without its evidence kinds fails this test.
"""

import shutil
from datetime import timedelta

import pytest
import yaml

from phase8_assets.defs.resources import load_evidence_config
from phase8_assets.domains.gates import GATES
from phase8_assets.evidence import readers
from phase8_assets.shared.clock import format_timestamp, parse_timestamp
from phase8_assets_tests.conftest import DATA, gate_report

pytestmark = pytest.mark.slow

MODES = ("missing", "stale", "corrupt", "empty")

# The two gates that judge every evidence kind, and the ways of breaking evidence that the other one
# of them reports: a file that is absent or old is not unreadable, so `evidence_validity` leaves
# those to `evidence_freshness`. Every other gate names its kinds in its GateSpec (`evidence=`);
# a new gate such as `program_completeness` does the same there, and this test covers it.
CROSS_CUTTING = {
    "evidence_validity": {"missing": "evidence_freshness", "stale": "evidence_freshness"},
    "evidence_freshness": {},
}


def break_evidence(root, mode: str) -> tuple[dict, str | None]:
    """Break every evidence kind of ``root`` (a copy of the demo root) in one way; return kind -> the
    files broken, and the evaluation time to use (``None``: the pinned one)."""
    config = load_evidence_config([str(root)])
    doc = yaml.safe_load((root / "phase8.yaml").read_text())
    broken, as_of = {}, None
    for kind in config.evidence.values():
        refs = sorted((ref.rel, ref.uri) for loc in kind.sources for ref in loc.base.glob(loc.path))
        assert refs, f"the demo root has no {kind.name} file to break"
        if mode == "missing":  # removed from the root
            for rel, _ in refs:
                (root / rel).unlink()
            broken[kind.name] = [uri for _, uri in refs]
        elif mode == "stale":  # older than allowed, evaluated an hour after the newest OTLP point
            doc["evidence"][kind.name]["max_age"] = "PT1S"
            broken[kind.name] = [uri for _, uri in refs]
            as_of = format_timestamp(parse_timestamp(config.evaluation_time, "evaluation_time").at + timedelta(hours=1))
        else:  # one file truncated with bytes that are not UTF-8 after it, or emptied
            rel, uri = refs[0]
            data = (root / rel).read_bytes()
            (root / rel).write_bytes(b"" if mode == "empty" else data[: len(data) // 2] + b"\xff\xfe\xfa")
            broken[kind.name] = [uri]
    (root / "phase8.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return broken, as_of


@pytest.fixture(scope="module")
def broken_root_report(tmp_path_factory):
    """mode -> (gate report, kind -> broken files): one release_gate run per mode, on demand."""
    home, reports = tmp_path_factory.mktemp("fail-closed") / "home", {}

    def report(mode: str):
        if mode not in reports:
            root = tmp_path_factory.mktemp(mode) / "root"
            shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("scenarios"))
            broken, as_of = break_evidence(root, mode)
            reports[mode] = gate_report([root], home, as_of=as_of), broken
        return reports[mode]

    return report


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(GATES))
def test_every_gate_fails_closed_on_its_own_evidence(name, mode, broken_root_report):
    spec = GATES[name]
    if name in CROSS_CUTTING:
        kinds, reporter = set(readers()), CROSS_CUTTING[name].get(mode, name)
    else:
        assert spec.evidence, f"gate {name} names no evidence kinds (GateSpec.evidence): it cannot fail closed"
        assert set(spec.evidence) <= set(readers()), spec.evidence
        kinds, reporter = set(spec.evidence), name
    report, broken = broken_root_report(mode)
    result = next(g for g in report["gates"] if g["gate"] == reporter)
    assert result["status"] == "fail", (mode, result)
    assert result["blocking"] == GATES[reporter].blocking  # cost_budgets fails too, without blocking
    files = {uri for kind in kinds for uri in broken.get(kind, [])}
    own = [
        f
        for f in result["findings"]
        if f["severity"] == "error" and (f["details"].get("kind") in kinds or f["evidence"] in files)
    ]
    assert own, f"{reporter} failed, but not on its own evidence {sorted(kinds)}: {result['findings']}"
    for finding in own:
        assert all(finding[key] not in (None, "") for key in ("subject", "rule", "observed", "limit", "evidence",
                                                               "owner", "runbook")), finding  # fmt: skip


EXPLAINED = ("subject", "rule", "observed", "limit", "evidence", "owner", "runbook")


@pytest.mark.parametrize("mode", MODES)
def test_every_finding_of_a_broken_root_explains_itself(mode, broken_root_report):
    """Every finding of every gate, not only those about the gate's own evidence, names its subject, rule,
    observed value, limit, evidence file, owner and runbook: no empty field, no placeholder. A finding
    about evidence that is absent names where the config expects it (or the config itself)."""
    report, _broken = broken_root_report(mode)
    gaps = [
        (gate["gate"], finding["rule"], key, finding[key])
        for gate in report["gates"]
        for finding in gate["findings"]
        for key in EXPLAINED
        if finding[key] in (None, "", "None") or (key == "evidence" and finding[key].startswith("("))  # "(config)"
    ]
    assert not gaps, gaps
    owners = {finding["owner"] for gate in report["gates"] for finding in gate["findings"]}
    assert all(owner.startswith("team:") or "@" in owner for owner in owners), owners

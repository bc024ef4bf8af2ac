"""Scenarios of the Phase 8 program (``program:`` in phase8.yaml, the ``program_completeness`` gate):
an item whose only gate is switched off, an item without an owner, a cadence the evidence shows was
missed. Each changes only the config: the evidence is the demo's."""

from __future__ import annotations

from pathlib import Path

from phase8_assets.shared.reports import write_text

HEADER = "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"

SCENARIOS = {
    "program-item-uncovered": """\
description: the drills' only gate is switched off; program_completeness warns that chaos_drills is uncovered
gates:
  drill_evidence:
    enabled: false
    reason: drill tooling migrates to Chaos Toolkit 2 this sprint (CHAT-5210)
""",
    "program-item-unowned": """\
description: governance has no owner since its team was reorganised; program_completeness fails
program:
  items:
    governance:
      owner: null
""",
    "program-cadence-missed": """\
description: FinOps declares daily cost exports; the newest is 36 hours old; program_completeness fails
program:
  items:
    finops:
      cadence: P1D
""",
}


def scenarios(out: Path) -> list[Path]:
    return [write_text(out / "scenarios" / name / "phase8.yaml", HEADER + text) for name, text in SCENARIOS.items()]

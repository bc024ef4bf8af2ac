"""Docs governance: links resolve, every gate is documented and has a runbook, generated files are current.

python scripts/check_docs.py      # exit 1 with one line per problem
"""

import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    from click.testing import CliRunner

    from phase8_assets.cli import main as phase8
    from phase8_assets.domains.gates import GATES

    problems = []
    docs = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), REPO / "data/scenarios/README.md"]
    for doc in docs:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if "://" in target:
                continue
            if not (doc.parent / target).exists():
                problems.append(f"{doc.relative_to(REPO)}: link to {target} does not resolve")
    readme = (REPO / "README.md").read_text()
    for gate in GATES:
        if f"| `{gate}` |" not in readme:
            problems.append(f"README.md: gate {gate} is missing from the gate table")
        runbook = REPO / "data/docs/ops" / f"{gate.replace('_', '-')}.md"
        if not runbook.is_file():
            problems.append(f"{runbook.relative_to(REPO)}: the runbook of gate {gate} is missing")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "slo-rules.yaml"
        result = CliRunner().invoke(phase8, ["slo-rules", "--evidence", str(REPO / "data"), "--out", str(out)])
        committed = REPO / "infra/monitoring/slo-rules.yaml"
        if result.exit_code != 0 or out.read_text() != committed.read_text():
            problems.append(
                f"{committed.relative_to(REPO)}: not current; run phase8 slo-rules --evidence data --out {committed.relative_to(REPO)}"
            )
    for problem in problems:
        print(problem)
    print(f"docs: {len(docs)} file(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""Docs governance, the one docs checker: links and anchors resolve, every gate is documented and has
a runbook, generated files are current (slo-rules.yaml, health-openapi.yaml), every governed
document (docs/ops, docs/security, docs/compliance) has front matter (owner, reviewed, review_every,
serves) that names only existing gates, drills, alerts and policies and is not past its review
date, every alert in infra/monitoring/ is served by a runbook in docs/ops, and every command in the
README's ``bash`` blocks runs as written.

python scripts/check_docs_governance.py      # exit 1 with one line per problem

README commands: each ``bash`` block runs in a fresh temporary folder (its own ``.phase8`` home, with
``data`` and ``.venv`` of this checkout linked in), line by line, and must exit 0, or the code its
trailing ``# exit N`` comment names. A line ending in ``# not run in tests`` is skipped (installs, servers,
commands that need an operator's input): keep those few.
"""

import contextlib
import os
import re
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOVERNED = ("docs/ops", "docs/security", "docs/compliance")
FRONT_MATTER = ("owner", "reviewed", "review_every", "serves")
OWNER = re.compile(r"^(team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")
NOT_RUN = "# not run in tests"
COMMAND_TIMEOUT_S = 600


def readme_commands(text: str) -> list[tuple[int, str, int]]:
    """(block number, command, expected exit code) for every line of every ``bash`` block."""
    commands = []
    for number, block in enumerate(re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S), start=1):
        for line in block.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#") or stripped.endswith(NOT_RUN):
                continue
            expected = re.search(r"#.*\bexit (\d+)", stripped)
            commands.append((number, stripped, int(expected.group(1)) if expected else 0))
    return commands


def run_readme_commands(repo: Path) -> list[str]:
    """Run the README's commands; one problem line per command that failed."""
    problems = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHASE8_", "DAGSTER_", "PYTEST"))}
    env["OTEL_SDK_DISABLED"] = "true"
    blocks: dict[int, list[tuple[str, int]]] = {}
    for number, command, expected in readme_commands((repo / "README.md").read_text()):
        blocks.setdefault(number, []).append((command, expected))
    for number, commands in blocks.items():
        with tempfile.TemporaryDirectory(prefix=f"readme-block-{number}-") as tmp:
            for name in ("data", ".venv", "workspace.yaml", "dagster.yaml"):
                os.symlink(repo / name, Path(tmp) / name)
            for command, expected in commands:
                try:
                    result = subprocess.run(
                        ["bash", "-c", command],
                        cwd=tmp,
                        env={**env, "HOME": tmp},
                        capture_output=True,
                        text=True,
                        timeout=COMMAND_TIMEOUT_S,
                    )
                    code, tail = result.returncode, (result.stderr or result.stdout).strip().splitlines()[-1:]
                except subprocess.TimeoutExpired:
                    code, tail = None, [f"timed out after {COMMAND_TIMEOUT_S} s"]
                if code != expected:
                    problems.append(
                        f"README.md: bash block {number}: `{command}` exited {code}, expected {expected}: "
                        + " ".join(tail)
                    )
    return problems


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings, as the supportability gate computes them."""
    from phase8_assets.evidence import runbooks

    return set(runbooks.anchors(runbooks.body(path.read_text())))


def alerts() -> dict[str, Path]:
    """Every alert of the Prometheus rule files in infra/monitoring/ (hand-written and generated)."""
    from phase8_assets.shared.yaml_loader import load_yaml

    found = {}
    for path in sorted((REPO / "infra/monitoring").glob("*.yaml")):
        doc = load_yaml(path.read_bytes(), str(path)) or {}
        for group in doc.get("groups") or []:
            found |= {rule["alert"]: path for rule in group.get("rules") or [] if "alert" in rule}
    return found


def known_references() -> set[str]:
    """What a governed document may say it serves: gates, catalogued drills, alerts, policy ids."""
    from phase8_assets.domains.gates import GATES
    from phase8_assets.shared.yaml_loader import load_yaml, load_yaml_documents

    names = set(GATES)
    catalog = load_yaml((REPO / "data/policy/drill-catalog.yaml").read_bytes())
    names |= {d["id"] for d in catalog["drills"]}
    names |= set(alerts())
    for path in sorted((REPO / "data/policy/governance").glob("*.yaml")):
        names |= {doc["id"] for doc in load_yaml_documents(path.read_bytes()) if "id" in doc}
    return names


def front_matter_problems(doc: Path, known: set[str], today: date) -> list[str]:
    from phase8_assets.shared.clock import TimeParseError, add_duration, parse_timestamp
    from phase8_assets.shared.yaml_loader import YamlError, load_yaml

    rel = doc.relative_to(REPO)
    match = re.match(r"^---\n(.*?)\n---\n", doc.read_text(), re.S)
    if not match:
        return [f"{rel}: no front matter (--- owner, reviewed, review_every, serves ---)"]
    try:
        meta = load_yaml(match.group(1), str(rel)) or {}
    except YamlError as exc:
        return [f"{rel}: front matter: {exc}"]
    problems = [f"{rel}: front matter: {key}: is required" for key in FRONT_MATTER if key not in meta]
    if "owner" in meta and not OWNER.match(str(meta["owner"])):
        problems.append(f"{rel}: front matter: owner: expected team:name or an email address, got {meta['owner']!r}")
    for ref in meta.get("serves") or []:
        if ref not in known:
            problems.append(f"{rel}: front matter: serves: {ref!r} is no gate, drill, alert or policy id")
    if "reviewed" in meta and "review_every" in meta:
        try:
            due = add_duration(parse_timestamp(meta["reviewed"], "reviewed").at, str(meta["review_every"]))
        except TimeParseError as exc:
            problems.append(f"{rel}: front matter: {exc}")
        else:
            if due.date() < today:
                problems.append(
                    f"{rel}: review overdue since {due.date()} (reviewed {meta['reviewed']}, every {meta['review_every']})"
                )
    return problems


def main(today: date | None = None, run_commands: bool = True) -> int:
    from click.testing import CliRunner

    from phase8_assets.cli import main as phase8
    from phase8_assets.domains.gates import GATES
    from phase8_assets.health_app import openapi_yaml
    from phase8_assets.shared.yaml_loader import YamlError, load_yaml

    problems = []
    docs = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), REPO / "data/scenarios/README.md"]
    for doc in docs:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            path = (doc.parent / target) if target else doc
            if not path.exists():
                problems.append(f"{doc.relative_to(REPO)}: link to {target} does not resolve")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                problems.append(f"{doc.relative_to(REPO)}: link to {target}#{anchor}: no such heading")
    known = known_references()
    today = today or datetime.now(UTC).date()
    for folder in GOVERNED:
        for doc in sorted((REPO / folder).rglob("*.md")):
            problems += front_matter_problems(doc, known, today)
    served = set()
    for doc in sorted((REPO / "docs/ops").glob("*.md")):
        match = re.match(r"^---\n(.*?)\n---\n", doc.read_text(), re.S)
        with contextlib.suppress(YamlError):  # front_matter_problems reports it
            served |= set((load_yaml(match.group(1), str(doc)) or {}).get("serves") or []) if match else set()
    for alert, path in alerts().items():
        if alert not in served:
            problems.append(f"{path.relative_to(REPO)}: alert {alert} has no runbook in docs/ops/ (serves: [{alert}])")
    contract = REPO / "docs/ops/health-openapi.yaml"
    if not contract.is_file() or contract.read_text() != openapi_yaml():
        problems.append(
            f"{contract.relative_to(REPO)}: not current; run phase8 serve --write-openapi {contract.relative_to(REPO)}"
        )
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
    if run_commands:
        problems += run_readme_commands(REPO)
    for problem in problems:
        print(problem)
    print(f"docs: {len(docs)} file(s) checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

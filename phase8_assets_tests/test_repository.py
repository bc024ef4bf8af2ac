"""The repository around the package: docs governance, CI workflows, monitoring config."""

import runpy
import shutil
import subprocess
import sys
from datetime import date

from phase8_assets.shared.yaml_loader import load_yaml
from phase8_assets_tests.conftest import REPO


def test_docs_governance_passes():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts/check_docs_governance.py")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 problem(s)" in result.stdout


def test_the_docs_checker_finds_each_kind_of_problem(tmp_path, capsys):
    module = runpy.run_path(str(REPO / "scripts/check_docs_governance.py"))
    fake = tmp_path / "repo"
    for rel in ("README.md", "data", "docs", "infra/monitoring"):
        src = REPO / rel
        if src.is_dir():
            shutil.copytree(src, fake / rel)
        else:
            (fake / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, fake / rel)
    front = '---\nowner: "team:sre"\nreviewed: "2026-11-20"\nreview_every: P180D\nserves: [drill_evidence]\n---\n\n'
    (fake / "docs/ops/broken.md").write_text(
        front + "# Broken\n\nsee [the guide](nowhere.md) and [a heading](drill-evidence.md#no-such-heading)\n"
        "and [a real one](drill-evidence.md#drill-evidence-what-to-publish-and-how-it-is-judged)\n"
    )
    (fake / "docs/security").mkdir(exist_ok=True)  # docs/security/ holds the plugin signing guide
    (fake / "docs/security/bare.md").write_text("# No front matter\n")
    (fake / "docs/compliance/stale.md").write_text(
        front.replace("2026-11-20", "2025-01-10").replace("drill_evidence", "no_such_gate") + "# Stale\n"
    )
    main = module["main"]
    main.__globals__["REPO"] = fake
    assert main(today=date(2026, 12, 1), run_commands=False) == 1  # the README's commands: its own test
    out = capsys.readouterr().out
    assert "docs/ops/broken.md: link to nowhere.md does not resolve" in out
    assert "docs/ops/broken.md: link to drill-evidence.md#no-such-heading: no such heading" in out
    assert "drill-evidence-what-to-publish" not in out
    assert "docs/security/bare.md: no front matter" in out
    assert "docs/compliance/stale.md: front matter: serves: 'no_such_gate' is no gate, drill, alert or policy id" in out
    assert "docs/compliance/stale.md: review overdue since 2025-07-09" in out
    assert out.count("\n") == 6  # the five problems and the summary line


def test_the_docs_checker_wants_a_runbook_for_every_alert_and_a_current_health_contract(tmp_path, capsys):
    module = runpy.run_path(str(REPO / "scripts/check_docs_governance.py"))
    fake = tmp_path / "repo"
    for rel in ("README.md", "data", "docs", "infra/monitoring"):
        copy = shutil.copytree if (REPO / rel).is_dir() else shutil.copyfile
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        copy(REPO / rel, fake / rel)
    main = module["main"]
    main.__globals__["REPO"] = fake
    assert (
        main(today=date(2026, 12, 1), run_commands=False) == 0
    )  # the generated SLO alerts count as alerts a runbook may serve
    capsys.readouterr()
    (fake / "docs/ops/runbook-evidence-rejected.md").unlink()
    contract = fake / "docs/ops/health-openapi.yaml"
    contract.write_text(contract.read_text().replace("application/health+json", "application/json"))
    assert main(today=date(2026, 12, 1), run_commands=False) == 1
    out = capsys.readouterr().out
    assert "infra/monitoring/phase8-alerts.yaml: alert Phase8EvidenceRejected has no runbook in docs/ops/" in out
    assert "docs/ops/health-openapi.yaml: not current; run phase8 serve --write-openapi" in out
    assert out.count("\n") == 4  # and the README link to the runbook, and the summary


def _workflow(name: str) -> dict:
    doc = load_yaml((REPO / ".github/workflows" / name).read_bytes(), name)
    assert doc.get("on") or doc.get(True), name  # PyYAML 1.1 reads a bare `on` key as True
    for job_id, job in doc["jobs"].items():
        assert job["runs-on"] and job["steps"], job_id
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), (job_id, step)
    return doc


def test_ci_workflow_runs_the_readme_commands():
    readme = (REPO / "README.md").read_text()
    doc = _workflow("ci.yml")
    runs = [s.get("run", "") for job in doc["jobs"].values() for s in job["steps"]]
    test_command = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest"
    assert test_command in readme
    assert any("python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest" in r for r in runs)
    assert any("scripts/check_docs_governance.py" in r for r in runs) and any("ruff format --check" in r for r in runs)


def test_release_workflow_gates_promotion():
    doc = _workflow("release.yml")
    steps = doc["jobs"]["gate"]["steps"]
    text = "\n".join(s.get("run", "") for s in steps)
    assert "phase8 gate" in text and "GITHUB_STEP_SUMMARY" in text and 'if [ "$code" != "0" ]' in text
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and "gate-report.json" in upload["with"]["path"]


def test_collector_config_receives_what_phase8_sends():
    config = load_yaml((REPO / "infra/monitoring/otel-collector.yaml").read_bytes(), "collector")
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    for signal in ("traces", "metrics", "logs"):
        assert "otlp" in config["service"]["pipelines"][signal]["receivers"]


def test_readme_commands_are_every_bash_line_but_the_marked_few():
    module = runpy.run_path(str(REPO / "scripts/check_docs_governance.py"))
    text = (
        "```bash\n# a comment\n.venv/bin/phase8 gate --evidence data   # exit 1, blocked\n\n"
        "python3 -m venv .venv  # not run in tests\n```\n```yaml\nnot: a command\n```\n"
        "```bash\n.venv/bin/phase8 upgrade status\n```\n"
    )
    assert module["readme_commands"](text) == [
        (1, ".venv/bin/phase8 gate --evidence data   # exit 1, blocked", 1),
        (2, ".venv/bin/phase8 upgrade status", 0),
    ]
    commands = module["readme_commands"]((REPO / "README.md").read_text())
    assert any("dagster job execute" in c for _, c, _ in commands)
    assert all(c.startswith((".venv/bin/", "PHASE8_EVIDENCE=data .venv/bin/")) for _, c, _ in commands)

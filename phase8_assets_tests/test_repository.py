"""The repository around the package: docs governance, CI workflows, monitoring config."""

import runpy
import subprocess
import sys

from phase8_assets.shared.yaml_loader import load_yaml
from phase8_assets_tests.conftest import REPO


def test_docs_governance_passes():
    result = subprocess.run([sys.executable, str(REPO / "scripts/check_docs.py")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 problem(s)" in result.stdout


def test_check_docs_finds_a_broken_link(tmp_path, monkeypatch):
    module = runpy.run_path(str(REPO / "scripts/check_docs.py"))
    fake = tmp_path / "repo"
    for rel in ("README.md", "data/scenarios/README.md", "infra/monitoring/slo-rules.yaml"):
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text((REPO / rel).read_text())
    (fake / "docs").mkdir()
    (fake / "docs/x.md").write_text("see [the guide](nowhere.md)\n")
    (fake / "data/docs/ops").mkdir(parents=True)
    main = module["main"]
    main.__globals__["REPO"] = fake
    assert main() == 1


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
    assert any("scripts/check_docs.py" in r for r in runs) and any("ruff format --check" in r for r in runs)


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

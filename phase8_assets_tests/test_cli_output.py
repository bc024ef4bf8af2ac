"""What people read in the shell: the golden output of a blocked run, colour rules, --json everywhere."""

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from phase8_assets.cli import main
from phase8_assets.domains.gate_report import root_id
from phase8_assets_tests.conftest import REPO, SCENARIOS, env_without_pytest

pytestmark = pytest.mark.slow

GOLDEN = Path(__file__).parent / "golden" / "gate-broken-evidence.txt"


def _phase8(*args, env: dict, cwd: Path = REPO) -> subprocess.CompletedProcess:
    phase8 = Path(sys.executable).with_name("phase8")
    return subprocess.run([str(phase8), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_gate_output_on_a_blocked_scenario_matches_the_golden_file(tmp_path):
    """Regenerate after an intended change: ``NO_COLOR=1 COLUMNS=100 .venv/bin/phase8 gate --evidence
    data/scenarios/broken-evidence --home /tmp/h 2>/dev/null``, then put back the two placeholders."""
    home = tmp_path / "home"
    env = {**env_without_pytest(), "NO_COLOR": "1", "COLUMNS": "100", "OTEL_SDK_DISABLED": "true"}
    result = _phase8("gate", "--evidence", "data/scenarios/broken-evidence", "--home", str(home), env=env)
    assert result.returncode == 1
    shown = result.stdout.replace(str(home), "$PHASE8_HOME")
    shown = shown.replace(root_id(str(SCENARIOS / "broken-evidence")), "broken-evidence-<sha256>")  # checkout path
    assert shown == GOLDEN.read_text()
    assert "\x1b[" not in result.stdout
    assert max(len(line) for line in GOLDEN.read_text().splitlines()) <= 110  # wrapped, bar a long path
    # Progress went to stderr, gate by gate.
    assert "evaluating gate evidence_validity ..." in result.stderr


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    from phase8_assets.cli import _colour, _style

    styled = _style("fail", "fail")
    assert styled != "fail" and click.unstyle(styled) == "fail"
    monkeypatch.setenv("NO_COLOR", "1")
    assert _colour() is False
    monkeypatch.delenv("NO_COLOR")
    assert _colour() is None  # click decides: colour on a terminal, plain in a pipe or CI log


def _commands(group: click.Group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_subcommand_has_json_and_every_option_has_help():
    for path, cmd in _commands(main):
        names = {p.name for p in cmd.params}
        assert "json" in names, path
        for param in cmd.params:
            if isinstance(param, click.Option):
                assert param.help, (path, param.name)


def test_upgrade_status_is_text_by_default_and_json_on_request(tmp_path):
    from click.testing import CliRunner

    runner = CliRunner()
    text = runner.invoke(main, ["upgrade", "status", "--home", str(tmp_path)])
    assert text.exit_code == 0 and "no warehouse yet" in text.output and not text.output.startswith("{")
    data = json.loads(runner.invoke(main, ["upgrade", "status", "--home", str(tmp_path), "--json"]).output)
    assert data["version"] is None and data["pending"]

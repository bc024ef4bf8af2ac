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


def test_a_home_or_output_folder_that_cannot_be_written_is_one_line_and_exit_2(tmp_path):
    """A user's folder that cannot be used (here a file where a folder should be; read-only for a
    non-root user alike) is exit 2 with the path and the system's reason, never a traceback and
    never exit 1, which CI reads as blocked."""
    from click.testing import CliRunner

    from phase8_assets_tests.conftest import DATA

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    runner = CliRunner()
    cases = [
        (["gate", "--evidence", str(DATA), "--home", str(blocker)], ["cannot use it as PHASE8_HOME"]),
        (["slo-rules", "--evidence", str(DATA), "--out", str(blocker / "r.yaml")], []),
        (["serve", "--write-openapi", str(blocker / "o.yaml")], []),
        (["plugin", "keygen", "--out", str(blocker / "k"), "--name", "x"], []),
    ]
    for args, named in cases:
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert not isinstance(result.exception, OSError), (args, result.exception)
        line = result.output.strip().splitlines()[0]
        assert line.startswith(f"phase8: error: {blocker}"), line
        assert "Not a directory" in line or "File exists" in line, line
        assert all(n in line for n in named), (args, line)
        assert "Traceback" not in result.output


def test_gate_out_that_cannot_be_written_is_exit_2_naming_it_and_where_the_reports_are(tmp_path):
    from click.testing import CliRunner

    from phase8_assets_tests.conftest import DATA

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    home = tmp_path / "home"
    result = CliRunner().invoke(
        main, ["gate", "--evidence", str(DATA), "--home", str(home), "--out", str(blocker / "o")]
    )
    assert result.exit_code == 2, (result.output, result.exception)
    line = result.output.strip().splitlines()[-1]
    assert line.startswith(f"phase8: error: --out {blocker / 'o'}: cannot write the reports"), line
    assert "the verdict (pass) is recorded" in line and str(home / "reports") in line

"""``phase8 gate`` reads the evidence in a child process while Dagster starts (``evidence.prefetch``):
real child processes, a real Dagster instance; the step takes the child's batch only when it read
the same config, and the report is the one a run reading in the step gives."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from phase8_assets.defs.resources import load_evidence_config
from phase8_assets.evidence import prefetch
from phase8_assets.gate_run import run_gate
from phase8_assets_tests.conftest import DATA

AS_OF = "2026-06-12T12:00:00Z"
VOLATILE = {"run_id", "generated_at", "started_at", "finished_at", "duration_s", "run_url"}


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _read_by(run_id: str) -> str:
    with dg.DagsterInstance.get() as instance:
        (event,) = [
            e.asset_materialization
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            if e.asset_materialization.asset_key == dg.AssetKey("evidence_files")
        ]
        return event.metadata["read_by"].value


def _gate(root: Path, home: Path, *, prefetched: bool, before_take=None):
    if not prefetched:
        return run_gate([str(root)], out=None, as_of=AS_OF, home=home)
    with prefetch.started([str(root)]):
        if before_take:
            before_take(prefetch._started[(str(root),)])
        return run_gate([str(root)], out=None, as_of=AS_OF, home=home)


def test_the_step_takes_the_childs_batch_and_reports_what_reading_in_the_step_reports(
    dagster_home, tmp_path, monkeypatch
):
    monkeypatch.setenv(prefetch.SWITCH, "1")
    child = _gate(DATA, tmp_path / "a", prefetched=True)
    step = _gate(DATA, tmp_path / "b", prefetched=False)
    assert _read_by(child.run_id) == "a process `phase8 gate` started with the run"
    assert _read_by(step.run_id) == "this step"
    assert _stable(child.report) == _stable(step.report)
    assert not prefetch._started


def _meddle(change: str, root: Path):
    def meddle(child: prefetch.Prefetch) -> None:
        if change == "child killed":
            child.proc.kill()
            return
        child.proc.wait(60)
        if change == "unreadable read":
            (child.folder / "batch.pickle").write_bytes(b"not a pickle")
        elif change == "evidence":  # a budget file gone between the child's read and the step's
            (root / "policy" / "cost-budgets.yaml").unlink()
        else:  # switched off between the child's read and the step's
            config = root / "phase8.yaml"
            config.write_text(config.read_text() + "\ngates:\n  cost_budgets:\n    enabled: false\n    reason: test\n")

    return meddle


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("config", "the config changed after it was read"),
        ("evidence", "an evidence file changed, came or went after it was read"),
        ("child killed", f"it exited {-signal.SIGKILL}"),
        ("unreadable read", "its read cannot be used: UnpicklingError"),
    ],
)
def test_a_child_that_read_another_config_or_evidence_or_failed_is_not_taken(change, why, tmp_path, monkeypatch):
    """``take`` gives no batch, says why, and the child's folder goes (the step then reads)."""
    monkeypatch.setenv(prefetch.SWITCH, "1")
    root = tmp_path / "root"
    shutil.copytree(DATA, root)
    with prefetch.started([str(root)]):
        child = prefetch._started[(str(root),)]
        _meddle(change, root)(child)
        batch, reason = prefetch.take([str(root)], load_evidence_config([str(root)]))
        assert batch is None and reason.startswith(why), reason
        assert not child.folder.exists() and not prefetch._started


def test_evidence_that_changed_after_the_childs_read_is_judged_as_it_is_now(dagster_home, tmp_path, monkeypatch):
    """A file gone while the run waited (for the home lock, say): the step reads the evidence
    itself, says why, and the report is a fresh run's on the evidence as it is now."""
    monkeypatch.setenv(prefetch.SWITCH, "1")
    root = tmp_path / "root"
    shutil.copytree(DATA, root)
    outcome = _gate(root, tmp_path / "home", prefetched=True, before_take=_meddle("evidence", root))
    assert _read_by(outcome.run_id).startswith("this step (an evidence file changed, came or went after it was read")
    (gate,) = [g for g in outcome.report["gates"] if g["gate"] == "cost_budgets"]
    assert gate["status"] == "fail"
    assert _stable(outcome.report) == _stable(_gate(root, tmp_path / "fresh", prefetched=False).report)


def test_the_cli_prefetches_and_an_unreadable_config_is_still_exit_2_with_one_line(tmp_path):
    env = {**os.environ, prefetch.SWITCH: "1"}
    env.pop("PYTEST_CURRENT_TEST", None)
    root = tmp_path / "root"
    root.mkdir()
    (root / "phase8.yaml").write_text("release: [not, a, mapping\n")
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("phase8")), "gate", "--evidence", str(root), "--home", str(tmp_path / "h")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("phase8: error:") and "Traceback" not in proc.stderr


def test_the_child_ends_when_the_process_that_started_it_ends(tmp_path):
    """SIGKILL of the gate's process (which no handler sees) ends its child too: the child's stdin,
    a pipe from its parent, closes."""
    watcher = (
        "import time; from phase8_assets.evidence.prefetch import _end_with_parent; _end_with_parent(); time.sleep(120)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", (
            "import subprocess, sys, time\n"
            f"child = subprocess.Popen([sys.executable, '-c', {watcher!r}], stdin=subprocess.PIPE)\n"
            "print(child.pid, flush=True); time.sleep(120)\n"
        )],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    child = int(parent.stdout.readline())
    time.sleep(1.0)
    assert _alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_the_child_imports_the_gates_code_not_the_working_folders(dagster_home, tmp_path):
    """A ``phase8_assets`` in the folder ``phase8 gate`` runs in is not what the child runs."""
    decoy = tmp_path / "work" / "phase8_assets"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    env = {**os.environ, prefetch.SWITCH: "1"}
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("phase8")), "gate", "--evidence", str(DATA), "--home", str(tmp_path / "h"),
         "--json"],
        env=env, cwd=decoy.parent, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "imported").exists()
    assert _read_by(json.loads(proc.stdout)["run_id"]) == "a process `phase8 gate` started with the run"


def test_a_child_whose_parent_is_gone_ends_at_once(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-I", "-c", prefetch._CHILD, json.dumps(sys.path), str(tmp_path), str(DATA)],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1 and not (tmp_path / "batch.pickle").exists()

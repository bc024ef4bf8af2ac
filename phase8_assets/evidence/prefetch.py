"""The evidence read on a second core while ``phase8 gate`` starts its run.

A gate run spends its first seconds on one core: importing Dagster, creating the warehouse and the
Dagster instance. Reading the evidence needs none of that, so ``phase8 gate`` starts a child
process (``started``) that loads the config and runs ``collect`` into a spool folder this process
holds. The run's ``evidence_files`` step takes the child's batch (``take``) only when the child ran
this process's code on the same config and the roots still list the same files, unchanged, as when
its read began; otherwise (fewer than two usable cores, ``PHASE8_PREFETCH=0``, the child failed or
was slower than ``WAIT_S``, the config or a file changed in between, say while the run waited for
the home lock) the step collects the evidence itself, as every other run does. Either way the
evidence is read once, by the same code, and the verdict does not depend on which process read it.

The child imports only from this process's ``sys.path`` (isolated mode: not the working folder,
not ``PYTHON*`` variables) and ends when this process does (its stdin, a pipe from here, closes);
the spool folder is this process's, so a killed run leaves nothing a later sweep does not remove
(``collect.sweep_spools``).
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from phase8_assets.evidence.collect import EvidenceBatch, listing, new_spool_folder
from phase8_assets.evidence.config import EvidenceConfig

SWITCH = "PHASE8_PREFETCH"  # "0": the step always reads the evidence itself; "1": prefetch on one core too
WAIT_S = 300.0  # longer than this, and the step stops the child and reads the evidence itself
_BATCH = "batch.pickle"
_LOG = "prefetch.log"

_started: dict[tuple[str, ...], Prefetch] = {}


class Prefetch:
    """One child process collecting the evidence of ``evidence`` into a folder this object holds."""

    def __init__(self, evidence: list[str]):
        self.evidence = tuple(evidence)
        self.folder, self._release = new_spool_folder(self)
        with open(self.folder / _LOG, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _CHILD, json.dumps(sys.path), str(self.folder), *evidence],
                stdin=subprocess.PIPE,  # never written: its end tells the child this process is gone
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def batch(self, config: EvidenceConfig, wait_s: float = WAIT_S) -> tuple[EvidenceBatch | None, str]:
        """The child's batch, handed over with its spool folder, when the child read ``config`` with
        this process's code and the files are as they were listed when its read began; else
        ``None`` and why."""
        deadline = time.monotonic() + wait_s
        while self.proc.poll() is None:  # short waits: an interruption of the run is not held up
            if time.monotonic() > deadline:
                return None, f"it took longer than {wait_s:g} s"
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(0.1)
        if self.proc.returncode != 0:
            text = (self.folder / _LOG).read_text(errors="replace").strip().splitlines()
            return None, f"it exited {self.proc.returncode}: {text[-1] if text else 'no message'}"
        try:
            code, read_config, batch = pickle.loads((self.folder / _BATCH).read_bytes())
            if code != _code():
                return None, f"it ran other code ({code}, not {_code()})"
            if read_config != repr(config):
                return None, "the config changed after it was read"
            if listing(config) != sorted(batch.listed):
                return None, "an evidence file changed, came or went after it was read"
        except Exception as exc:  # whatever went wrong, the step can still read the evidence itself
            return None, f"its read cannot be used: {type(exc).__name__}: {exc}"
        _, release, args, _ = self._release.detach()
        weakref.finalize(batch, release, *args)  # the folder now lives as long as the batch
        return batch, ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self._release()  # nothing when the batch was handed over


def _code() -> str:
    """Which phase8_assets runs here: its version and where it was imported from."""
    import phase8_assets

    return f"{phase8_assets.__version__} {Path(phase8_assets.__file__).parent}"


def usable_cpus() -> float:
    """The CPUs this process may use: its affinity, within the cgroup v2 CPU quota when there is one."""
    try:
        cpus: float = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, int(quota) / int(period))
    except (OSError, ValueError):
        pass
    return cpus


def _enabled() -> bool:
    """``PHASE8_PREFETCH``: ``0`` never, ``1`` always, unset: when this process may use two CPUs."""
    if os.environ.get(SWITCH) in ("0", "1"):
        return os.environ[SWITCH] == "1"
    return usable_cpus() >= 2


@contextlib.contextmanager
def started(evidence: list[str]) -> Iterator[None]:
    """Collect the evidence of ``evidence`` in a child process while the block runs (on machines
    with a second core); whatever ``take`` did not take is stopped and removed when it ends."""
    prefetch = None
    if _enabled():
        try:
            prefetch = Prefetch(evidence)
        except OSError:
            prefetch = None  # the step reads the evidence itself
    if prefetch is not None:
        _started[prefetch.evidence] = prefetch
    try:
        yield
    finally:
        if prefetch is not None:
            _started.pop(prefetch.evidence, None)
            prefetch.close()


def take(evidence: list[str], config: EvidenceConfig) -> tuple[EvidenceBatch | None, str]:
    """The batch collected for ``evidence`` by a child this process started, when it read
    ``config``: ``(batch, "")``; else ``(None, why)`` (``why`` empty when no child was started)."""
    prefetch = _started.pop(tuple(evidence), None)
    if prefetch is None:
        return None, ""
    batch, why = prefetch.batch(config)
    if batch is None:
        prefetch.close()
    return batch, why


def _end_with_parent() -> None:
    """End this process when the one that started it ends: its stdin, a pipe from there, closes."""

    def watch() -> None:
        while os.read(0, 4096):  # the fd itself: a buffered reader here aborts the interpreter's exit
            pass
        os._exit(1)

    threading.Thread(target=watch, name="phase8-prefetch-parent", daemon=True).start()


def main(argv: list[str]) -> int:
    folder, evidence = Path(argv[0]), argv[1:]
    _end_with_parent()
    from phase8_assets.evidence import readers
    from phase8_assets.evidence.collect import collect
    from phase8_assets.evidence.config import load_config

    config = load_config(evidence, known_kinds=set(readers()))
    batch = collect(config, spool_dir=folder)
    data = pickle.dumps((_code(), repr(config), batch), protocol=pickle.HIGHEST_PROTOCOL)
    staged = folder / f".{_BATCH}"
    staged.write_bytes(data)
    staged.replace(folder / _BATCH)
    return 0


# Run as ``python -I -c _CHILD <sys.path as JSON> <folder> <evidence>...``: the parent's import path
# exactly, whatever the working folder holds.
_CHILD = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from phase8_assets.evidence.prefetch import main; sys.exit(main(sys.argv[2:]))"
)

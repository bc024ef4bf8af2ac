"""The evidence read on a second core while ``phase8 gate`` starts its run.

A gate run spends its first seconds on one core: importing Dagster, creating the warehouse and the
Dagster instance. Reading the evidence needs none of that, so ``phase8 gate`` starts a child
process (``started``) that loads the config and runs ``collect`` into a spool folder this process
holds. The run's ``evidence_files`` step takes the child's batch (``take``) when the child loaded
the same config as the step; otherwise (one core, ``PHASE8_PREFETCH=0``, the child failed or was
slower than ``WAIT_S``, the config changed in between) the step collects the evidence itself, as
every other run does. Either way the evidence is read once, by the same code, at the start of the
run, and the verdict does not depend on which process read it.

The child dies with this process (``PR_SET_PDEATHSIG``); the spool folder is this process's, so a
killed run leaves nothing a later sweep does not remove (``collect.sweep_spools``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from phase8_assets.evidence.collect import EvidenceBatch, new_spool_folder
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
        package_parent = str(Path(__file__).resolve().parents[2])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])),
        }
        with open(self.folder / _LOG, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(os.getpid()), str(self.folder), *evidence],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
            )

    def batch(self, config: EvidenceConfig, wait_s: float = WAIT_S) -> tuple[EvidenceBatch | None, str]:
        """The child's batch, handed over with its spool folder, when the child read ``config``;
        else ``None`` and why."""
        deadline = time.monotonic() + wait_s
        while self.proc.poll() is None:  # short waits: an interruption of the run is not held up
            if time.monotonic() > deadline:
                return None, f"it took longer than {wait_s:g} s"
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(0.1)
        if self.proc.returncode != 0:
            text = (self.folder / _LOG).read_text(errors="replace").strip().splitlines()
            return None, f"it exited {self.proc.returncode}: {text[-1] if text else 'no message'}"
        read_config, batch = pickle.loads((self.folder / _BATCH).read_bytes())
        if read_config != repr(config):
            return None, "the config changed after it was read"
        _, release, args, _ = self._release.detach()
        weakref.finalize(batch, release, *args)  # the folder now lives as long as the batch
        return batch, ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._release()  # nothing when the batch was handed over


def _enabled() -> bool:
    """``PHASE8_PREFETCH``: ``0`` never, ``1`` always, unset: when this process may use two cores."""
    if os.environ.get(SWITCH) in ("0", "1"):
        return os.environ[SWITCH] == "1"
    try:
        return len(os.sched_getaffinity(0)) > 1
    except AttributeError:  # no affinity on this platform
        return (os.cpu_count() or 1) > 1


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


def _die_with(parent: int) -> None:
    """Be killed when ``parent`` ends (Linux), and end now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        sys.exit(1)


def main(argv: list[str]) -> int:
    parent, folder, evidence = int(argv[0]), Path(argv[1]), argv[2:]
    _die_with(parent)
    from phase8_assets.evidence import readers
    from phase8_assets.evidence.collect import collect
    from phase8_assets.evidence.config import load_config

    config = load_config(evidence, known_kinds=set(readers()))
    data = pickle.dumps((repr(config), collect(config, spool_dir=folder)), protocol=pickle.HIGHEST_PROTOCOL)
    staged = folder / f".{_BATCH}"
    staged.write_bytes(data)
    staged.replace(folder / _BATCH)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Who holds a lock or a pool slot, whether that process is still alive, and waits that a signal ends.

A process is named by its host, pid, start time (``/proc/<pid>/stat`` field 22: clock ticks after
boot) and boot id, so a pid the kernel has since given to another process is not mistaken for the
holder. ``interruptible()`` turns SIGINT and SIGTERM into ``Interrupted`` in the main thread, so a
command waiting for a lock, the warehouse or a pool slot ends at once, with one line, instead of
dying with a traceback or ignoring the signal.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: a BaseException, like KeyboardInterrupt, so no ``except Exception``
    swallows it on its way to the command."""

    def __init__(self, signum: int):
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signal_name}")


class _NotNews(logging.Filter):
    """Drops a log record about our own ``Interrupted``: a library that catches it on its way, logs
    it and re-raises it (SQLAlchemy's pool, when the signal arrives while a connection is returned)
    would otherwise print a traceback before the command's one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], Interrupted))


@contextmanager
def interruptible() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM raise ``Interrupted`` in the main thread (elsewhere:
    nothing changes, signals only reach the main thread).

    A signal can arrive anywhere, also in code where Python cannot pass an exception on (a
    ``__del__``, a weakref callback): there the interruption would be printed as "Exception
    ignored" and lost, and the command would go on waiting. Such a swallowed interruption is sent
    again, so it is raised at the next point that can take it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        raise Interrupted(signum)

    def unraisable(info) -> None:
        if isinstance(info.exc_value, Interrupted):
            signum = signal.Signals[info.exc_value.signal_name]
            threading.Timer(0.01, os.kill, (os.getpid(), signum)).start()
        else:
            previous_hook(info)

    quiet = _NotNews()
    handlers = [logging.lastResort, *logging.getLogger().handlers]
    for h in handlers:
        if h is not None:
            h.addFilter(quiet)
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        sys.unraisablehook = previous_hook
        for h in handlers:
            if h is not None:
                h.removeFilter(quiet)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot; ``None`` when there is no such process,
    0 when it runs but its start time cannot be read (no procfs)."""
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return 0
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def started_at(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds); ``None`` when there is no such process or its
    start time cannot be read."""
    ticks = _start_ticks(pid)
    if not ticks:
        return None
    try:
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
    except (OSError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    pid: int
    started: int
    boot: str

    @classmethod
    def current(cls) -> ProcessIdentity:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _start_ticks(pid) or 0, _boot_id())

    @classmethod
    def parse(cls, token: str | None) -> ProcessIdentity | None:
        """The identity written by ``token()``; ``None`` for anything else."""
        parts = (token or "").split("|")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
            return None
        return cls(parts[0], int(parts[1]), int(parts[2]), parts[3])

    def token(self) -> str:
        return f"{self.host}|{self.pid}|{self.started}|{self.boot}"

    def alive(self) -> bool | None:
        """Whether this very process still runs; ``None`` when that cannot be known from here
        (another host)."""
        if self.host != socket.gethostname():
            return None
        if self.boot and self.boot != _boot_id():
            return False  # the machine has restarted since
        ticks = _start_ticks(self.pid)
        if ticks is None:
            return False
        return ticks == self.started or not ticks or not self.started  # 0: start time unknown, the pid decides

    def __str__(self) -> str:
        return f"process {self.pid} on {self.host}"

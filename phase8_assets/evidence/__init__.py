"""Readers, one module per evidence format. No Dagster here.

A reader takes the bytes of one file and its URI and returns a ``ReadResult`` or raises
``EvidenceError(field, reason)``, which the collector records as a ``Rejection``. Everything
calls a reader through ``read_evidence``: the one way out of a reader, where every string it
returns (or names in its error) passes the redaction function, and where a document nested too
deeply, or a reader bug, becomes a named rejection instead of a traceback.
The readers of bulk kinds (``STREAMED_KINDS``) also take a local ``Path`` and stream it, so reading a
file never holds it whole in memory.

A read the collector has stopped waiting for (its time limit) is abandoned: the loops that can run
long (staging a file, an OTLP file's lines) call ``check_abandoned``, and a DuckDB statement is
interrupted (``on_abandon``), so the reader ends with ``ReadAbandoned`` instead of reading on
unseen while the run goes on (and holding the process open at its exit).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path


class EvidenceError(ValueError):
    """A file that its reader refuses; ``field`` says where (a dotted path, an XML element, a line)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class ReadAbandoned(BaseException):
    """The collector stopped waiting for this read (a BaseException: no reader's ``except Exception``
    turns it into a rejection of its own)."""


class ReadControl:
    """What the collector can do to a read running in another thread: abandon it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abandoned = False
        self._interrupts: list[Callable[[], None]] = []

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    def abandon(self) -> None:
        # Under the lock: the reader cannot leave ``interrupting`` (and close what it interrupts) meanwhile.
        with self._lock:
            self._abandoned = True
            for interrupt in self._interrupts:
                with suppress(Exception):  # the statement ended meanwhile: nothing left to interrupt
                    interrupt()

    @contextmanager
    def interrupting(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """While the block runs, ``abandon`` calls ``interrupt``; the block ends with ``ReadAbandoned``
        when the read was abandoned before, during or right after it."""
        with self._lock:
            if self._abandoned:
                raise ReadAbandoned()
            self._interrupts.append(interrupt)
        try:
            yield
        finally:
            with self._lock:
                self._interrupts.remove(interrupt)
            if self._abandoned:
                raise ReadAbandoned()


_current = threading.local()


@contextmanager
def controlled(control: ReadControl) -> Iterator[None]:
    """Reads in this thread, while the block runs, answer to ``control``."""
    _current.control = control
    try:
        yield
    finally:
        _current.control = None


def check_abandoned() -> None:
    """Raise ``ReadAbandoned`` when the read in this thread has been abandoned (cheap: call it per
    chunk or line of a loop that can run long)."""
    control = getattr(_current, "control", None)
    if control is not None and control.abandoned:
        raise ReadAbandoned()


@contextmanager
def on_abandon(interrupt: Callable[[], None]) -> Iterator[None]:
    """While the block runs, abandoning this thread's read calls ``interrupt`` (e.g. a DuckDB
    connection's ``interrupt``); afterwards the read ends with ``ReadAbandoned``."""
    control = getattr(_current, "control", None)
    if control is None:
        yield
        return
    with control.interrupting(interrupt):
        yield


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__


def mapping(value: object, where: str) -> dict:
    """``value`` when it is an object (absent: an empty one); anything else is an ``EvidenceError`` at ``where``."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise EvidenceError(where, f"expected an object, got {_json_type(value)}")


def sequence(value: object, where: str) -> list:
    """``value`` when it is an array (absent: an empty one); anything else is an ``EvidenceError`` at ``where``."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise EvidenceError(where, f"expected an array, got {_json_type(value)}")


def strings(value: object, where: str) -> list[str]:
    """An array of strings at ``where`` (absent: an empty one). A list of another shape is an
    ``EvidenceError``: a string alone is not read as its letters, nor an object as its keys."""
    items = sequence(value, where)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise EvidenceError(f"{where}[{i}]", f"expected a string, got {_json_type(item)}")
    return items


def unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """``json.loads(..., object_pairs_hook=unique_keys)``: an object that names a key twice is refused,
    since parsers disagree on which of its values counts (fail closed, as the YAML loader does)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise EvidenceError("(document)", f"duplicate key {key[:80]!r} in one object (which value counts is ambiguous)")
    return out


def json_document(text: str | bytes):
    """``json.loads`` as every JSON reader calls it: an object naming a key twice is refused
    (``unique_keys``), and so is an integer longer than Python converts (4300 digits by default),
    by name, where ``json`` raises a bare ``ValueError``, and a string holding half of a character
    (a lone ``\\ud83d`` escape, ``lone_surrogate``). ``JSONDecodeError`` and
    ``UnicodeDecodeError`` reach the caller as they are."""
    try:
        doc = json.loads(text, object_pairs_hook=unique_keys)
    except ValueError as exc:
        if type(exc) is not ValueError:  # JSONDecodeError, UnicodeDecodeError, EvidenceError: the caller's
            raise
        raise EvidenceError("(document)", f"not valid JSON ({str(exc).split(':')[0]})") from exc
    if _SURROGATE_ESCAPE.search(text if isinstance(text, str) else text.decode("latin-1")):
        where = lone_surrogate(doc)
        if where is not None:
            raise EvidenceError(where or "(document)", "a string holds a lone UTF-16 surrogate (\\uD800-\\uDFFF "
                                "escape without its pair: text cut in the middle of a character, such as an "
                                "emoji); expected whole characters")  # fmt: skip
    return doc


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def lone_surrogate(value: object, where: str = "") -> str | None:
    """The path (``checks.uptime[0].output``) of the first string, or key, of a parsed JSON value
    that holds a lone surrogate, which no UTF-8 output (a report, the warehouse) can hold; None
    when there is none."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if lone_surrogate(key) is not None:
                return path.encode("utf-8", "backslashreplace").decode("utf-8")
            if (found := lone_surrogate(item, path)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := lone_surrogate(item, f"{where}[{index}]")) is not None:
                return found
    return None


@dataclass(frozen=True)
class Rejection:
    uri: str
    kind: str
    field: str
    reason: str
    sha256: str = ""

    def __str__(self) -> str:
        return f"{self.uri}: {self.field}: {self.reason}"


@dataclass
class ReadResult:
    """What a reader found: the time inside the evidence and a summary for people and gates."""

    observed_at: datetime | None
    timestamp_field: str
    summary: dict = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The run the file claims to record (tool, commit, time, machine), for kinds that have one: two
    # different files claiming the same run are a collision (``collect``), not two runs.
    identity: tuple | None = None
    # What of that run the file records (benchmarks: its (benchmark, params, measure) series): files of
    # one identity that share none are parts of the run (hyperfine exported per command), not a
    # collision. Empty: the whole run.
    parts: tuple = ()
    # Bulk kinds: the rows the reader parsed and validated, as Parquet, which their loader reads
    # instead of parsing the source again. Gone once the batch is (``collect``).
    spool: Path | None = None


Reader = Callable[[bytes | Path, str], ReadResult]


def read_evidence(
    kind: str, data: bytes | Path, uri: str, spool_dir: Path | None = None, rel: str | None = None
) -> ReadResult:
    """``kind``'s reader on one file: a redacted ``ReadResult``, or a redacted ``EvidenceError``.
    ``spool_dir``: an empty folder a bulk kind's reader may leave its ``spool`` in. ``rel``: the
    file's path inside its evidence root, for the kinds that read a time or commit from the path
    (``PATH_HINTED_KINDS``): where the root itself lives never dates the evidence in it."""
    from phase8_assets.shared.redaction import redact, redact_text

    kwargs: dict = {"spool_dir": spool_dir} if spool_dir else {}
    if rel is not None and kind in PATH_HINTED_KINDS:
        kwargs["rel"] = rel
    try:
        result = readers()[kind](data, uri, **kwargs)
    except EvidenceError as exc:
        raise EvidenceError(redact_text(exc.field), redact_text(exc.reason)) from None
    except RecursionError:
        raise EvidenceError("(document)", "nested too deeply to read (a recursion limit was reached)") from None
    except Exception as exc:  # a reader bug must not hide the file: it is rejected, loudly
        reason = f"the {kind} reader failed: {type(exc).__name__}: {exc}"
        raise EvidenceError("(reader)", redact_text(reason)) from exc
    try:
        return redact(result)
    except RecursionError:
        raise EvidenceError("(document)", "nested too deeply to read (a recursion limit was reached)") from None


def load_artifact(data: bytes, uri: str, kind: str) -> dict:
    """One of our own ``phase8/v1`` YAML/JSON artifacts, schema-checked; problems as ``EvidenceError``."""
    from phase8_assets.shared.artifacts import ArtifactError, validate_artifact
    from phase8_assets.shared.yaml_loader import YamlError, load_yaml

    try:
        return validate_artifact(load_yaml(data, uri), uri, kind)
    except YamlError as exc:
        raise EvidenceError("(document)", str(exc).split(": ", 1)[-1]) from exc
    except ArtifactError as exc:
        raise EvidenceError(exc.field, exc.reason) from exc


def artifact_time(doc: dict, key: str):
    """The ``Instant`` in an artifact's ``key`` (``reviewed``, ``generated_at``); else ``EvidenceError``."""
    from phase8_assets.shared.clock import TimeParseError, parse_timestamp

    try:
        return parse_timestamp(doc[key], key)
    except TimeParseError as exc:
        raise EvidenceError(key, f"expected a date (YYYY-MM-DD) or an RFC 3339 timestamp, got {doc[key]!r}") from exc


def naive_time_warning(field: str, value: object) -> str:
    """The warning of a reader that took a timestamp without a zone (``field``: ``value``) as UTC."""
    return f"{field}: {value!r} has no time zone; taken as UTC"


def review_time_warnings(field: str, value: object, instant) -> list[str]:
    """``naive_time_warning`` for a review time (``value``, parsed as the ``Instant`` ``instant``) without
    its zone; a review date alone (``2026-11-02``, in any ISO form) has no zone to lack."""
    from phase8_assets.shared.clock import is_date_only

    return [naive_time_warning(field, value)] if instant.was_naive and not is_date_only(str(value)) else []


# Kinds whose standard format carries no time (definitions, not observations): freshness asks
# that they are present and readable, not that they are young.
TIMELESS_KINDS = frozenset({"slo_definitions", "data_contracts", "foreign_exceptions", "plugin_bundles"})


def evidence_age(kind: str, observed_at: datetime, at: datetime) -> timedelta:
    """How old a file of ``kind`` whose time is ``observed_at`` is at ``at`` (every kind alike: a CUR
    delivery's time is its last usage day, as a FOCUS export's is its last charge day)."""
    return at - observed_at


# Kinds whose reader takes a time or commit the file does not carry from its path inside the root
# (``rel``; go test text, hyperfine): never from the folders above the root, which are not evidence.
PATH_HINTED_KINDS = frozenset({"benchmarks"})

# Bulk kinds: the collector hashes them while streaming and hands their reader a local path and a
# folder for its ``spool`` (the rows it parsed, for the loader: each file is parsed once). A CUR
# manifest is small, but its spool holds the rows of the data files it lists.
STREAMED_KINDS = frozenset({"otel_metrics", "cost_exports", "cur_exports"})


def readers() -> dict[str, Reader]:
    """Evidence kind -> reader. A stream adds its kind here when it lands its reader."""
    from phase8_assets.evidence import (
        benchmarks,
        chaos_journal,
        cost_policy,
        cur,
        drill_catalog,
        focus,
        governance,
        health,
        isolation,
        junit,
        litmus,
        openslo,
        otlp_metrics,
        perf_baseline,
        perf_budgets,
        plugins,
        runbooks,
        upgrade,
    )

    return {
        "isolation_results": junit.read,
        "isolation_matrix": isolation.read_matrix,
        "drill_journals": chaos_journal.read,
        "chaos_results": litmus.read,
        "drill_catalog": drill_catalog.read,
        "runbooks": runbooks.read,
        "benchmarks": benchmarks.read,
        "perf_budgets": perf_budgets.read,
        "perf_baselines": perf_baseline.read,
        "slo_definitions": openslo.read,
        "otel_metrics": otlp_metrics.read,
        "upgrade_path": upgrade.read_path,
        "preflight_reports": upgrade.read_preflight,
        "rollback_reports": upgrade.read_rollback,
        "cost_exports": focus.read,
        "cur_exports": cur.read_manifest,
        "cost_allocation": cost_policy.read_allocation,
        "cost_budgets": cost_policy.read_budgets,
        "retention_policies": governance.read_retention,
        "deletion_policies": governance.read_deletion,
        "access_policies": governance.read_access,
        "teams": governance.read_teams,
        "data_inventory": governance.read_inventory,
        "data_contracts": governance.read_data_contract,
        "foreign_exceptions": governance.read_foreign_exceptions,
        "health_responses": health.read,
        "plugin_bundles": plugins.read_bundle,
        "plugin_trust": plugins.read_trust,
    }

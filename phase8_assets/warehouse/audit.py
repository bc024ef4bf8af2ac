"""The audit trail in the warehouse: append-only ``audit_events``, hash-chained.

Each row carries ``prev_hash`` (the ``hash`` of the row before it, or of the newest anchor, or 64
zeros) and ``hash``: the SHA-256 of the canonical JSON (sorted keys, no spaces) of every other
column. ``verify`` walks the rows in ``seq`` order and names the first one whose sequence, link or
content does not hold: an edited, deleted or re-ordered row breaks the chain there.

Rows are appended inside the writer's transaction (the step or command that already holds the
warehouse): the head is read and the rows inserted in one transaction, so a killed writer leaves
whole rows or none, and two writers racing for the same ``seq`` collide on its primary key, the
loser retrying (``record``).

Deleting the newest records (or every row) leaves a shorter chain that still links, so the
trail's head is also kept outside the table: ``audit/head.json`` in the home (the newest record's
``seq`` and ``hash``), replaced atomically after each commit that appended. It only moves forward
and is a lower bound (two writers may land it in either order; each names a record that was
committed). ``verify`` fails when the table no longer holds the record the head names, and when a
gate run that completed (every gate recorded) after the trail began has no ``gate.verdict``
record. A restore that could not carry the trail (the warehouse before it was absent or
unreadable) resets the head and records the reset (``reset_head``).

The trail outlives every warehouse operation: before a rollback or restore takes the schema below
``0010_audit`` the trail is written to ``audit/trail.carried.jsonl`` in the home, later events
(the rollback itself) are chained onto that file, and the rows go back into the table, chain
intact, as soon as a writer finds the table again (``upgrade apply``, a restore, the next gate run).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from phase8_assets.shared import telemetry
from phase8_assets.shared.audit_events import AuditEvent, ocsf
from phase8_assets.shared.redaction import redact
from phase8_assets.warehouse import WarehouseError

GENESIS = "0" * 64
AUDIT_TABLES = ("audit_anchors", "audit_events")
CARRIED = Path("audit") / "trail.carried.jsonl"
HEAD = Path("audit") / "head.json"
COLUMNS = ("seq", "event_type", "occurred_at", "actor", "actor_source", "target", "outcome", "run_id", "record",
           "prev_hash", "hash")  # fmt: skip
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM audit_events"


class AuditTampered(RuntimeError):
    """The trail's chain does not hold; the message names the first bad record."""


class CarriedTrailDamaged(WarehouseError):
    """A line of the carried trail is not a record (edited or cut short): nothing reads past it or
    writes over it; the message names the file and the line."""


@dataclass(frozen=True)
class Verification:
    ok: bool
    checked: int
    first_bad: int | None
    problem: str
    anchor: int | None


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def timestamp(at: datetime) -> str:
    """The trail's form of a time: UTC, microseconds, ``Z``."""
    return _ts(at)


def _ts(at: datetime) -> str:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(row: dict) -> str:
    return hashlib.sha256(canonical({k: row[k] for k in COLUMNS if k != "hash"}).encode()).hexdigest()


def _row(event: AuditEvent, seq: int, prev: str) -> dict:
    row = {
        "seq": seq,
        "event_type": event.type,
        "occurred_at": _ts(event.occurred_at),
        "actor": redact(event.actor.name),
        "actor_source": redact(event.actor.source),
        "target": redact(event.target),
        "outcome": redact(event.outcome),
        "run_id": event.run_id,
        "record": ocsf(event, seq),
        "prev_hash": prev,
    }
    row["hash"] = row_hash(row)
    return row


def chain(events: Iterable[AuditEvent], head: tuple[int, str]) -> list[dict]:
    seq, prev = head
    out = []
    for event in events:
        seq += 1
        out.append(_row(event, seq, prev))
        prev = out[-1]["hash"]
    return out


def _first(result) -> tuple | None:
    """The first row, the result read to its end (DuckDB refuses other work beside an unfinished one)."""
    found = result.fetchall()
    return found[0] if found else None


def has_table(conn: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        _first(
            conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = 'audit_events'"
            )
        )[0]
    )


def anchor_of(conn: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    row = _first(conn.execute("SELECT seq, hash FROM audit_anchors ORDER BY seq DESC LIMIT 1"))
    return (int(row[0]), row[1]) if row else None


def head(conn: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    row = _first(conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1"))
    return (int(row[0]), row[1]) if row else (anchor_of(conn) or (0, GENESIS))


def _insert(conn: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    """All ``rows`` in one statement (an INSERT per row costs milliseconds each)."""
    if not rows:
        return
    import pyarrow as pa

    columns = {c: [r[c] for r in rows] for c in COLUMNS}
    columns["occurred_at"] = [
        datetime.fromisoformat(t.replace("Z", "+00:00")).replace(tzinfo=None) for t in columns["occurred_at"]
    ]
    columns["record"] = [canonical(r) for r in columns["record"]]
    incoming = pa.table(
        {c: pa.array(v, pa.timestamp("us") if c == "occurred_at" else pa.int64() if c == "seq" else pa.string())
         for c, v in columns.items()}
    )  # fmt: skip
    conn.register("audit_incoming", incoming)
    try:
        conn.execute(f"INSERT INTO audit_events SELECT {', '.join(COLUMNS)} FROM audit_incoming")
    finally:
        conn.unregister("audit_incoming")


def append(conn: duckdb.DuckDBPyConnection, events: list[AuditEvent], home: Path | None = None) -> list[dict]:
    """Chain ``events`` onto the trail inside the caller's transaction (a carried trail in ``home``
    goes back into the table first)."""
    if home is not None:
        carry_in(conn, home)
    rows = chain(events, head(conn))
    _insert(conn, rows)
    return rows


def record(conn: duckdb.DuckDBPyConnection, events: list[AuditEvent], home: Path | None = None,
           attempts: int = 20) -> list[dict]:  # fmt: skip
    """``append`` in its own transaction, retried when another writer took the same ``seq`` first.

    The transaction is the warehouse's (``transaction``): on DuckLake it holds the lake's write
    lock, so reading the head and appending take turns with every other writer (the lake has no
    primary key to stop two equal ``seq``, and a commit racing another writer's would conflict)."""
    from phase8_assets.warehouse import transaction

    for attempt in range(attempts):
        try:
            with _ended(conn), transaction(conn):
                rows = append(conn, events, home)
            committed(conn, home, rows)
            return rows
        except (duckdb.TransactionException, duckdb.ConstraintException):
            if attempt == attempts - 1:
                raise
            time.sleep(0.01 * (attempt + 1))
    return []


@contextlib.contextmanager
def _ended(conn: duckdb.DuckDBPyConnection):
    """No transaction left open when the block fails (a failed COMMIT may have ended it already)."""
    try:
        yield
    except BaseException:
        _rollback(conn)
        raise


def _rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back, unless a failed COMMIT already ended the transaction (DuckDB's conflict on commit)."""
    with contextlib.suppress(duckdb.TransactionException):
        conn.execute("ROLLBACK")


def run_audited(conn: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    """Whether the gate run's verdict is already in the trail (its events are recorded once)."""
    found = _first(
        conn.execute("SELECT count(*) FROM audit_events WHERE event_type = 'gate.verdict' AND run_id = ?", [run_id])
    )[0]
    return bool(found)


def switched_back_on(conn: duckdb.DuckDBPyConnection, roots: list[str], run_id: str, report: dict) -> list[str]:
    """Gates the previous run on the same roots skipped and this one evaluates (switched back on)."""
    previous = _first(
        conn.execute(
            "SELECT run_id FROM gate_runs WHERE evidence_roots = ? AND run_id <> ? ORDER BY recorded_at DESC LIMIT 1",
            [roots, run_id],
        )
    )
    if previous is None:
        return []
    skipped = {
        g for (g,) in conn.execute(
            "SELECT gate FROM gate_run_results WHERE run_id = ? AND status = 'skipped'", [previous[0]]
        ).fetchall()
    }  # fmt: skip
    return sorted(g["gate"] for g in report["gates"] if g["gate"] in skipped and g["status"] != "skipped")


def evidence_digests(conn: duckdb.DuckDBPyConnection, roots: list[str]) -> dict:
    """The evidence the verdict judged: each current file's sha256, and one digest over them all."""
    files = conn.execute(
        "SELECT root, kind, uri, sha256 FROM evidence_versions WHERE root IN (SELECT unnest(?)) AND ended_at IS NULL "
        "ORDER BY root, kind, uri",
        [roots],
    ).fetchall()
    listing = [{"root": r, "kind": k, "uri": u, "sha256": s} for r, k, u, s in files]
    return {"files": len(listing), "sha256": hashlib.sha256(canonical(listing).encode()).hexdigest(),
            "by_file": {f["uri"]: f["sha256"] for f in listing}}  # fmt: skip


def emit(rows: list[dict]) -> None:
    """Each record as an OpenTelemetry log record ``phase8.audit.<type>`` (redacted by the helper)."""
    for row in rows:
        attributes = {
            "phase8.audit.seq": row["seq"],
            "phase8.audit.hash": row["hash"],
            "phase8.audit.actor": row["actor"],
            "phase8.audit.actor_source": row["actor_source"],
            "phase8.audit.target": row["target"],
            "phase8.audit.outcome": row["outcome"],
            "ocsf.class_uid": row["record"]["class_uid"],
            "ocsf.type_uid": row["record"]["type_uid"],
        }
        if row["run_id"]:
            attributes["cicd.pipeline.run.id"] = row["run_id"]
        telemetry.emit_event(f"phase8.audit.{row['event_type']}", attributes, body=canonical(row["record"]))


def rows(conn: duckdb.DuckDBPyConnection, since: datetime | None = None) -> list[dict]:
    where, params = (
        ("", []) if since is None else (" WHERE occurred_at >= ?", [since.astimezone(UTC).replace(tzinfo=None)])
    )
    out = []
    for values in conn.execute(f"{_SELECT}{where} ORDER BY seq", params).fetchall():
        row = dict(zip(COLUMNS, values, strict=True))
        row["occurred_at"] = _ts(row["occurred_at"])
        row["record"] = json.loads(row["record"])
        out.append(row)
    return out


def _walk(trail: list[dict], anchor: tuple[int, str] | None) -> Verification:
    seq, prev = anchor or (0, GENESIS)
    start = anchor[0] if anchor else None
    for row in trail:
        problem = None
        if row["seq"] != seq + 1:
            problem = f"seq {row['seq']} follows {seq}: a record was deleted or re-ordered"
        elif row["prev_hash"] != prev:
            problem = (
                "prev_hash does not match the record before it: a record before it was deleted, re-ordered or edited"
            )
        elif row_hash(row) != row["hash"]:
            problem = "its content does not match its hash: the record was edited"
        if problem:
            return Verification(
                False, row["seq"] - (start or 0) - 1, row["seq"], f"record {row['seq']}: {problem}", start
            )
        seq, prev = row["seq"], row["hash"]
    return Verification(True, len(trail), None, "", start)


def verify(conn: duckdb.DuckDBPyConnection, home: Path | None = None) -> Verification:
    """The chain, and (with ``home``) the head kept outside the table; the completed gate runs
    whose verdict must be in the trail, always."""
    recorded = head_before(home)
    return verify_trail(rows(conn), anchor_of(conn), home, completed_runs(conn), recorded)


def head_before(home: Path | None) -> tuple[int, str] | ValueError | None:
    """The head recorded in ``home``, read before the trail is (an unreadable file: the error). A
    writer that commits in between only makes the trail longer than the head, never shorter."""
    try:
        return read_head(home) if home is not None else None
    except ValueError as exc:
        return exc


def verify_trail(trail: list[dict], anchor: tuple[int, str] | None, home: Path | None,
                 runs: list[tuple[str, str, str]], recorded: tuple[int, str] | ValueError | None) -> Verification:  # fmt: skip
    """``verify_rows`` with the head ``recorded`` in ``home`` (``head_before``; unreadable fails)."""
    if isinstance(recorded, ValueError):
        return Verification(False, 0, None, str(recorded), anchor[0] if anchor else None)
    return verify_rows(trail, anchor, recorded, runs, str(home / HEAD) if home is not None else str(HEAD))


def verify_rows(trail: list[dict], anchor: tuple[int, str] | None, recorded: tuple[int, str] | None = None,
                runs: list[tuple[str, str, str]] = (), head_file: str = str(HEAD)) -> Verification:  # fmt: skip
    """Walk ``trail`` (in ``seq`` order) from ``anchor``; the first record whose sequence, link to
    the one before or own hash does not hold is named. Then the records the chain cannot vouch for:
    the head ``recorded`` outside the table (``seq``, ``hash``) must be in the trail (records after
    the newest one left were deleted), and each completed gate run in ``runs`` (run id, verdict,
    recorded at) must have its ``gate.verdict`` record."""
    walked = _walk(trail, anchor)
    if not walked.ok:
        return walked
    start = anchor[0] if anchor else None
    last = trail[-1]["seq"] if trail else (anchor[0] if anchor else 0)
    if recorded is not None:
        seq, digest = recorded
        by_seq = {r["seq"]: r["hash"] for r in trail}
        if seq > last:
            lost = f"the newest {seq - last} record(s) were deleted" if last else "every record was deleted"
            ends = f"the trail ends at record {last}" if last else "the trail is empty"
            return Verification(
                False, len(trail), last + 1,
                f"record {last + 1}: missing: {ends}, but records up to {seq} were written ({head_file}): {lost}",
                start,
            )  # fmt: skip
        known = by_seq.get(seq) or (anchor[1] if anchor and anchor[0] == seq else None)
        if known is not None and known != digest:
            return Verification(
                False, len(trail), seq,
                f"record {seq}: its hash is not the one {head_file} recorded for it: the trail was replaced", start,
            )  # fmt: skip
    audited = {r["run_id"] for r in trail if r["event_type"] == "gate.verdict"}
    lost = [(run_id, verdict, at) for run_id, verdict, at in runs if run_id not in audited]
    if lost:
        named = "; ".join(f"run {run_id} ({verdict}, recorded {at})" for run_id, verdict, at in lost[:5])
        more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
        return Verification(
            False, len(trail), None,
            f"gate.verdict missing for {len(lost)} completed gate run(s) in gate_runs: {named}{more}: "
            "their records were deleted", start,
        )  # fmt: skip
    return walked


def completed_runs(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """Gate runs whose ``gate.verdict`` must be in the trail: every gate recorded (the step or
    command that completes a run records its verdict in the same transaction), recorded after the
    trail began (the audit migration last applied) and after the newest prune (a prune takes the
    warehouse, so a verdict recorded after it is not older than what it removed). Runs still
    missing a gate (a crashed run nothing completed) have no verdict and are not listed."""
    from phase8_assets.domains.gates import GATES
    from phase8_assets.warehouse.operations import AUDIT_VERSION

    begun = _first(conn.execute("SELECT max(applied_at) FROM schema_version WHERE version = ?", [AUDIT_VERSION]))
    if begun is None or begun[0] is None:
        return []
    pruned = _first(conn.execute("SELECT max(pruned_at) FROM audit_anchors"))[0]
    since = max(begun[0], pruned) if pruned is not None else begun[0]
    found = conn.execute(
        "SELECT r.run_id, r.verdict, r.recorded_at FROM gate_runs r JOIN gate_run_results g USING (run_id) "
        "WHERE r.recorded_at > ? AND g.gate IN (SELECT unnest(?)) GROUP BY ALL "
        "HAVING count(DISTINCT g.gate) = ? ORDER BY r.recorded_at, r.run_id",
        [since, sorted(GATES), len(GATES)],
    ).fetchall()
    return [(run_id, verdict, _ts(at)) for run_id, verdict, at in found]


def export(conn: duckdb.DuckDBPyConnection, since: datetime | None, fmt: str) -> list[str]:
    """One line per record: the whole row (``jsonl``, chain included) or the OCSF event (``ocsf``)."""
    return [canonical(r if fmt == "jsonl" else r["record"]) for r in rows(conn, since)]


def prune(conn: duckdb.DuckDBPyConnection, before: datetime, retention: str, event: AuditEvent,
          home: Path | None = None) -> dict:  # fmt: skip
    """Remove the oldest records older than ``before`` (a prefix of the trail, so what stays is a
    chain), record the last removed one as the new anchor, and record the prune itself."""
    cutoff = before.astimezone(UTC).replace(tzinfo=None)
    with_anchor = _first(
        conn.execute(
            "SELECT seq, hash FROM audit_events WHERE seq < coalesce((SELECT min(seq) FROM audit_events "
            "WHERE occurred_at >= ?), (SELECT max(seq) + 1 FROM audit_events)) ORDER BY seq DESC LIMIT 1",
            [cutoff],
        )
    )
    removed = 0
    conn.execute("BEGIN TRANSACTION")
    try:
        if with_anchor:
            last, digest = with_anchor
            removed = _first(conn.execute("SELECT count(*) FROM audit_events WHERE seq <= ?", [last]))[0]
            conn.execute(
                "INSERT INTO audit_anchors VALUES (?, ?, ?, ?, ?)",
                [last, digest, event.occurred_at.astimezone(UTC).replace(tzinfo=None), removed, retention],
            )
            conn.execute("DELETE FROM audit_events WHERE seq <= ?", [last])
        pruned = AuditEvent(event.type, event.target, event.outcome, event.actor, event.occurred_at,
                            f"{removed} record(s) older than {_ts(before)} removed ({retention})", event.ticket,
                            None, {"removed": removed, "before": _ts(before), "retention": retention})  # fmt: skip
        new = append(conn, [pruned])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    write_head(home, new)
    emit(new)
    return {"removed": int(removed), "anchor": with_anchor[0] if with_anchor else None, "recorded": new[0]["seq"]}


# -- carrying the trail across a schema without the audit tables --------------------------------------


def read_carried(path: Path) -> tuple[tuple[int, str] | None, list[dict]]:
    """(anchor, records) of the carried trail; ``CarriedTrailDamaged`` naming the first line that is
    not one of the records this module writes."""
    anchor, trail = None, []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or not (
                isinstance(item.get("anchor"), dict) or all(column in item for column in COLUMNS)
            ):
                raise ValueError(f"expected a record with {', '.join(COLUMNS)}, or an anchor")
            if item.get("anchor"):
                anchor = (int(item["anchor"]["seq"]), str(item["anchor"]["hash"]))
                continue
            int(item["seq"])
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise CarriedTrailDamaged(
                f"{path}: line {number}: not a record of the trail ({exc}): the carried trail was edited or "
                "cut short; it is left as it is, and the backup taken before the rollback or restore that "
                "carried it holds the trail as it was then"
            ) from None
        trail.append(item)
    return anchor, trail


def _write_carried(path: Path, anchor: tuple[int, str] | None, trail: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ([canonical({"anchor": {"seq": anchor[0], "hash": anchor[1]}})] if anchor else []) + [
        canonical(r) for r in trail
    ]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(line + "\n" for line in lines))
    os.replace(tmp, path)


def carry_out(conn: duckdb.DuckDBPyConnection, home: Path) -> int:
    """Write the trail (and its anchor) to the home before the table goes; returns how many records."""
    trail = rows(conn)
    _write_carried(home / CARRIED, anchor_of(conn), trail)
    return len(trail)


def carry_in(conn: duckdb.DuckDBPyConnection, home: Path) -> int:
    """Put a carried trail back into the table (inside the caller's transaction); returns how many
    records went in. Idempotent, so the file is removed only after the commit (``settle``): the
    records the table already has (the same seq and hash) stay; when the table's copy is not a
    prefix of the carried one (an older backup restored), the carried trail replaces it."""
    path = home / CARRIED
    if not path.exists() or not has_table(conn):
        return 0
    anchor, carried = read_carried(path)
    seq, digest = head(conn)
    by_seq = {r["seq"]: r["hash"] for r in carried}
    prefix = seq == 0 or by_seq.get(seq) == digest or (anchor is not None and (seq, digest) == anchor)
    if not prefix:
        conn.execute("DELETE FROM audit_events")
        conn.execute("DELETE FROM audit_anchors")
        seq = 0
    if anchor and not _first(conn.execute("SELECT count(*) FROM audit_anchors WHERE seq = ?", [anchor[0]]))[0]:
        conn.execute("INSERT INTO audit_anchors VALUES (?, ?, ?, 0, 'carried')",
                     [anchor[0], anchor[1], datetime.now(UTC).replace(tzinfo=None)])  # fmt: skip
    missing = [r for r in carried if r["seq"] > seq]
    _insert(conn, missing)
    return len(missing)


def committed(conn: duckdb.DuckDBPyConnection, home: Path | None, appended: list[dict]) -> None:
    """After the commit that appended ``appended``: the carried trail settled, the head moved on."""
    settle(conn, home)
    write_head(home, appended)


def settle(conn: duckdb.DuckDBPyConnection, home: Path | None) -> None:
    """After the commit: remove a carried trail the table now holds in full."""
    path = home / CARRIED if home is not None else None
    if path is None or not path.exists() or not has_table(conn):
        return
    _anchor_, carried = read_carried(path)
    last = (carried[-1]["seq"], carried[-1]["hash"]) if carried else None
    if (
        last is None
        or _first(conn.execute("SELECT count(*) FROM audit_events WHERE seq = ? AND hash = ?", list(last)))[0]
    ):
        path.unlink()


def record_in_home(path: Path, events: list[AuditEvent], wait_s: float = 30.0) -> list[dict]:
    """Record ``events`` for a command outside a gate run (warehouse operations, diagnostics): in
    the table when the warehouse has it, else chained onto the carried trail in the home."""
    from phase8_assets.warehouse import connect

    home = path.parent
    new: list[dict] = []
    if path.exists():
        with connect(path, check_schema=False, wait_s=wait_s) as conn:
            if has_table(conn):
                new = record(conn, events, home)
    if not new:
        carried = home / CARRIED
        anchor, trail = read_carried(carried) if carried.exists() else (None, [])
        start = (trail[-1]["seq"], trail[-1]["hash"]) if trail else (anchor or (0, GENESIS))
        new = chain(events, start)
        _write_carried(carried, anchor, trail + new)
        write_head(home, new)
    emit(new)
    return new


# -- the head kept outside the table ---------------------------------------------------------------


def read_head(home: Path) -> tuple[int, str] | None:
    """The head recorded in ``home`` (``None``: none yet); ``ValueError`` naming the file when unreadable."""
    path = home / HEAD
    try:
        item = json.loads(path.read_text())
        return int(item["seq"]), str(item["hash"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: unreadable audit head ({exc}); expected a JSON object with seq and hash") from exc


def write_head(home: Path | None, appended: list[dict]) -> None:
    """Record the newest of ``appended`` (just committed) as the head in ``home``, unless the head
    there is already as new (another writer's later commit): atomically, temp file then replace."""
    if home is None or not appended:
        return
    newest = max(appended, key=lambda r: r["seq"])
    try:
        current = read_head(home)
    except ValueError:
        current = None
    if current is not None and current[0] >= newest["seq"]:
        return
    _replace_head(home, {"seq": newest["seq"], "hash": newest["hash"], "occurred_at": newest["occurred_at"]})


def _replace_head(home: Path, item: dict | None) -> None:
    path = home / HEAD
    path.parent.mkdir(parents=True, exist_ok=True)
    if item is None:
        path.unlink(missing_ok=True)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(canonical(item) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def reset_head(home: Path) -> dict | None:
    """Forget the head recorded in ``home`` (a restore that could not carry the trail: the restored
    trail's own head is recorded by the restore's event); returns what it was, for that event."""
    try:
        before = read_head(home)
    except ValueError as exc:
        before_item = {"unreadable": str(exc)}
    else:
        before_item = {"seq": before[0], "hash": before[1]} if before else None
    _replace_head(home, None)
    return before_item

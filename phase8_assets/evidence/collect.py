"""Discover and read every evidence file a config names: the ingest step of every gate.

Each file is read once (the same bytes under two paths count once, by sha256), through its
kind's reader, under the config's size and time limits; bulk kinds are hashed while streamed,
never held whole in memory. A file that cannot be read becomes a ``Rejection`` and the rest is
still processed. Two different files that claim the same run (``ReadResult.identity``) and record
a same part of it (``ReadResult.parts``) are a collision: the one with the later internal timestamp
counts (ties: the greater URI), the other is set aside in ``EvidenceBatch.collisions``. ``EvidenceBatch.present`` is every file version in the
roots now, readable or not: what the warehouse marks current (``store.record_batch``).
"""

from __future__ import annotations

import concurrent.futures as cf
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from phase8_assets.evidence import (
    STREAMED_KINDS,
    EvidenceError,
    ReadControl,
    ReadResult,
    Rejection,
    check_abandoned,
    controlled,
    read_evidence,
)
from phase8_assets.evidence.config import EvidenceConfig, Located
from phase8_assets.evidence.governance import zoned_time
from phase8_assets.evidence.revisions import derived_version
from phase8_assets.evidence.roots import EvidenceRoot, FileRef, RootError, file_root
from phase8_assets.evidence.runbooks import is_placeholder_owner
from phase8_assets.shared.artifacts import ArtifactError, validate_artifact
from phase8_assets.shared.clock import TimeParseError, format_timestamp, parse_timestamp
from phase8_assets.shared.redaction import redact, redact_text
from phase8_assets.shared.yaml_loader import YamlError, load_yaml_documents

WAIVER_KIND = "waivers"
SPOOL_PREFIX = "phase8-spool-"
_OWNER = ".owner"  # a file in a spool folder that its process holds a lock on while the folder is in use


def sweep_spools(folder: Path | None = None) -> list[Path]:
    """Remove the spool folders (under ``folder``, default the temp dir) that no process holds any
    more: a batch removes its own when it is collected, a process killed by SIGKILL or the OOM
    killer cannot. Whether a folder is held is asked of the kernel (a lock on its owner file), so a
    process in another PID namespace sharing the temp dir keeps its folder; a folder without an
    owner file is being created, unless it is older than an hour (left by an earlier release)."""
    removed = [path for path in Path(folder or tempfile.gettempdir()).glob(f"{SPOOL_PREFIX}*") if _unheld(path)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def _unheld(path: Path) -> bool:
    try:
        fd = os.open(path / _OWNER, os.O_RDONLY)
    except FileNotFoundError:
        try:
            return path.is_dir() and time.time() - path.stat().st_mtime > 3600
        except OSError:
            return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # taken only when no live process holds it
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # (releases the lock just taken)


def _release_spool(path: Path, owner: int) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.close(owner)


def new_spool_folder(holder: object) -> tuple[Path, weakref.finalize]:
    """A spool folder held (its owner file locked) until ``holder`` is collected, and the finalizer
    that removes it (``detach`` it to hand the folder to another holder)."""
    sweep_spools()
    path = Path(tempfile.mkdtemp(prefix=SPOOL_PREFIX))
    claiming = path / f"{_OWNER}.claiming"
    owner = os.open(claiming, os.O_RDONLY | os.O_CREAT, 0o600)
    fcntl.flock(owner, fcntl.LOCK_EX)
    os.rename(claiming, path / _OWNER)  # only a locked owner file is ever seen by a sweep
    return path, weakref.finalize(holder, _release_spool, path, owner)


@dataclass
class EvidenceFile:
    root: str
    kind: str
    uri: str
    sha256: str
    size: int
    observed_at: datetime | None
    timestamp_field: str
    summary: dict
    warnings: list[str] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    identity: tuple | None = None
    spool: Path | None = None  # ``ReadResult.spool``: valid while the batch that read the file lives
    parts: tuple = ()  # ``ReadResult.parts``: what of its run the file records (empty: all of it)

    @property
    def version(self) -> str:
        """What the rows derived from this file are stored under: its content as its kind's reader
        revision reads it (``revisions.derived_version``)."""
        return derived_version(self.kind, self.sha256)


@dataclass
class Waiver:
    """One exception document (``kind: Waiver``): what it accepts, who asked, who approved, until when."""

    gate: str
    subject: str
    rule: str
    owner: str
    reason: str
    ticket: str
    expires: datetime
    source: str
    id: str = ""
    requested_by: str | None = None
    approved_by: str | None = None
    approved_at: datetime | None = None
    starts: datetime | None = None
    renews: str | None = None

    def as_details(self) -> dict:
        return {
            "id": self.id,
            "owner": self.owner,
            "reason": self.reason,
            "ticket": self.ticket,
            "expires": format_timestamp(self.expires),
            "requested_by": self.requested_by,
            "approved_by": self.approved_by,
            "approved_at": format_timestamp(self.approved_at) if self.approved_at else None,
            "source": self.source,
        }


@dataclass
class EvidenceBatch:
    """Everything read for one evaluation: files, rejections, waivers, and what matched nothing."""

    roots: list[str]
    files: list[EvidenceFile] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    waivers: list[Waiver] = field(default_factory=list)
    unmatched: dict[str, list[str]] = field(default_factory=dict)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    future: list[EvidenceFile] = field(default_factory=list)  # dated beyond the evaluation time + skew
    collisions: list[tuple[EvidenceFile, EvidenceFile]] = field(default_factory=list)  # (set aside, counted)
    present: list[tuple[str, str, str, str]] = field(default_factory=list)  # (root, kind, uri, sha256 or '')
    listed: list[tuple[str, str, str, int]] = field(default_factory=list)  # ``listing`` when the read began

    def files_of(self, kind: str) -> list[EvidenceFile]:
        return [f for f in self.files if f.kind == kind]

    def future_of(self, kind: str) -> list[EvidenceFile]:
        return [f for f in self.future if f.kind == kind]

    def set_aside_future(self, at: datetime, skew: timedelta) -> None:
        """Move the files dated more than ``skew`` after ``at`` from ``files`` to ``future``: such a
        file is an error (``evidence_freshness`` says so) and never counts as fresh, newest or latest
        anywhere downstream."""
        limit = at + skew
        self.future = [f for f in self.files if f.observed_at is not None and f.observed_at > limit]
        self.files = [f for f in self.files if f.observed_at is None or f.observed_at <= limit]

    def rejections_of(self, kind: str) -> list[Rejection]:
        return [r for r in self.rejections if r.kind == kind]


@dataclass
class _Task:
    kind: str
    source: Located
    ref: FileRef
    max_bytes: int
    spool_dir: Path | None = None  # streamed kinds: where their copy is staged
    control: ReadControl = field(default_factory=ReadControl)


def _run(task: _Task) -> _Read:
    with controlled(task.control):
        return _read_one(task)


def _discover(sources: list[Located]) -> tuple[list[tuple[Located, FileRef]], list[str], list[Rejection]]:
    found, unmatched, errors, seen = [], [], [], set()
    for loc in sources:
        try:
            refs, unlisted = loc.base.listing(loc.path)
        except RootError as exc:
            errors.append(Rejection(loc.uri, "", "(listing)", str(exc)))
            continue
        errors.extend(Rejection(folder, "", "(listing)", reason) for folder, reason in unlisted)
        if unlisted and not refs:
            continue  # not "matched nothing": what it may match cannot be seen
        if not refs:
            unmatched.append(loc.uri)
        for ref in refs:
            if ref.uri not in seen:
                seen.add(ref.uri)
                found.append((loc, ref))
    return found, unmatched, errors


@dataclass
class _Read:
    data: bytes  # empty for streamed kinds
    digest: str  # '' when the file could not be read at all
    size: int
    outcome: ReadResult | Rejection


def _read_one(task: _Task) -> _Read:
    check_abandoned()
    base, rel, uri = task.source.base, task.ref.rel, task.ref.uri
    if task.kind in STREAMED_KINDS:
        return _read_staged(task.kind, base, rel, uri, task.max_bytes, task.spool_dir)
    try:
        data = base.read_bytes(rel, task.max_bytes)
    except (RootError, OSError) as exc:
        return _Read(b"", "", 0, Rejection(uri, task.kind, "(file)", _unreadable(exc)))
    digest = hashlib.sha256(data).hexdigest()
    if len(data) > task.max_bytes:
        reason = f"{len(data)}+ bytes exceeds the limit of {task.max_bytes} bytes"
        return _Read(data, digest, len(data), Rejection(uri, task.kind, "(file)", reason, digest))
    if task.kind == WAIVER_KIND:
        return _Read(data, digest, len(data), ReadResult(None, "", {}))
    return _Read(data, digest, len(data), _parse(task.kind, uri, data, digest, rel=rel))


def _unreadable(exc: RootError | OSError) -> str:
    """Why a file could not be read: a root's reason without the path it starts with, or the
    system's (``[Errno 13] Permission denied: '<path>'`` kept only its path)."""
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return str(exc).split(": ", 1)[-1]


def _read_staged(kind: str, base: EvidenceRoot, rel: str, uri: str, max_bytes: int, folder: Path | None) -> _Read:
    """A bulk file staged (hashed while streamed: a remote one copied into a new folder under
    ``folder``, a local one read in place) and read by its reader, which leaves its spool in a
    folder of its own there (never under the staged file's name). The copy goes once read; all of
    it when the reader refuses the file."""
    tmp = Path(tempfile.mkdtemp(prefix="stage-", dir=folder))
    spool_dir = tmp / "spool"
    spool_dir.mkdir()
    try:
        try:
            path, digest, size = base.stage(rel, max_bytes, tmp)
        except (RootError, OSError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            return _Read(b"", "", 0, Rejection(uri, kind, "(file)", _unreadable(exc)))
        outcome = _parse(kind, uri, path, digest, spool_dir, rel)
    except BaseException:  # abandoned (the time limit), or a reader's bug
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.parent == tmp:
        path.unlink()
    if isinstance(outcome, Rejection):
        shutil.rmtree(tmp, ignore_errors=True)
    return _Read(b"", digest, size, outcome)


def spool_of(f: EvidenceFile, folder: Path) -> Path:
    """The rows ``f``'s reader spooled when it was collected (the file parsed once). A batch read in
    another process (a re-executed step) has none at hand: the file is staged and read again under
    ``folder``, and refused when its content is no longer the one collected."""
    if f.spool is not None and f.spool.exists():
        return f.spool
    try:
        root, rel = file_root(f.uri)
        read = _read_staged(f.kind, root, rel, f.uri, f.size, folder)
    except RootError as exc:
        raise EvidenceError("(file)", str(exc)) from None
    if read.digest != f.sha256:
        raise EvidenceError("(file)", f"changed since it was collected (sha256 {f.sha256[:12]}…); not loaded")
    if isinstance(read.outcome, Rejection):
        raise EvidenceError(read.outcome.field, read.outcome.reason)
    return read.outcome.spool


def _parse(
    kind: str, uri: str, data: bytes | Path, digest: str, spool_dir: Path | None = None, rel: str | None = None
) -> ReadResult | Rejection:
    try:
        return read_evidence(kind, data, uri, spool_dir, rel)
    except EvidenceError as exc:
        return Rejection(uri, kind, exc.field, exc.reason, digest)


def overlap(a: EvidenceFile, b: EvidenceFile) -> list:
    """What two files of one run both record (``parts``; a file without parts records all of it)."""
    if not a.parts or not b.parts:
        return list(a.parts or b.parts) or ["(the whole run)"]
    return sorted(set(a.parts) & set(b.parts))


def _set_aside_collisions(batch: EvidenceBatch) -> None:
    """Keep one file per claimed run identity and part of that run: the later internal timestamp,
    ties by the greater URI. Files of one run that record different parts of it (hyperfine exported
    once per command, each with the run's time and commit in its path) all count: setting one aside
    would leave its benchmarks unjudged."""
    claims: dict[tuple, list[EvidenceFile]] = {}
    for f in batch.files:
        if f.identity is not None:
            claims.setdefault((f.kind, f.identity), []).append(f)
    losers = []
    for files in claims.values():
        if len(files) > 1:
            ranked = sorted(files, key=lambda f: (f.observed_at is not None, f.observed_at or 0, f.uri), reverse=True)
            kept: list[EvidenceFile] = []
            for f in ranked:
                winner = next((k for k in kept if overlap(f, k)), None)
                if winner is None:
                    kept.append(f)
                else:
                    batch.collisions.append((f, winner))
                    losers.append(f)
    batch.collisions.sort(key=lambda pair: (pair[0].kind, pair[0].uri))
    batch.files = [f for f in batch.files if all(f is not loser for loser in losers)]


def waiver_from(doc: object, where: str) -> Waiver:
    """One ``kind: Waiver`` document, checked as the gate reads it: ``EvidenceError`` (field, reason)
    when its schema, expiry or approval times are not what the gate accepts."""
    try:
        validate_artifact(doc, where, "Waiver")
    except ArtifactError as exc:
        raise EvidenceError(exc.field, exc.reason) from None
    if is_placeholder_owner(doc["owner"]):  # the schema's pattern accepts team:TBD
        raise EvidenceError(
            "owner",
            f"{doc['owner']!r} is a placeholder, it names nobody: an exception needs an owner who answers for it",
        )
    try:
        instant = parse_timestamp(doc["expires"], "expires")
    except TimeParseError as exc:
        raise EvidenceError("expires", str(exc).split(": ", 1)[-1]) from None
    # A date alone is documented (midnight UTC); a time without a zone, however written, is refused.
    if instant.was_naive and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(doc["expires"]).strip()):
        raise EvidenceError(
            "expires", f"the timestamp {doc['expires']!r} has no time zone; write it with Z or an offset"
        )
    approved_at, starts = (zoned_time(doc[key], key) if doc.get(key) else None for key in ("approved_at", "starts"))
    return Waiver(
        doc["gate"],
        doc["subject"],
        doc.get("rule", "*"),
        doc["owner"],
        doc["reason"],
        doc["ticket"],
        instant.at,
        where,
        id=doc.get("id") or doc["ticket"],
        requested_by=doc.get("requested_by"),
        approved_by=doc.get("approved_by"),
        approved_at=approved_at,
        starts=starts,
        renews=doc.get("renews"),
    )


def _parse_waivers(data: bytes, uri: str, digest: str) -> tuple[list[Waiver], list[Rejection]]:
    waivers, rejections = [], []
    try:
        docs = load_yaml_documents(data, uri)
    except YamlError as exc:
        return [], [Rejection(uri, WAIVER_KIND, "(document)", redact_text(str(exc).split(": ", 1)[-1]), digest)]
    for index, doc in enumerate(docs):
        where = f"{uri}#{index}" if len(docs) > 1 else uri
        try:
            waivers.append(waiver_from(doc, where))
        except EvidenceError as exc:
            rejections.append(Rejection(where, WAIVER_KIND, exc.field, exc.reason, digest))
    return redact(waivers), redact(rejections)


def _plans(config: EvidenceConfig, kinds: set[str] | None, waivers: bool | None) -> list[tuple[str, list, int]]:
    """(kind, sources, max_bytes) of what ``collect`` reads with these arguments."""
    plans = [(k.name, k.sources, k.max_bytes) for k in config.evidence.values() if kinds is None or k.name in kinds]
    if config.waivers and (kinds is None if waivers is None else waivers):
        plans.append((WAIVER_KIND, config.waivers, config.max_file_bytes))
    return plans


def listing(
    config: EvidenceConfig, kinds: set[str] | None = None, waivers: bool | None = None
) -> list[tuple[str, str, str, int]] | None:
    """(kind, URI, version, size) of every file ``collect`` with the same arguments reads, as the roots
    list them now (the version: mtime and size, or the S3 ETag), sorted; no file is read. ``None``
    when a folder cannot be listed."""
    out: list[tuple[str, str, str, int]] = []
    for kind, sources, _ in _plans(config, kinds, waivers):
        found, _, errors = _discover(sources)
        if errors:
            return None
        out.extend((kind, ref.uri, ref.version, ref.size) for _, ref in found)
    return sorted(out)


def collect(
    config: EvidenceConfig,
    max_workers: int = 4,
    kinds: set[str] | None = None,
    waivers: bool | None = None,
    spool_dir: Path | None = None,
) -> EvidenceBatch:
    """Read every configured evidence file (and waiver file) of ``config``; with ``kinds``, only the
    files of those kinds, and waivers only when asked (``phase8 policy check`` needs them; a policy a
    sensor or report needs does not). Streamed kinds spool into ``spool_dir`` when given (its
    holder keeps it), else into a folder the batch holds."""
    batch = EvidenceBatch(roots=config.root_uris)
    tasks: list[_Task] = []
    for kind, sources, max_bytes in _plans(config, kinds, waivers):
        found, unmatched, errors = _discover(sources)
        batch.listed.extend((kind, ref.uri, ref.version, ref.size) for _, ref in found)
        if unmatched:
            batch.unmatched[kind] = unmatched
        batch.rejections.extend(Rejection(r.uri, kind, r.field, r.reason) for r in errors)
        if found and kind in STREAMED_KINDS and spool_dir is None:
            spool_dir, _ = new_spool_folder(batch)
        tasks.extend(_Task(kind, loc, ref, max_bytes, spool_dir) for loc, ref in found)

    seen: dict[tuple[str, str], str] = {}
    pool = cf.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="phase8-read")
    try:
        futures = [(task, pool.submit(_run, task)) for task in tasks]
        for task, future in futures:
            root = task.source.root or config.roots[0].uri
            try:
                read = future.result(timeout=config.read_timeout_s)
            except cf.TimeoutError:
                future.cancel()  # not started yet: never will be
                task.control.abandon()
                reason = f"reading took longer than the limit of {config.read_timeout_s:g} s"
                batch.rejections.append(Rejection(task.ref.uri, task.kind, "(file)", reason))
                batch.present.append((root, task.kind, task.ref.uri, ""))
                continue
            data, digest, outcome = read.data, read.digest, read.outcome
            batch.present.append((root, task.kind, task.ref.uri, digest))
            if digest and (task.kind, digest) in seen:
                batch.duplicates.append((task.ref.uri, seen[(task.kind, digest)]))
                continue
            if digest:
                seen[(task.kind, digest)] = task.ref.uri
            if isinstance(outcome, Rejection):
                batch.rejections.append(outcome)
                continue
            if task.kind == WAIVER_KIND:
                waivers, rejections = _parse_waivers(data, task.ref.uri, digest)
                batch.waivers.extend(waivers)
                batch.rejections.extend(rejections)
            batch.files.append(
                EvidenceFile(
                    root=root,
                    kind=task.kind,
                    uri=task.ref.uri,
                    sha256=digest,
                    size=read.size,
                    observed_at=outcome.observed_at,
                    timestamp_field=outcome.timestamp_field,
                    summary=outcome.summary,
                    warnings=outcome.warnings,
                    records=outcome.records,
                    identity=outcome.identity,
                    spool=outcome.spool,
                    parts=outcome.parts,
                )
            )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    _set_aside_collisions(batch)
    return batch

"""The two foundation gates: every evidence file readable, every evidence kind fresh.

Fail closed: a kind with no files, only rejected files, or no timestamp inside its evidence
fails freshness; every rejected file fails validity. A file dated beyond the evaluation time plus
the config's clock skew (``limits.clock_skew``, default 5 minutes) is an error of its own and never
makes its kind fresh: the batch sets it aside before any gate counts it.
"""

from __future__ import annotations

from datetime import datetime

from phase8_assets.domains.gates import GATES, Finding
from phase8_assets.evidence import TIMELESS_KINDS, Rejection, evidence_age
from phase8_assets.evidence.collect import EvidenceBatch, overlap
from phase8_assets.evidence.config import EvidenceConfig, EvidenceKind
from phase8_assets.shared.clock import format_duration, format_timestamp

WARN_AT_FRACTION_OF_MAX_AGE = 0.75


def rejection_finding(rej: Rejection, owner: str, runbook: str) -> Finding:
    """An unreadable file as an error finding: the reader's field and reason, the kind it should have been."""
    return Finding(
        "error",
        rej.uri,
        "readable",
        f"{rej.field}: {rej.reason}",
        f"a valid {rej.kind} file",
        rej.uri,
        owner,
        runbook,
        {"kind": rej.kind, "field": rej.field, "reason": rej.reason},
    )


def evidence_validity(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> tuple[list[Finding], str]:
    gate = "evidence_validity"
    runbook = config.runbook_for(gate)
    findings = [rejection_finding(rej, config.owner_for(gate, rej.kind), runbook) for rej in batch.rejections]
    # Reader warnings, one finding per kind and sort: timestamps without a zone, anything else.
    grouped: dict[tuple[str, str], list[tuple]] = {}
    for f in batch.files:
        for text in f.warnings:
            rule = "timestamp-has-zone" if "has no time zone" in text else "reader-warning"
            grouped.setdefault((f.kind, rule), []).append((f, text))
    for (kind, rule), hits in grouped.items():
        files = list(dict.fromkeys(f.uri for f, _ in hits))
        observed, limit = (
            (
                f"{len(files)} file(s) with timestamps without a time zone, taken as UTC; e.g. {hits[0][1]}",
                "timestamps with a time zone",
            )
            if rule == "timestamp-has-zone"
            else (f"{len(hits)} warning(s) in {len(files)} file(s); e.g. {hits[0][1]}", "files read without warnings")
        )
        findings.append(
            Finding(
                "warning",
                kind,
                rule,
                observed,
                limit,
                files[0],
                config.owner_for(gate, kind),
                runbook,
                {"kind": kind, "files": files, "warnings": [text for _, text in hits][:20]},
            )
        )
    for lost, kept in batch.collisions:
        shared = overlap(lost, kept)
        example = " ".join(str(p) for p in shared[0]) if isinstance(shared[0], tuple) else shared[0]
        findings.append(
            Finding(
                "warning",
                lost.uri,
                "one-file-per-run",
                f"claims the same run (tool, commit, time, machine) as {kept.uri} and records {len(shared)} of "
                f"its series too (e.g. {example}); that file counts instead "
                "(the later internal timestamp, ties broken by the greater URI)",
                "one file per run",
                lost.uri,
                config.owner_for(gate, lost.kind),
                runbook,
                {"kind": lost.kind, "set_aside": lost.uri, "counted": kept.uri,
                 "run": [format_timestamp(p) if isinstance(p, datetime) else p for p in lost.identity or ()]},
            )
        )  # fmt: skip
    for waiver in batch.waivers:
        if waiver.gate not in GATES:
            findings.append(
                Finding(
                    "warning",
                    waiver.source,
                    "waiver-gate-known",
                    waiver.gate,
                    "one of " + "|".join(GATES),
                    waiver.source,
                    waiver.owner,
                    runbook,
                    {"waiver": waiver.as_details()},
                )
            )
    kinds = {f.kind for f in batch.files + batch.future} | {r.kind for r in batch.rejections}
    context = (
        f"{len(batch.files) + len(batch.future)} file(s) of {len(kinds)} kind(s) read, {len(batch.rejections)} rejected"
    )
    if batch.duplicates:
        context += f", {len(batch.duplicates)} duplicate path(s) counted once"
    return findings, context


def evidence_freshness(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> tuple[list[Finding], str]:
    gate = "evidence_freshness"
    runbook = config.runbook_for(gate)
    findings = []
    fresh = 0
    for kind in config.evidence.values():
        found, is_fresh = kind_freshness(kind, batch, at, config.owner_for(gate, kind.name), runbook, config)
        findings.extend(found)
        fresh += is_fresh
    return findings, f"{fresh} of {len(config.evidence)} evidence kind(s) within their maximum age"


def kind_freshness(
    kind: EvidenceKind, batch: EvidenceBatch, at: datetime, owner: str, runbook: str, config: EvidenceConfig
) -> tuple[list[Finding], bool]:
    """One evidence kind's freshness findings (future-dated files, none readable, no timestamp, too old,
    nearly too old) and whether it counts as fresh: the rule ``evidence_freshness`` applies to every
    kind and every gate to its own (``own_evidence_findings``)."""
    findings = []
    files = batch.files_of(kind.name)
    patterns = [loc.uri for loc in kind.sources]
    base = {"kind": kind.name, "max_age": kind.max_age_text, "paths": patterns}
    future = batch.future_of(kind.name)
    for f in future:
        ahead = f.observed_at - at
        findings.append(
            Finding(
                "error",
                kind.name,
                "timestamp-not-in-future",
                f"{f.timestamp_field} {format_timestamp(f.observed_at)} ({format_duration(ahead)} ahead)",
                f"at most {config.clock_skew_text} ({format_duration(config.clock_skew)}) after the evaluation "
                "time; not counted as fresh",
                f.uri,
                owner,
                runbook,
                {**base, "observed_at": format_timestamp(f.observed_at), "ahead_seconds": int(ahead.total_seconds()),
                 "timestamp_field": f.timestamp_field, "clock_skew": config.clock_skew_text},
            )
        )  # fmt: skip
    if not files:
        rejected = batch.rejections_of(kind.name)
        observed = (
            f"all {len(rejected) + len(future)} file(s) rejected or dated in the future"
            if rejected or future
            else "no files matched"
        )
        findings.append(
            Finding(
                "error",
                kind.name,
                "evidence-present",
                observed,
                "at least one readable file",
                patterns[0] if len(patterns) == 1 else ", ".join(patterns),
                owner,
                runbook,
                base,
            )
        )
        return findings, False
    # Some file matched (with none, `evidence-present` above names every pattern): a pattern that
    # matched nothing is a misspelt path or a root that sent nothing.
    findings += [
        Finding("warning", kind.name, "pattern-matches", f"{pattern} matches no file",
                "every configured path matches at least one file (a misspelt path, a root that sent nothing)",
                pattern, owner, runbook, base)
        for pattern in batch.unmatched.get(kind.name, [])
    ]  # fmt: skip
    if kind.name in TIMELESS_KINDS:
        return findings, True
    dated = [f for f in files if f.observed_at is not None]
    if not dated:
        findings.append(
            Finding(
                "error",
                kind.name,
                "timestamp-present",
                f"no {files[0].timestamp_field} in any file",
                "a timestamp inside the evidence",
                files[0].uri,
                owner,
                runbook,
                {**base, "files": [f.uri for f in files]},
            )
        )
        return findings, False
    newest = max(dated, key=lambda f: f.observed_at)
    age = evidence_age(kind.name, newest.observed_at, at)
    details = {
        **base,
        "newest": format_timestamp(newest.observed_at),
        "age_seconds": int(age.total_seconds()),
        "timestamp_field": newest.timestamp_field,
    }
    if age > kind.max_age:
        findings.append(
            Finding(
                "error",
                kind.name,
                "max-age",
                f"newest is {format_duration(age)} old",
                f"{kind.max_age_text} ({format_duration(kind.max_age)})",
                newest.uri,
                owner,
                runbook,
                details,
            )
        )
        return findings, False
    if age > kind.max_age * WARN_AT_FRACTION_OF_MAX_AGE:
        findings.append(
            Finding(
                "warning",
                kind.name,
                "max-age",
                f"newest is {format_duration(age)} old; stale in {format_duration(kind.max_age - age)}",
                f"{kind.max_age_text} ({format_duration(kind.max_age)})",
                newest.uri,
                owner,
                runbook,
                details,
            )
        )
    return findings, True


def own_evidence_findings(
    gate: str, kinds: tuple[str, ...], batch: EvidenceBatch, config: EvidenceConfig, at: datetime, found: list[Finding]
) -> list[Finding]:
    """Fail closed in every gate, once: the errors of the gate's own evidence kinds (a file rejected or
    dated in the future, the kind missing, without a timestamp, older than its maximum age) as findings of
    ``gate``, so its status is ``fail`` whatever its own rules made of what was left. A file that one of
    the gate's own error findings (``found``) already names as its evidence is not reported twice.
    ``evidence_validity`` and ``evidence_freshness`` report the same problems across all kinds."""
    runbook = config.runbook_for(gate)
    named = {f.evidence for f in found if f.severity == "error"}
    own = []
    for name in kinds:
        kind = config.evidence.get(name)
        if kind is None:  # not configured: the gate's own rules decide whether it needed this kind
            continue
        owner = config.owner_for(gate, name)
        own.extend(rejection_finding(r, owner, runbook) for r in batch.rejections_of(name))
        # A file dated in the future is set aside (never counted), and is an error of every gate of its
        # kind, as a rejected file is: whatever it holds (a failure, a leak) is evidence the gate did not judge.
        own.extend(f for f in kind_freshness(kind, batch, at, owner, runbook, config)[0] if f.severity == "error")
    return [f for f in own if f.evidence not in named]

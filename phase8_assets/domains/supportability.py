"""Operator supportability of the platform: its runbooks and its health endpoints.

The ``supportability`` gate fails closed when

1. a gate, a catalogued drill, an SLO alert or a budget alert names a runbook that is not a
   readable runbook of the root (missing, unreadable, or a file the ``runbooks`` kind does not read);
2. a runbook's relative link leads to no file (or outside the root) or its anchor to no heading;
3. a runbook is past its review date: ``reviewed`` + ``review_every`` (default: the ``runbooks``
   kind's ``max_age``);
4. a captured health response breaks the ``application/health+json`` contract or reports ``fail``
   (``warn`` is a warning), is older than the kind's ``max_age`` or carries no time at all (no
   ``checks.*.time``: its age is unknown); there is none, or the kind is not configured.

``build_index`` is the runbook index (asset ``runbook_index``); ``findings`` turns it and the
health responses into the gate's findings. Time is an argument.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import unquote

from phase8_assets.domains.gates import GATES, Finding
from phase8_assets.evidence.collect import EvidenceBatch, EvidenceFile
from phase8_assets.evidence.config import EvidenceConfig
from phase8_assets.evidence.health import STATUSES
from phase8_assets.evidence.roots import RootError, check_relative
from phase8_assets.shared.clock import add_duration, format_duration, format_timestamp, parse_timestamp

GATE = "supportability"
RUNBOOKS = "runbooks"
HEALTH = "health_responses"
CONTRACT = "application/health+json as in docs/ops/health-openapi.yaml (HealthResponse)"
_EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Reference:
    """Something that names a runbook: ``gate:<name>``, ``drill:<id>``, ``alert:slo/<name>``, ..."""

    source: str
    runbook: str  # the URI of the file it names ("" when the path itself is invalid)
    declared_in: str  # the file (or config) that names it
    owner: str
    problem: str = ""
    anchor: str = ""  # the heading it names in the runbook (``drill-db-failover.md#recovery``), if any

    def __post_init__(self):
        path, _, anchor = self.runbook.partition("#")
        if anchor:
            object.__setattr__(self, "runbook", path)
            object.__setattr__(self, "anchor", anchor)


@dataclass
class IndexedRunbook:
    uri: str
    title: str
    owner: str
    reviewed: datetime
    review_every: str
    due: datetime
    serves: list[str]
    anchors: list[str]
    links: list[str]
    referenced_by: list[str] = field(default_factory=list)

    def state(self, at: datetime) -> str:
        return "review-overdue" if self.due < at else "current"


@dataclass
class RunbookIndex:
    at: datetime
    folder: str
    runbooks: dict[str, IndexedRunbook]
    references: list[Reference]
    rejected: dict[str, str]  # uri -> why the reader refused it
    configured: bool
    future: dict[str, str] = field(default_factory=dict)  # uri -> its ``reviewed``, after the evaluation time

    def rows(self) -> list[list]:
        return [
            [
                rb.uri,
                rb.title,
                rb.owner,
                format_timestamp(rb.reviewed)[:10],
                rb.review_every,
                format_timestamp(rb.due)[:10],
                rb.state(self.at),
                ", ".join(rb.serves) or "—",
                ", ".join(rb.referenced_by) or "—",
            ]
            for rb in sorted(self.runbooks.values(), key=lambda r: r.uri)
        ]

    def resolves(self, ref: Reference) -> bool:
        """Does ``ref`` name a runbook of the index (and, with an anchor, one of its headings)?"""
        rb = self.runbooks.get(ref.runbook)
        return rb is not None and (not ref.anchor or ref.anchor in rb.anchors)


def _in_folder(config: EvidenceConfig, rel: str) -> str:
    return config.runbooks.base.uri_of(check_relative(f"{config.runbooks.path}/{rel}".strip("/"), "runbook"))


def references(batch: EvidenceBatch, config: EvidenceConfig) -> list[Reference]:
    """Every runbook the root's gates, drills, SLO alerts and budget alerts name."""
    out = []
    for name in GATES:
        if config.gate_switch(name)[0]:
            out.append(Reference(f"gate:{name}", config.runbook_for(name), config.source, config.owner_for(name)))
    for f in batch.files_of("drill_catalog"):
        for drill in f.records:
            try:
                out.append(Reference(f"drill:{drill.id}", _in_folder(config, drill.runbook), f.uri, drill.owner))
            except RootError as exc:
                out.append(Reference(f"drill:{drill.id}", "", f.uri, drill.owner, str(exc)))
    for f in batch.files_of("perf_budgets"):
        for rule in (r for budgets in f.records for r in budgets.rules if r.runbook):
            try:
                out.append(
                    Reference(f"gate:perf_budgets/{rule.name}", _in_folder(config, rule.runbook), f.uri, rule.owner)
                )
            except RootError as exc:
                out.append(Reference(f"gate:perf_budgets/{rule.name}", "", f.uri, rule.owner, str(exc)))
    for f in batch.files_of("slo_definitions"):
        for slo in (r for r in f.records if r["kind"] == "SLO"):
            for gate in ("slo_burn_rate", "error_budget"):
                out.append(
                    Reference(f"alert:slo/{slo['name']}/{gate}", config.runbook_for(gate), slo["source"],
                              config.owner_for(gate, "slo_definitions"))
                )  # fmt: skip
    for f in batch.files_of("cost_budgets"):
        for budget in (b for doc in f.records for b in doc["budgets"]):
            out.append(
                Reference(f"alert:budget/{budget['name']}", config.runbook_for("cost_budgets"), f.uri, budget["owner"])
            )
    return out


def build_index(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> RunbookIndex:
    kind = config.evidence.get(RUNBOOKS)
    runbooks = {}
    for f in batch.files_of(RUNBOOKS):
        s = f.summary
        every = s.get("review_every") or (kind.max_age_text if kind else "")
        reviewed = parse_timestamp(s["reviewed"], "reviewed").at
        runbooks[f.uri] = IndexedRunbook(
            f.uri, s["title"], s["owner"], reviewed, every, add_duration(reviewed, every, "review_every"),
            list(s.get("serves") or []), list(s.get("anchors") or []), list(s.get("links") or []),
        )  # fmt: skip
    refs = references(batch, config)
    for ref in refs:
        if ref.runbook in runbooks:
            runbooks[ref.runbook].referenced_by.append(ref.source)
    rejected = {r.uri: f"{r.field}: {r.reason}" for r in batch.rejections_of(RUNBOOKS)}
    future = {f.uri: f.summary["reviewed"] for f in batch.future_of(RUNBOOKS)}
    return RunbookIndex(
        at, config.runbooks.base.uri_of(config.runbooks.path), runbooks, refs, rejected, kind is not None, future
    )


def _target(uri: str, path: str) -> str:
    scheme, sep, rest = uri.rpartition("://")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(rest), path)) if path else rest
    return f"{scheme}{sep}{joined}"


def _link_problem(index: RunbookIndex, config: EvidenceConfig, rb: IndexedRunbook, link: str) -> str | None:
    if _EXTERNAL.match(link):
        return None
    path, _, anchor = link.partition("#")
    # As a browser reads them: a heading copied from GitHub is #%C3%A9tape, a file name with a space my%20file.md
    path, anchor = unquote(path), unquote(anchor)
    target = _target(rb.uri, path)
    if target in index.runbooks:
        if anchor and anchor not in index.runbooks[target].anchors:
            return f"no heading with anchor #{anchor} in {target}"
        return None
    base = config.runbooks.base
    prefix = base.uri.rstrip("/") + "/"
    if not target.startswith(prefix):
        return f"{target} is outside the evidence root {base.uri}"
    if not base.exists(target[len(prefix) :]):
        return f"no file {target}"
    if anchor:
        return f"#{anchor} cannot be checked: {target} is not a runbook phase8 reads"
    return None


def _runbook_findings(index: RunbookIndex, config: EvidenceConfig, owner: str, runbook: str) -> list[Finding]:
    out = []
    if not index.configured:
        out.append(
            Finding("error", RUNBOOKS, "runbooks-configured", "no evidence kind runbooks in phase8.yaml",
                    "evidence.runbooks with the root's runbook files", config.source, owner, runbook, {})
        )  # fmt: skip
    for ref in index.references:
        if index.resolves(ref):
            continue
        if ref.runbook in index.runbooks:
            observed = f"no heading with anchor #{ref.anchor} in {ref.runbook}"
        elif ref.problem:
            observed = f"invalid path: {ref.problem}"
        elif ref.runbook in index.rejected:
            observed = f"unreadable: {ref.runbook} ({index.rejected[ref.runbook]})"
        elif ref.runbook in index.future:  # evidence_freshness names it too (timestamp-not-in-future)
            observed = (f"{ref.runbook} set aside: front matter.reviewed {index.future[ref.runbook]} is after the "
                        f"evaluation time {format_timestamp(index.at)}")  # fmt: skip
        else:
            base = config.runbooks.base
            prefix = base.uri.rstrip("/") + "/"
            present = ref.runbook.startswith(prefix) and base.exists(ref.runbook[len(prefix) :])
            observed = (f"{ref.runbook} exists but is not read as evidence kind runbooks" if present
                        else f"no file {ref.runbook}")  # fmt: skip
        limit = f"a readable runbook in {index.folder}" + (f" with a heading #{ref.anchor}" if ref.anchor else "")
        out.append(
            Finding("error", ref.source, "runbook-exists", observed, limit, ref.declared_in, ref.owner, runbook,
                    {"runbook": ref.runbook, **({"anchor": ref.anchor} if ref.anchor else {})})
        )  # fmt: skip
    for rb in sorted(index.runbooks.values(), key=lambda r: r.uri):
        for link in rb.links:
            problem = _link_problem(index, config, rb, link)
            if problem:
                out.append(
                    Finding("error", rb.uri, "link-resolves", f"({link}): {problem}",
                            "relative links to files in the root and anchors to their headings", rb.uri, rb.owner,
                            runbook, {"link": link})
                )  # fmt: skip
        if rb.state(index.at) == "review-overdue":
            out.append(
                Finding("error", rb.uri, "review-current",
                        f"reviewed {format_timestamp(rb.reviewed)[:10]}, due {format_timestamp(rb.due)[:10]}",
                        f"reviewed within review_every ({rb.review_every})", rb.uri, rb.owner, runbook,
                        {"reviewed": format_timestamp(rb.reviewed), "due": format_timestamp(rb.due),
                         "review_every": rb.review_every, "serves": rb.serves})
            )  # fmt: skip
    return out


def _worst(statuses) -> str | None:
    return max((s for s in statuses if s in STATUSES), key=STATUSES.index, default=None)


def current_captures(files: list[EvidenceFile], at: datetime, max_age: timedelta) -> list[EvidenceFile]:
    """The captures judged: all but a service's history. A dated capture older than ``max_age`` at
    ``at`` is history once a later capture of its service (``serviceId``; a response without one is a
    service of its own) exists; a capture within ``max_age`` is always judged, since captures of one
    service close together may be its replicas (a response names no instance), and an undated one
    too (its age is unknown)."""
    newest: dict[str, datetime] = {}
    for f in files:
        key = f.summary.get("service") or f.uri
        if f.observed_at is not None and (key not in newest or f.observed_at > newest[key]):
            newest[key] = f.observed_at
    return [
        f
        for f in files
        if f.observed_at is None
        or f.observed_at >= newest[f.summary.get("service") or f.uri]
        or at - f.observed_at <= max_age
    ]


def health_findings(
    batch: EvidenceBatch, config: EvidenceConfig, owner: str, runbook: str, at: datetime
) -> list[Finding]:
    """Each capture on its own (but a service's history, ``current_captures``): its contract, its
    status and its age, so one service's stale capture does not pass behind another's fresh one
    (freshness asks for the newest file of the kind only), and a service's capture from days ago,
    superseded by a later one, does not block as if it were its state now."""
    if HEALTH not in config.evidence:
        return [
            Finding("error", HEALTH, "health-configured", "no evidence kind health_responses in phase8.yaml",
                    "captured health responses of the platform (or the gate switched off with a reason)",
                    config.source, owner, runbook, {})
        ]  # fmt: skip
    files: list[EvidenceFile] = batch.files_of(HEALTH)
    if not files:
        paths = ", ".join(loc.uri for loc in config.evidence[HEALTH].sources)
        return [
            Finding("error", HEALTH, "health-present", "no readable health response", "at least one", paths, owner,
                    runbook, {})
        ]  # fmt: skip
    out = []
    max_age = config.evidence[HEALTH].max_age
    for f in current_captures(files, at, max_age):
        s = f.summary
        if f.observed_at is None:
            out.append(
                Finding("error", f.uri, "health-fresh", "capture time unknown: no check carries a time (checks.*.time)",
                        f"a capture time within {config.evidence[HEALTH].max_age_text}: checks.*.time in the response "
                        "(file times are never evidence time)", f.uri, owner, runbook, {"service": s.get("service")})
            )  # fmt: skip
        elif at - f.observed_at > max_age:
            out.append(
                Finding("error", f.uri, "health-fresh", f"captured {format_duration(at - f.observed_at)} ago",
                        f"{config.evidence[HEALTH].max_age_text} ({format_duration(max_age)}): each service's capture",
                        f.uri, owner, runbook, {"service": s.get("service"), "observed_at": f.observed_at.isoformat()})
            )  # fmt: skip
        else:  # a fresh capture may still carry a stale reading: a cached check whose checker stopped
            stale = [(c, at - datetime.fromisoformat(c["time"])) for c in s["checks"] if c.get("time")]
            stale = [(c, age) for c, age in stale if age > max_age]
            if stale:
                observed = ", ".join(f"{c['key']} {c['status']} read {format_duration(age)} ago" for c, age in stale)
                out.append(
                    Finding("error", f.uri, "health-fresh", f"{observed} (the capture's newest reading is "
                            f"{format_duration(at - f.observed_at)} old)", f"{config.evidence[HEALTH].max_age_text} "
                            f"({format_duration(max_age)}): each check's reading (checks.*.time)", f.uri, owner,
                            runbook, {"service": s.get("service"), "stale_checks": [c["key"] for c, _ in stale]})
                )  # fmt: skip
        if s["violations"]:
            first = s["violations"][0]
            more = f" (+{len(s['violations']) - 1} more)" if len(s["violations"]) > 1 else ""
            out.append(
                Finding("error", f.uri, "health-contract", f"{first['field']}: {first['reason']}{more}", CONTRACT,
                        f.uri, owner, runbook, {"violations": s["violations"]})
            )  # fmt: skip
        worst = _worst([s["status"], s["worst_check"]])
        if worst in ("warn", "fail"):
            bad = [c for c in s["checks"] if c["status"] == worst]
            observed = f"status {s['status']}" + (
                "; " + ", ".join(f"{c['key']} {c['status']}" + (f" ({c['output']})" if c["output"] else "") for c in bad)
                if bad else ""
            )  # fmt: skip
            out.append(
                Finding("error" if worst == "fail" else "warning", f.uri, "health-status", observed,
                        "status pass (warn warns; fail blocks)", f.uri, owner, runbook,
                        {"status": s["status"], "worst_check": s["worst_check"], "service": s["service"]})
            )  # fmt: skip
    return out


def findings(
    index: RunbookIndex, batch: EvidenceBatch, config: EvidenceConfig, at: datetime
) -> tuple[list[Finding], str]:
    owner, runbook = config.owner_for(GATE), config.runbook_for(GATE)
    found = _runbook_findings(index, config, owner, runbook) + health_findings(batch, config, owner, runbook, at)
    resolved = sum(1 for r in index.references if index.resolves(r))
    captures = batch.files_of(HEALTH)
    kind = config.evidence.get(HEALTH)
    superseded = len(captures) - len(current_captures(captures, at, kind.max_age)) if kind else 0
    context = (
        f"{resolved} of {len(index.references)} runbook reference(s) resolve, {len(index.runbooks)} runbook(s) "
        f"indexed, {len(captures)} health response(s)"
        + (f" ({superseded} superseded by a later capture of their service)" if superseded else "")
    )
    return found, context

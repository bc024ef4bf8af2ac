"""Chaos drills: match runs to the catalog, decide each drill's standing, explain it.

The rules of the ``drill_evidence`` gate, per catalogued drill:

1. the drill's most recent run (by end time) *passed*: a real run (not ``--dry``), completed, not
   deviated, steady state met before, during and after, a fault-injection action succeeded and no
   action or rollback failed (a later failure is not hidden by an earlier success);
2. its recovery time (measured from the journal) is within ``recovery_objective``, when one is set;
3. its last qualifying run is inside its window: ``ended_at + window > at``, where the window is
   ``cadence (+ grace)`` with months counted on the calendar, but never longer than the ``max_age``
   of the run's evidence kind (``drill_journals`` / ``chaos_results``): a run older than the
   evidence it comes in may be never counts, whatever the cadence — else the drill is overdue (or
   has never run). Both limits end the window at the same kind of instant: at ``ended_at + window``
   the run no longer counts;
4. each listed environment has its own qualifying run inside the cadence, and that environment's
   most recent run passed (rules 1 and 2 per environment: a newer run elsewhere, say in staging,
   does not hide a production run that deviated);
5. its runbook exists, readable, where ``phase8.yaml`` says runbooks live.

A run that matches no catalogued drill, or several, is a warning: evidence nobody asked for is
worth a look, but it cannot block a release.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from phase8_assets.domains.gates import Finding
from phase8_assets.evidence.collect import EvidenceBatch, EvidenceFile
from phase8_assets.evidence.config import EvidenceConfig
from phase8_assets.evidence.drill_catalog import CatalogDrill
from phase8_assets.evidence.drill_runs import DrillRun
from phase8_assets.evidence.roots import RootError, check_relative
from phase8_assets.shared.clock import add_duration, format_duration, format_timestamp
from phase8_assets.shared.reports import Section

RUN_KINDS = ("drill_journals", "chaos_results")
CATALOG_KIND = "drill_catalog"
DUE_SOON = timedelta(days=7)
QUALIFYING = (
    "a real (not dry) run, completed, not deviated, steady state met before, during and after, "
    "the fault injected and no action or rollback failed"
)


@dataclass(frozen=True)
class SeenRun:
    run: DrillRun
    file: EvidenceFile

    @property
    def at(self) -> datetime | None:
        return self.run.ended_at or self.run.started_at

    @property
    def label(self) -> str:
        when = format_timestamp(self.at) if self.at else "no time"
        return f"{self.run.outcome} at {when}"


@dataclass
class Runbook:
    path: str  # relative to the evidence root of the runbooks folder
    uri: str
    state: str  # present | missing | unreadable | invalid-path
    reason: str = ""


@dataclass
class DrillStanding:
    drill: CatalogDrill
    catalog_uri: str
    runbook: Runbook
    runs: list[SeenRun] = field(default_factory=list)  # newest first
    last: SeenRun | None = None
    last_qualifying: SeenRun | None = None
    due_at: datetime | None = None
    state: str = "never-run"  # current | due-soon | overdue | never-run
    environments: dict[str, SeenRun | None] = field(default_factory=dict)  # qualifying run inside the cadence
    env_last: dict[str, SeenRun] = field(default_factory=dict)  # each listed environment's most recent run
    max_ages: dict[str, tuple[timedelta, str]] = field(default_factory=dict)  # run kind -> (max_age, its text)

    def qualifies(self, seen: SeenRun) -> bool:
        run, objective = seen.run, self.drill.recovery_objective
        if not run.qualifies:
            return False
        return objective is None or (run.recovery_s is not None and run.recovery_s <= objective.total_seconds())

    def _cadence_due(self, seen: SeenRun) -> datetime:
        due = add_duration(seen.at, self.drill.cadence, "cadence")
        return add_duration(due, self.drill.grace, "grace") if self.drill.grace else due

    def _capped(self, seen: SeenRun) -> tuple[timedelta, str] | None:
        """The run kind's (max_age, text) when it ends the run's window before the cadence does."""
        cap = self.max_ages.get(seen.file.kind)
        return cap if cap and seen.at + cap[0] < self._cadence_due(seen) else None

    def due_after(self, seen: SeenRun) -> datetime:
        """When ``seen`` stops counting: after the cadence (+ grace), or once it is older than its
        evidence kind's ``max_age``, whichever comes first (rule 3)."""
        cap = self._capped(seen)
        return seen.at + cap[0] if cap else self._cadence_due(seen)

    def window_text(self, seen: SeenRun | None) -> str:
        """Rule 3's limit in words, naming the max_age when it is the shorter of the two."""
        d = self.drill
        text = f"a qualifying run every {d.cadence}" + (f" (+{d.grace} grace)" if d.grace else "")
        cap = self._capped(seen) if seen else None
        return text + (f", and no older than {seen.file.kind} max_age {cap[1]} (the shorter applies)" if cap else "")


@dataclass
class DrillAssessment:
    at: datetime
    drills: list[DrillStanding]
    catalogs: list[str]
    unmatched: list[SeenRun]
    ambiguous: list[tuple[SeenRun, list[str]]]
    catalog_problems: list[tuple[str, str, str]]  # (uri, rule, reason)
    runs: list[SeenRun]  # every run read, newest first

    def drill_of(self, seen: SeenRun) -> CatalogDrill | None:
        """The (first) catalogued drill a run counts for."""
        return next((st.drill for st in self.drills if seen in st.runs), None)


def seen_runs(batch: EvidenceBatch) -> list[SeenRun]:
    return [SeenRun(run, f) for kind in RUN_KINDS for f in batch.files_of(kind) for run in f.records]


def _runbook(config: EvidenceConfig, batch: EvidenceBatch, rel: str) -> Runbook:
    base, folder = config.runbooks.base, config.runbooks.path
    rel = rel.partition("#")[0]  # a heading of it (``drill-db-failover.md#recovery``): supportability checks it
    try:
        path = check_relative(f"{folder}/{rel}".strip("/"), "runbook")
    except RootError as exc:
        return Runbook(rel, rel, "invalid-path", str(exc))
    uri = base.uri_of(path)
    rejected = next((r for r in batch.rejections_of("runbooks") if r.uri == uri), None)
    if rejected:
        return Runbook(path, uri, "unreadable", f"{rejected.field}: {rejected.reason}")
    return Runbook(path, uri, "present" if base.exists(path) else "missing")


def assess(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> DrillAssessment:
    """Every catalogued drill's standing at ``at`` from the drill evidence in ``batch``."""
    problems: list[tuple[str, str, str]] = []
    catalog_files = batch.files_of(CATALOG_KIND)
    if not catalog_files:
        rejected = batch.rejections_of(CATALOG_KIND)
        reason = (
            f"every catalog file was rejected ({rejected[0].field}: {rejected[0].reason})"
            if rejected
            else (
                "no drill catalog: configure evidence kind drill_catalog"
                if CATALOG_KIND not in config.evidence
                else "no catalog file matched " + ", ".join(s.uri for s in config.evidence[CATALOG_KIND].sources)
            )
        )
        problems.append((rejected[0].uri if rejected else config.paths_of(CATALOG_KIND), "catalog-present", reason))
    standings: dict[str, DrillStanding] = {}
    max_ages = {
        k: (config.evidence[k].max_age, config.evidence[k].max_age_text) for k in RUN_KINDS if k in config.evidence
    }
    for f in catalog_files:
        for drill in f.records:
            if drill.id in standings:
                problems.append(
                    (f.uri, "catalog-unique-ids", f"drill {drill.id!r} is also in {standings[drill.id].catalog_uri}")
                )
                continue
            standings[drill.id] = DrillStanding(drill, f.uri, _runbook(config, batch, drill.runbook), max_ages=max_ages)
    # Newest first. Runs that ended at one time (two ChaosResults of one List updated in the same
    # second, one journal published twice) contradict each other: the one that did not pass, else the
    # slower recovery, is taken as the latest, whatever order the files or list items came in.
    runs = sorted(
        seen_runs(batch),
        key=lambda s: (
            s.at is None,
            s.at,
            not s.run.qualifies,
            math.inf if s.run.recovery_s is None else s.run.recovery_s,
        ),
        reverse=True,
    )
    unmatched, ambiguous = [], []
    for seen in runs:
        hits = [s for s in standings.values() if s.drill.matches(seen.run)]
        if not hits and standings:  # without a catalog, the catalog finding says it all
            unmatched.append(seen)
        if len(hits) > 1:
            ambiguous.append((seen, [h.drill.id for h in hits]))
        for standing in hits:
            standing.runs.append(seen)
    for standing in standings.values():
        dated = [s for s in standing.runs if s.at is not None]
        standing.last = dated[0] if dated else None
        good = [s for s in dated if standing.qualifies(s)]
        standing.last_qualifying = good[0] if good else None
        if standing.last_qualifying:
            standing.due_at = standing.due_after(standing.last_qualifying)
            if standing.due_at <= at:
                standing.state = "overdue"
            else:
                standing.state = "due-soon" if standing.due_at - at <= DUE_SOON else "current"
        for env in standing.drill.environments:
            mine = next((s for s in dated if s.run.environment == env), None)
            if mine is not None:
                standing.env_last[env] = mine
            standing.environments[env] = next(
                (s for s in good if s.run.environment == env and standing.due_after(s) > at), None
            )
    return DrillAssessment(
        at, list(standings.values()), [f.uri for f in catalog_files], unmatched, ambiguous, problems, runs
    )


def _run_details(seen: SeenRun) -> dict:
    run = seen.run
    return {
        "title": run.title,
        "tool": run.tool,
        "status": run.status,
        "outcome": run.outcome,
        "deviated": run.deviated,
        "ended_at": format_timestamp(run.ended_at) if run.ended_at else None,
        "outcome_note": run.outcome_note,
        "recovery_s": run.recovery_s,
        "recovery_note": run.recovery_note,
        "environment": run.environment,
    }


def _latest_run_findings(st: DrillStanding, last: SeenRun, env: str | None, finding) -> list[Finding]:
    """Rules 1 and 2 on a drill's most recent run (``env`` None), or on one listed environment's."""
    d, out = st.drill, []
    which = f"latest run in env:{env}" if env else "latest run"
    extra = {"environment": env} if env else {}
    if not last.run.qualifies:
        observed = f"{which} ({format_timestamp(last.at)}) {last.run.outcome}; tool status {last.run.status!r}"
        if last.run.outcome_note:
            observed += f": {last.run.outcome_note}"
        out.append(finding("drill-outcome", observed, QUALIFYING, last.file.uri, {**_run_details(last), **extra}))
    elif d.recovery_objective is not None:
        if last.run.recovery_s is None:
            out.append(
                finding(
                    "recovery-measured",
                    f"not measured{f' ({which})' if env else ''}: {last.run.recovery_note}",
                    f"recovery within {d.recovery_objective_text}",
                    last.file.uri,
                    {**_run_details(last), **extra},
                )
            )
        elif last.run.recovery_s > d.recovery_objective.total_seconds():
            out.append(
                finding(
                    "recovery-objective",
                    f"recovered in {last.run.recovery_s:g} s" + (f" ({which})" if env else ""),
                    f"<= {d.recovery_objective.total_seconds():g} s ({d.recovery_objective_text})",
                    last.file.uri,
                    {**_run_details(last), **extra},
                )
            )
    return out


def findings(assessment: DrillAssessment, gate_owner: str, gate_runbook: str) -> list[Finding]:
    """The ``drill_evidence`` gate's findings: subject = drill id, rule = which of the rules above."""
    at = assessment.at
    out = [
        Finding(
            "error",
            "drill catalog",
            rule,
            reason,
            "one readable DrillCatalog",
            uri,
            gate_owner,
            gate_runbook,
            {"kind": CATALOG_KIND},
        )
        for uri, rule, reason in assessment.catalog_problems
    ]
    for st in assessment.drills:
        d = st.drill

        def finding(rule, observed, limit, evidence, details=None, runbook=st.runbook.uri, st=st, d=d):
            base = {"drill": d.id, "service": d.service, "fault": d.fault, "cadence": d.cadence, "state": st.state}
            return Finding(
                "error", d.id, rule, observed, limit, evidence, d.owner, runbook, {**base, **(details or {})}
            )

        if st.runbook.state != "present":
            what = {"missing": "no file", "unreadable": "unreadable", "invalid-path": "invalid path"}[st.runbook.state]
            observed = f"{what}: {st.runbook.uri}" + (f" ({st.runbook.reason})" if st.runbook.reason else "")
            out.append(
                finding(
                    "runbook-present",
                    observed,
                    "a readable runbook in the runbooks folder",
                    st.catalog_uri,
                    {"runbook": st.runbook.path},
                    runbook=gate_runbook,
                )
            )
        if st.last is None:
            out.append(
                finding(
                    "drill-run-present",
                    "no run matches this drill",
                    f"a run within {d.cadence} matching {d.match_text}",
                    st.catalog_uri,
                )
            )
            continue
        for env, latest in [(None, st.last)] + [(e, r) for e, r in st.env_last.items() if r is not st.last]:
            out += _latest_run_findings(st, latest, env, finding)
        if st.state in ("overdue", "never-run"):
            if st.last_qualifying:
                q = st.last_qualifying
                observed = (
                    f"last qualifying run {format_timestamp(q.at)}, due {format_timestamp(st.due_at)} "
                    f"({format_duration(at - st.due_at)} overdue)"
                )
                evidence = q.file.uri
            else:
                observed, evidence = f"no qualifying run among {len(st.runs)} run(s)", st.last.file.uri
            out.append(
                finding(
                    "cadence",
                    observed,
                    st.window_text(st.last_qualifying),
                    evidence,
                    {"due_at": format_timestamp(st.due_at) if st.due_at else None},
                )
            )
        elif st.environments:
            for env, hit in st.environments.items():
                if hit is None:
                    out.append(
                        finding(
                            "environment-covered",
                            f"no qualifying run tagged env:{env} that still counts",
                            f"every environment of {', '.join(d.environments)}: {st.window_text(st.last_qualifying)}",
                            st.last.file.uri,
                            {"environment": env},
                        )
                    )
    for seen in assessment.unmatched:
        out.append(
            Finding(
                "warning",
                seen.file.uri,
                "run-matches-catalog",
                f"{seen.run.tool} run {seen.run.title!r} (tags {', '.join(seen.run.tags) or 'none'}) matches no drill",
                "every run matches a catalogued drill",
                seen.file.uri,
                gate_owner,
                gate_runbook,
                _run_details(seen),
            )
        )
    for seen, ids in assessment.ambiguous:
        out.append(
            Finding(
                "warning",
                seen.file.uri,
                "run-matches-one-drill",
                f"matches {len(ids)} drills: {', '.join(ids)}",
                "exactly one drill",
                seen.file.uri,
                gate_owner,
                gate_runbook,
                {"drills": ids},
            )
        )
    return out


def cadence_rows(assessment: DrillAssessment) -> list[dict]:
    """One row per drill: when it last ran, whether it counted, when it is due."""
    rows = []
    for st in assessment.drills:
        rows.append(
            {
                "drill": st.drill.id,
                "owner": st.drill.owner,
                "cadence": st.drill.cadence,
                "state": st.state,
                "last_run": st.last.label if st.last else "never",
                "last_qualifying_run": format_timestamp(st.last_qualifying.at) if st.last_qualifying else None,
                "last_run_at": st.last_qualifying.at if st.last_qualifying else None,
                "due": format_timestamp(st.due_at) if st.due_at else "never-run",
                "overdue_by": format_duration(assessment.at - st.due_at) if st.due_at and st.state == "overdue" else "",
                "runbook": st.runbook.state,
            }
        )
    return rows


def _t(dt: datetime | None) -> str:
    return format_timestamp(dt) if dt else "—"


def _yes_no(value: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "not checked"}[value]


def run_report(seen: SeenRun, drill: CatalogDrill | None) -> tuple[str, list[Section]]:
    """A drill run as a reviewer reads it: hypothesis before/after, method, rollbacks, timings."""
    run = seen.run
    title = f"Drill run: {run.title}"
    summary = [
        ["drill", f"{drill.id}: {drill.title}" if drill else "(matches no catalogued drill)"],
        ["fault / service", f"{drill.fault} / {drill.service}" if drill else "—"],
        ["tool", run.tool],
        ["status (tool)", run.status],
        ["outcome", run.outcome],
        ["why", run.outcome_note or "—"],
        ["deviated", "yes" if run.deviated else "no"],
        ["started", _t(run.started_at)],
        ["ended", _t(run.ended_at)],
        ["recovery", f"{run.recovery_s:g} s" if run.recovery_s is not None else "not measured"],
        ["how recovery was measured", run.recovery_note],
        ["recovery objective", drill.recovery_objective_text if drill and drill.recovery_objective_text else "—"],
        ["environment", run.environment or "—"],
        ["evidence file", seen.file.uri],
        ["sha256", seen.file.sha256],
    ]
    sections = [Section("Summary", run.description, (["", ""], summary))]
    headers = ["#", "type", "name", "status", "start", "end", "seconds", "tolerance met", "detail"]

    def table(phase: str) -> list[list]:
        return [
            [
                a.seq + 1,
                a.type,
                a.name,
                a.status,
                _t(a.start),
                _t(a.end),
                "" if a.duration_s is None else f"{a.duration_s:.3f}",
                {True: "yes", False: "NO", None: ""}[a.tolerance_met],
                a.detail,
            ]
            for a in run.activities
            if a.phase == phase
        ]

    hypothesis = run.extra.get("hypothesis") or "steady-state hypothesis"
    for phase, heading, state in (
        ("before", f"Hypothesis before: {hypothesis}", run.hypothesis_before),
        ("method", "Method", None),
        ("during", f"Hypothesis during the method: {hypothesis}", None),
        ("after", f"Hypothesis after: {hypothesis}", run.hypothesis_after),
        ("rollback", "Rollbacks", None),
        ("probe", "Probes", None),
    ):
        rows = table(phase)
        if phase in ("during", "probe") and not rows:
            continue
        text = f"Steady state {_yes_no(state)}." if phase in ("before", "after") else ""
        sections.append(
            Section(heading, text if rows else (text + " No activities.").strip(), (headers, rows) if rows else None)
        )
    if run.tool == "litmus":
        extra = [[k, v] for k, v in run.extra.items() if v not in (None, "", {})]
        sections.append(Section("LitmusChaos result", "", (["field", "value"], extra)))
    return title, sections

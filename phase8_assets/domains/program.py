"""The Phase 8 program: eight items, each with an owner, a family and a cadence, covered by gates.

``program:`` in phase8.yaml declares, per item, who owns it, which family of release evidence it
belongs to and how often its runs must happen (``every-release`` or an ISO 8601 duration). The
``program_completeness`` gate is decided from the config and the evidence batch only (never from a
Dagster instance), so CI's in-process runs and the UI decide the same:

- every item is declared, with an owner and a cadence (errors);
- the item's runs kept their cadence: the newest run is no older than the cadence (an error), judged
  only while the run evidence is within its maximum age (stale or missing evidence is
  ``evidence_freshness``'s error; here it is a warning, so one problem blocks once);
- a gate switched off, an item's stream not configured in the root, an item left with no gate that
  evaluates it: warnings naming the reason;
- every family has at least one covered item (an error).

A root without ``program:`` gets one warning and every other finding as a warning: it blocks from
the next major version of the config (phase8/v2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from phase8_assets.domains import drills, governance, isolation, supportability
from phase8_assets.domains.gates import GATES, Finding
from phase8_assets.domains.perf import same_commit
from phase8_assets.domains.plugins import verify
from phase8_assets.evidence import TIMELESS_KINDS, evidence_age
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.evidence.config import EvidenceConfig
from phase8_assets.evidence.runbooks import is_placeholder_owner
from phase8_assets.shared.artifacts import API_VERSION, check_schema
from phase8_assets.shared.clock import TimeParseError, format_duration, format_timestamp, parse_duration
from phase8_assets.shared.reports import Section, state_heatmap

GATE = "program_completeness"
PROGRAM_WIDE = "program-wide"
EVERY_RELEASE = "every-release"
FAMILIES = ("reliability", "resilience", "governance", "supportability")


@dataclass(frozen=True)
class Item:
    """One Phase 8 item: its title, its default family, the evidence kinds it reads, and which of
    those are its runs (what a cadence is measured on)."""

    title: str
    family: str
    kinds: tuple[str, ...]
    runs: tuple[str, ...]


ITEMS: dict[str, Item] = {
    "performance": Item(
        "Performance budgets and SLOs",
        "reliability",
        ("benchmarks", "perf_budgets", "slo_definitions", "otel_metrics"),
        ("benchmarks",),
    ),
    "chaos_drills": Item(
        "Chaos and resilience drills",
        "resilience",
        ("drill_catalog", "drill_journals", "chaos_results"),
        ("drill_journals", "chaos_results"),
    ),
    "upgrade_safety": Item(
        "Upgrade safety and rollback",
        "resilience",
        ("upgrade_path", "preflight_reports", "rollback_reports"),
        ("preflight_reports", "rollback_reports"),
    ),
    "finops": Item("FinOps", "governance", ("cost_exports", "cost_allocation", "cost_budgets"), ("cost_exports",)),
    "governance": Item(
        "Data governance policy-as-code",
        "governance",
        ("retention_policies", "deletion_policies", "access_policies", "teams", "data_inventory"),
        ("data_inventory",),
    ),
    "plugin_security": Item(
        "Plugin and bot security", "governance", ("plugin_bundles", "plugin_trust"), ("plugin_bundles",)
    ),
    "tenancy_isolation": Item(
        "Tenancy isolation", "reliability", ("isolation_results", "isolation_matrix"), ("isolation_results",)
    ),
    "supportability": Item(
        "Operator supportability", "supportability", ("runbooks", "health_responses"), ("health_responses",)
    ),
}


def gates_of(item: str) -> list[str]:
    return [name for name, spec in GATES.items() if spec.item == item]


@dataclass
class KindAge:
    kind: str
    configured: bool
    files: int
    newest: datetime | None
    age: timedelta | None
    max_age: timedelta | None
    max_age_text: str
    uri: str | None

    @property
    def state(self) -> str:
        if not self.configured:
            return "not configured"
        if not self.files:
            return "missing"
        if self.kind in TIMELESS_KINDS:
            return "present"
        if self.age is None:
            return "undated"
        return "stale" if self.age > self.max_age else "fresh"


@dataclass
class GateCoverage:
    gate: str
    enabled: bool
    reason: str
    configured: bool  # at least one of its item's evidence kinds is configured in the root

    @property
    def evaluates(self) -> bool:
        return self.enabled and self.configured


@dataclass
class ItemState:
    item: str
    title: str
    family: str
    declared: bool
    owner: str | None
    cadence_text: str | None
    cadence: timedelta | None  # None for every-release (and when undeclared or invalid)
    cadence_problem: str
    gates: list[GateCoverage]
    kinds: list[KindAge]
    cadence_state: str = "unknown"  # kept | missed | unknown | undeclared
    cadence_note: str = ""
    last_run: KindAge | None = None
    coverage: dict[str, tuple[int, int] | str] = field(default_factory=dict)  # label -> (n, of) or why unknown

    @property
    def configured(self) -> bool:
        return any(k.configured for k in self.kinds)

    @property
    def answerable_owner(self) -> str | None:
        """The owner, unless it is a placeholder such as ``team:TBD`` (the config's owner pattern
        accepts it; it names nobody, as a runbook's owner)."""
        return None if not self.owner or is_placeholder_owner(self.owner) else self.owner

    @property
    def covered(self) -> bool:
        return any(g.evaluates for g in self.gates)


@dataclass
class Program:
    at: datetime
    declared: bool
    source: str
    items: list[ItemState]

    def families(self) -> dict[str, list[str]]:
        """Each family's covered items (a family with none is absent from the verdict)."""
        out: dict[str, list[str]] = {family: [] for family in FAMILIES}
        for state in self.items:
            if state.covered:
                out.setdefault(state.family, []).append(state.item)
        return out


def _kind_age(batch: EvidenceBatch, config: EvidenceConfig, kind: str, at: datetime) -> KindAge:
    spec = config.evidence.get(kind)
    files = batch.files_of(kind)
    dated = [f for f in files if f.observed_at is not None]
    newest = max(dated, key=lambda f: f.observed_at) if dated else None
    return KindAge(
        kind,
        spec is not None,
        len(files),
        newest.observed_at if newest else None,
        evidence_age(kind, newest.observed_at, at) if newest else None,
        spec.max_age if spec else None,
        spec.max_age_text if spec else "—",
        newest.uri if newest else (files[0].uri if files else config.paths_of(kind)),
    )


def _cadence(text: object) -> tuple[timedelta | None, str]:
    if text is None:
        return None, "no cadence declared"
    if text == EVERY_RELEASE:
        return None, ""
    try:
        return parse_duration(str(text), "cadence"), ""
    except TimeParseError as exc:
        return None, str(exc)


def _judge_cadence(state: ItemState) -> None:
    """Was the cadence kept? Measured on the item's run kinds, while their evidence is current."""
    runs = [k for k in state.kinds if k.kind in ITEMS[state.item].runs and k.configured]
    if state.cadence_text is None or state.cadence_problem:
        state.cadence_state = "undeclared"
        return
    if not runs:
        state.cadence_state, state.cadence_note = "unknown", "no run evidence kind configured"
        return
    current = [k for k in runs if k.state in ("fresh", "present")]
    if not current:
        state.cadence_state = "unknown"
        state.cadence_note = ", ".join(f"{k.kind} {k.state}" for k in runs) + " (evidence_freshness judges it)"
        return
    dated = [k for k in current if k.newest is not None]
    state.last_run = max(dated, key=lambda k: k.newest) if dated else current[0]
    if state.cadence is None:  # every-release: a current run in this release's root
        state.cadence_state, state.cadence_note = "kept", f"{state.last_run.kind} present for this release"
        return
    if state.last_run.age is None:
        state.cadence_state, state.cadence_note = "unknown", f"{state.last_run.kind} carries no run time"
        return
    age = state.last_run.age
    state.cadence_state = "kept" if age <= state.cadence else "missed"
    state.cadence_note = f"newest run {format_duration(age)} old ({state.last_run.kind})"


def assess(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> Program:
    """Every item as the config declares it and the evidence shows it (no coverage figures: ``coverage``)."""
    declared_items = ((config.program or {}).get("items")) or {}
    states = []
    for name, item in ITEMS.items():
        declared = declared_items.get(name)
        decl = declared or {}
        cadence, problem = _cadence(decl.get("cadence"))
        kinds = [_kind_age(batch, config, kind, at) for kind in item.kinds]
        configured = any(k.configured for k in kinds)
        gates = [GateCoverage(g, *config.gate_switch(g), configured) for g in gates_of(name)]
        state = ItemState(
            name,
            item.title,
            decl.get("family") or item.family,
            declared is not None,
            decl.get("owner"),
            decl.get("cadence"),
            cadence,
            problem if declared is not None else "",
            gates,
            kinds,
        )
        _judge_cadence(state)
        states.append(state)
    return Program(at, config.program is not None, config.source, states)


def findings(program: Program, config: EvidenceConfig) -> tuple[list[Finding], str]:
    gate_owner, runbook = config.owner_for(GATE), config.runbook_for(GATE)
    where = program.source
    out: list[Finding] = []

    def add(severity, subject, rule, observed, limit, evidence, owner, details):
        out.append(Finding(severity, subject, rule, observed, limit, evidence, owner or gate_owner, runbook, details))

    if not program.declared:
        add(
            "warning",
            "program",
            "program-declared",
            f"no program: section in {where}",
            "program.items declaring the eight Phase 8 items (a warning until phase8/v2, then it blocks)",
            where,
            None,
            {"items": list(ITEMS)},
        )
    for s in program.items:
        base = {"item": s.item, "family": s.family, "gates": [g.gate for g in s.gates]}
        field_path = f"program.items.{s.item}"
        if program.declared and not s.declared:
            add(
                "error",
                s.item,
                "item-declared",
                f"{field_path}: not declared",
                "owner, family and cadence declared",
                where,
                None,
                base,
            )
        elif program.declared:
            if not s.answerable_owner:
                add(
                    "error",
                    s.item,
                    "item-owner",
                    f"{field_path}.owner: {s.owner + ' is a placeholder, it names nobody' if s.owner else 'none'}",
                    "an owner (team:name or an email address of somebody, not a placeholder such as TBD)",
                    where,
                    None,
                    base,
                )
            if s.cadence_text is None:
                add(
                    "error",
                    s.item,
                    "item-cadence",
                    f"{field_path}.cadence: none",
                    f"{EVERY_RELEASE} or an ISO 8601 duration such as P1D",
                    where,
                    s.answerable_owner,
                    base,
                )
            elif s.cadence_problem:
                add(
                    "error",
                    s.item,
                    "item-cadence",
                    f"{field_path}.cadence: {s.cadence_problem}",
                    f"{EVERY_RELEASE} or an ISO 8601 duration such as P1D",
                    where,
                    s.answerable_owner,
                    base,
                )
        if not s.configured:
            add(
                "warning",
                s.item,
                "stream-configured",
                f"none of {', '.join(ITEMS[s.item].kinds)} configured",
                "the item's evidence configured in the root",
                where,
                s.answerable_owner,
                base,
            )
        for g in s.gates:
            if not g.enabled:
                add(
                    "warning",
                    s.item,
                    "gate-enabled",
                    f"{g.gate} skipped: {g.reason}",
                    "every gate of the item evaluated",
                    where,
                    s.answerable_owner,
                    {**base, "gate": g.gate, "reason": g.reason},
                )
        if not s.covered:
            add(
                "warning",
                s.item,
                "item-covered",
                "no gate evaluated it",
                f"at least one of {', '.join(g.gate for g in s.gates)} evaluated",
                where,
                s.answerable_owner,
                base,
            )
        if s.cadence_state == "missed":
            last = s.last_run
            add(
                "error",
                s.item,
                "cadence-kept",
                s.cadence_note,
                f"a run at least every {s.cadence_text}",
                last.uri,
                s.answerable_owner,
                {
                    **base,
                    "kind": last.kind,
                    "newest": format_timestamp(last.newest),
                    "age_seconds": int(last.age.total_seconds()),
                    "cadence": s.cadence_text,
                },
            )
        elif s.cadence_state == "unknown" and s.configured and s.cadence_text:
            add(
                "warning",
                s.item,
                "cadence-kept",
                f"not judged: {s.cadence_note}",
                f"a run at least every {s.cadence_text}",
                config.paths_of(ITEMS[s.item].runs[0]) or where,
                s.answerable_owner,
                base,
            )
    for gate in gates_of("program-wide"):  # every item's evidence passes through them: switching one off is named
        enabled, reason = config.gate_switch(gate)
        if not enabled:
            add("warning", "program-wide", "gate-enabled", f"{gate} skipped: {reason}",
                "every gate of the item evaluated", where, None, {"gate": gate, "reason": reason})  # fmt: skip
    families = program.families()
    for family, covered in families.items():
        if not covered:
            items = [s.item for s in program.items if s.family == family]
            add(
                "error",
                family,
                "family-present",
                f"no covered item (items of the family: {', '.join(items) or 'none'})",
                "at least one item of the family evaluated by a gate",
                where,
                None,
                {"family": family, "items": items},
            )
    if not program.declared:
        for f in out:
            if f.severity == "error":
                f.severity = "warning"
    covered = sum(s.covered for s in program.items)
    kept = sum(s.cadence_state == "kept" for s in program.items)
    present = sum(bool(v) for v in families.values())
    context = (
        f"{covered} of {len(program.items)} item(s) covered by a gate, {kept} kept their cadence, "
        f"{present} of {len(FAMILIES)} families in the verdict"
    )
    return out, context


def _drills(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> dict:
    standings = drills.assess(batch, config, at).drills
    current = sum(st.state in ("current", "due-soon") for st in standings)
    return {"catalogued drills run within their cadence": (current, len(standings))}


def _isolation(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> dict:
    cells = isolation.assess(batch, at).cells
    return {"isolation matrix cells covered": (sum(c.coverage == "covered" for c in cells), len(cells))}


def _runbooks(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> dict:
    index = supportability.build_index(batch, config, at)
    referenced = {r.runbook for r in index.references if r.runbook}
    current = [u for u in referenced if u in index.runbooks and index.runbooks[u].state(at) == "current"]
    return {"referenced runbooks current": (len(current), len(referenced))}


def _slos(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> dict:
    slos = [r for f in batch.files_of("slo_definitions") for r in f.records if r.get("kind") == "SLO"]
    alerted = [r for r in slos if (r.get("spec") or {}).get("alertPolicies")]
    return {"SLOs with an alert policy": (len(alerted), len(slos))}


def _plugins(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> dict:
    policies = batch.files_of("plugin_trust")
    if len(policies) != 1:
        return {"enabled plugins verified": f"{len(policies)} trust policies (expected one)"}
    policy = policies[0].records[0]
    bundles = [f.records[0] for f in batch.files_of("plugin_bundles")]
    verdicts: dict[str, list[str]] = {}
    for bundle in bundles:
        verdicts.setdefault(bundle.plugin_id, []).append(verify(bundle, policy, at, bundles).verdict)
    enabled = set(policy.enabled)
    verified = [p for p in enabled if verdicts.get(p) and all(v == "verified" for v in verdicts[p])]
    return {"enabled plugins verified": (len(verified), len(enabled))}


def _benchmarks(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> dict:
    budgets = [r for f in batch.files_of("perf_budgets") for r in f.records]
    if len(budgets) != 1:
        return {"benchmarks with a budget": f"{len(budgets)} PerfBudgets (expected one)"}
    commit = config.release.get("commit")
    run = {(m.benchmark, m.measure) for f in batch.files_of("benchmarks") for rec in f.records
           if same_commit(rec.run.commit, commit) for m in rec.measurements}  # fmt: skip
    names = {name for name, _ in run}
    budgeted = {name for name, measure in run
                if any(rule.matches(name, measure) for rule in budgets[0].rules)}  # fmt: skip
    return {"benchmarks of the release with a budget": (len(budgeted), len(names))}


def _datasets(batch: EvidenceBatch, config: EvidenceConfig, at: datetime) -> dict:
    inventoried = governance.inventory_datasets(batch)
    if not inventoried:
        return {"inventory datasets evaluated": "no readable DataInventory"}
    evaluations = governance.evaluate(governance.Policies.from_batch(batch), inventoried, at, "")
    # a deletion run's or grant's target is <dataset>/<run or principal>; a dataset id has no "/"
    judged = {(e.tenant, e.target.split("/", 1)[0]) for e in evaluations if e.outcome != "not-applicable"}
    datasets = {(ds["tenant"], ds["id"]) for ds, _ in inventoried}
    return {"inventory datasets evaluated": (len(datasets & judged), len(datasets))}


# Each item's coverage in the platform's terms, from the batch the gates read (no file is read again).
COVERAGE = {
    "performance": [_benchmarks, _slos],
    "chaos_drills": [_drills],
    "tenancy_isolation": [_isolation],
    "plugin_security": [_plugins],
    "governance": [_datasets],
    "supportability": [_runbooks],
}


def coverage(program: Program, batch: EvidenceBatch, config: EvidenceConfig) -> None:
    """Fill each item's ``coverage``: counts (n, of), or why a figure could not be computed (its own
    gate reports the cause; the scorecard shows it, it never decides anything)."""
    for state in program.items:
        for figure in COVERAGE.get(state.item, []):
            if not state.configured:
                continue
            try:
                state.coverage.update(figure(batch, config, program.at))
            except Exception as exc:  # informational: the item's own gate fails on the same evidence
                state.coverage[figure.__name__.strip("_")] = f"not computed: {type(exc).__name__}: {exc}"


def percent(value: tuple[int, int] | str) -> str:
    if isinstance(value, str):
        return value
    n, of = value
    return f"{n}/{of} ({n / of:.0%})" if of else f"{n}/0 (nothing listed)"


# An item's status is the worst of its gates' in one run, worst last. Only ``pass`` is met: a gate
# switched off (``skipped``) or that the run did not record (``NOT_RECORDED``) leaves its item unmet.
NOT_RECORDED = "none recorded"
STATUS_RANK = ("pass", "warn", "skipped", NOT_RECORDED, "fail", "error")


def latest_statuses(rows: list[tuple]) -> dict[str, str]:
    """Each gate's status in the newest recorded run (rows oldest first, as ``history.gate_statuses``
    gives them); a gate that run did not record has none, never an older run's."""
    newest = rows[-1][1] if rows else None
    return {gate: status for _, run_id, gate, status in rows if run_id == newest}


def worst_of(gates: list[str], statuses: dict[str, str]) -> str:
    """The item's status from its ``gates``' ``statuses`` in one run (``NOT_RECORDED`` for a gate without one)."""
    return max((statuses.get(g, NOT_RECORDED) for g in gates), key=STATUS_RANK.index)


def weekly_trend(rows: list[tuple], end: datetime, weeks: int = 12) -> tuple[list[str], dict[str, list[str | None]]]:
    """Per item, per week (Monday, UTC) of the last ``weeks`` before ``end``: the worst status of its
    gates in the week's last run (None: no run that week; ``NOT_RECORDED``: that run has no status for
    one of them)."""
    monday = (end - timedelta(days=end.weekday())).date()
    starts = [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    last_run: dict = {}
    for at, run_id, gate, status in rows:
        week = (at - timedelta(days=at.weekday())).date()
        if week in starts:
            if last_run.get(week, (None, None))[0] != run_id:
                last_run[week] = (run_id, {})
            last_run[week][1][gate] = status
    trend = {}
    for item in ITEMS:
        gates = gates_of(item)
        row = []
        for week in starts:
            row.append(worst_of(gates, last_run[week][1]) if week in last_run else None)
        trend[item] = row
    return [f"{w:%Y-%m-%d}" for w in starts], trend


def item_status(item: dict, latest: dict[str, str]) -> str:
    return worst_of([g["gate"] for g in item["gates"]], latest)


def item_cells(program: Program) -> list[dict]:
    """Each item's row for people, without its gates' statuses (``rows`` adds them)."""
    out = []
    for s in program.items:
        ages = ", ".join(
            f"{k.kind} {format_duration(k.age) if k.age is not None else k.state}/{k.max_age_text}"
            for k in s.kinds
            if k.configured
        )
        cadence = f"{s.cadence_text or '—'}: {s.cadence_state}" + (f" ({s.cadence_note})" if s.cadence_note else "")
        out.append(
            {
                "item": s.item,
                "family": s.family,
                "owner": s.owner or "—",
                "gates": [{"gate": g.gate, "evaluates": g.evaluates, "enabled": g.enabled} for g in s.gates],
                "ages": ages or "not configured",
                "cadence": cadence,
                "coverage": "; ".join(f"{label} {percent(v)}" for label, v in s.coverage.items()) or "—",
            }
        )
    return out


def _gate_cell(gate: dict, latest: dict[str, str]) -> str:
    """``off`` for a gate switched off; otherwise its status, even without its item's evidence
    configured: the gate then runs and fails closed, it is not off. (A card without ``enabled`` was
    written before it was recorded: ``evaluates`` stands in.)"""
    if not gate.get("enabled", gate["evaluates"]):
        return "off"
    status = latest.get(gate["gate"], NOT_RECORDED)
    return status if gate["evaluates"] else f"{status}; no evidence of the item configured"


def rows(items: list[dict], latest: dict[str, str]) -> list[list]:
    """One row per item, for people: the scorecard's table and the asset's metadata."""
    return [
        [
            i["item"],
            i["family"],
            i["owner"],
            item_status(i, latest),
            ", ".join(f"{g['gate']} ({_gate_cell(g, latest)})" for g in i["gates"]),
            i["ages"],
            i["cadence"],
            i["coverage"],
        ]
        for i in items
    ]


HEADERS = ["item", "family", "owner", "status", "gates (latest)", "evidence age / max age", "cadence", "coverage"]


def trend_figure(weeks: list[str], trend: dict[str, list[str | None]]):
    """Items × weeks, coloured by the worst gate status of the item in the week's last run."""
    items = list(trend)
    return state_heatmap(
        STATUS_RANK,
        ["#2da44e", "#bf8700", "#8c959f", "#d0d7de", "#cf222e", "#82071e"],
        weeks,
        items,
        [[STATUS_RANK.index(s) if s else None for s in trend[i]] for i in items],
        [[s or "no run" for s in trend[i]] for i in items],
        "%{y}, week of %{x}: %{text}<extra></extra>",
        140 + 40 * len(items),
    )


SCORECARD_KIND = "ProgramScorecard"
SCORECARD_TITLE = "Phase 8 program scorecard"


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _naive(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def scorecard_data(
    program: Program,
    found: list[Finding],
    summary: str,
    recorded: list[tuple],
    *,
    run_id: str,
    release: dict,
    root: str,
    weeks: int,
) -> dict:
    """What ``phase8_program`` computed in run ``run_id`` (a ``ProgramScorecard``): each item's row
    without gate statuses, the findings, and the gate statuses recorded by earlier runs (``recorded``
    as ``history.gate_statuses`` gives them; this run's own are left out). Stamped with the run and its
    evaluation time, so the step that completes the run renders it with the run's statuses, and a
    scorecard of another run is never taken for this one's."""
    card = {
        "apiVersion": API_VERSION,
        "kind": SCORECARD_KIND,
        "run_id": run_id,
        "evaluated_at": format_timestamp(program.at),
        "release": str(release.get("version", "")),
        "evidence_root": root,
        "summary": summary,
        "trend_weeks": weeks,
        "items": item_cells(program),
        "findings": [
            {"severity": f.severity, "subject": f.subject, "rule": f.rule, "observed": str(f.observed)} for f in found
        ],
        "recorded": [
            {"evaluated_at": format_timestamp(_utc(at)), "run_id": run, "gate": gate, "status": status}
            for at, run, gate, status in recorded
            if run != run_id
        ],
    }
    check_schema(card, SCORECARD_KIND, "scorecard.json")
    return card


def scorecard_sections(card: dict, report: dict | None = None) -> tuple[str, list[Section]]:
    """The scorecard of ``card`` (subtitle, sections). With ``report``, the gate report of the run the
    card was computed in, the statuses and the trend's newest cell are that run's; without it (the
    run's gates have not completed), the statuses are those recorded before the run."""
    history = [(_naive(r["evaluated_at"]), r["run_id"], r["gate"], r["status"]) for r in card["recorded"]]
    if report is not None:
        at = _naive(report["evaluated_at"])
        history += [(at, card["run_id"], g["gate"], g["status"]) for g in report["gates"]]
        whose = f"Gate statuses of this run ({card['run_id']})."
    else:
        whose = f"Gate statuses as recorded before this run ({card['run_id']}): the run's own gates have not completed."
    latest = latest_statuses(history)
    wide = ", ".join(f"{g} ({latest.get(g, NOT_RECORDED)})" for g in gates_of(PROGRAM_WIDE))
    weeks, trend = weekly_trend(history, _naive(card["evaluated_at"]), card["trend_weeks"])
    subtitle = (
        f"{card['release']} at {card['evaluated_at']}, evidence root {card['evidence_root']}, run {card['run_id']}"
    )
    sections = [
        Section(
            "Items",
            f"{card['summary']}. {whose} Program-wide gates: {wide}.",
            (HEADERS, rows(card["items"], latest)),
        ),
        Section(
            f"Trend over the last {card['trend_weeks']} weeks",
            "The worst status of each item's gates in each week's last recorded run.",
            figure=trend_figure(weeks, trend),
        ),
        Section(
            "Findings",
            table=(
                ["severity", "subject", "rule", "observed"],
                [[f["severity"], f["subject"], f["rule"], f["observed"]] for f in card["findings"]],
            ),
        ),
    ]
    return subtitle, sections

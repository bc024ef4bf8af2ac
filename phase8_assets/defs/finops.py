"""Stream C, cost: FOCUS line items into DuckDB, attribution per tenant and team, budgets with
forecasts, day-over-day anomalies, the warn-level ``cost_budgets`` gate and the budget alert sensor."""

import hashlib
import json
import tempfile
from pathlib import Path

import dagster as dg

from phase8_assets.defs.gates import gate_asset
from phase8_assets.defs.jobs import WEEKS
from phase8_assets.defs.resources import DUCKDB_POOL, Phase8Settings, Warehouse
from phase8_assets.domains.finops import (
    SCOPE_KEYS,
    UNALLOCATED,
    anomalies,
    attribute,
    budget_states,
    corrections,
    mark_stale,
    stale_accounts,
    superseded,
)
from phase8_assets.domains.gates import Finding
from phase8_assets.evidence import EvidenceError
from phase8_assets.evidence.collect import EvidenceBatch, spool_of
from phase8_assets.evidence.roots import RootError, local_copy
from phase8_assets.shared import telemetry
from phase8_assets.shared.audit_events import Actor, AuditEvent
from phase8_assets.shared.clock import format_duration, format_timestamp, now_utc
from phase8_assets.shared.reports import markdown_table
from phase8_assets.warehouse import audit, transaction
from phase8_assets.warehouse.store import insert_new_row, record_cost_file, record_cur_period

GROUP = "cost"
OWNERS = ["team:finops"]
ALERT_EVENT = "phase8.budget.threshold_crossed"


def cost_versions(batch: EvidenceBatch) -> list[str]:
    """The cost deliveries in the roots now: each FOCUS file's version (``EvidenceFile.version``) and each CUR
    manifest's execution; rows of any other delivery (a corrected or removed file) no longer count."""
    focus = [f.version for f in batch.files_of("cost_exports")]
    return sorted({*focus, *(f.records[0]["execution"] for f in batch.files_of("cur_exports"))})


def deliveries(batch: EvidenceBatch) -> tuple[dict[str, str], dict[str, tuple[str, str, str]]]:
    """The cost deliveries in the roots now, as ``superseded`` takes them: each FOCUS file's version
    and (first) URI; each CUR execution's manifest URI, export (``<prefix>/<export>``) and period."""
    focus: dict[str, str] = {}
    for f in sorted(batch.files_of("cost_exports"), key=lambda f: f.uri):
        focus.setdefault(f.version, f.uri)
    cur = {f.records[0]["execution"]: (f.uri, f.uri.split("/metadata/")[0], f.records[0]["period"])
           for f in sorted(batch.files_of("cur_exports"), key=lambda f: f.uri)}  # fmt: skip
    return focus, cur


def delivery_kinds(batch: EvidenceBatch) -> dict[str, tuple[str, str]]:
    """Each cost delivery in the roots now (``cost_versions``) -> its kind and (first) URI."""
    focus, cur = deliveries(batch)
    return {v: ("cost_exports", u) for v, u in focus.items()} | {e: ("cur_exports", u) for e, (u, _, _) in cur.items()}


def allocation_policy(batch: EvidenceBatch) -> dict:
    """The CostAllocation rules, or the default: the ``tenant`` tag names the tenant, nothing shared."""
    return _policy(batch, "cost_allocation") or {"tenant_keys": ["tenant"], "team_keys": [], "shared": []}


def cost_roots(batch: EvidenceBatch, config) -> list[str]:
    """The roots cost deliveries came from (the config's roots when none did)."""
    return sorted({f.root for kind in COST_KINDS for f in batch.files_of(kind)}) or config.root_uris


def judge_stale_accounts(conn, batch: EvidenceBatch, config, at, states, allocation=None) -> list:
    """The billing accounts whose cost this month stopped before their fresh kind's ``max_age``
    (``stale_accounts``), with the budgets each feeds marked on ``states`` (``mark_stale``, attributed
    by ``allocation()``, by default the batch's CostAllocation: a batch without that kind needs it)."""
    from phase8_assets.domains.evidence_quality import kind_freshness

    gate = "cost_budgets"
    max_age = {}
    for name in COST_KINDS:
        kind = config.evidence.get(name)
        if kind is not None and kind_freshness(kind, batch, at, config.owner_for(gate, name),
                                               config.runbook_for(gate), config)[1]:  # fmt: skip
            max_age[name] = kind.max_age
    roots = cost_roots(batch, config)
    stale = stale_accounts(conn, roots, delivery_kinds(batch), max_age, at)
    if stale:
        policy = allocation() if allocation else allocation_policy(batch)
        mark_stale(conn, roots, policy, config.tenants, cost_versions(batch), stale, states, at)
    return stale


def _local_copy(uri: str, folder: Path) -> str:
    """``local_copy``; an object that cannot be read is an ``EvidenceError`` naming it."""
    try:
        return local_copy(uri, folder)
    except RootError as exc:
        raise EvidenceError("(file)", str(exc)) from None


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    description="FOCUS exports (CSV, gzip CSV, Parquet; local or S3) and AWS CUR 2.0 deliveries (the files their "
    "manifests list, mapped onto FOCUS) loaded file -> DuckDB into cost_line_items; a re-delivered file or a newer "
    "execution replaces its rows (a restated period is never doubled).",
)
def cost_line_items(context: dg.AssetExecutionContext, evidence_files: EvidenceBatch, warehouse: Warehouse):
    files = evidence_files.files_of("cost_exports")
    loaded = rows = 0
    with tempfile.TemporaryDirectory() as tmp, warehouse.get_connection() as conn:
        for f in files:
            try:
                stored = record_cost_file(conn, f.root, f.uri, f.version, spool_of(f, Path(tmp)))
            except EvidenceError as exc:
                context.log.warning(f"{f.uri}: {exc}")
                continue
            if stored is not None:
                loaded, rows = loaded + 1, rows + stored
        for f in evidence_files.files_of("cur_exports"):  # CUR 2.0: exactly the files each manifest lists
            manifest = f.records[0]
            key = f.uri.rsplit("/", 1)[0]  # <export>/metadata/BILLING_PERIOD=YYYY-MM
            try:
                spool = spool_of(f, Path(tmp))
            except EvidenceError as exc:  # a delivery loaded in part would understate the period
                raise dg.Failure(f"{f.uri}: {exc.field}: {exc.reason}") from None
            stored = record_cur_period(conn, f.root, key, manifest["execution"], spool)
            if stored is not None:
                loaded, rows = loaded + 1, rows + stored
        totals = conn.execute(
            "SELECT count(*), count(DISTINCT billing_period), min(charge_day), max(charge_day) FROM cost_line_items "
            "WHERE root IN (SELECT unnest(?))",
            [sorted({f.root for f in files + evidence_files.files_of("cur_exports")})],
        ).fetchone()
    return dg.MaterializeResult(
        metadata={
            "files": len(files),
            "new_files": loaded,
            "new_rows": rows,
            "rows": totals[0],
            "billing_periods": totals[1],
            "first_day": str(totals[2]),
            "last_day": str(totals[3]),
        }  # fmt: skip
    )


@dg.asset_check(
    asset=cost_line_items,
    additional_ins={"evidence_files": dg.AssetIn("evidence_files")},  # not the checked asset's (stored) value
    blocking=False,
    description="Great Expectations (GX Core) on every FOCUS export: FOCUS 1.2 mandatory columns and types on a "
    "bounded sample (first 5,000 rows), naming failing columns and rows. Outside the bulk load and release_gate.",
)
def focus_conformance(evidence_files: EvidenceBatch) -> dg.AssetCheckResult:
    from phase8_assets.domains.focus_quality import SAMPLE_ROWS, validate_sample
    from phase8_assets.evidence.focus import columns, source_sql

    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        import duckdb

        conn = duckdb.connect()
        try:
            for f in evidence_files.files_of("cost_exports"):
                source = source_sql(conn, _local_copy(f.uri, Path(tmp)))
                names = columns(conn, source)
                as_text = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in names)
                frame = conn.execute(f"SELECT {as_text} FROM {source} LIMIT {SAMPLE_ROWS}").df()
                for failure in validate_sample(frame, names):
                    problems.append({"file": f.uri, **failure})
        finally:
            conn.close()
    rows = [
        [p["file"].rsplit("/", 1)[-1], p["column"], p["expectation"], p["unexpected"], p["failing_rows"], p["examples"]]
        for p in problems
    ]
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(problems)} failed expectation(s) on {len(evidence_files.files_of('cost_exports'))} export(s)",
        metadata={
            "failures": dg.MetadataValue.md(
                markdown_table(
                    ["file", "column", "expectation", "unexpected", "rows (in sample)", "examples"],
                    rows,
                    empty="_all FOCUS 1.2 expectations met_",
                )
            ),
        },
    )


def _policy(batch: EvidenceBatch, kind: str):
    """The kind's one policy document (the first by URI when there are more: ``policy_file_findings``)."""
    files = sorted(batch.files_of(kind), key=lambda f: f.uri)
    return files[0].records[0] if files else None


POLICY_DOCUMENTS = {"cost_budgets": "CostBudgets", "cost_allocation": "CostAllocation"}


def policy_file_findings(batch: EvidenceBatch, config) -> list[Finding]:
    """An error for each cost policy kind whose paths match more than one readable file: one is read,
    so the budgets (or allocation rules) of the others would silently not be judged."""
    gate = "cost_budgets"
    found = []
    for kind, document in POLICY_DOCUMENTS.items():
        uris = sorted(f.uri for f in batch.files_of(kind))
        if len(uris) > 1:
            found.append(Finding("error", kind, "one-policy-file",
                                 f"{len(uris)} {document} files: {', '.join(uris)}; only {uris[0]} is read",
                                 f"exactly one {document} file (merge them into one)", uris[1],
                                 config.owner_for(gate, kind), config.runbook_for(gate),
                                 {"kind": kind, "files": uris, "read": uris[0]}))  # fmt: skip
    return found


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    deps=[cost_line_items],
    description="Cost per day, currency, tenant, team and service category: tags normalised, shared costs split "
    "(proportional, even, fixed), untagged kept as __unallocated__; billed and effective (amortised) cost.",
)
def cost_attribution(settings: Phase8Settings, evidence_files: EvidenceBatch, warehouse: Warehouse) -> dg.Output:
    config = settings.load()
    policy = allocation_policy(evidence_files)
    roots = cost_roots(evidence_files, config)
    with warehouse.get_connection() as conn:
        # A re-delivered period counts once: the newest delivery (``superseded``); the others are named.
        versions, excluded, replaced = superseded(conn, roots, *deliveries(evidence_files))
        n = attribute(conn, config.root_uris[0], roots, policy, config.tenants, versions=versions, excluded=excluded)
        uris = {v: uri for v, (_, uri) in delivery_kinds(evidence_files).items() if v in versions}
        corrected = corrections(conn, roots, uris, excluded)
        by_tenant = conn.execute(
            "SELECT tenant, currency, sum(billed)::DOUBLE, sum(effective)::DOUBLE FROM cost_attribution WHERE root = ? "
            "GROUP BY ALL ORDER BY 1, 2",
            [config.root_uris[0]],
        ).fetchall()
    total = sum(r[3] for r in by_tenant) or 1.0
    unallocated = sum(r[3] for r in by_tenant if r[0] == UNALLOCATED)
    return dg.Output(
        {
            "root": config.root_uris[0],
            "unallocated_share": unallocated / total,
            "superseded": [r.as_details() for r in replaced],
            "corrections": corrected,
        },  # fmt: skip
        metadata={
            "rows": n,
            "superseded": dg.MetadataValue.md(
                markdown_table(
                    ["superseded", "by (counts)", "period", "days", "billed not counted", "decided by"],
                    [
                        [
                            r.uri,
                            r.by,
                            r.billing_period,
                            f"{r.days[0]}..{r.days[-1]} ({len(r.days)})",
                            r.billed if not r.counted_too else "0 (both counted)",
                            r.as_details()["decided_by"]
                            if r.rule == "one-source-per-account"
                            else f"counted too: {r.counted_too}"
                            if r.counted_too
                            else "tie: the greater URI"
                            if r.tie
                            else "the later last charge day",
                        ]
                        for r in replaced
                    ],
                    empty="_no re-delivered period_",
                )
            ),
            "unallocated_share": round(unallocated / total, 4),
            "by_tenant": dg.MetadataValue.md(
                markdown_table(
                    ["tenant", "currency", "billed", "effective"],
                    [[t, c, f"{b:,.2f}", f"{e:,.2f}"] for t, c, b, e in by_tenant],
                )
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    description="Each monthly budget at the evaluation time: month-to-date spend, the forecast to month end (by "
    "default: month to date plus the trailing 7-day mean for each remaining day), and which thresholds (default "
    "80 % and 100 %, on actual and on forecast) are crossed.",
)
def budget_status(
    settings: Phase8Settings, evidence_files: EvidenceBatch, warehouse: Warehouse, cost_attribution: dict
):
    config = settings.load()
    at = settings.evaluation_time(config)
    budgets = _policy(evidence_files, "cost_budgets")
    with warehouse.get_connection() as conn:
        states = budget_states(conn, cost_attribution["root"], budgets, at) if budgets else []
        # An account whose cost stopped while its kind stays fresh (another account's export is current)
        stale = judge_stale_accounts(conn, evidence_files, config, at, states)
    rows = [
        [s.budget["name"], s.month, f"{s.amount:,.0f} {s.budget['currency']}", f"{s.actual:,.2f}", f"{s.forecast:,.2f}",
         f"{s.forecast / s.amount:.0%}", ", ".join(f"{b} {t:.0%}" for b, t in s.crossed) or "—"]
        if s.unmatched is None else
        [s.budget["name"], s.month, f"{s.amount:,.0f} {s.budget['currency']}", "—", "—", "—", "its scope selects no cost"]
        for s in states
    ]  # fmt: skip
    for s in states:
        if s.unmatched is not None:
            continue
        telemetry.gauge(
            "phase8.cost.budget_used",
            s.actual / s.amount,
            {"phase8.budget": s.budget["name"]},
            description="Spend / budget",
        )
    return dg.Output(
        {
            "states": states,
            "at": at,
            "root": cost_attribution["root"],
            "configured": budgets is not None,
            "superseded": cost_attribution.get("superseded", []),
            "corrections": cost_attribution.get("corrections", []),
            "stale_accounts": stale,
        },  # fmt: skip
        metadata={
            "evaluated_at": format_timestamp(at),
            "stale_accounts": ", ".join(f"{a.name} ({a.kind}, last {a.last_day})" for a in stale) or "none",
            "budgets": len(states),
            "crossed": sum(1 for s in states if s.crossed),
            "forecast": states[0].forecast_label if states else "—",
            "status": dg.MetadataValue.md(
                markdown_table(
                    ["budget", "month", "amount", "actual", "forecast", "forecast/budget", "crossed"],
                    rows,
                    empty="_no budgets_",
                )
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "python"},
    pool=DUCKDB_POOL,
    description="Day-over-day spikes per tenant and service category (at least 2x the day before and 10 more).",
)
def cost_anomalies(warehouse: Warehouse, cost_attribution: dict) -> dg.Output:
    with warehouse.get_connection() as conn:
        found = anomalies(conn, cost_attribution["root"])
    rows = [[str(d), t, s, c, f"{p:,.2f}", f"{v:,.2f}", f"{v / p:.1f}x" if p else "new"] for d, t, s, c, p, v in found]
    return dg.Output(
        found,
        metadata={
            "anomalies": len(found),
            "spikes": dg.MetadataValue.md(
                markdown_table(
                    ["day", "tenant", "service category", "currency", "day before", "day", "ratio"],
                    rows[-50:],
                    empty="_none_",
                )
            ),
        },
    )


def _values(values: list[str], most: int = 10) -> str:
    return ", ".join(values[:most]) + (f" and {len(values) - most} more" if len(values) > most else "") or "none"


def _scope_text(budget: dict) -> str:
    return ", ".join(f"{k} {budget[k]}" for k in SCOPE_KEYS if budget.get(k)) or "all cost"


def unmatched_finding(s, budgets_file: str | None, runbook: str) -> Finding:
    """An error: a budget whose scope selects no cost in its currency is not judged, and says why."""
    miss = s.unmatched
    scope = _scope_text(s.budget)
    period = f"from {miss['since']} to {miss['until']}"
    if miss["scope_currencies"]:
        observed = (f"{scope} selects only {_values(miss['scope_currencies'])} cost {period}; the budget counts "
                    f"{s.budget['currency']}")  # fmt: skip
    else:
        holds = "; ".join(f"{k}: {_values(v)}" for k, v in miss["period_holds"].items())
        observed = f"{scope} selects no cost {period}; the period holds {holds}"
    return Finding("error", s.budget["name"], "scope-selects-cost", observed,
                   f"cost in {s.budget['currency']} for its scope, never an implicit 0", budgets_file,
                   s.budget["owner"], runbook, {"budget": s.budget["name"], "month": s.month, **miss})  # fmt: skip


def stale_account_finding(a, config) -> Finding:
    """A warning: a billing account's cost stopped while its kind stays fresh. An account closed
    mid-month is legitimate, but every budget its scope feeds lacks its cost since, unannounced."""
    gate = "cost_budgets"
    kind = config.evidence[a.kind]
    feeds = (f"its cost since is missing from {', '.join(a.budgets)}" if a.budgets
             else "no budget's scope selects its cost")  # fmt: skip
    return Finding("warning", a.name, "account-max-age",
                   f"last charge day {a.last_day} ({format_duration(a.age)} old) in {a.month}, while {a.kind} "
                   f"as a whole is current: {feeds}",
                   f"{kind.max_age_text} ({format_duration(kind.max_age)}), the max_age of {a.kind}, for every "
                   "billing account with cost this month (unless it was closed)", a.newest,
                   config.owner_for(gate, a.kind), config.runbook_for(gate),
                   {"kind": a.kind, "provider": a.provider, "billing_account": a.account, "month": a.month,
                    "last_charge_day": a.last_day.isoformat(), "age_seconds": int(a.age.total_seconds()),
                    "max_age": kind.max_age_text, "newest": a.newest, "budgets": a.budgets})  # fmt: skip


def _stale_names(accounts) -> str:
    return "; ".join(f"{a.name}, last charged {a.last_day}" for a in accounts)


def stale_budget_finding(s, config) -> Finding:
    """A warning: a budget whose scope selects only stale accounts' cost this month is judged on it."""
    ages = ", ".join(sorted({f"{config.evidence[a.kind].max_age_text} for {a.kind}" for a in s.stale}))
    return Finding("warning", s.budget["name"], "current-cost",
                   f"actual {s.actual:,.2f} and forecast {s.forecast:,.2f} {s.budget['currency']} ({s.month}) are "
                   f"built only on cost of {_stale_names(s.stale)}: nothing since is counted",
                   f"cost of its scope no older than its kind's max_age ({ages})", s.stale[0].newest,
                   s.budget["owner"], config.runbook_for("cost_budgets"),
                   {"budget": s.budget["name"], "month": s.month, "actual": s.actual, "forecast": s.forecast,
                    "stale_accounts": [a.account for a in s.stale],
                    "last_charge_days": [a.last_day.isoformat() for a in s.stale]})  # fmt: skip


def budget_gate(batch, config, at, budget_status: dict):
    gate = "cost_budgets"
    runbook = config.runbook_for(gate)
    found = cost_kinds_configured(config)
    if not budget_status["configured"]:
        rejected = batch.rejections_of("cost_budgets")
        observed = f"rejected: {rejected[0].field}: {rejected[0].reason}" if rejected else "no CostBudgets file"
        found.append(Finding("warning", "cost budgets", "budgets-present", observed, "one readable CostBudgets",
                             rejected[0].uri if rejected else config.paths_of("cost_budgets"),
                             config.owner_for(gate, "cost_budgets"), runbook, {"kind": "cost_budgets"}))  # fmt: skip
    found += policy_file_findings(batch, config)
    budgets_file = min((f.uri for f in batch.files_of("cost_budgets")), default=None)
    for r in budget_status.get("superseded", []):  # counted once, never silently: named with what counts
        kind = r["kind"]
        days = f"{r['first_day']}..{r['last_day']}, {r['days']} day(s)"
        billed = float(r["billed_not_counted"])
        if r.get("rule") == "one-source-per-account":  # a CUR 2.0 export beside a FOCUS export of the account
            observed = (f"{r['billing_period']} ({days}, billed {billed:,.2f}) of {r['provider']} billing account "
                        f"{r['billing_account']} is also in the FOCUS export {r['counted']}, which counts instead; "
                        f"not counted from {r['superseded']}")  # fmt: skip
            found.append(Finding("warning", r["superseded"], r["rule"], observed,
                                 f"one cost source per billing account and charge day ({r['decided_by']})",
                                 r["superseded"], config.owner_for(gate, kind), runbook, r))  # fmt: skip
            continue
        if r.get("counted_too"):  # overlapping, not provably re-delivered: both count, and it is said
            why = ("both end on the same charge day: nothing says which is newer" if r["counted_too"] == "tie"
                   else f"{r['counted']} lacks some of its line items on those days (another export's scope?)")  # fmt: skip
            observed = (f"{r['billing_period']} ({days}, billed {billed:,.2f}) overlaps {r['counted']}; "
                        f"both are counted ({why})")  # fmt: skip
        else:
            observed = (f"{r['billing_period']} ({days}, billed {billed:,.2f}) re-delivered by {r['counted']}, "
                        f"which counts instead ({r['decided_by']})")  # fmt: skip
        found.append(Finding("warning", r["superseded"], "newest-delivery-counts", observed,
                             "one delivery of an export per billing period and charge day", r["superseded"],
                             config.owner_for(gate, kind), runbook, r))  # fmt: skip
    month = f"{at:%Y-%m}"
    for c in budget_status.get("corrections", []):  # counted in the month that invoices them, and said so
        if c["billing_period"] != month:
            continue
        found.append(Finding("warning", c["file"], "corrections-invoiced",
                             f"{c['rows']} line item(s) of earlier charge days ({c['first_day']}..{c['last_day']}), "
                             f"billed {float(c['billed']):,.2f}, effective {float(c['effective']):,.2f}, are "
                             f"corrections invoiced in the {month} billing period: counted in {month}'s budgets on "
                             f"{month}-01, not in the month they correct",
                             "corrections counted in the billing period that invoices them (FOCUS ChargeClass)",
                             c["file"], config.owner_for(gate, "cost_exports"), runbook, c))  # fmt: skip
    found += [stale_account_finding(a, config) for a in budget_status.get("stale_accounts", [])]
    for s in budget_status["states"]:
        if s.unmatched is not None:
            found.append(unmatched_finding(s, budgets_file, runbook))
        if s.stale_only:  # judged, but on stale cost only
            found.append(stale_budget_finding(s, config))
        if s.uncounted:  # judged, but on part of its scope's cost
            found.append(Finding("warning", s.budget["name"], "scope-one-currency",
                                 f"{_scope_text(s.budget)} also has {_values(s.uncounted)} cost in {s.month}, not counted",
                                 f"cost in {s.budget['currency']} only", budgets_file, s.budget["owner"], runbook,
                                 {"budget": s.budget["name"], "month": s.month, "uncounted": s.uncounted}))  # fmt: skip
        for basis, threshold in s.crossed:
            value = s.actual if basis == "actual" else s.forecast
            what = basis if basis == "actual" else f"forecast ({s.forecast_label})"
            found.append(
                Finding(
                    "warning", s.budget["name"], f"{basis}>={threshold:.0%}",
                    f"{what} {value:,.2f} {s.budget['currency']} = {value / s.amount:.0%} of the {s.month} budget",
                    f"< {threshold:.0%} of {s.amount:,.0f} {s.budget['currency']}", budgets_file, s.budget["owner"],
                    runbook,
                    {"budget": s.budget["name"], "month": s.month, "actual": s.actual, "forecast": s.forecast,
                     "forecast_method": s.forecast_label, "amount": s.amount, "days_elapsed": s.days_elapsed,
                     "days_in_month": s.days_in_month},
                )
            )  # fmt: skip
    crossed = sum(1 for s in budget_status["states"] if s.crossed)
    unmatched = sum(1 for s in budget_status["states"] if s.unmatched is not None)
    summary = f"{crossed} of {len(budget_status['states'])} budget(s) over a threshold (actual or forecast)"
    return found, summary + (f"; {unmatched} select(s) no cost in their currency" if unmatched else "")


cost_budgets_gate = gate_asset(
    "cost_budgets", group=GROUP, owners=OWNERS, evaluate=budget_gate, ins={"budget_status": dg.AssetIn("budget_status")}
)

budget_job = dg.define_asset_job(
    "budget_job",
    selection=dg.AssetSelection.assets(budget_status).upstream(),
    executor_def=dg.in_process_executor,
    description="Load cost exports, attribute, evaluate the budgets.",
)


def record_crossings(conn, root: str, states, recorded_at) -> list[tuple]:
    """Each (budget, month, basis, threshold) crossing once in the warehouse's history (and so the
    audit trail); returns the ones not recorded before. What the sensor announces is decided by its
    cursor, never by this table: an evaluation whose cursor is not committed (a preview) records
    here but leaves the announcement to the next tick."""
    new = []
    with transaction(conn):
        for s in states:
            for basis, threshold in s.crossed:
                value = s.actual if basis == "actual" else s.forecast
                row = [
                    root,
                    s.budget["name"],
                    s.month,
                    basis,
                    threshold,
                    value,
                    s.amount,
                    recorded_at.replace(tzinfo=None),
                ]
                if insert_new_row(conn, "budget_alerts", row):
                    new.append((s, basis, threshold, value))
    return new


COST_KINDS = ("cost_exports", "cur_exports")  # the kinds whose rows the budgets count
NO_DATA_EVENT = "phase8.budget.no_data"


def cost_evidence_problems(batch: EvidenceBatch, config, at) -> list[Finding]:
    """Why the budgets cannot be judged on all of their cost, on the evidence as it is now: no cost kind
    configured, a cost kind or the budgets with no readable file, a newest file too old or dated in the
    future (the errors ``kind_freshness`` gives every kind), and each rejected file of these kinds (its
    spend is not counted): the errors every gate gets of its own kinds; and more than one budgets file
    (only one is read). Without this, missing cost reads as 0 spent: under budget."""
    from phase8_assets.domains.evidence_quality import own_evidence_findings

    found = cost_kinds_configured(config) + policy_file_findings(batch, config)
    return found + own_evidence_findings("cost_budgets", (*COST_KINDS, "cost_budgets"), batch, config, at, [])


def cost_kinds_configured(config) -> list[Finding]:
    """An error when the config names no cost kind: no cost would read as 0 spent, under every budget."""
    if any(kind in config.evidence for kind in COST_KINDS):
        return []
    gate = "cost_budgets"
    return [Finding("error", "cost evidence", "evidence-configured", "no cost_exports or cur_exports kind",
                    "a cost evidence kind the budgets count", config.source, config.owner_for(gate),
                    config.runbook_for(gate), {"kinds": list(COST_KINDS)})]  # fmt: skip


def _crossing_key(root: str, s, basis: str, threshold: float) -> str:
    """One threshold crossing, as the cursor remembers it was announced."""
    return f"{root}|{s.budget['name']}|{s.month}|{basis}|{threshold:g}"


def _announced(cursor: dict, root: str, states, crossed: list[tuple]) -> list[str]:
    """The crossings the cursor remembers as announced: those of the months judged now (a month over
    is forgotten, so the cursor stays small) plus the ones crossed now. With no budget judged (cost
    not loaded, no budgets) it forgets nothing: cost coming back is not a new crossing."""
    before = set(cursor.get("announced", []))
    if not states:
        return sorted(before)
    months = tuple(f"{root}|{s.budget['name']}|{s.month}|" for s in states)
    kept = {k for k in before if k.startswith(months)}
    return sorted(kept | {_crossing_key(root, s, basis, threshold) for s, basis, threshold, _ in crossed})


def _problem_key(f: Finding) -> str:
    """What a "no data" alert is about, stable from tick to tick (an age in ``observed`` is not)."""
    return f"{f.subject}|{f.rule}|{f.evidence}"


def _load_request(context, config, cursor: dict, versions: list[str], missing: list[str], uris: dict):
    """(a run request loading the cost deliveries ``missing`` from the warehouse, or None; a finding
    when the run requested for them has ended and they are still not loaded).

    The run key names the deliveries and a request counter kept in the cursor: a retried tick asks
    for the same run, a root back at deliveries it held before gets a new run (the instance
    remembers every run key a sensor ever used)."""
    load = hashlib.sha256(json.dumps([config.root_uris, versions]).encode()).hexdigest()[:16]
    asked = cursor.get("load") or {}
    if asked.get("versions") != load:
        requests = cursor.get("requests", 0) + 1
        run_key = f"cost-{load}-{requests}"
        cursor.update(requests=requests, load={"versions": load, "run_key": run_key})
        tags = {"phase8/cost_deliveries": str(len(missing))}
        return dg.RunRequest(run_key=run_key, tags=tags), None
    runs = context.instance.get_runs(
        dg.RunsFilter(job_name=budget_job.name, tags={"dagster/run_key": asked["run_key"]})
    )
    ended = next((r for r in runs if r.is_finished), None)
    if ended is None:
        return None, None
    gate = "cost_budgets"
    return None, Finding("error", "cost deliveries", "loaded",
                         f"{len(missing)} delivery(ies) not in the warehouse after run {ended.run_id} "
                         f"({ended.status.value})", "every cost delivery in the roots loaded", uris[missing[0]],
                         config.owner_for(gate, "cost_exports"), config.runbook_for(gate),
                         {"run_id": ended.run_id, "deliveries": [uris[v] for v in missing]})  # fmt: skip


def _no_data_alert(f: Finding) -> dg.AssetObservation:
    attrs = {"phase8.budget.subject": f.subject, "phase8.budget.rule": f.rule, "phase8.evidence.file": f.evidence or "",
             "phase8.budget.owner": f.owner}  # fmt: skip
    telemetry.emit_event(NO_DATA_EVENT, attrs, body=f"budgets not judged on all cost: {f.subject}: {f.observed}")
    return dg.AssetObservation(
        asset_key="budget_status",
        metadata={"alert": f"no data: {f.subject} {f.rule}", "observed": str(f.observed), "expected": str(f.limit),
                  "evidence": f.evidence or "—", "owner": f.owner, "runbook": f.runbook or "—"},
    )  # fmt: skip


@dg.sensor(
    job=budget_job,
    minimum_interval_seconds=3600,
    description="Hourly: a budget threshold crossed (actual or forecast) is recorded and announced once; cost "
    "evidence that is missing, stale, rejected or not loaded is announced as a no-data alert, never read as 0.",
)
def budget_alerts(context: dg.SensorEvaluationContext, settings: Phase8Settings, warehouse: Warehouse):
    """Raise a budget alert when spend or its month-end forecast crosses a threshold — once.

    FinOps asks for warnings before month end, not an invoice surprise; alerting on every tick
    would train people to ignore them. Each crossing (budget, month, basis, threshold) is announced
    once — an OpenTelemetry event and an asset observation on budget_status, visible in the UI — and
    recorded once in budget_alerts and the audit trail.

    Missing cost is not 0 spent: cost evidence (or budgets) missing, too old, rejected, a budget
    whose scope selects no cost, deliveries a load run left out are announced once each as a
    ``phase8.budget.no_data`` alert (the cursor holds the open ones), and every tick says so. Cost
    deliveries in the roots but not in the warehouse yet start one ``budget_job`` run; budgets are
    judged once the warehouse holds them, never on an older state.

    What was announced lives in the cursor only, so an evaluation whose cursor Dagster does not
    commit (a preview) changes nothing the next tick raises."""
    from phase8_assets.evidence.collect import collect

    config = settings.load()
    at = settings.evaluation_time(config)
    if "cost_budgets" not in config.evidence:
        return dg.SkipReason("no cost_budgets evidence kind in the config: no budget to alert on")
    cursor = json.loads(context.cursor) if context.cursor else {}
    batch = _cost_batch(config, cursor)
    batch.set_aside_future(at, config.clock_skew)
    problems = cost_evidence_problems(batch, config, at)
    budgets = _policy(batch, "cost_budgets")
    root = config.root_uris[0]
    versions = cost_versions(batch)
    uris = {version: uri for version, (_, uri) in delivery_kinds(batch).items()}
    request, states, new, stale = None, [], [], []
    with warehouse.get_connection() as conn:
        loaded = {v for (v,) in conn.execute(
            "SELECT DISTINCT sha256 FROM cost_files WHERE root IN (SELECT unnest(?))", [batch.roots]
        ).fetchall()}  # fmt: skip
        missing = [v for v in versions if v not in loaded]
        if missing:
            request, unloaded = _load_request(context, config, cursor, versions, missing, uris)
            problems += [unloaded] if unloaded else []
        else:
            cursor.pop("load", None)  # loaded: the next change of deliveries asks for a new run
        if not missing and budgets is not None:
            states = budget_states(conn, root, budgets, at)
            stale = judge_stale_accounts(  # attributed as cost_attribution does: by the CostAllocation rules
                conn, batch, config, at, states, lambda: allocation_policy(collect(config, kinds={"cost_allocation"}))
            )
            budgets_file = min(f.uri for f in batch.files_of("cost_budgets"))
            problems += [unmatched_finding(s, budgets_file, config.runbook_for("cost_budgets"))
                         for s in states if s.unmatched is not None]  # fmt: skip
            recorded = record_crossings(conn, root, states, now_utc())
            audited = audit.record(conn, [
                AuditEvent("budget.crossed", f"budget {s.budget['name']} {s.month}", f"{basis}>={threshold:.0%}",
                           Actor("sensor budget_alerts", "dagster-sensor"), now_utc(),
                           f"{basis} {value:,.2f} {s.budget['currency']} = {value / s.amount:.0%} of {s.amount:,.0f}",
                           details={"root": root, "owner": s.budget["owner"]})
                for s, basis, threshold, value in recorded
            ], Path(warehouse.database).parent) if recorded else []  # fmt: skip
            audit.emit(audited)
    # Announced once per crossing, as the committed cursor says: an evaluation whose cursor Dagster
    # does not commit (``dagster sensor preview``, a tick that fails) leaves the alert to the next tick.
    crossed = [(s, basis, threshold, s.actual if basis == "actual" else s.forecast)
               for s in states for basis, threshold in s.crossed]  # fmt: skip
    before = set(cursor.get("announced", []))
    new = [c for c in crossed if _crossing_key(root, *c[:3]) not in before]
    cursor["announced"] = _announced(cursor, root, states, crossed)
    announced = set(cursor.get("problems", []))
    events = [_no_data_alert(f) for f in problems if _problem_key(f) not in announced]
    cursor["problems"] = sorted({_problem_key(f) for f in problems})
    for s, basis, threshold, value in new:
        attrs = {"phase8.budget": s.budget["name"], "phase8.budget.month": s.month, "phase8.budget.basis": basis,
                 "phase8.budget.threshold": threshold, "phase8.budget.share": round(value / s.amount, 4),
                 "phase8.budget.owner": s.budget["owner"]}  # fmt: skip
        telemetry.emit_event(
            ALERT_EVENT, attrs, body=f"{s.budget['name']}: {basis} at {value / s.amount:.0%} of budget"
        )
        events.append(
            dg.AssetObservation(
                asset_key="budget_status",
                metadata={
                    "alert": f"{s.budget['name']} {basis} >= {threshold:.0%}",
                    "share": round(value / s.amount, 4),
                    "month": s.month,
                    "owner": s.budget["owner"],
                },  # fmt: skip
            )
        )
    telemetry.flush()
    cursor_text = json.dumps(cursor, sort_keys=True)
    if request is not None:
        return dg.SensorResult(run_requests=[request], asset_events=events, cursor=cursor_text)
    return dg.SensorResult(skip_reason=_tick_text(problems, missing, states, new, stale, config), asset_events=events,
                           cursor=cursor_text)  # fmt: skip


SENSOR_KINDS = (*COST_KINDS, "cost_budgets")


def _objects(config, files: list[dict]) -> list[list] | None:
    """Every object the sensor reads, as it is now: (kind, URI, version, size) of each file the
    kinds' paths match and of each data file the CUR manifests in ``files`` (cached reads) list; the
    version is the S3 ETag (a local file's mtime and size). Listings only, no object is read. None
    when something cannot be listed or has no version: then everything is read again."""
    from phase8_assets.evidence.collect import listing
    from phase8_assets.evidence.roots import open_root

    try:
        listed = listing(config, kinds=set(SENSOR_KINDS))
        if listed is None:
            return None
        seen = [list(entry) for entry in listed]
        folders: dict[str, set[str]] = {}
        for f in files:
            for uri in f["records"][0]["data_files"] if f["kind"] == "cur_exports" else ():
                parent, _, file_name = uri.rpartition("/")
                folders.setdefault(parent, set()).add(file_name)
        for parent, names in sorted(folders.items()):
            refs = {r.rel: r for r in open_root(parent).glob("*")}
            if not names <= set(refs):
                return None  # a data file gone: read again, and the reader names it
            seen += [["data", refs[n].uri, refs[n].version, refs[n].size] for n in sorted(names)]
    except (RootError, OSError):
        return None
    return sorted(seen) if all(version for _, _, version, _ in seen) else None


def _digest(objects: list[list]) -> str:
    return hashlib.sha256(json.dumps(objects).encode()).hexdigest()


def _file_doc(f) -> dict:
    return {"root": f.root, "kind": f.kind, "uri": f.uri, "sha256": f.sha256, "size": f.size,
            "observed_at": f.observed_at.isoformat() if f.observed_at else None,
            "timestamp_field": f.timestamp_field, "summary": f.summary, "warnings": f.warnings,
            "records": f.records}  # fmt: skip


def _cost_batch(config, cursor: dict) -> EvidenceBatch:
    """The cost evidence and budgets as they are now, read only when an object changed.

    Every tick read every file (a CUR delivery's data files downloaded whole) though nothing had
    changed. The cursor keeps what the last full read found (``reads``) and the versions (S3 ETags) of
    every object it read, manifests' data files included; a tick whose listings show the same objects,
    unchanged, reuses it. Anything new, changed, gone or unlistable reads everything again. Cached only
    when the read was clean (no rejection, duplicate or path matching nothing: those are re-read, so
    their findings stay current) and no object changed while it was read."""
    from datetime import datetime

    from phase8_assets.evidence.collect import EvidenceFile, collect

    cached = cursor.get("reads")
    if cached:
        now = _objects(config, cached["files"])
        if now is not None and _digest(now) == cached["objects"]:
            files = [EvidenceFile(**{**d, "observed_at": datetime.fromisoformat(d["observed_at"]) if d["observed_at"] else None})
                     for d in cached["files"]]  # fmt: skip
            present = [(f.root, f.kind, f.uri, f.sha256) for f in files]
            return EvidenceBatch(roots=config.root_uris, files=files, present=present)
    cursor.pop("reads", None)
    batch = collect(config, kinds=set(SENSOR_KINDS))
    if batch.rejections or batch.unmatched or batch.duplicates or batch.collisions:
        return batch
    if any(f.identity is not None or f.parts for f in batch.files):
        return batch
    docs = [_file_doc(f) for f in batch.files]
    try:
        if json.loads(json.dumps(docs)) != docs:  # kept only when it reads back the same
            return batch
    except (TypeError, ValueError):
        return batch
    after = _objects(config, docs)
    if after is None or [o for o in after if o[0] != "data"] != [list(e) for e in sorted(batch.listed)]:
        return batch  # changed while it was read (collect's listing is from before it read): read again next tick
    cursor["reads"] = {"objects": _digest(after), "files": docs}
    return batch


def _tick_text(problems: list[Finding], missing: list[str], states, new, stale=(), config=None) -> str:
    """What a tick without a run request found, the problems first: never only "no crossing" when
    budgets could not be judged, nor when a billing account's cost they count stopped (``stale``)."""
    parts = []
    if problems:
        shown = "; ".join(f"{f.evidence or f.subject}: {f.observed} (expected {f.limit})" for f in problems[:3])
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        parts.append(f"NO DATA: budgets not judged on all their cost: {shown}{more}")
    only = {s.budget["name"] for s in states if s.stale_only}
    for a in stale:  # judged, but on cost that stopped: never read as judged on current cost
        feeds = ", ".join(f"{n} (all of its cost)" if n in only else n for n in a.budgets) or "no budget"
        parts.append(f"STALE COST: {a.name} last charged {a.last_day}, older than the "
                     f"{config.evidence[a.kind].max_age_text} max_age of {a.kind}: its cost since is missing from "
                     f"{feeds}")  # fmt: skip
    if missing:
        parts.append(f"{len(missing)} cost delivery(ies) not in the warehouse yet: budgets not judged until loaded")
    elif states:
        empty = [f"{s.budget['name']} ({s.month})" for s in states if s.unmatched is None and not s.days_elapsed]
        judged = sum(1 for s in states if s.unmatched is None and s.days_elapsed)
        parts.append(f"{len(new)} new threshold crossing(s) announced" if new else
                     f"no new threshold crossing among {judged} judged budget(s)")  # fmt: skip
        if empty:
            parts.append(f"no cost in its currency yet this month, not judged: {', '.join(empty)}")
    return "; ".join(parts)


@dg.asset(
    group_name=GROUP,
    owners=OWNERS,
    kinds={"duckdb", "html"},
    pool=DUCKDB_POOL,
    partitions_def=WEEKS,
    deps=[cost_attribution],
    description="Weekly FinOps dashboard (offline HTML, plotly inline): spend by tenant and service over time, budget "
    "burn-down with its forecast, unallocated share, top movers; Markdown summary in metadata.",
)
def finops_dashboard(context: dg.AssetExecutionContext, settings: Phase8Settings, warehouse: Warehouse):
    from phase8_assets.domains.finops_report import dashboard
    from phase8_assets.evidence.collect import collect
    from phase8_assets.shared.reports import render_markdown, write_html

    config = settings.load()
    budgets = _policy(collect(config, kinds={"cost_budgets"}), "cost_budgets")
    window = WEEKS.time_window_for_partition_key(context.partition_key)
    start, end = window.start.date(), window.end.date()
    with warehouse.get_connection() as conn:
        sections = dashboard(conn, config.root_uris[0], start, end, budgets)
    title = f"FinOps: week of {start}"
    path = write_html(warehouse.reports_dir / "finops" / f"{start}.html", title, sections, f"{start} to {end} (UTC)")
    markdown = render_markdown(title, [s for s in sections if s.figure is None])
    return dg.MaterializeResult(
        metadata={"report": dg.MetadataValue.path(str(path)), "summary": dg.MetadataValue.md(markdown)}
    )


finops_dashboard_job = dg.define_asset_job(
    "finops_dashboard_job",
    # The cost exports as they are now loaded first: a dashboard of whatever the last gate run left
    # would say "no cost data" for a week the exports cover.
    selection=dg.AssetSelection.assets(finops_dashboard)
    | dg.AssetSelection.assets(cost_attribution).upstream() - dg.AssetSelection.checks_for_assets(cost_line_items),
    executor_def=dg.in_process_executor,
    description="Load the cost exports, then write the HTML FinOps dashboard of one week (spend, forecast and "
    "budgets per tenant).",
)
finops_dashboard_schedule = dg.build_schedule_from_partitioned_job(
    finops_dashboard_job,
    hour_of_day=7,
    name="finops_dashboard_schedule",
    description="Monday 07:00 UTC: the FinOps dashboard of the last complete week, for tenants' owners and finance.",
)

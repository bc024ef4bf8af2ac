"""FinOps: cost attribution per tenant and team, budgets with forecasts, day-over-day anomalies.

Attribution runs in DuckDB over ``cost_line_items`` (never row by row in Python):

1. Line items are first summed per day, currency, service category, sub-account and tag set (all
   that the steps below read), so everything after scales with distinct combinations, not rows.
2. Tags are read case- and whitespace-insensitively, ``user:`` prefixes (``user_`` in CUR 2.0)
   dropped (``" org"``, ``User:Tenant``, ``user_tenant`` and ``tenant`` are the same key); the
   first of ``tenant_keys`` present names the tenant, ``tenant_aliases`` map tag values to tenant ids.
3. A summed line item matching a ``shared`` rule (service category, sub-account or tag) is split
   across tenants: ``proportional`` to their direct effective cost of the same day and currency,
   ``even`` over the config's tenants, or by ``fixed`` weights. Each share is exact to 12 decimals
   and the rounding remainder goes to the largest share, so the parts add up to the whole.
4. Everything else without a tenant is ``__unallocated__`` — kept visible, never dropped. A shared
   cost on a day without any direct cost has nothing to be proportional to: unallocated too.

Invariant (tested with hypothesis): per day and currency, the attributed plus unallocated billed
and effective totals equal the line items' totals exactly.

Re-deliveries (``superseded``) count once: exports re-deliver a billing period (AWS Data Exports'
"create new export file" keeps each execution in its own folder; AWS, Azure and GCP write
month-to-date snapshots under new file names), and summing them would count a day several times.

- CUR 2.0: the executions of one export (``<prefix>/<export>``, the part before ``/metadata/``) and
  one billing period are one period's deliveries; the newest counts whole, as AWS says.
- FOCUS: a delivery is a folder (AWS writes each execution, Azure each run, to its own folder; the
  numbered files of one folder are the parts of one delivery and are summed). Deliveries of one
  provider, billing account and billing period whose files share a line item (same charge day,
  sub-account, service, resource and charge category; rows without a resource id do not count as
  shared) are deliveries of one export. For each charge day an older delivery's rows are left out
  only when the newest delivery holding that day provably re-delivers them: it ends later, and it
  holds every line item the older one has that day. Otherwise (a tie: nothing in the data says which
  is newer; a narrower export that lacks some line items) both count, and the overlap is named.
  Deliveries sharing no line item (another export, a separate experiment) are summed.
- CUR 2.0 newest: the later last charge day in the period; a tie goes to the greater URI, and the
  record says it was a tie.
- FOCUS beside CUR 2.0 (AWS Data Exports delivers both of one payer account): on a charge day a
  counted FOCUS file and a counted CUR execution both hold cost of one provider and billing account,
  FOCUS counts and the CUR rows of that day are left out (by kind, never by file order; days only CUR
  holds still count). docs/ops/cost-evidence.md says why FOCUS.

Each superseded part is returned with the delivery that counts instead, its days and billed cost,
so the ``cost_budgets`` gate warns about it: cost is never dropped silently.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb

from phase8_assets.warehouse import transaction

UNALLOCATED = "__unallocated__"


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _tag_key(expr: str) -> str:
    """SQL normalising a tag key as ``cost_policy.normalise_key`` does: trimmed, lower-case, no ``user:``/``user_``."""
    return f"lower(trim(regexp_replace({expr}, '^\\s*[uU][sS][eE][rR][:_]', '')))"


def _key_filter(keys: list[str]) -> str:
    if not keys:
        return "NULL"
    listed = ", ".join(_quote(k) for k in keys)
    # the first configured key present wins: order the matches by the key's position in the list
    return (
        "lower(trim(list_sort(list_transform(list_filter(map_entries(m), lambda e: "
        f"{_tag_key('e.key')} IN ({listed})), "
        f"lambda e: {{'pos': list_position([{listed}], {_tag_key('e.key')}), "
        "'value': e.value}))[1].value))"
    )


def _shared_case(rules: list[dict]) -> str:
    if not rules:
        return "NULL"
    parts = []
    for rule in rules:
        conds = []
        if rule.get("service_category"):
            conds.append(f"service_category = {_quote(rule['service_category'])}")
        if rule.get("sub_account"):
            conds.append(f"sub_account = {_quote(rule['sub_account'])}")
        if rule.get("tag"):
            key, value = rule["tag"]["key"], rule["tag"]["value"].strip().lower()
            conds.append(
                f"list_contains(list_transform(map_entries(m), lambda e: {_tag_key('e.key')} || '=' || lower(trim(e.value))), "
                f"{_quote(key + '=' + value)})"
            )
        parts.append(f"WHEN {' AND '.join(conds)} THEN {_quote(rule['name'])}")
    return f"CASE {' '.join(parts)} END"


def _case(column: str, mapping: dict[str, str], otherwise: str) -> str:
    """SQL mapping ``column``'s values through ``mapping`` (text literals), else ``otherwise``."""
    if not mapping:
        return otherwise
    whens = " ".join(f"WHEN {column} = {_quote(k)} THEN {_quote(v)}" for k, v in mapping.items())
    return f"CASE {whens} ELSE {otherwise} END"


def _excluded_sql(excluded: list[tuple]) -> str:
    """A condition on ``cost_line_items`` rows: not a (version, billing period, provider, billing
    account, charge day) another delivery supersedes."""
    if not excluded:
        return "true"
    values = ", ".join(
        f"({_quote(v)}, {_quote(p)}, {_quote(pr) if pr is not None else 'NULL'}, "
        f"{_quote(a) if a is not None else 'NULL'}, DATE '{d.isoformat()}')"
        for v, p, pr, a, d in excluded
    )
    return (
        f"NOT EXISTS (SELECT 1 FROM (VALUES {values}) x(v, p, pr, a, d) WHERE x.v = c.sha256 AND "
        "x.p = c.billing_period AND x.pr IS NOT DISTINCT FROM c.provider AND "
        "x.a IS NOT DISTINCT FROM c.billing_account AND x.d = c.charge_day)"
    )


def _accounts_sql(accounts: tuple[list[tuple], bool] | None) -> str:
    """A condition on ``cost_line_items`` rows: of the (provider, billing account)s listed, or, with
    ``True``, of any other."""
    if accounts is None:
        return "true"
    listed, others = accounts
    values = ", ".join(
        f"({_quote(p) if p is not None else 'NULL'}, {_quote(a) if a is not None else 'NULL'})" for p, a in listed
    )
    found = (
        f"EXISTS (SELECT 1 FROM (VALUES {values}) x(p, a) WHERE x.p IS NOT DISTINCT FROM c.provider "
        "AND x.a IS NOT DISTINCT FROM c.billing_account)"
        if listed
        else "false"
    )
    return f"NOT {found}" if others else found


# The day a line item counts on: its charge day, or, for a charge of an earlier period that its billing
# period invoices (a FOCUS ``ChargeClass: Correction``: a refund or re-rating of a previously invoiced
# billing period), the first day of that billing period. FOCUS totals a billing period (its invoice)
# over BillingPeriodStart, corrections included, and never reopens the corrected period: counted on
# its original day, a refund of October invoiced in November silently lowered October and left
# November's budget without it. ``corrections`` names them.
INVOICED_DAY = (
    "CASE WHEN charge_day < CAST(billing_period || '-01' AS DATE) THEN CAST(billing_period || '-01' AS DATE) "
    "ELSE charge_day END"
)


def corrections(
    conn: duckdb.DuckDBPyConnection, roots: list[str], uris: dict[str, str], excluded: list[tuple] = ()
) -> list[dict]:
    """The counted line items charged before the billing period that invoices them (``INVOICED_DAY``),
    per delivery and billing period: ``uris`` maps each counted version to its file (or manifest) URI."""
    if not uris:
        return []
    roots_sql = ", ".join(_quote(r) for r in roots) or "NULL"
    versions_sql = ", ".join(_quote(v) for v in uris)
    rows = conn.execute(
        f"""SELECT sha256, billing_period, min(charge_day), max(charge_day), count(*), sum(billed)::VARCHAR,
                   sum(effective)::VARCHAR
            FROM cost_line_items c WHERE root IN ({roots_sql}) AND sha256 IN ({versions_sql})
              AND {_excluded_sql(list(excluded))} AND charge_day < CAST(billing_period || '-01' AS DATE)
            GROUP BY 1, 2"""
    ).fetchall()
    return sorted(
        ({"file": uris[v], "billing_period": period, "first_day": first.isoformat(), "last_day": last.isoformat(),
          "rows": n, "billed": billed, "effective": effective}
         for v, period, first, last, n, billed, effective in rows),
        key=lambda r: (r["billing_period"], r["file"]),
    )  # fmt: skip


def attribution_sql(
    roots: list[str],
    policy: dict,
    tenants: list[str],
    *,
    versions: list[str],
    excluded: list[tuple] = (),
    accounts: tuple[list[tuple], bool] | None = None,
) -> str:
    """SELECT charge_day, currency, tenant, team, service_category, source, billed, effective, from
    the deliveries in the roots now (``versions``: FOCUS files' sha256, CUR executions' ids), less the
    days another delivery supersedes (``excluded``, from ``superseded``); with ``accounts`` (a list of
    (provider, billing account), and whether to take the others instead), of those accounts' cost only."""
    alias_case = _case("tenant_tag", policy.get("tenant_aliases") or {}, "tenant_tag")
    rules = {r["name"]: r for r in policy.get("shared") or []}
    roots_sql = ", ".join(_quote(r) for r in roots) or "NULL"
    versions_sql = ", ".join(_quote(v) for v in versions) or "NULL"
    even = ", ".join(f"({_quote(t)}, 1.0)" for t in tenants) or "(NULL, 0.0)"
    fixed = (
        ", ".join(
            f"({_quote(name)}, {_quote(t)}, {float(w)!r})"
            for name, r in rules.items()
            if r["split"] == "fixed"
            for t, w in r["weights"].items()
        )
        or "(NULL, NULL, 0.0)"
    )
    split_of = _case("shared_rule", {name: r["split"] for name, r in rules.items()}, "NULL")
    return f"""
    WITH grouped AS (  -- everything below depends on these columns only: sum the line items first
        SELECT {INVOICED_DAY} AS charge_day, currency, service_category, sub_account, tags, sum(billed) AS billed,
               sum(effective) AS effective
        FROM cost_line_items c WHERE root IN ({roots_sql}) AND sha256 IN ({versions_sql})
            AND {_excluded_sql(list(excluded))} AND {_accounts_sql(accounts)} GROUP BY ALL
    ), tag_sets AS (  -- tags repeat: parse and normalise each distinct tag set once
        SELECT tags, CASE WHEN tags IS NULL OR trim(tags) IN ('', '{{}}') THEN MAP {{}}::MAP(VARCHAR, VARCHAR)
                          ELSE coalesce(TRY_CAST(json(tags) AS MAP(VARCHAR, VARCHAR)), MAP {{}}::MAP(VARCHAR, VARCHAR)) END AS m
        FROM (SELECT DISTINCT tags FROM grouped)
    ), tag_facts AS (
        SELECT tags, m, {_key_filter(policy["tenant_keys"])} AS tenant_tag, {_key_filter(policy.get("team_keys") or [])} AS team
        FROM tag_sets
    ), tagged AS (
        SELECT g.charge_day, g.currency, g.service_category, g.sub_account, g.billed, g.effective, f.m, f.tenant_tag, f.team
        FROM grouped g LEFT JOIN tag_facts f ON g.tags IS NOT DISTINCT FROM f.tags
    ), items AS (
        SELECT *, {alias_case} AS tenant, {_shared_case(list(rules.values()))} AS shared_rule FROM tagged
    ), direct AS (
        SELECT charge_day, currency, tenant, team, service_category, 'direct' AS source, billed, effective
        FROM items WHERE shared_rule IS NULL AND tenant IS NOT NULL
    ), unallocated AS (
        SELECT charge_day, currency, '{UNALLOCATED}' AS tenant, team, service_category, 'unallocated' AS source, billed, effective
        FROM items WHERE shared_rule IS NULL AND tenant IS NULL
    ), shared AS (
        SELECT row_number() OVER () AS sid, charge_day, currency, service_category, shared_rule, {split_of} AS split,
               billed, effective
        FROM items WHERE shared_rule IS NOT NULL
    ), weights AS (
        SELECT s.sid, w.tenant, w.weight FROM shared s
        JOIN (SELECT charge_day, currency, tenant, sum(effective)::DOUBLE AS weight FROM direct GROUP BY ALL) w
          ON s.split = 'proportional' AND w.charge_day = s.charge_day AND w.currency = s.currency AND w.weight > 0
        UNION ALL
        SELECT s.sid, e.tenant, e.weight FROM shared s CROSS JOIN (VALUES {even}) e(tenant, weight)
        WHERE s.split = 'even' AND e.tenant IS NOT NULL
        UNION ALL
        SELECT s.sid, f.tenant, f.weight FROM shared s JOIN (VALUES {fixed}) f(rule, tenant, weight)
          ON s.split = 'fixed' AND f.rule = s.shared_rule AND f.weight > 0
    ), shares AS (
        SELECT s.sid, s.charge_day, s.currency, w.tenant, s.service_category, s.shared_rule, s.billed, s.effective,
               w.weight / sum(w.weight) OVER (PARTITION BY s.sid) AS frac,
               row_number() OVER (PARTITION BY s.sid ORDER BY w.weight DESC, w.tenant) AS rank
        FROM shared s JOIN weights w USING (sid)
    ), rounded AS (
        SELECT *, round(billed * frac::DECIMAL(38, 18), 12)::DECIMAL(38, 12) AS b,
                  round(effective * frac::DECIMAL(38, 18), 12)::DECIMAL(38, 12) AS e
        FROM shares
    ), exact AS (
        SELECT charge_day, currency, tenant, NULL AS team, service_category, 'shared:' || shared_rule AS source,
               b + CASE WHEN rank = 1 THEN billed - sum(b) OVER (PARTITION BY sid) ELSE 0 END AS billed,
               e + CASE WHEN rank = 1 THEN effective - sum(e) OVER (PARTITION BY sid) ELSE 0 END AS effective
        FROM rounded
    ), orphan AS (
        SELECT charge_day, currency, '{UNALLOCATED}' AS tenant, NULL AS team, service_category, 'unallocated' AS source,
               billed, effective
        FROM shared WHERE sid NOT IN (SELECT sid FROM weights)
    )
    SELECT * FROM direct UNION ALL SELECT * FROM unallocated UNION ALL SELECT * FROM exact UNION ALL SELECT * FROM orphan
    """


def attribute(
    conn: duckdb.DuckDBPyConnection,
    root: str,
    roots: list[str],
    policy: dict,
    tenants: list[str],
    *,
    versions: list[str],
    excluded: list[tuple] = (),
) -> int:
    """Recompute ``cost_attribution`` for ``root`` from the deliveries ``versions`` less the days
    ``excluded`` (replace, in one transaction); returns rows."""
    with transaction(conn):
        conn.execute("DELETE FROM cost_attribution WHERE root = ?", [root])
        conn.execute(
            f"INSERT INTO cost_attribution SELECT ?, charge_day, currency, tenant, team, service_category, source, "
            f"sum(billed), sum(effective) FROM ({attribution_sql(roots, policy, tenants, versions=versions, excluded=excluded)}) "
            "GROUP BY ALL",
            [root],
        )
    return conn.execute("SELECT count(*) FROM cost_attribution WHERE root = ?", [root]).fetchone()[0]


@dataclass
class Superseded:
    """A delivery's part another delivery of the same export re-delivers, which counts instead."""

    uri: str
    by: str
    billing_period: str
    provider: str | None
    billing_account: str | None
    days: list[date]
    billed: str
    tie: bool  # both end on the same charge day: the greater URI decided
    kind: str  # cost_exports (FOCUS) or cur_exports
    # Overlapping, but not provably a re-delivery, so counted too: "tie" (nothing says which is
    # newer) or "partial" (the newer delivery lacks some of its line items, e.g. a narrower export).
    counted_too: str | None = None
    # "newest-delivery-counts" (a re-delivery of one export) or "one-source-per-account" (a CUR 2.0
    # export's days that a FOCUS export of the same billing account holds: FOCUS counts)
    rule: str = "newest-delivery-counts"

    def as_details(self) -> dict:
        return {"kind": self.kind, "superseded": self.uri, "counted": self.by, "billing_period": self.billing_period,
                "provider": self.provider, "billing_account": self.billing_account,
                "first_day": self.days[0].isoformat(), "last_day": self.days[-1].isoformat(),
                "days": len(self.days), "billed_not_counted": self.billed,
                "decided_by": SOURCE_RULE if self.rule == "one-source-per-account" else
                              "tie: the greater URI" if self.tie else "the later last charge day",
                "counted_too": self.counted_too, "rule": self.rule}  # fmt: skip


SOURCE_RULE = "FOCUS over CUR 2.0: one source per billing account and charge day"


def _folder(uri: str) -> str:
    """The folder of a file's URI (``s3://b/x/y.csv`` -> ``s3://b/x``): one delivery's parts share it."""
    return uri.rsplit("/", 1)[0] if "/" in uri else ""


def _newest_first(members: list[str], last: dict[str, date], uri: dict[str, str]) -> list[str]:
    return sorted(members, key=lambda v: (last[v], uri[v]), reverse=True)


def superseded(
    conn: duckdb.DuckDBPyConnection, roots: list[str], focus: dict[str, str], cur: dict[str, tuple[str, str, str]]
) -> tuple[list[str], list[tuple], list[Superseded]]:
    """Which loaded deliveries count (module doc: re-deliveries). ``focus``: each FOCUS file's sha256
    and URI; ``cur``: each CUR execution's (manifest URI, export, billing period). Returns the versions
    that count (superseded CUR executions left out), the (version, billing period, provider, billing
    account, charge day) rows of FOCUS files left out, and what was superseded by what. Decided on the
    deliveries' own rows, so the same evidence gives the same answer whatever the warehouse held."""
    roots_sql = ", ".join(_quote(r) for r in roots) or "NULL"
    where = f"root IN ({roots_sql})"
    out: list[Superseded] = []
    versions = set(focus)
    # CUR 2.0: one export's executions of one period; the newest counts whole.
    per_period: dict[tuple[str, str], list[str]] = {}
    for execution, (_, export, period) in cur.items():
        per_period.setdefault((export, period), []).append(execution)
    cur_uri = {e: u for e, (u, _, _) in cur.items()}
    for (_, period), executions in sorted(per_period.items()):
        if len(executions) == 1:
            versions.add(executions[0])
            continue
        listed = ", ".join(_quote(e) for e in executions)
        facts = {
            v: (days, billed)
            for v, days, billed in conn.execute(
                f"SELECT sha256, list(DISTINCT charge_day ORDER BY charge_day), sum(billed)::VARCHAR FROM cost_line_items "
                f"WHERE {where} AND sha256 IN ({listed}) GROUP BY 1"
            ).fetchall()
        }
        last = {e: facts[e][0][-1] if e in facts else date.min for e in executions}
        newest, *older = _newest_first(executions, last, cur_uri)
        versions.add(newest)
        for e in older:
            days, billed = facts.get(e, ([date.min], "0"))
            out.append(
                Superseded(
                    cur_uri[e],
                    cur_uri[newest],
                    period,
                    "AWS",
                    None,
                    days,
                    billed,
                    last[e] == last[newest],
                    "cur_exports",
                )
            )
    excluded: list[tuple] = []
    if len(focus) > 1:
        excluded, found = _focus_redeliveries(conn, where, focus)
        out.extend(found)
    counted_cur = [v for v in versions if v in cur_uri]
    if focus and counted_cur:
        found = _cur_beside_focus(conn, where, focus, {v: cur_uri[v] for v in counted_cur}, excluded)
        excluded += [(v, s.billing_period, s.provider, s.billing_account, d) for v, s in found for d in s.days]
        out.extend(s for _, s in found)
    return sorted(versions), excluded, out


def _cur_beside_focus(
    conn: duckdb.DuckDBPyConnection, where: str, focus: dict[str, str], cur: dict[str, str], excluded: list[tuple]
) -> list[tuple[str, Superseded]]:
    """The days of CUR 2.0 executions (``cur``: version -> manifest URI, the ones that count) that a
    counted FOCUS file of the same provider and billing account also holds (AWS Data Exports delivers
    both of one payer account): FOCUS counts, the CUR rows of those days are set aside (module doc).
    Decided by kind, never by file order; the FOCUS file named is the least URI holding the day."""
    listed = ", ".join(_quote(v) for v in (*focus, *cur))
    rows = conn.execute(
        f"SELECT sha256, billing_period, provider, billing_account, charge_day, sum(billed) FROM cost_line_items "
        f"WHERE {where} AND sha256 IN ({listed}) GROUP BY ALL"
    ).fetchall()
    left_out = set(excluded)
    held: dict[tuple, str] = {}  # (provider, account, day) -> the least FOCUS URI counted on it
    for v, period, provider, account, day, _ in rows:
        if v in focus and (v, period, provider, account, day) not in left_out:
            key = (provider, account, day)
            held[key] = min(held.get(key, focus[v]), focus[v])
    lost: dict[tuple, list[tuple[date, object]]] = {}
    for v, period, provider, account, day, billed in rows:
        if v in cur and (provider, account, day) in held:
            lost.setdefault((v, period, provider, account, held[(provider, account, day)]), []).append((day, billed))
    out = []
    for (v, period, provider, account, by), items in sorted(lost.items(), key=lambda kv: str(kv[0])):
        days = sorted(d for d, _ in items)
        billed = str(sum(b for _, b in items))
        out.append((v, Superseded(cur[v], by, period, provider, account, days, billed, False, "cur_exports",
                                  rule="one-source-per-account")))  # fmt: skip
    return out


_KEY = ("sub_account", "service_name", "resource_id", "charge_category")  # a line item, within a charge day


def _focus_redeliveries(
    conn: duckdb.DuckDBPyConnection, where: str, focus: dict[str, str]
) -> tuple[list[tuple], list[Superseded]]:
    """FOCUS re-deliveries (module doc): the (version, period, provider, account, day) rows left out,
    and what was superseded (or, overlapping but not provably a re-delivery, counted too)."""
    folder_of = {v: _folder(u) for v, u in focus.items()}
    files = ", ".join(f"({_quote(v)}, {_quote(f)})" for v, f in folder_of.items())
    scope = "billing_period, provider, billing_account"
    same = " AND ".join(f"m.{c} IS NOT DISTINCT FROM a.{c}" for c in (*scope.split(", "), "charge_day", *_KEY))
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE redelivery_keys AS SELECT DISTINCT f.folder, c.sha256, {scope}, charge_day, "
        f"{', '.join(_KEY)} FROM cost_line_items c JOIN (VALUES {files}) f(sha256, folder) USING (sha256) WHERE {where}"
    )
    try:
        # Deliveries (folders) of one period, provider and account sharing a line item with a resource id.
        linked = conn.execute(
            f"SELECT {scope}, list(DISTINCT folder ORDER BY folder) FROM redelivery_keys WHERE resource_id IS NOT NULL "
            f"GROUP BY {scope}, charge_day, {', '.join(_KEY)} HAVING count(DISTINCT folder) > 1"
        ).fetchall()
        groups: dict[tuple, dict[str, str]] = {}
        for period, provider, account, folders in linked:
            parent = groups.setdefault((period, provider, account), {})

            def find(v, parent=parent):
                while parent.setdefault(v, v) != v:
                    v = parent[v]
                return v

            for other in folders[1:]:
                parent[find(other)] = find(folders[0])
        if not groups:
            return [], []
        # Per pair of deliveries and day: how many of the first's line items the second lacks.
        uncovered = {
            (period, provider, account, a, b, day): (n, missing)
            for period, provider, account, a, b, day, n, missing in conn.execute(
                f"""SELECT a.billing_period, a.provider, a.billing_account, a.folder, b.folder, a.charge_day,
                           count(DISTINCT ({", ".join(f"a.{c}" for c in _KEY)})),
                           count(DISTINCT ({", ".join(f"a.{c}" for c in _KEY)})) FILTER (WHERE m.folder IS NULL)
                    FROM redelivery_keys a
                    JOIN (SELECT DISTINCT folder, {scope}, charge_day FROM redelivery_keys) b
                      ON b.folder <> a.folder AND b.charge_day = a.charge_day
                     AND b.billing_period = a.billing_period AND b.provider IS NOT DISTINCT FROM a.provider
                     AND b.billing_account IS NOT DISTINCT FROM a.billing_account
                    LEFT JOIN (SELECT DISTINCT folder, {scope}, charge_day, {", ".join(_KEY)} FROM redelivery_keys) m
                      ON m.folder = b.folder AND {same}
                    GROUP BY ALL"""
            ).fetchall()
        }
        held: dict[tuple, dict[str, dict[date, object]]] = {}  # scope -> version -> day -> billed
        for v, period, provider, account, day, billed in conn.execute(
            f"SELECT sha256, {scope}, charge_day, sum(billed) FROM cost_line_items c "
            f"WHERE {where} AND sha256 IN (SELECT sha256 FROM redelivery_keys) GROUP BY ALL"
        ).fetchall():
            held.setdefault((period, provider, account), {}).setdefault(v, {})[day] = billed
    finally:
        conn.execute("DROP TABLE IF EXISTS redelivery_keys")
    excluded: list[tuple] = []
    out: list[Superseded] = []
    for (period, provider, account), parent in sorted(groups.items(), key=lambda kv: str(kv[0])):
        versions = held.get((period, provider, account), {})
        clusters: dict[str, list[str]] = {}
        for f in parent:
            root = f
            while parent[root] != root:
                root = parent[root]
            clusters.setdefault(root, []).append(f)
        for folders in clusters.values():
            parts = {f: [v for v in versions if folder_of[v] == f] for f in folders}
            days_of = {f: {d for v in vs for d in versions[v]} for f, vs in parts.items()}
            last = {f: max(days) for f, days in days_of.items() if days}
            ranked = _newest_first(list(last), last, {f: f for f in last})
            lost: dict[tuple[str, str, str], list[date]] = {}  # (version, newest, how) -> days
            for day in sorted(set().union(*days_of.values())):
                holders = [f for f in ranked if day in days_of[f]]
                newest = holders[0]
                for f in holders[1:]:
                    n, missing = uncovered.get((period, provider, account, f, newest, day), (0, 0))
                    # Left out only when the newer delivery provably re-delivers it: it ends later, and
                    # holds every line item this one has that day. Otherwise both count, and it is said.
                    how = "tie" if last[f] == last[newest] else ("partial" if missing else "")
                    for v in parts[f]:
                        if day in versions[v]:
                            if not how:
                                excluded.append((v, period, provider, account, day))
                            lost.setdefault((v, newest, how), []).append(day)
            for (v, by, how), days in sorted(lost.items(), key=lambda kv: (focus[kv[0][0]], kv[0][1], kv[0][2])):
                billed = sum(versions[v][d] for d in days)
                out.append(Superseded(focus[v], by, period, provider, account, days, str(billed),
                                      how == "tie", "cost_exports", counted_too=how or None))  # fmt: skip
    return excluded, out


DEFAULT_FORECAST = {"method": "trailing", "window_days": 7}


def cost_column(budgets: dict) -> str:
    """The ``cost_attribution`` column a budgets file counts: ``effective`` (amortised, the default) or ``billed``."""
    return "billed" if budgets.get("basis") == "billed" else "effective"


def forecast_policy(budgets: dict) -> dict:
    """The budgets file's ``forecast`` over the defaults, with a ``label`` for people."""
    policy = {**DEFAULT_FORECAST, **(budgets.get("forecast") or {})}
    trailing = f"trailing {policy['window_days']}-day"
    return policy | {"label": trailing if policy["method"] == "trailing" else "run-rate"}


def forecast_month_end(daily: dict[date, float], last: date, method: str = "trailing", window_days: int = 7) -> float:
    """Month-end spend from the daily spend known up to ``last`` (a dict day -> cost; days without
    cost may be missing).

    - ``run_rate``: the month-to-date mean per day times the days of the month.
    - ``trailing`` (the default): month-to-date actual plus the mean of the last ``window_days``
      calendar days, which may reach into the month before, for each remaining day. It does not
      start every month from one or two days of data, and it follows a change of level within the
      month. On the demo history it has the smaller error at every horizon
      (``benchmarks/forecast_accuracy.py``).
    """
    month_start = last.replace(day=1)
    days = calendar.monthrange(last.year, last.month)[1]
    elapsed = (last - month_start).days + 1
    actual = sum(v for d, v in daily.items() if month_start <= d <= last)
    if method == "run_rate":
        return actual / elapsed * days
    first = min((d for d in daily if d <= last), default=last)  # no history before the data begins
    window = [last - timedelta(days=i) for i in range(window_days) if last - timedelta(days=i) >= first]
    return actual + sum(daily.get(d, 0.0) for d in window) / len(window) * (days - elapsed)


def backtest(
    daily: dict[date, float], months: list[date], method: str, window_days: int = 7
) -> list[tuple[int, float]]:
    """(day of month, relative error of the month-end forecast made on that day) for each complete
    month in ``months`` (first days) and each day before its last: how well ``method`` would have
    forecast that history."""
    out = []
    for month_start in months:
        days = calendar.monthrange(month_start.year, month_start.month)[1]
        truth = sum(v for d, v in daily.items() if d.year == month_start.year and d.month == month_start.month)
        for i in range(days - 1):
            known = {d: v for d, v in daily.items() if d <= month_start + timedelta(days=i)}
            guess = forecast_month_end(known, month_start + timedelta(days=i), method, window_days)
            out.append((i + 1, abs(guess - truth) / abs(truth)))
    return out


@dataclass
class StaleAccount:
    """A billing account with cost in the month judged whose last charge day is older than its kind's
    ``max_age``, while the kind as a whole is fresh (another account's export is current)."""

    kind: str  # cost_exports (FOCUS BillingAccountId) or cur_exports (bill_payer_account_id)
    provider: str | None
    account: str | None
    month: str  # YYYY-MM
    last_day: date  # its last charge day in the month (up to the evaluation time)
    age: timedelta  # of that day's start at the evaluation time, as a file's age is reckoned
    newest: str  # the delivery holding that day (the greater URI on a tie)
    budgets: list[str] = field(default_factory=list)  # budgets whose scope selects its cost this month

    @property
    def name(self) -> str:
        return f"billing account {self.account if self.account is not None else '(none)'}"


def stale_accounts(
    conn: duckdb.DuckDBPyConnection,
    roots: list[str],
    deliveries: dict[str, tuple[str, str]],
    max_age: dict[str, timedelta],
    at: datetime,
) -> list[StaleAccount]:
    """The billing accounts whose cost the month of ``at`` holds (in the deliveries in the roots now:
    version -> (kind, URI)) but whose last charge day is older than their kind's ``max_age`` (given
    only for the kinds fresh as a whole: a stale kind is its own error). Freshness reads a kind's
    newest file, so an account whose export stopped mid-month beside a current one is otherwise
    silent while every budget lacks its cost since. An account without cost this month is not stale
    this month. Superseded days need not be left out: the delivery re-delivering a day ends later."""
    if not deliveries or not max_age:
        return []
    month_start = date(at.year, at.month, 1)
    values = ", ".join(f"({_quote(v)}, {_quote(k)}, {_quote(u)})" for v, (k, u) in deliveries.items())
    roots_sql = ", ".join(_quote(r) for r in roots) or "NULL"
    rows = conn.execute(
        f"""SELECT d.kind, c.provider, c.billing_account, max(c.charge_day),
                   arg_max(d.uri, strftime(c.charge_day, '%Y-%m-%d') || d.uri)
            FROM cost_line_items c JOIN (VALUES {values}) d(sha256, kind, uri) USING (sha256)
            WHERE c.root IN ({roots_sql}) AND c.charge_day >= ? AND c.charge_day <= ?
            GROUP BY ALL ORDER BY ALL""",
        [month_start, at.date()],
    ).fetchall()
    out = []
    for kind, provider, account, last, newest in rows:
        age = at - datetime(last.year, last.month, last.day, tzinfo=at.tzinfo)
        if kind in max_age and age > max_age[kind]:
            out.append(StaleAccount(kind, provider, account, f"{at:%Y-%m}", last, age, newest))
    return out


def _selects(budget: dict, row: tuple) -> bool:
    """Whether ``budget``'s scope selects a (tenant, team, service category, currency) of cost."""
    values = dict(zip((*SCOPE_KEYS, "currency"), row, strict=True))
    return all(values[k] == budget[k] for k in SCOPE_KEYS if budget.get(k)) and values["currency"] == budget["currency"]


def mark_stale(
    conn: duckdb.DuckDBPyConnection,
    roots: list[str],
    policy: dict,
    tenants: list[str],
    versions: list[str],
    stale: list[StaleAccount],
    states: list[BudgetState],
    at: datetime,
) -> None:
    """Which budgets each stale account's cost feeds this month (``StaleAccount.budgets``, and each
    state's ``stale``), and which budgets have no cost from any current account (``stale_only``): their
    actual and forecast are built on stale cost only. Attributed (tags, aliases, shared splits) from
    each account's cost alone."""
    if not stale:
        return
    since, until = date(at.year, at.month, 1), at.date()

    def scopes(accounts: tuple[list[tuple], bool]) -> list[tuple]:
        sql = attribution_sql(roots, policy, tenants, versions=versions, accounts=accounts)
        return conn.execute(
            f"SELECT DISTINCT tenant, team, service_category, currency FROM ({sql}) "
            "WHERE charge_day >= ? AND charge_day <= ?",
            [since, until],
        ).fetchall()

    judged = [s for s in states if s.unmatched is None]
    for a in stale:
        rows = scopes(([(a.provider, a.account)], False))
        for s in judged:
            if any(_selects(s.budget, r) for r in rows):
                a.budgets.append(s.budget["name"])
                s.stale.append(a)
    current = scopes(([(a.provider, a.account) for a in stale], True))
    for s in judged:
        s.stale_only = bool(s.stale) and not any(_selects(s.budget, r) for r in current)


@dataclass
class BudgetState:
    budget: dict
    month: str
    actual: float | None  # None: the scope selects no cost (``unmatched`` says why), never 0
    forecast: float | None
    days_elapsed: int
    days_in_month: int
    crossed: list[tuple[str, float]]  # (basis, threshold)
    forecast_label: str  # how the forecast was made, for people
    unmatched: dict | None = None  # what the scope selected and what the period holds (``scope_miss``)
    uncounted: list[str] = field(default_factory=list)  # other currencies of cost in its scope this month
    # The stale accounts (``stale_accounts``) whose cost its scope selects this month, and whether all of
    # its cost this month is theirs (its actual and forecast are then built on stale cost only).
    stale: list[StaleAccount] = field(default_factory=list)
    stale_only: bool = False

    @property
    def amount(self) -> float:
        return float(self.budget["amount"])


SCOPE_KEYS = ("tenant", "team", "service_category")


def _scope(budget: dict) -> tuple[list[str], list]:
    keys = [k for k in SCOPE_KEYS if budget.get(k)]
    return [f"{k} = ?" for k in keys], [budget[k] for k in keys]


def scope_currencies(conn: duckdb.DuckDBPyConnection, root: str, budget: dict, since: date, until: date) -> list[str]:
    """The currencies of the cost in ``budget``'s scope (whatever its own currency) from ``since`` to ``until``."""
    conds, params = _scope(budget)
    where = " AND ".join(["root = ?", "charge_day >= ?", "charge_day <= ?", *conds])
    sql = f"SELECT DISTINCT currency FROM cost_attribution WHERE {where} ORDER BY 1"
    return [c for (c,) in conn.execute(sql, [root, since, until, *params]).fetchall()]


def scope_miss(
    conn: duckdb.DuckDBPyConnection, root: str, budget: dict, since: date, until: date, currencies: list[str]
) -> dict | None:
    """Why ``budget`` selects no cost from ``since`` to ``until``, or None when it selects some
    (``currencies``: its scope's, ``scope_currencies``).

    A scope that matches no row (a misspelt tenant, ``compute`` for ``Compute``) or only rows in
    another currency (an export switched to EUR) would otherwise read as 0 spent and pass: the
    budget is then not judged, and this says what it selected and what the period holds instead
    (the currencies its scope has, or each scope key's values), so the owner can fix either side."""
    if budget["currency"] in currencies:
        return None
    period = "root = ? AND charge_day >= ? AND charge_day <= ?"
    selected = {k: budget[k] for k in SCOPE_KEYS if budget.get(k)} | {"currency": budget["currency"]}
    miss = {"selected": selected, "since": str(since), "until": str(until), "scope_currencies": currencies}
    if currencies:
        return miss
    if not conn.execute(f"SELECT count(*) FROM cost_attribution WHERE {period}", [root, since, until]).fetchone()[0]:
        # No cost at all yet in the period (the month's first export has not landed): not a scope that
        # selects nothing, 0 so far; an export that stopped is the cost exports' freshness finding.
        return None
    holds = {}
    for key in [k for k in SCOPE_KEYS if budget.get(k)] + ["currency"]:
        holds[key] = [v for (v,) in conn.execute(
            f"SELECT DISTINCT {key} FROM cost_attribution WHERE {period} AND {key} IS NOT NULL ORDER BY 1",
            [root, since, until],
        ).fetchall()]  # fmt: skip
    return miss | {"period_holds": holds}


def daily_spend(
    conn: duckdb.DuckDBPyConnection, root: str, budget: dict, since: date, until: date, column: str = "effective"
) -> dict[date, float]:
    """Day -> attributed cost in the budget's scope (tenant, team, service category; currency)."""
    scope, values = _scope(budget)
    conds = ["root = ?", "currency = ?", "charge_day >= ?", "charge_day <= ?", *scope]
    params = [root, budget["currency"], since, until, *values]
    return dict(
        conn.execute(
            f"SELECT charge_day, sum({column})::DOUBLE FROM cost_attribution WHERE {' AND '.join(conds)} GROUP BY 1",
            params,
        ).fetchall()
    )


def budget_states(conn: duckdb.DuckDBPyConnection, root: str, budgets: dict, at: datetime) -> list[BudgetState]:
    """Month-to-date spend and a forecast to month end (``budgets["forecast"]``, default trailing
    7 days), against each budget's thresholds. A budget whose scope selects no cost in its currency
    this month has no spend and no forecast, only ``unmatched``: nothing selected is not 0 spent.
    Cost of its scope in other currencies is not converted; ``uncounted`` names them."""
    month_start = date(at.year, at.month, 1)
    days_in_month = calendar.monthrange(at.year, at.month)[1]
    column = cost_column(budgets)
    forecast = forecast_policy(budgets)
    out = []
    for b in budgets["budgets"]:
        currencies = scope_currencies(conn, root, b, month_start, at.date())
        miss = scope_miss(conn, root, b, month_start, at.date(), currencies)
        if miss is not None:
            out.append(BudgetState(b, f"{at:%Y-%m}", None, None, 0, days_in_month, [], forecast["label"], miss))
            continue
        daily = daily_spend(conn, root, b, month_start - timedelta(days=forecast["window_days"]), at.date(), column)
        actual = sum(v for d, v in daily.items() if d >= month_start)
        last = max((d for d in daily if d >= month_start), default=None)
        elapsed = (last - month_start).days + 1 if last else 0
        projected = forecast_month_end(daily, last, forecast["method"], forecast["window_days"]) if last else 0.0
        crossed = [("actual", t) for t in b["actual_thresholds"] if actual >= t * b["amount"]]
        crossed += [("forecast", t) for t in b["forecast_thresholds"] if projected >= t * b["amount"]]
        others = [c for c in currencies if c != b["currency"]]
        out.append(BudgetState(b, f"{at:%Y-%m}", actual, projected, elapsed, days_in_month, crossed, forecast["label"],
                               uncounted=others))  # fmt: skip
    return out


def tenant_rows(conn: duckdb.DuckDBPyConnection, root: str, tenant: str) -> list[tuple]:
    """One tenant's attributed cost (for a per-tenant report or export): that tenant's rows only."""
    return conn.execute(
        "SELECT charge_day, currency, tenant, team, service_category, source, billed, effective FROM cost_attribution "
        "WHERE root = ? AND tenant = ? ORDER BY charge_day, service_category, source, team",
        [root, tenant],
    ).fetchall()


def anomalies(conn: duckdb.DuckDBPyConnection, root: str, factor: float = 2.0, minimum: float = 10.0) -> list[tuple]:
    """Day-over-day spikes per tenant and service category: effective cost at least ``factor`` times
    the day before and at least ``minimum`` more."""
    return conn.execute(
        """
        WITH daily AS (
            SELECT tenant, service_category, currency, charge_day, sum(effective)::DOUBLE AS cost
            FROM cost_attribution WHERE root = ? GROUP BY ALL
        ), moves AS (
            SELECT *, lag(cost) OVER (PARTITION BY tenant, service_category, currency ORDER BY charge_day) AS prev,
                      lag(charge_day) OVER (PARTITION BY tenant, service_category, currency ORDER BY charge_day) AS prev_day
            FROM daily
        )
        SELECT charge_day, tenant, service_category, currency, prev, cost FROM moves
        WHERE prev IS NOT NULL AND prev_day = charge_day - 1 AND cost >= ? * prev AND cost - prev >= ?
        ORDER BY charge_day, tenant, service_category
        """,
        [root, factor, minimum],
    ).fetchall()

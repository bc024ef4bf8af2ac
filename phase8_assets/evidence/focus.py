"""FOCUS cost and usage exports (evidence kind ``cost_exports``): CSV, gzip CSV or Parquet, loaded
file → DuckDB directly, never row by row.

Columns are FOCUS 1.0–1.3 names (1.3's ``ServiceProviderName`` is read where 1.0–1.2 wrote
``ProviderName``). Literal ``NULL`` strings and empty cells are nulls; a UTF-8 BOM is ignored;
negative costs (credits, refunds) are kept. A file is rejected, naming the column and the first
bad rows (1-based, header excluded), when a mandatory column is missing, or a timestamp or cost
does not parse (an hour of 30, a US short date such as ``5/1/25``, a cost like ``12,50``).
Timestamps without a zone are UTC (FOCUS says so).
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from phase8_assets.evidence import EvidenceError, ReadResult

MANDATORY = (
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingPeriodStart", "BillingPeriodEnd",
    "ChargePeriodStart", "ChargePeriodEnd", "BillingAccountId", "BillingCurrency", "ChargeCategory", "ServiceName",
    "ServiceCategory",
)  # fmt: skip
COSTS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
TIMES = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
OPTIONAL = ("SubAccountId", "ResourceId", "Tags", "ChargeClass")
MAX_EXAMPLES = 5


def source_sql(path: str | Path) -> str:
    """A DuckDB table function over the file, every column as text (types are checked by us)."""
    text = str(path).replace("'", "''")
    if _is_parquet(Path(path)):
        return f"(SELECT * FROM read_parquet('{text}'))"
    return (
        f"(SELECT * FROM read_csv('{text}', all_varchar = true, header = true, nullstr = ['NULL', ''], "
        "auto_detect = true))"
    )


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


# The ISO 8601 shape, for Great Expectations' regex check of a sample (the load uses strict formats).
ISO_8601 = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?$"


_NAIVE = [
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d",
]
_ZONED = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"]


def _ts(column: str) -> str:
    """A FOCUS timestamp as naive UTC, or NULL unless it is ISO 8601 (strict formats: DuckDB's own
    cast would read the US short date ``11/1/26`` as the year 11). Needs the session in UTC."""
    c = f'CAST("{column}" AS VARCHAR)'
    return f"(coalesce(TRY_STRPTIME({c}, {_NAIVE!r})::TIMESTAMPTZ, TRY_STRPTIME({c}, {_ZONED!r})) AT TIME ZONE 'UTC')"


def columns(conn: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    return [r[0] for r in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]


def check(conn: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    """Raise ``EvidenceError`` for a file we cannot load; returns its columns."""
    names = columns(conn, source)
    provider = "ServiceProviderName" if "ServiceProviderName" in names else "ProviderName"
    missing = [c for c in (*MANDATORY, provider) if c not in names]
    if missing:
        raise EvidenceError(
            ", ".join(missing),
            f"mandatory FOCUS column(s) missing; the file has {len(names)} columns: {', '.join(names[:12])}…",
        )
    casts = {
        c: (_ts(c) if c in TIMES else f'TRY_CAST(CAST("{c}" AS VARCHAR) AS DECIMAL(38, 12))') for c in (*TIMES, *COSTS)
    }
    counts = conn.execute(
        "SELECT "
        + ", ".join(f'count(*) FILTER (WHERE "{c}" IS NOT NULL AND {cast} IS NULL)' for c, cast in casts.items())
        + f" FROM {source}"
    ).fetchone()  # one pass over the file; row numbers only when something is wrong
    for (column, cast), bad_count in zip(casts.items(), counts, strict=True):
        if not bad_count:
            continue
        numbered = f"(SELECT row_number() OVER () AS rownum, * FROM {source})"
        bad = conn.execute(
            f'SELECT rownum, CAST("{column}" AS VARCHAR) FROM {numbered} '
            f'WHERE "{column}" IS NOT NULL AND {cast} IS NULL ORDER BY rownum LIMIT {MAX_EXAMPLES}'
        ).fetchall()
        kind = "an ISO 8601 timestamp" if column in TIMES else "a decimal number"
        examples = ", ".join(f"row {n}: {v!r}" for n, v in bad)
        raise EvidenceError(column, f"expected {kind}; {bad_count} bad value(s): {examples}")
    nulls = conn.execute(
        f"SELECT count(*) FILTER (WHERE BilledCost IS NULL), count(*) FILTER (WHERE BillingCurrency IS NULL), "
        f"count(*) FILTER (WHERE ChargePeriodStart IS NULL) FROM {source}"
    ).fetchone()
    for column, n in zip(("BilledCost", "BillingCurrency", "ChargePeriodStart"), nulls, strict=True):
        if n:
            raise EvidenceError(column, f"{n} row(s) without a value; FOCUS requires one")
    return names


def staged_sql(source: str, names: list[str]) -> str:
    """The canonical columns of ``cost_line_items`` from a checked FOCUS file (run with the
    session time zone UTC, as ``warehouse.connect`` sets it)."""
    provider = "ServiceProviderName" if "ServiceProviderName" in names else "ProviderName"

    def opt(column: str) -> str:
        return f'CAST("{column}" AS VARCHAR)' if column in names else "NULL"

    return f"""
        SELECT strftime({_ts("BillingPeriodStart")}, '%Y-%m') AS billing_period,
               CAST("{provider}" AS VARCHAR) AS provider,
               CAST(BillingAccountId AS VARCHAR) AS billing_account,
               {opt("SubAccountId")} AS sub_account,
               CAST({_ts("ChargePeriodStart")} AS DATE) AS charge_day,
               CAST(ChargeCategory AS VARCHAR) AS charge_category,
               CAST(ServiceCategory AS VARCHAR) AS service_category,
               CAST(ServiceName AS VARCHAR) AS service_name,
               {opt("ResourceId")} AS resource_id,
               CAST(BillingCurrency AS VARCHAR) AS currency,
               CAST(CAST(BilledCost AS VARCHAR) AS DECIMAL(38, 12)) AS billed,
               coalesce(CAST(CAST(EffectiveCost AS VARCHAR) AS DECIMAL(38, 12)), 0) AS effective,
               {opt("Tags")} AS tags
        FROM {source}
    """


def read(data: bytes, uri: str) -> ReadResult:
    suffix = ".parquet" if data[:4] == b"PAR1" else (".csv.gz" if data[:2] == b"\x1f\x8b" else ".csv")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"export{suffix}"
        path.write_bytes(data)
        conn = duckdb.connect()
        try:
            conn.execute("SET TimeZone = 'UTC'")
            source = source_sql(path)
            try:
                names = check(conn, source)
                rows, currencies, periods, last, billed = conn.execute(
                    f"SELECT count(*), list(DISTINCT currency ORDER BY currency), list(DISTINCT billing_period ORDER BY billing_period), "
                    f"max(charge_day), sum(billed) FROM ({staged_sql(source, names)})"
                ).fetchone()
            except duckdb.Error as exc:
                raise EvidenceError(
                    "(document)", f"not a readable CSV or Parquet FOCUS export ({str(exc).splitlines()[0]})"
                ) from exc
        finally:
            conn.close()
    if not rows:
        raise EvidenceError("(document)", "no cost rows")
    end = conn_time(last)
    return ReadResult(
        observed_at=end,
        timestamp_field="ChargePeriodStart",
        summary={"rows": rows, "currencies": currencies, "billing_periods": periods, "billed": str(billed)},
    )


def conn_time(day) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)

"""FOCUS cost and usage exports (evidence kind ``cost_exports``): CSV, gzip CSV or Parquet, loaded
file → DuckDB directly, never row by row.

Columns are FOCUS 1.0–1.3 names (1.3's ``ServiceProviderName`` is read where 1.0–1.2 wrote
``ProviderName``), in any letter case; a column held twice (or in two cases) is ambiguous and
rejects the file. Literal ``NULL`` strings and empty cells are nulls; a UTF-8 BOM is ignored;
negative costs (credits, refunds) are kept. A file is rejected, naming the column and the first
bad rows (1-based, header excluded), when a mandatory column is missing, a billed or effective
cost, currency, period start or service category is empty (FOCUS allows no null there: a missing
cost is never 0), the currency is no ISO 4217 code (a literal ``null``, a blank; ``usd`` is read as ``USD``), or a timestamp or
cost does not parse (an hour of 30, a US short date such as ``5/1/25``, a cost like ``12,50``), or
``Tags`` is no JSON object (FOCUS's key-value format; Azure's brace-less ``"env": "prod"`` is none):
tags that cannot be read would name no tenant. A Parquet ``Tags`` map (or struct) is kept as its
JSON object. Timestamps without a zone are UTC (FOCUS says so); BigQuery's ``2026-11-01 00:00:00 UTC`` and
fractions of up to 9 digits are read too.

A file is parsed once: the reader validates every row while it writes them, in the warehouse's
columns, to a Parquet spool (a bad row aborts the pass; only then is the file read again, to say
where), summarises the spool, and the load copies the spool into DuckDB.
"""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from phase8_assets.evidence import EvidenceError, ReadResult, on_abandon

MANDATORY = (
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingPeriodStart", "BillingPeriodEnd",
    "ChargePeriodStart", "ChargePeriodEnd", "BillingAccountId", "BillingCurrency", "ChargeCategory", "ServiceName",
    "ServiceCategory",
)  # fmt: skip
COSTS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
TIMES = ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")
OPTIONAL = ("SubAccountId", "ResourceId", "Tags", "ChargeClass")
MAX_EXAMPLES = 5


def source_sql(conn: duckdb.DuckDBPyConnection, path: str | Path) -> str:
    """A DuckDB table function over the file, every column as text (types are checked by us).

    A CSV file is sniffed here, once (DuckDB's ``sniff_csv``: delimiter, quote, escape, line ending,
    header): the source names what was found, as DuckDB's own equivalent ``read_csv`` call does, so
    reading the file again (its columns, then the load) does not sniff it again (about 25 ms a file)."""
    text = str(path).replace("'", "''")
    with open(path, "rb") as fh:  # by content, not by name: a staged or renamed file has no telling suffix
        magic = fh.read(4)
    if magic == b"PAR1":
        return f"(SELECT * FROM read_parquet('{text}'))"
    compression = "gzip" if magic[:2] == b"\x1f\x8b" else "none"
    # 4 MB read buffers (DuckDB's default grows with the file): memory stays flat as exports grow
    options = (
        f"all_varchar = true, header = true, nullstr = ['NULL', ''], compression = '{compression}', "
        f"buffer_size = {4 << 20}"
    )
    try:
        delim, quote, escape, new_line, comment, skip, names = conn.execute(
            "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, [c.name FOR c IN Columns] "
            f"FROM sniff_csv('{text}', {options})"
        ).fetchone()
    except duckdb.InvalidInputException:  # no dialect found (an empty file, ...): read it as read_csv would
        names = None
    if names is None or any("\x00" in value for value in (delim, quote, escape, new_line, comment, *names)):
        # A NUL byte would end the SQL text: such a file is read with auto-detection, as it always was.
        return f"(SELECT * FROM read_csv('{text}', {options}, auto_detect = true))"

    def literal(value: str, dialect: bool = True) -> str:
        return "'" + ("" if dialect and value == "(empty)" else value).replace("'", "''") + "'"  # (empty): none

    columns = ", ".join(f"{literal(name, dialect=False)}: 'VARCHAR'" for name in names)
    return (
        f"(SELECT * FROM read_csv('{text}', {options}, auto_detect = false, delim = {literal(delim)}, "
        f"quote = {literal(quote)}, escape = {literal(escape)}, new_line = {literal(new_line)}, "
        f"comment = {literal(comment)}, skip = {skip}, columns = {{{columns}}}))"
    )


# The ISO 8601 shape, for Great Expectations' regex check of a sample (the load uses strict formats).
ISO_8601 = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?$"


_NAIVE = [
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d",
    # BigQuery (the GCP FOCUS view) writes a TIMESTAMP to CSV as "2026-11-01 00:00:00[.ffffff] UTC"
    "%Y-%m-%d %H:%M:%S UTC",
    "%Y-%m-%d %H:%M:%S.%f UTC",
    "%Y-%m-%dT%H:%M:%S.%nZ",  # 7 to 9 fraction digits (.NET's round-trip format writes 7)
]
_ZONED = ["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S.%n%z"]


def _ts(column: str) -> str:
    """A FOCUS timestamp as naive UTC, or NULL unless it is ISO 8601 (strict formats: DuckDB's own
    cast would read the US short date ``11/1/26`` as the year 11). A value without a zone is UTC
    (FOCUS says so) and is taken as it is, so repeated values cost one parse per Parquet
    dictionary entry; only zoned values are converted."""
    c = f'CAST("{column}" AS VARCHAR)'
    return f"coalesce(TRY_STRPTIME({c}, {_NAIVE!r}), TRY_STRPTIME({c}, {_ZONED!r}) AT TIME ZONE 'UTC')"


def _decimal(column: str) -> str:
    """A FOCUS cost as DECIMAL(38, 12), or NULL unless it is a number. Parsed first as DECIMAL(18, 12),
    which holds any cost under a million on 64 bits and parses about 25x faster than the 128-bit
    DECIMAL(38, 12); a value that does not fit is parsed again as that, with the same result."""
    c = f'CAST("{column}" AS VARCHAR)'
    return f"CAST(coalesce(TRY_CAST({c} AS DECIMAL(18, 12)), TRY_CAST({c} AS DECIMAL(38, 12))) AS DECIMAL(38, 12))"


def _parse(column: str) -> str:
    return _ts(column) if column in TIMES else _decimal(column)


CHECKED = (*TIMES, *COSTS)  # parsed and checked on every row
# never null: what a cost is, in which currency, when, and the service category budgets are scoped by
REQUIRED = (
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "BillingPeriodStart",
    "ChargePeriodStart",
    "ServiceCategory",
)
_INVALID = "phase8: invalid FOCUS value"  # raised inside the load; ``diagnose`` then says where


def _tags_sql(types: dict[str, str]) -> str | None:
    """``Tags`` as JSON text (a Parquet map or struct as its JSON object; a blank, ``NULL`` or JSON
    ``null`` as no tags), or None without the column."""
    kind = next((t for name, t in types.items() if name.lower() == "tags"), None)
    if kind is None:
        return None
    if kind.upper().startswith(("MAP", "STRUCT")):
        return 'CAST(to_json("Tags") AS VARCHAR)'
    return (
        """CASE WHEN upper(trim(CAST("Tags" AS VARCHAR))) IN ('', 'NULL') THEN NULL ELSE CAST("Tags" AS VARCHAR) END"""
    )


def _problems(tags: str | None = None) -> list[tuple[str, str, str]]:
    """(column, what was expected, SQL condition over ``_parsed`` rows) for every way a row is bad;
    ``tags``: the file's ``Tags`` as text (``_tags_sql``)."""
    out = [
        (c, "an ISO 8601 timestamp" if c in TIMES else "a decimal number", f'"{c}" IS NOT NULL AND "p_{c}" IS NULL')
        for c in CHECKED
    ]
    # A currency that is no ISO 4217 code (a literal "null", a blank) would be a currency of its own
    # that no budget counts; a code in lower case is loaded in upper case (focus_conformance warns).
    currency = ("BillingCurrency", "an ISO 4217 currency code (three letters)",
                "\"BillingCurrency\" IS NOT NULL AND NOT regexp_full_match(CAST(\"BillingCurrency\" AS VARCHAR), '[A-Za-z]{3}')")  # fmt: skip
    out += [(c, "a value (FOCUS requires one)", f'"{c}" IS NULL') for c in REQUIRED] + [currency]
    if tags is not None:  # no tags (``_tags_sql``) or a JSON object
        out.append(("Tags", 'a JSON object of tag keys and values (such as {"team": "search"})',
                    f"{tags} IS NOT NULL AND NOT CASE WHEN json_valid({tags}) "
                    f"THEN json_type(CAST({tags} AS JSON)) = 'OBJECT' ELSE false END"))  # fmt: skip
    return out


def columns(conn: duckdb.DuckDBPyConnection, source: str) -> list[str]:
    return list(column_types(conn, source))


def column_types(conn: duckdb.DuckDBPyConnection, source: str) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}


def _parsed(source: str) -> str:
    """Every column of the file plus each checked one parsed as ``p_<name>`` (NULL when it does not parse)."""
    parsed = ", ".join(f'{_parse(c)} AS "p_{c}"' for c in CHECKED)
    return f"(SELECT *, {parsed} FROM {source})"


def _present(names: list[str], column: str) -> bool:
    """Whether the file has FOCUS ``column``, in any letter case (Athena and Glue lower-case every
    column; DuckDB matches identifiers in any case, so the SQL reads it as it is)."""
    return column.lower() in {name.lower() for name in names}


def _provider(names: list[str]) -> str:
    return "ServiceProviderName" if _present(names, "ServiceProviderName") else "ProviderName"


def _require_columns(names: list[str]) -> None:
    # A column held twice (DuckDB names the second ``BilledCost_1``), or in two letter cases, would be
    # read from its first copy, the other silently dropped: which one the export means cannot be told.
    for column in (*MANDATORY, "ProviderName", "ServiceProviderName", *OPTIONAL):
        copies = [n for n in names if re.fullmatch(rf"{column}(_\d+)?", n, flags=re.IGNORECASE)]
        if len(copies) > 1 and any(n.lower() == column.lower() for n in copies):
            raise EvidenceError(
                column,
                f"the file has {len(copies)} columns named {column} (whatever their letter case); expected one: "
                "which of them holds the value cannot be told",
            )
    missing = [c for c in (*MANDATORY, _provider(names)) if not _present(names, c)]
    if missing and any(n.startswith(("lineItem/", "line_item_")) for n in names):
        raise EvidenceError(
            ", ".join(missing),
            "mandatory FOCUS column(s) missing: this is an AWS CUR data file: phase8 reads a CUR 2.0 export "
            "through its manifest (cur_exports: metadata/BILLING_PERIOD=YYYY-MM/*-Manifest.json), a legacy CUR "
            "not at all (export FOCUS or CUR 2.0 with AWS Data Exports)",
        )
    if missing:
        raise EvidenceError(
            ", ".join(missing),
            f"mandatory FOCUS column(s) missing; the file has {len(names)} columns: "
            + ", ".join(name if len(name) <= 60 else name[:60] + "…" for name in names[:12])
            + "…",
        )


def _raise_first_problem(conn: duckdb.DuckDBPyConnection, source: str, counts, tags: str | None) -> None:
    """``EvidenceError`` for the first problem with a count, naming its first rows (1-based, header
    excluded); the rows are numbered only here, when something is wrong."""
    for (column, expected, condition), bad_count in zip(_problems(tags), counts, strict=True):
        if not bad_count:
            continue
        numbered = f"(SELECT row_number() OVER () AS rownum, * FROM {_parsed(source)})"
        shown = tags if column == "Tags" else f'CAST("{column}" AS VARCHAR)'
        bad = conn.execute(
            f"SELECT rownum, {shown} FROM {numbered} WHERE {condition} ORDER BY rownum LIMIT {MAX_EXAMPLES}"
        ).fetchall()
        examples = ", ".join(f"row {n}: {v!r}" for n, v in bad)
        raise EvidenceError(column, f"expected {expected}; {bad_count} bad value(s): {examples}")


def check(conn: duckdb.DuckDBPyConnection, source: str) -> tuple[list[str], tuple]:
    """Validate the file in one pass and summarise it in the same pass: ``(columns, (rows,
    currencies, billing periods, last charge day, billed total))``; ``EvidenceError`` when it cannot
    be loaded."""
    types = column_types(conn, source)
    names = list(types)
    _require_columns(names)
    tags = _tags_sql(types)
    problems = [f"count(*) FILTER (WHERE {condition})" for _, _, condition in _problems(tags)]
    *counts, rows, currencies, periods, last, billed = conn.execute(
        f"SELECT {', '.join(problems)}, count(*), list(DISTINCT BillingCurrency), "
        f"list(DISTINCT strftime(p_BillingPeriodStart, '%Y-%m')), max(p_ChargePeriodStart)::DATE, sum(p_BilledCost) "
        f"FROM {_parsed(source)}"
    ).fetchone()
    _raise_first_problem(conn, source, counts, tags)
    return names, (rows, sorted(currencies or []), sorted(periods or []), last, billed)


def diagnose(
    conn: duckdb.DuckDBPyConnection, source: str, exc: duckdb.Error, staged: str | Path, uri: str
) -> EvidenceError:
    """What is wrong with a file whose load failed (``exc``): the column and rows when a value is
    bad, else DuckDB's own first line, naming the evidence file ``uri`` rather than the copy
    ``staged`` that DuckDB read."""
    if _INVALID in str(exc):
        try:
            check(conn, source)
        except EvidenceError as found:
            return found
        except duckdb.Error:
            pass
    first_line = str(exc).splitlines()[0].replace(str(staged), uri)
    return EvidenceError("(document)", f"not a readable CSV or Parquet FOCUS export ({first_line})")


def staged_sql(source: str, names: list[str], types: dict[str, str] | None = None) -> str:
    """The canonical columns of ``cost_line_items`` from a FOCUS file, validated in the same pass:
    a bad row aborts the statement with ``_INVALID`` (``diagnose`` then names it), so a file is
    parsed once on load."""
    _require_columns(names)

    def opt(column: str) -> str:
        return f'CAST("{column}" AS VARCHAR)' if _present(names, column) else "NULL"

    tags = _tags_sql(types or dict.fromkeys(names, "VARCHAR"))
    any_problem = " OR ".join(f"({condition})" for _, _, condition in _problems(tags))
    return f"""
        SELECT strftime(p_BillingPeriodStart, '%Y-%m') AS billing_period,
               CAST("{_provider(names)}" AS VARCHAR) AS provider,
               CAST(BillingAccountId AS VARCHAR) AS billing_account,
               {opt("SubAccountId")} AS sub_account,
               CAST(p_ChargePeriodStart AS DATE) AS charge_day,
               CAST(ChargeCategory AS VARCHAR) AS charge_category,
               CAST(ServiceCategory AS VARCHAR) AS service_category,
               CAST(ServiceName AS VARCHAR) AS service_name,
               {opt("ResourceId")} AS resource_id,
               upper(CAST(BillingCurrency AS VARCHAR)) AS currency,
               p_BilledCost AS billed,
               p_EffectiveCost AS effective,
               {tags or "NULL"} AS tags
        FROM {_parsed(source)}
        WHERE CASE WHEN {any_problem} THEN error('{_INVALID}') ELSE true END
    """


def read(data: bytes | Path, uri: str, spool_dir: Path | None = None) -> ReadResult:
    """Validate and summarise one export, parsing it once: its rows, validated and in the
    warehouse's columns (``staged_sql``), go to a Parquet file in ``spool_dir``, the result's
    ``spool`` that ``cost_line_items`` loads as it is, and the summary is read from that file.
    Without ``spool_dir`` (the reader on its own) the spool is temporary. DuckDB reads a ``Path``
    in place (bytes are staged first)."""
    with tempfile.TemporaryDirectory() as tmp:
        if not isinstance(data, Path):
            staged = Path(tmp) / "export"
            staged.write_bytes(data)
            data = staged
        spool = (spool_dir or Path(tmp)) / "rows.parquet"
        # Rows in any order, so the threads stream the file without holding it back for order: 10 M
        # rows take 30 s and 302 MiB on 2 threads, 63 s and 209 MiB on one, and 1 M rows 275 MiB: memory
        # follows the threads (at most 4), not the file (benchmarks/evidence_memory.py).
        conn = duckdb.connect(config={"threads": min(4, os.cpu_count() or 1), "preserve_insertion_order": False})
        try:
            source = ""
            target = str(spool).replace("'", "''")
            try:
                with on_abandon(conn.interrupt):  # the collector's time limit ends the pass
                    source = source_sql(conn, data)
                    types = column_types(conn, source)
                    conn.execute(f"COPY ({staged_sql(source, list(types), types)}) TO '{target}' (FORMAT parquet)")
            except duckdb.Error as exc:
                raise diagnose(conn, source, exc, data, uri) from exc
            rows, currencies, periods, last, billed = conn.execute(
                "SELECT count(*), list(DISTINCT currency), list(DISTINCT billing_period), max(charge_day), sum(billed) "
                "FROM read_parquet(?)",
                [str(spool)],
            ).fetchone()
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        finally:
            conn.close()
    if not rows:
        spool.unlink(missing_ok=True)
        raise EvidenceError("(document)", "no cost rows")
    return ReadResult(
        observed_at=conn_time(last),
        timestamp_field="ChargePeriodStart",
        summary={
            "rows": rows,
            "currencies": sorted(currencies),
            "billing_periods": sorted(periods),
            "billed": str(billed),
        },
        spool=spool if spool_dir else None,
    )


def conn_time(day) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)

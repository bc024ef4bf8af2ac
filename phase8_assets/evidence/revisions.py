"""The revision of each reader (or domain rule) whose derived rows the warehouse keeps per file.

A table that stores what a reader made of an evidence file (a drill run's outcome, a benchmark's SI
values, a cost export's line items) stores it under ``derived_version``: the file's sha256 and the
revision of the derivation. When a reader's derivation changes (a journal it used to pass now fails, a
unit is converted differently), its revision goes up here: the rows an older release derived no longer
carry the current version, so the file is derived again the next time it is read, and the gate and the
reports read the current revision's rows only (``warehouse.history.newest_revision``). A reused home
then gives the report a fresh one gives. The older rows are not deleted: they are history, and a
rollback to an older release finds them as it left them.

Revision 1 is the bare sha256, what every release before a kind's first revision stored.
"""

from __future__ import annotations

REVISIONS = {
    # FOCUS: a Parquet Tags map is read as its JSON object, tags that are no JSON object are rejected
    "cost_exports": 2,
    # AWS CUR 2.0 (a delivery's execution id, not a sha256): Savings Plan and reservation fees amortised
    "cur_exports": 2,
    # Chaos Toolkit: a dry run, a failed action or rollback, a declared rollback not played, an activity
    # status other than succeeded no longer pass
    "drill_journals": 2,
    # LitmusChaos: read by the same drill-run model, whose outcomes the stricter rules above decide
    "chaos_results": 2,
    # a time or commit missing from the file is read from its path inside the root, not above it
    "benchmarks": 2,
}


def revision(kind: str) -> int:
    return REVISIONS.get(kind, 1)


def derived_version(kind: str, sha256: str) -> str:
    """The version the rows derived from a ``kind`` file with content ``sha256`` (a CUR delivery: its
    execution id) are stored under."""
    rev = revision(kind)
    return sha256 if rev == 1 else f"{sha256}#reader-{rev}"

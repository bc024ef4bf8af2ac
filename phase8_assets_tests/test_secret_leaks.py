"""No secret leaves a drill journal: every string leaf carries one, and nothing written shows it.

Each string leaf of a demo Chaos Toolkit journal gets a secret of the corpus appended (in its
context). Leaves the reader still accepts go into one journal; a leaf the reader refuses with its
secret (a status, a timestamp) gets a journal of its own, so rejections are exercised too. Then
``phase8 gate`` (in-process, on a real DAGSTER_HOME) and the drill run reports run, and every byte
they wrote is searched: warehouse rows (each table dumped), the Dagster instance (SQLite rows and
stored outputs), PHASE8_HOME (reports, telemetry), the report folder, stdout and stderr.
"""

import json
import os
import sqlite3
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.definitions import defs
from phase8_assets.defs.resources import Phase8Settings, Warehouse
from phase8_assets.evidence import EvidenceError, read_evidence
from phase8_assets.shared import telemetry
from phase8_assets.warehouse import warehouse_path
from phase8_assets_tests.conftest import DATA
from phase8_assets_tests.corpus.secrets import SECRETS, SHAPES, leaks

pytestmark = pytest.mark.slow

JOURNAL = DATA / "evidence/drills/db-failover/2026-11-17.json"


def string_leaves(doc, path=()):
    """(path, value) of every string in a JSON document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from string_leaves(value, (*path, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from string_leaves(value, (*path, index))
    elif isinstance(doc, str):
        yield path, doc


def with_leaf(doc, path, value):
    doc = json.loads(json.dumps(doc))
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


def injected_journals() -> list[dict]:
    """One journal with every leaf the reader accepts injected, one per leaf it refuses."""
    base = json.loads(JOURNAL.read_bytes())
    combined, refused = base, []
    for i, (path, value) in enumerate(string_leaves(base)):
        secret = SECRETS[i % len(SECRETS)]
        candidate = with_leaf(base, path, f"{value} {secret.in_context()}")
        try:
            read_evidence("drill_journals", json.dumps(candidate).encode(), "candidate.json")
        except EvidenceError:
            refused.append(with_leaf(base, path, secret.in_context()))
            continue
        combined = with_leaf(combined, path, f"{value} {secret.in_context()}")
    return [combined, *refused]


def written_text(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` as text: databases as their rows, everything else as bytes."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".duckdb":
            with duckdb.connect(str(path), read_only=True) as conn:
                tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()]
                out[str(path)] = "\n".join(repr(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables)
        elif path.suffix in (".db", ".sqlite") or path.read_bytes()[:16] == b"SQLite format 3\x00":
            with sqlite3.connect(path) as conn:
                out[str(path)] = "\n".join(conn.iterdump())
        else:
            out[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return out


def test_the_corpus_covers_every_shape_the_redactor_knows():
    assert len(SECRETS) >= 50 and {s.shape for s in SECRETS} == set(SHAPES)
    assert len({s.value for s in SECRETS}) == len(SECRETS)


def test_no_secret_injected_into_a_journal_is_written_anywhere(tmp_path, monkeypatch, capfd):
    root = tmp_path / "root"
    (root / "drills").mkdir(parents=True)
    journals = injected_journals()
    assert len(journals) > 1  # both the accepted and the refused paths are exercised
    for index, journal in enumerate(journals):
        (root / f"drills/journal-{index:02d}.json").write_text(json.dumps(journal, indent=2))
    parent = os.path.relpath(DATA / "phase8.yaml", root)
    (root / "phase8.yaml").write_text(
        "apiVersion: phase8/v1\nkind: EvidenceConfig\n"
        f"extends: {parent}\nevidence:\n  drill_journals: {{paths: [drills/*.json]}}\n"
    )
    home, dagster_home, out = tmp_path / "phase8-home", tmp_path / "dagster-home", tmp_path / "out"
    dagster_home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("PHASE8_HOME", str(home))
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    telemetry.shutdown()
    try:
        result = CliRunner().invoke(main, ["gate", "--evidence", str(root), "--out", str(out)])
        assert result.exit_code == 1, result.output  # the drills have no qualifying run: blocked
        with dg.DagsterInstance.get() as instance:
            reports = defs.resolve_job_def("drill_cadence_job").execute_in_process(
                instance=instance,
                resources={
                    "settings": Phase8Settings(evidence=[str(root)]),
                    "warehouse": Warehouse(database=str(warehouse_path(home))),
                },
            )
        assert reports.success
        telemetry.flush()
    finally:
        telemetry.shutdown()
    assert list((home / "reports/drills").rglob("*.html")), "the drill run reports were written"
    assert (home / "telemetry").is_dir() and (out / "gate-report.json").is_file()
    captured = capfd.readouterr()
    written = {
        "stdout": result.output + captured.out,
        "stderr": captured.err,
        **written_text(home),
        **written_text(dagster_home),
        **written_text(out),
    }
    assert "[REDACTED]" in written[str(out / "gate-report.json")]
    found = {where: [f"{s.shape}: {s.in_context()!r}" for s in leaks(text)] for where, text in written.items()}
    assert {where: hits for where, hits in found.items() if hits} == {}

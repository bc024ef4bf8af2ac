"""evidence_versions: which version of each file is current, and since when the others stopped counting."""

from datetime import UTC, datetime

from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.warehouse import connect, current_version, latest_version, migrate, warehouse_path
from phase8_assets.warehouse.store import record_batch

T1, T2, T3 = (datetime(2026, 11, d, 12, tzinfo=UTC) for d in (1, 2, 3))


def _look(conn, root: str, present: list[tuple[str, str, str]], at: datetime) -> dict:
    batch = EvidenceBatch(roots=[root], present=[(root, kind, uri, sha) for kind, uri, sha in present])
    return record_batch(conn, batch, at)


def _versions(conn) -> list[tuple]:
    return conn.execute(
        "SELECT root, uri, sha256, seen_at::VARCHAR, ended_at::VARCHAR, ended_by FROM evidence_versions "
        "ORDER BY root, uri, seen_at, sha256"
    ).fetchall()


def test_changed_files_are_superseded_and_missing_ones_withdrawn(home):
    with connect(warehouse_path(home)) as conn:
        _look(conn, "/a", [("benchmarks", "/a/x.json", "v1"), ("otel_metrics", "/a/m.jsonl", "m1")], T1)
        _look(conn, "/b", [("benchmarks", "/b/x.json", "v1")], T1)
        again = _look(conn, "/a", [("benchmarks", "/a/x.json", "v1"), ("otel_metrics", "/a/m.jsonl", "m1")], T2)
        assert again["ended_versions"] == 0 and len(_versions(conn)) == 3  # the same evidence adds nothing
        changed = _look(conn, "/a", [("benchmarks", "/a/x.json", "v2")], T2)
        assert changed["ended_versions"] == 2
        restored = _look(conn, "/a", [("benchmarks", "/a/x.json", "v2"), ("otel_metrics", "/a/m.jsonl", "m1")], T3)
        assert restored["ended_versions"] == 0
        assert _versions(conn) == [
            ("/a", "/a/m.jsonl", "m1", "2026-11-01 12:00:00", "2026-11-02 12:00:00", "withdrawn"),
            ("/a", "/a/m.jsonl", "m1", "2026-11-03 12:00:00", None, None),  # back: a new period
            ("/a", "/a/x.json", "v1", "2026-11-01 12:00:00", "2026-11-02 12:00:00", "superseded"),
            ("/a", "/a/x.json", "v2", "2026-11-02 12:00:00", None, None),
            ("/b", "/b/x.json", "v1", "2026-11-01 12:00:00", None, None),  # another root is not touched
        ]


def test_upgrade_apply_carries_the_files_already_read_over(home):
    """A warehouse of the previous schema with history in it: every file read becomes a version,
    earlier contents of a path superseded when the next one was read."""
    path = warehouse_path(home)
    with connect(path, check_schema=False) as conn:
        migrate(conn, 7)  # the schema before evidence versions (0008)
        rows = [
            ("/a", "benchmarks", "old", "/a/x.json", 10, None, datetime(2026, 11, 1)),
            ("/a", "benchmarks", "new", "/a/x.json", 11, None, datetime(2026, 11, 2)),
            ("/a", "otel_metrics", "m1", "/a/m.jsonl", 12, None, datetime(2026, 11, 1)),
        ]
        conn.executemany("INSERT INTO evidence_files VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    result = CliRunner().invoke(main, ["upgrade", "apply", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert "0008_evidence_versions" in result.output
    with connect(path) as conn:
        assert current_version(conn) == latest_version()
        assert _versions(conn) == [
            ("/a", "/a/m.jsonl", "m1", "2026-11-01 00:00:00", None, None),
            ("/a", "/a/x.json", "old", "2026-11-01 00:00:00", "2026-11-02 00:00:00", "superseded"),
            ("/a", "/a/x.json", "new", "2026-11-02 00:00:00", None, None),
        ]
        assert conn.execute("SELECT count(*) FROM evidence_files").fetchone()[0] == 3  # nothing lost

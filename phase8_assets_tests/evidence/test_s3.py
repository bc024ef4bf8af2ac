"""Evidence roots on S3, through boto3 against a real HTTP endpoint (moto's server on 127.0.0.1)."""

from pathlib import Path

import pytest

from phase8_assets.evidence.config import ConfigError, load_config
from phase8_assets.evidence.roots import RootError, S3Root
from phase8_assets_tests.conftest import DATA, _free_port, gate_report, upload_tree

pytestmark = pytest.mark.slow


def test_gate_on_an_s3_root_matches_the_local_verdict(s3, home):
    upload_tree(s3, "evidence", "chatterbox/10.4.0", DATA)
    local = gate_report([DATA], home)
    remote = gate_report(["s3://evidence/chatterbox/10.4.0"], home)
    assert remote["evidence_roots"] == ["s3://evidence/chatterbox/10.4.0"]
    assert [(g["gate"], g["status"], g["summary"]) for g in remote["gates"]] == [
        (g["gate"], g["status"], g["summary"]) for g in local["gates"]
    ]


def test_folder_markers_are_folders_not_evidence_files(s3, home):
    """The S3 console's "Create folder" (and some sync tools) leave a zero-byte object whose key ends
    in "/": it is a folder, as it is locally, never a benchmark file that cannot be read."""
    upload_tree(s3, "evidence", "markers", DATA)
    for folder in ("evidence/bench/release/", "evidence/health/", "docs/ops/"):
        s3.put_object(Bucket="evidence", Key=f"markers/{folder}", Body=b"")
    assert [f.rel for f in S3Root("s3://evidence/markers").glob("evidence/bench/**/*")] == [
        p.relative_to(DATA).as_posix() for p in sorted((DATA / "evidence/bench").rglob("*")) if p.is_file()
    ]
    local = gate_report([DATA], home)
    remote = gate_report(["s3://evidence/markers"], home)
    assert [(g["gate"], g["status"], g["summary"]) for g in remote["gates"]] == [
        (g["gate"], g["status"], g["summary"]) for g in local["gates"]
    ]


def test_s3_scenario_extends_across_prefixes(s3, home):
    upload_tree(s3, "evidence", "chatterbox/10.4.0", DATA)
    report = gate_report(["s3://evidence/chatterbox/10.4.0/scenarios/broken-evidence"], home)
    gate = next(g for g in report["gates"] if g["gate"] == "evidence_validity")
    assert gate["status"] == "fail"
    assert gate["findings"][0]["evidence"].startswith(
        "s3://evidence/chatterbox/10.4.0/scenarios/broken-evidence/isolation/"
    )


def test_s3_glob_and_missing_config(s3):
    s3.create_bucket(Bucket="empty")
    with pytest.raises(ConfigError, match=r"^no phase8.yaml in s3://empty/nothing: create one \(see README"):
        load_config(["s3://empty/nothing"])
    # A bucket that is not there is said so, not taken for a root without its config.
    with pytest.raises(ConfigError, match=r"s3://no-such-bucket/p: the bucket 'no-such-bucket' does not exist$"):
        load_config(["s3://no-such-bucket/p"])
    with pytest.raises(RootError, match="the bucket 'no-such-bucket' does not exist"):
        S3Root("s3://no-such-bucket/p").exists("docs/ops/a.md")
    s3.put_object(Bucket="empty", Key="p/a/x.xml", Body=b"1")
    s3.put_object(Bucket="empty", Key="p/a/b/y.xml", Body=b"22")
    root = S3Root("s3://empty/p")
    assert [f.rel for f in root.glob("a/*.xml")] == ["a/x.xml"]
    assert [(f.rel, f.size) for f in root.glob("a/**/*.xml")] == [("a/b/y.xml", 2), ("a/x.xml", 1)]


def test_bulk_evidence_is_hashed_while_streamed(s3, tmp_path):
    """OTLP and FOCUS objects are staged in chunks while hashed; too large is refused as it streams."""
    import hashlib

    from phase8_assets.evidence import readers
    from phase8_assets.evidence.collect import collect
    from phase8_assets.evidence.roots import CHUNK_BYTES

    otlp = b"".join(p.read_bytes() for p in sorted((DATA / "evidence/otel").glob("*.jsonl"))[-16:])
    focus = (DATA / "evidence/cost/focus-2026-11.csv.gz").read_bytes()
    assert len(otlp) > CHUNK_BYTES  # more than one chunk
    s3.create_bucket(Bucket="bulk")
    for key, body in (("r/otel/m.jsonl", otlp), ("r/cost/f.csv.gz", focus), ("r/big/m.jsonl", otlp)):
        s3.put_object(Bucket="bulk", Key=key, Body=body)
    s3.put_object(
        Bucket="bulk",
        Key="r/phase8.yaml",
        Body=b"apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: '1', commit: 4f2c9e1}\n"
        b"evidence:\n  otel_metrics: {paths: ['otel/*.jsonl', 'big/*.jsonl'], max_age: P1D}\n"
        b"  cost_exports: {paths: ['cost/*'], max_age: P1D}\n",
    )
    root = S3Root("s3://bulk/r")
    path, digest, size = root.stage("otel/m.jsonl", len(otlp), tmp_path)
    assert (digest, size, path.read_bytes()) == (hashlib.sha256(otlp).hexdigest(), len(otlp), otlp)
    with pytest.raises(Exception, match=rf"s3://bulk/r/otel/m.jsonl: {CHUNK_BYTES}\+ bytes exceeds the limit of 10"):
        root.stage("otel/m.jsonl", 10, tmp_path)
    batch = collect(load_config(["s3://bulk/r"], set(readers())))
    found = {f.uri: (f.sha256, f.size) for f in batch.files}
    assert found == {
        "s3://bulk/r/otel/m.jsonl": (hashlib.sha256(otlp).hexdigest(), len(otlp)),
        "s3://bulk/r/cost/f.csv.gz": (hashlib.sha256(focus).hexdigest(), len(focus)),
    }
    assert batch.duplicates == [("s3://bulk/r/big/m.jsonl", "s3://bulk/r/otel/m.jsonl")]


def test_bulk_objects_named_like_a_spool_are_read_and_spooled_whole(s3, tmp_path):
    """A remote object staged under its own name never shares a file with the rows its reader
    spools, whatever the object is called; a step in another process stages and reads it again."""
    import duckdb
    import pyarrow.parquet as pq

    from phase8_assets.evidence import readers
    from phase8_assets.evidence.collect import collect, spool_of

    duckdb.execute(
        f"COPY (SELECT * FROM read_csv('{DATA / 'evidence/cost/focus-2026-11.csv.gz'}', all_varchar = true)) "
        f"TO '{tmp_path / 'focus.parquet'}' (FORMAT parquet)"
    )
    otlp = sorted((DATA / "evidence/otel").glob("*.jsonl"))[-1].read_bytes()
    s3.create_bucket(Bucket="named")
    s3.put_object(Bucket="named", Key="r/cost/rows.parquet", Body=(tmp_path / "focus.parquet").read_bytes())
    s3.put_object(Bucket="named", Key="r/otel/points.parquet", Body=otlp)
    s3.put_object(
        Bucket="named",
        Key="r/phase8.yaml",
        Body=b"apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: '1', commit: 4f2c9e1}\n"
        b"evidence:\n  otel_metrics: {paths: ['otel/*'], max_age: P1D}\n  cost_exports: {paths: ['cost/*'], max_age: P1D}\n",
    )
    batch = collect(load_config(["s3://named/r"], set(readers())))
    assert not batch.rejections, batch.rejections
    focus, points = batch.files_of("cost_exports")[0], batch.files_of("otel_metrics")[0]
    assert pq.read_metadata(focus.spool).num_rows == focus.summary["rows"] > 0
    assert pq.read_metadata(points.spool).num_rows == points.summary["points"] > 0
    for f, count in ((focus, focus.summary["rows"]), (points, points.summary["points"])):
        f.spool.unlink()
        assert pq.read_metadata(spool_of(f, tmp_path)).num_rows == count


def test_an_unreachable_endpoint_is_named_without_the_credentials_in_its_url(s3, monkeypatch, tmp_path, home):
    """botocore quotes the endpoint URL in its connection errors; a password in it reaches neither a
    rejection (the warehouse, the report) nor the CLI's error line (a CI log)."""
    from click.testing import CliRunner

    from phase8_assets.cli import main

    password = "Hunter2-s3-endpoint"
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://phase8:{password}@127.0.0.1:{_free_port()}")
    root = S3Root("s3://evidence/rel")
    calls = {
        "glob": lambda: root.glob("bench/*.json"),
        "read_bytes": lambda: root.read_bytes("bench/a.json", 100),
        "exists": lambda: root.exists("phase8.yaml"),
        "stage": lambda: root.stage("otel/m.jsonl", 100, tmp_path),
    }
    for name, call in calls.items():
        with pytest.raises(RootError, match="Could not connect to the endpoint URL") as err:
            call()
        assert password not in str(err.value), name
        assert "http://phase8:[REDACTED]@127.0.0.1" in str(err.value), name
    result = CliRunner().invoke(main, ["gate", "--evidence", "s3://evidence/rel", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "Could not connect to the endpoint URL" in result.stderr and password not in result.output + result.stderr


def test_listed_keys_are_read_as_listed_not_in_their_normal_form(s3, tmp_path):
    """S3 keys are literal: a script joining a prefix that ends in "/" writes ``drills//disk-full/x.json``,
    an object of its own next to ``drills/disk-full/x.json``. Reading the normal form instead read the
    other object (a failed drill's journal counted as the passing one it sits beside) or reported a
    listed object missing (NoSuchKey)."""
    s3.create_bucket(Bucket="literal")
    objects = {
        "r/drills/disk-full/x.json": b"passing",
        "r/drills//disk-full/x.json": b"failing",
        "r/drills//disk-full/only.json": b"alone",
        "r/drills/./y.json": b"dot",
        "r/drills\\z.json": b"backslash",
    }
    for key, body in objects.items():
        s3.put_object(Bucket="literal", Key=key, Body=body)
    root = S3Root("s3://literal/r")
    listed = root.glob("**/*.json")
    assert sorted(f.rel for f in listed) == sorted(key[2:] for key in objects)
    for ref in listed:
        assert root.read_bytes(ref.rel, 100) == objects["r/" + ref.rel], ref.rel
        path, _, size = root.stage(ref.rel, 100, tmp_path)
        assert path.read_bytes() == objects["r/" + ref.rel] and size == len(objects["r/" + ref.rel]), ref.rel
    # still confined: a key with '..' is named, never read
    s3.put_object(Bucket="literal", Key="r/drills/../w.json", Body=b"up")
    with pytest.raises(RootError, match=r"leaves the evidence root"):
        root.read_bytes("drills/../w.json", 100)


def test_a_staged_copy_is_of_the_object_named_not_of_its_folders_normal_form(s3, tmp_path):
    """DuckDB reads an object from a local copy (a FOCUS export, a CUR data file, a spool read again
    in another process). The copy was made from the URI's folder as a root and its name, and a
    root's prefix loses its trailing "/": ``a//x.csv`` was copied from ``a/x.csv``."""
    from phase8_assets.evidence.roots import local_copy

    s3.create_bucket(Bucket="copies")
    s3.put_object(Bucket="copies", Key="r/a/x.csv", Body=b"plain")
    s3.put_object(Bucket="copies", Key="r/a//x.csv", Body=b"double")
    s3.put_object(Bucket="copies", Key="r/b//y.csv", Body=b"alone")
    for uri, body in (("s3://copies/r/a//x.csv", b"double"), ("s3://copies/r/a/x.csv", b"plain"),
                      ("s3://copies/r/b//y.csv", b"alone")):  # fmt: skip
        assert Path(local_copy(uri, tmp_path)).read_bytes() == body, uri

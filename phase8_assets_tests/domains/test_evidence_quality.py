"""The evidence gates' decisions: evidence dated in the future is an error and never makes a kind fresh."""

from datetime import UTC, datetime, timedelta

import pytest

from phase8_assets.domains.evidence_quality import evidence_freshness
from phase8_assets.evidence.collect import EvidenceBatch, EvidenceFile
from phase8_assets.evidence.config import ConfigError, load_config

AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONFIG = """apiVersion: phase8/v1
kind: EvidenceConfig
release: {version: "1.0.0", commit: "abcdef1"}
evidence:
  isolation_results: {paths: ["x/*.xml"], max_age: P7D}
"""


def config(tmp_path, limits=""):
    (tmp_path / "phase8.yaml").write_text(CONFIG + limits)
    return load_config([str(tmp_path)])


def batch(*ages: timedelta) -> EvidenceBatch:
    files = [
        EvidenceFile("/r", "isolation_results", f"/r/x/{i}.xml", f"sha{i}", 1, AT - age, "testsuite/@timestamp", {})
        for i, age in enumerate(ages)
    ]
    out = EvidenceBatch(roots=["/r"], files=files)
    return out


def freshness(cfg, b):
    b.set_aside_future(AT, cfg.clock_skew)
    return evidence_freshness(b, cfg, AT)


def test_a_file_from_the_future_is_an_error_and_does_not_keep_its_kind_fresh(tmp_path):
    cfg = config(tmp_path)
    # Years ahead, beside a file 30 days old: the kind is stale, and the future file is an error.
    findings, summary = freshness(cfg, batch(-timedelta(days=3 * 365), timedelta(days=30)))
    got = {(f.severity, f.rule, f.evidence) for f in findings}
    assert got == {("error", "timestamp-not-in-future", "/r/x/0.xml"), ("error", "max-age", "/r/x/1.xml")}
    future = next(f for f in findings if f.rule == "timestamp-not-in-future")
    assert "testsuite/@timestamp 2029-11-19T12:00:00Z (1095d 0h ahead)" in future.observed and "PT5M" in future.limit
    assert summary.startswith("0 of 1")
    # The only file is from the future: nothing readable is left to make the kind fresh.
    findings, _ = freshness(cfg, batch(-timedelta(days=1)))
    assert [(f.rule, f.observed) for f in findings if f.rule == "evidence-present"] == [
        ("evidence-present", "all 1 file(s) rejected or dated in the future")
    ]


def test_the_clock_skew_tolerance_is_configurable(tmp_path):
    ten_minutes_ahead = batch(-timedelta(minutes=10))
    findings, _ = freshness(config(tmp_path), ten_minutes_ahead)
    assert [f.rule for f in findings] == ["timestamp-not-in-future", "evidence-present"]
    findings, summary = freshness(config(tmp_path, "limits: {clock_skew: PT15M}\n"), batch(-timedelta(minutes=10)))
    assert findings == [] and summary.startswith("1 of 1")
    with pytest.raises(ConfigError, match="limits.clock_skew: expected an ISO 8601 duration"):
        config(tmp_path, "limits: {clock_skew: 5m}\n")


CUR_CONFIG = """apiVersion: phase8/v1
kind: EvidenceConfig
release: {version: "1.0.0", commit: "abcdef1"}
evidence:
  cur_exports: {paths: ["cur/*/metadata/**/*-Manifest.json"], max_age: P3D}
"""


@pytest.mark.parametrize(
    ("last_day", "stale"),
    [("2026-11-19", False), ("2026-11-02", True), ("2026-08-31", True)],  # evaluated 2026-11-20
)
def test_a_cur_delivery_is_as_old_as_its_last_usage_day(tmp_path, last_day, stale):
    """A CUR 2.0 delivery's time is the last usage day its data files hold (the collector reads them),
    as a FOCUS export's is its last charge day: one delivered up to yesterday is fresh, one that
    stopped on the 2nd is stale on the 20th though its month is not over (it was fresh until the
    month ended), last quarter's is stale. The manifest alone vouches for its period's first day."""
    from phase8_assets.evidence.cur import read_manifest

    (tmp_path / "phase8.yaml").write_text(CUR_CONFIG)
    uri = "s3://b/cur/x/metadata/BILLING_PERIOD=2026-11/x-Manifest.json"
    alone = read_manifest(b'{"executionId": "e", "dataFiles": ["s3://b/cur/x/data/p.parquet"]}', uri)
    assert (alone.observed_at, alone.timestamp_field) == (datetime(2026, 11, 1, tzinfo=UTC), "BILLING_PERIOD")
    observed = datetime.fromisoformat(last_day).replace(tzinfo=UTC)
    found = EvidenceFile("/r", "cur_exports", uri, "sha", 1, observed, "line_item_usage_start_date", {})
    findings, _ = freshness(load_config([str(tmp_path)]), EvidenceBatch(roots=["/r"], files=[found]))
    assert [(f.rule, f.observed) for f in findings] == (
        [("max-age", f"newest is {'81d 12h' if last_day == '2026-08-31' else '18d 12h'} old")] if stale else []
    )


def test_a_configured_path_that_matches_nothing_is_named_while_others_match(tmp_path):
    """A misspelt second pattern, or a second root that sent nothing, is not silently dropped."""
    b = batch(timedelta(days=1))
    b.unmatched["isolation_results"] = ["/r2/nightly/*.xml"]
    findings, summary = freshness(config(tmp_path), b)
    assert [(f.severity, f.rule, f.observed, f.evidence) for f in findings] == [
        ("warning", "pattern-matches", "/r2/nightly/*.xml matches no file", "/r2/nightly/*.xml")
    ]
    assert summary.startswith("1 of 1")

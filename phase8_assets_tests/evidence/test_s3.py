"""Evidence roots on S3, through boto3 against a real HTTP endpoint (moto's server on 127.0.0.1)."""

import pytest

from phase8_assets.evidence.config import ConfigError, load_config
from phase8_assets.evidence.roots import S3Root
from phase8_assets_tests.conftest import DATA, gate_report, upload_tree

pytestmark = pytest.mark.slow


def test_gate_on_an_s3_root_matches_the_local_verdict(s3, home):
    upload_tree(s3, "evidence", "chatterbox/10.4.0", DATA)
    local = gate_report([DATA], home)
    remote = gate_report(["s3://evidence/chatterbox/10.4.0"], home)
    assert remote["evidence_roots"] == ["s3://evidence/chatterbox/10.4.0"]
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
    s3.put_object(Bucket="empty", Key="p/a/x.xml", Body=b"1")
    s3.put_object(Bucket="empty", Key="p/a/b/y.xml", Body=b"22")
    root = S3Root("s3://empty/p")
    assert [f.rel for f in root.glob("a/*.xml")] == ["a/x.xml"]
    assert [(f.rel, f.size) for f in root.glob("a/**/*.xml")] == [("a/b/y.xml", 2), ("a/x.xml", 1)]

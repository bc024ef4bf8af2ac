import os
from pathlib import Path

import pytest

from phase8_assets.evidence import readers
from phase8_assets.evidence.config import ConfigError, load_config
from phase8_assets_tests.conftest import DATA, SCENARIOS

KINDS = set(readers())
BASE = """apiVersion: phase8/v1
kind: EvidenceConfig
release: {version: "1.0.0", commit: "abcdef1"}
evidence:
  runbooks: {paths: ["docs/*.md"], max_age: P30D}
"""


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "phase8.yaml").write_text(text)
    return folder


def test_demo_config_loads():
    config = load_config([str(DATA)], KINDS)
    assert config.release["version"] == "10.4.0"
    assert config.evaluation_time == "2026-11-20T12:00:00Z"
    assert config.tenants == ["acme", "globex", "initech"]
    # The demo has evidence of every kind but CUR 2.0, which lives on S3 (tested against moto), and other
    # tools' formats read for governance (ODCS contracts, Trivy/Snyk ignores: tested on real samples).
    assert set(config.evidence) == set(readers()) - {"cur_exports", "data_contracts", "foreign_exceptions"}
    assert config.evidence["drill_journals"].max_age.days == 35
    assert config.runbook_for("evidence_validity").endswith("data/docs/ops/evidence-validity.md")


def test_extends_overrides_only_what_it_changes_and_paths_stay_with_their_file():
    config = load_config([str(SCENARIOS / "waived-broken-evidence")], KINDS)
    # Inherited from data/phase8.yaml: resolved against data/.
    assert config.evidence["drill_journals"].sources[0].uri == str(DATA / "evidence/drills/**/*.json")
    # Declared by broken-evidence/phase8.yaml: resolved against that folder.
    assert config.evidence["isolation_results"].sources[0].uri == str(SCENARIOS / "broken-evidence/isolation/*.xml")
    # Declared by the scenario itself.
    # extra_waivers add to the inherited waivers, each resolved against its own file.
    assert [w.uri for w in config.waivers] == [
        str(DATA / "waivers/*.yaml"),
        str(SCENARIOS / "waived-broken-evidence/waivers/*.yaml"),
    ]
    assert config.evidence["isolation_results"].max_age.days == 7  # inherited setting of an overridden kind
    assert config.root_uris == [str(SCENARIOS / "waived-broken-evidence")]


@pytest.mark.parametrize("path", ["../outside/*.xml", "/etc/passwd", "a/../../b.xml", "s3://other/x"])
def test_paths_are_confined_to_the_root(tmp_path, path):
    write(tmp_path, BASE.replace('"docs/*.md"', f'"{path}"'))
    with pytest.raises(ConfigError, match=r"phase8.yaml: evidence.runbooks.paths: .* (leaves|must be a path relative)"):
        load_config([str(tmp_path)], KINDS)


def test_symlink_leading_outside_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text(
        "---\ntitle: x\nowner: a@b.io\nreviewed: 2026-01-01\n---\nRestart the service.\n"
    )
    root = write(tmp_path / "root", BASE)
    (root / "docs").mkdir()
    os.symlink(outside / "secret.md", root / "docs" / "link.md")
    config = load_config([str(root)], KINDS)
    from phase8_assets.evidence.collect import collect

    batch = collect(config)
    assert not batch.files
    assert batch.rejections[0].field == "(file)" and "outside the evidence root" in batch.rejections[0].reason


def test_a_broken_symlink_is_a_rejected_file_not_a_missing_one(tmp_path):
    """``latest.md -> run-1233.md`` whose target did not arrive: named and refused (validity fails, as do
    the gates of its kind), never silently left out while the kind's other files pass."""
    from phase8_assets.evidence.collect import collect

    root = write(tmp_path / "root", BASE)
    (root / "docs").mkdir()
    (root / "docs/ok.md").write_text("---\ntitle: x\nowner: a@b.io\nreviewed: 2026-01-01\n---\nRestart the service.\n")
    os.symlink("run-1233.md", root / "docs" / "latest.md")
    os.mkdir(root / "docs" / "folder.md")  # a folder named like a file is a folder: not evidence
    batch = collect(load_config([str(root)], KINDS))
    assert [f.uri for f in batch.files] == [str(root / "docs/ok.md")]
    (rejection,) = batch.rejections
    assert (rejection.uri, rejection.field) == (str(root / "docs/latest.md"), "(file)")
    assert rejection.reason == f"a broken symlink: its target {root / 'docs/run-1233.md'} does not exist"


def test_a_file_given_as_the_root_says_which_folder_to_give():
    from phase8_assets.evidence.roots import RootError, open_root

    with pytest.raises(RootError, match=rf"phase8.yaml: is a file; .* \(--evidence {DATA.as_posix()}\)"):
        open_root(DATA / "phase8.yaml")


def _deny(monkeypatch, denied: Path) -> None:
    """``denied`` cannot be listed or entered, as chmod 000 does for anyone but root (tests run as root)."""
    scandir, stat = os.scandir, Path.stat

    def no_scandir(path="."):
        if Path(path) == denied:
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    def no_stat(self, *, follow_symlinks=True):
        if denied in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return stat(self, follow_symlinks=follow_symlinks)

    monkeypatch.setattr(os, "scandir", no_scandir)
    monkeypatch.setattr(Path, "stat", no_stat)


def _runbook_root(tmp_path: Path, paths: str = '["docs/*.md"]') -> Path:
    root = write(tmp_path / "root", BASE.replace('["docs/*.md"]', paths))
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "docs" / "a.md").write_text(
        "---\ntitle: x\nowner: team:x\nreviewed: 2026-01-01\n---\nRestart the service.\n"
    )
    return root


@pytest.mark.parametrize("denied", ["docs", "."])
def test_a_folder_that_cannot_be_listed_is_a_rejection_naming_it_not_no_files(tmp_path, monkeypatch, denied):
    """An unreadable evidence folder (or one its parent hides) is named with the reason; before, it
    read as "no files matched", or crashed the collection when a parent could not be entered."""
    from phase8_assets.evidence.collect import collect

    root = _runbook_root(tmp_path)
    config = load_config([str(root)], KINDS)
    _deny(monkeypatch, (root / denied).resolve())
    batch = collect(config)
    assert not batch.files and not batch.unmatched
    [rejection] = batch.rejections
    assert rejection.kind == "runbooks" and rejection.field == "(listing)"
    assert rejection.uri == str((root / "docs").resolve()) and "Permission denied" in rejection.reason


def test_a_folder_the_glob_cannot_reach_is_no_finding_and_other_files_still_count(tmp_path, monkeypatch):
    from phase8_assets.evidence.collect import collect

    root = _runbook_root(tmp_path)
    _deny(monkeypatch, (root / "docs" / "deep").resolve())
    assert [f.uri for f in collect(load_config([str(root)], KINDS)).files] == [str((root / "docs/a.md").resolve())]
    assert not collect(load_config([str(root)], KINDS)).rejections  # docs/*.md never looks into docs/deep
    root2 = _runbook_root(tmp_path / "2", '["docs/**/*.md"]')
    _deny(monkeypatch, (root2 / "docs" / "deep").resolve())
    batch = collect(load_config([str(root2)], KINDS))
    assert [f.uri for f in batch.files] == [str((root2 / "docs/a.md").resolve())]  # what can be read counts
    assert [(r.uri, r.field) for r in batch.rejections] == [(str((root2 / "docs/deep").resolve()), "(listing)")]


def test_an_unreadable_file_says_why(tmp_path, monkeypatch):
    from phase8_assets.evidence.collect import collect

    root = _runbook_root(tmp_path)
    config = load_config([str(root)], KINDS)
    real_open = open

    def no_open(file, *args, **kwargs):
        if str(file).endswith("a.md"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", no_open)
    [rejection] = collect(config, max_workers=1).rejections
    assert rejection.field == "(file)" and "Permission denied" in rejection.reason, rejection


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE.replace("phase8/v1", "phase8/v2"), r"apiVersion: expected 'phase8/v1', got 'phase8/v2'"),
        (BASE.replace("apiVersion: phase8/v1\n", ""), r"apiVersion: expected 'phase8/v1', got nothing"),
        (BASE.replace('commit: "abcdef1"', 'commit: "main"'), r"release.commit: expected a git commit id"),
        (BASE.replace("P30D", "30 days"), r"evidence.runbooks.max_age: expected an ISO 8601 duration"),
        (BASE.replace("runbooks:", "benchmarkz:"), r"evidence.benchmarkz: unknown evidence kind"),
        (BASE + "owners: {default: platform}\n", r"owners.default: expected an owner: an email address or team:name"),
        (BASE + "colour: blue\n", r"Additional properties are not allowed \('colour' was unexpected\)"),
        (BASE.replace('release: {version: "1.0.0", commit: "abcdef1"}\n', ""), r"\(document\): 'release' is required"),
        (BASE + 'evaluation_time: "yesterday"\n', r"evaluation_time: expected an ISO 8601 timestamp"),
        # A date alone would pin midnight UTC, silently: refused as --as-of refuses it.
        (BASE + "evaluation_time: 2026-11-20\n", r"evaluation_time: expected a timestamp with a time, .*'2026-11-20'"),
        (BASE + 'evaluation_time: "20261120"\n', r"evaluation_time: expected a timestamp with a time, .*'20261120'"),
        # A time without its zone: UTC, or the local time of whoever pinned it? Refused, not guessed.
        (
            BASE + 'evaluation_time: "2026-11-20T12:00:00"\n',
            r"evaluation_time: expected a time zone .*'2026-11-20T12:00:00'",
        ),
        (
            BASE + "evaluation_time: 2026-11-20 12:00:00\n",
            r"evaluation_time: expected a time zone .*'2026-11-20 12:00:00'",
        ),
        ("a: [1\n", r"phase8.yaml: line 2, column 1: invalid YAML"),
    ],
)
def test_invalid_config_names_file_and_field(tmp_path, text, message):
    write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config([str(tmp_path)], KINDS)
    assert str(info.value).startswith(str(tmp_path / "phase8.yaml"))


def test_missing_root_and_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="evidence root not found"):
        load_config([str(tmp_path / "nope")], KINDS)
    with pytest.raises(ConfigError) as info:
        load_config([str(tmp_path)], KINDS)
    assert str(info.value) == (
        f"no phase8.yaml in {tmp_path}: create one (see README § Pointing it at your own evidence)"
    )


def test_extends_cycle(tmp_path):
    write(tmp_path / "a", BASE + "extends: ../b/phase8.yaml\n")
    write(tmp_path / "b", BASE + "extends: ../a/phase8.yaml\n")
    with pytest.raises(ConfigError, match="extends: cycle"):
        load_config([str(tmp_path / "a")], KINDS)


@pytest.mark.parametrize(
    ("extends", "message"),
    [
        ("/etc/passwd", "must be a path relative"),
        ("../../../../../../../../etc/passwd", "must name another phase8.yaml"),
        ("base/../../outside/phase8.yaml", "leaves the evidence root"),
        ("s3://bucket/phase8.yaml", "must be a path relative"),
        ("../outside.yaml", "must name another phase8.yaml"),
    ],
)
def test_extends_is_confined_like_every_other_path(tmp_path, monkeypatch, extends, message):
    import builtins

    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k))
    root = write(tmp_path / "root", BASE + f"extends: {extends}\n")
    with pytest.raises(ConfigError, match=rf"root/phase8.yaml: extends: .*{message}"):
        load_config([str(root)], KINDS)
    assert [f for f in opened if str(tmp_path) in f] == [str(root / "phase8.yaml")]  # nothing else is opened
    assert not any(f.startswith("/etc") for f in opened)


def test_extends_may_not_follow_a_symlink_out_of_the_folder_it_climbs_to(tmp_path):
    write(tmp_path / "outside", BASE)
    (tmp_path / "base").mkdir()
    (tmp_path / "base/phase8.yaml").symlink_to(tmp_path / "outside/phase8.yaml")
    child = write(tmp_path / "base/scenario", BASE + "extends: ../phase8.yaml\n")
    with pytest.raises(ConfigError, match=r"scenario/phase8.yaml: extends: .*leads outside"):
        load_config([str(child)], KINDS)


def test_several_roots_merge_kinds_and_the_first_rules(tmp_path):
    second = write(
        tmp_path / "billing",
        BASE.replace('"1.0.0"', '"9.9.9"').replace("runbooks:", "isolation_results:").replace("docs/*.md", "x/*.xml"),
    )
    config = load_config([str(DATA), str(second)], KINDS)
    assert config.release["version"] == "10.4.0"  # the first root's config rules
    sources = [loc.uri for loc in config.evidence["isolation_results"].sources]
    assert sources == [str(DATA / "evidence/isolation/*.xml"), str(second / "x/*.xml")]
    assert config.evidence["isolation_results"].max_age.days == 7


def test_extra_paths_add_to_what_a_kind_inherits(tmp_path):
    write(tmp_path / "base", BASE)
    child = write(
        tmp_path / "base/scenario",
        BASE.split("evidence:")[0] + "extends: ../phase8.yaml\nevidence:\n  runbooks: {extra_paths: [more/*.md]}\n",
    )
    config = load_config([str(child)], KINDS)
    assert [s.uri for s in config.evidence["runbooks"].sources] == [
        str(tmp_path / "base/docs/*.md"),
        str(child / "more/*.md"),
    ]
    assert config.evidence["runbooks"].max_age.days == 30


def test_links_are_base_urls(tmp_path):
    write(tmp_path / "ok", BASE + 'links: {runbooks: "https://wiki.example.com/ops", evidence: "s3://ci/x"}\n')
    assert load_config([str(tmp_path / "ok")], KINDS).links["evidence"] == "s3://ci/x"
    write(tmp_path / "bad", BASE + "links: {runbooks: docs/ops}\n")
    with pytest.raises(ConfigError, match="links"):
        load_config([str(tmp_path / "bad")], KINDS)


def test_a_config_changed_at_the_same_path_is_read_anew_and_a_loaded_one_cannot_be_altered(tmp_path):
    write(tmp_path, BASE)
    first = load_config([str(tmp_path)], KINDS)
    first.release["version"] = "altered by a caller"
    assert load_config([str(tmp_path)], KINDS).release["version"] == "1.0.0"
    write(tmp_path, BASE.replace("1.0.0", "2.0.0"))
    assert load_config([str(tmp_path)], KINDS).release["version"] == "2.0.0"
    write(tmp_path, BASE.replace("release:", "relase:"))
    with pytest.raises(ConfigError, match="release"):
        load_config([str(tmp_path)], KINDS)


def test_a_file_name_that_is_not_utf8_is_a_rejection_naming_it_and_the_rest_counts(tmp_path):
    """A name in another encoding (a zip from Windows unpacked on Linux: ``caf\\xe9.md``) comes back
    from the file system as lone surrogates, which no report or warehouse row can hold: the
    evidence step crashed and every gate errored, naming no file. Now the file is a rejection naming
    it (its bytes escaped), and the other files still count."""
    from phase8_assets.evidence.collect import collect
    from phase8_assets.shared.clock import now_utc
    from phase8_assets.warehouse import connect, warehouse_path
    from phase8_assets.warehouse.store import record_batch

    root = _runbook_root(tmp_path)
    with open(os.path.join(os.fsencode(root / "docs"), b"caf\xe9.md"), "wb") as fh:
        fh.write((root / "docs" / "a.md").read_bytes())
    batch = collect(load_config([str(root)], KINDS))
    assert [f.uri for f in batch.files] == [str((root / "docs/a.md").resolve())]
    [rejection] = batch.rejections
    assert rejection.kind == "runbooks" and rejection.field == "(listing)"
    assert rejection.uri == str((root / "docs").resolve()) + "/caf\\xe9.md" and "not UTF-8" in rejection.reason
    with connect(warehouse_path(tmp_path / "home")) as conn:
        record_batch(conn, batch, now_utc())

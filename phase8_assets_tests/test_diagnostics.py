"""``phase8 diagnostics``: secrets seeded everywhere stay out of the bundle, readable values stay
readable; the size cap, paths outside the home and a held warehouse are handled and said."""

import json
import shutil
import zipfile

import pytest
from click.testing import CliRunner

from phase8_assets.cli import main
from phase8_assets.diagnostics import MIN_SIZE, parse_size
from phase8_assets.warehouse import warehouse_path
from phase8_assets_tests.conftest import held_by_another_process
from phase8_assets_tests.corpus.secrets import SECRETS as CORPUS
from phase8_assets_tests.corpus.secrets import leaks

pytestmark = pytest.mark.slow

# Secrets in the shapes operators leak them: cloud keys, tokens, passwords in DSNs and headers.
SECRETS = [
    "AKIAQX7ZK2M4N5P6R7S8",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Hk2Lm9T",
    "ghp_Zq8Hk2Lm9Tx4Vb7Nc1Rd5Sf3Gj6Ka0We2Ty9U",
    "xoxb-4417823-9921-Zq8Hk2Lm9Tx4",
    "glpat-Zq8Hk2Lm9Tx4Vb7Nc1Rd5",
    "S3cr3t-DB-Passw0rd",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwaGFzZTgifQ.c2lnbmF0dXJlLXBoYXNlOA",
    "sk_live_Zq8Hk2Lm9Tx4Vb7Nc1Rd",
]
AWS_ID, AWS_SECRET, GH, SLACK, GITLAB, DB_PASSWORD, JWT, STRIPE = SECRETS


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A root and a home with one recorded gate run of it, secrets in the config and the evidence."""
    from phase8_assets.gate_run import run_gate

    tmp_path = tmp_path_factory.mktemp("diagnostics")
    root = tmp_path / "root"
    (root / "docs/ops").mkdir(parents=True)
    (root / "health").mkdir()
    (root / "phase8.yaml").write_text(
        "apiVersion: phase8/v1\nkind: EvidenceConfig\n"
        'release: {version: "10.4.0", commit: "4f2c9e1a"}\n'
        "owners: {default: team:sre}\n"
        "evidence:\n"
        '  runbooks: {paths: ["docs/ops/*.md"], max_age: P180D}\n'
        '  health_responses: {paths: ["health/*.json"], max_age: P1D}\n'
        "gates:\n"
        f'  perf_budgets: {{enabled: false, reason: "CI token ghp leaked as token={GH}; rotate (CHAT-9)"}}\n'
    )
    output = f"connect postgresql://phase8:{DB_PASSWORD}@db:5432/chat failed; Authorization: Bearer {JWT}"
    (root / "health/chat.json").write_text(
        json.dumps(
            {
                "status": "fail",
                "checks": {"db:connections": [{"status": "fail", "output": output, "time": "2026-11-20T11:50:00Z"}]},
            }
        )  # fmt: skip
    )
    home = tmp_path / "home"
    dagster_home = tmp_path / "dagster-home"
    dagster_home.mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_SDK_DISABLED", "true")
        env.setenv("DAGSTER_HOME", str(dagster_home))  # the run is recorded in the instance too
        run_gate([str(root)], out=None, as_of="2026-11-20T12:00:00Z", home=home)
    return root, home, dagster_home


@pytest.fixture
def seeded(recorded, tmp_path, monkeypatch):
    """The recorded home (a copy of it), logs and a Dagster-less environment carrying secrets."""
    root, home = recorded[0], shutil.copytree(recorded[1], tmp_path / "home", symlinks=True)
    logs = home / "telemetry"
    logs.mkdir(exist_ok=True)
    (logs / "app.log").write_text(
        f"INFO export to s3 with aws_access_key_id={AWS_ID} aws_secret_access_key={AWS_SECRET}\n"
        f"WARN slack hook xoxb token {SLACK} and gitlab {GITLAB} and stripe {STRIPE}\n"
        "INFO gate run finished for team:sre, release 10.4.0\n"
        # and every shape of the product's secret corpus, as it appears in real text
        + "".join(f"DEBUG {secret.in_context()}\n" for secret in CORPUS)
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer {GH}")
    monkeypatch.setenv("PHASE8_DB_URL", f"postgresql://phase8:{DB_PASSWORD}@db:5432/phase8")
    return root, home


def unzip(path) -> dict[str, str]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name).decode() for name in zf.namelist()}


def diagnostics(*args) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["diagnostics", *args])
    return result.exit_code, result.output


def test_no_seeded_secret_is_anywhere_in_the_bundle_and_plain_values_stay_readable(seeded, tmp_path):
    root, home = seeded
    code, output = diagnostics("--home", str(home), "--evidence", str(root), "--out", str(tmp_path / "d.zip"))
    assert code == 0, output
    files = unzip(tmp_path / "d.zip")
    assert {"manifest.json", "config/environment.json", "config/evidence.json", "warehouse.json", "evidence.json",
            "runs.json", "gate-report.json", "health.json", "logs/app.log", "concurrency_slots.json"} <= files.keys()  # fmt: skip
    everything = "\n".join(files.values())
    assert [s for s in SECRETS if s in everything] == []
    assert leaks(everything) == []
    # what an engineer needs to read stays readable
    env = json.loads(files["config/environment.json"])
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1" and env["AWS_SECRET_ACCESS_KEY"] == "[REDACTED]"
    assert "postgresql://phase8:[REDACTED]@db:5432/phase8" in env["PHASE8_DB_URL"]
    assert "team:sre, release 10.4.0" in files["logs/app.log"]
    report = json.loads(files["gate-report.json"])
    health = next(g for g in report["gates"] if g["gate"] == "supportability")
    assert any("db:connections fail" in f["observed"] for f in health["findings"])
    assert json.loads(files["warehouse.json"])["tables"]["gate_runs"] == 1
    assert json.loads(files["runs.json"])[0]["status"] == "blocked"
    # the gate run's health snapshot: the root's verdict and gate statuses, never findings
    from phase8_assets.health_app import gate_verdicts

    verdicts, ok = gate_verdicts(home)
    [entry] = verdicts["roots"]
    assert ok and (entry["root"], entry["verdict"], entry["gates"]["supportability"]) == (str(root), "blocked", "fail")
    assert "findings" not in files["health.json"] and "db:connections" not in files["health.json"]
    manifest = json.loads(files["manifest.json"])
    assert {f["name"] for f in manifest["files"]} == files.keys() - {"manifest.json"}
    assert manifest["versions"]["phase8_assets"] and manifest["versions"]["duckdb"]


def test_with_dagster_home_the_runs_come_from_the_instance(seeded, recorded, tmp_path, monkeypatch):
    root, home = seeded
    monkeypatch.setenv("DAGSTER_HOME", str(recorded[2]))
    code, output = diagnostics("--home", str(home), "--out", str(tmp_path / "d.zip"))
    assert code == 0, output
    [run] = json.loads(unzip(tmp_path / "d.zip")["runs.json"])
    assert (run["source"], run["job"], run["status"]) == ("dagster", "release_gate", "FAILURE")
    assert run["failing_steps"] and all(step["step"] and step["error"] for step in run["failing_steps"])
    assert json.loads(unzip(tmp_path / "d.zip")["concurrency_slots.json"]) == {"status": "ok", "leaked": [], "fix": ""}


def test_the_size_cap_truncates_with_a_note_never_silently(seeded, tmp_path):
    root, home = seeded
    (home / "telemetry/big.log").write_text("INFO a line of an ordinary log\n" * 20_000)
    code, output = diagnostics("--home", str(home), "--max-size", str(MIN_SIZE), "--out", str(tmp_path / "d.zip"))
    assert code == 0, output
    files = unzip(tmp_path / "d.zip")
    manifest = json.loads(files["manifest.json"])
    assert sum(f["size"] for f in manifest["files"]) + len(files["manifest.json"]) <= MIN_SIZE
    cut = [f for f in manifest["files"] if "truncated_from" in f] + [{"name": n} for n in manifest["omitted"]]
    assert cut and "truncated" in output + json.dumps(manifest["omitted"])
    assert any(f["name"] == "logs/big.log" for f in cut)
    if "logs/big.log" in files:  # its most recent lines, after a note saying what was left out
        assert files["logs/big.log"].startswith("[phase8 diagnostics: the first ")
        assert files["logs/big.log"].rstrip("\n").endswith("INFO a line of an ordinary log")


def test_links_out_of_the_home_are_not_followed(seeded, tmp_path):
    root, home = seeded
    outside = tmp_path / "outside.log"
    outside.write_text(f"the neighbour's file {GH}\n")
    (home / "telemetry/linked.log").symlink_to(outside)
    code, output = diagnostics("--home", str(home), "--out", str(tmp_path / "d.zip"))
    files = unzip(tmp_path / "d.zip")
    assert code == 0 and "logs/linked.log" not in files and "the neighbour's file" not in "".join(files.values())
    assert "logs/linked.log" in json.loads(files["manifest.json"])["omitted"]


def test_a_warehouse_held_by_a_run_is_waited_for_briefly_then_reported(seeded, tmp_path):
    root, home = seeded
    with held_by_another_process(warehouse_path(home)):
        code, output = diagnostics("--home", str(home), "--lock-wait", "0.5", "--out", str(tmp_path / "d.zip"))
    assert code == 0, output
    files = unzip(tmp_path / "d.zip")
    unavailable = json.loads(files["manifest.json"])["unavailable"]
    assert "locked" in unavailable["warehouse.json"] and "gate-report.json" in unavailable
    assert "health.json" in files and "not included: warehouse.json" in output


def test_a_dagster_instance_that_cannot_be_opened_is_named_and_the_bundle_still_written(seeded, tmp_path, monkeypatch):
    """The usual reason for a ticket: DAGSTER_HOME's dagster.yaml is invalid (or its database down).
    The bundle is still written, the instance's runs and slots named as unavailable, not a traceback."""
    root, home = seeded
    dagster_home = tmp_path / "dagster-home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(f"storage:\n  postgres:\n    postgres_db:\n      username: dagster\n"
                                               f"      password: {DB_PASSWORD}\n")  # fmt: skip
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    code, output = diagnostics("--home", str(home), "--out", str(tmp_path / "d.zip"))
    assert code == 0, output
    files = unzip(tmp_path / "d.zip")
    unavailable = json.loads(files["manifest.json"])["unavailable"]
    for name in ("runs.json", "concurrency_slots.json"):
        assert "cannot be read: DagsterInvalidConfigError" in unavailable[name] and "db_name" in unavailable[name]
        assert f"not included: {name}" in output and name not in files
    assert {"warehouse.json", "gate-report.json", "health.json", "config/dagster.json"} <= files.keys()
    assert DB_PASSWORD not in "\n".join(files.values())


def test_sizes_parse_and_bad_ones_are_refused():
    assert (parse_size("50MB"), parse_size("512KiB"), parse_size("1000")) == (50_000_000, 524_288, 1000)
    for bad in ("fifty", "10XB", "-1MB"):
        with pytest.raises(ValueError, match="--max-size"):
            parse_size(bad)

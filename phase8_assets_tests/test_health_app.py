"""``phase8 serve``: the running server on 127.0.0.1 against its committed OpenAPI contract
(schemathesis), each state of the snapshot, and the contract against the IETF draft's examples."""

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings

from phase8_assets.health_app import health, openapi_yaml
from phase8_assets.warehouse import connect, warehouse_path
from phase8_assets.warehouse.health import snapshot_path, write_snapshot
from phase8_assets_tests.conftest import REPO, _free_port, held_by_another_process

pytestmark = pytest.mark.slow

CONTRACT = REPO / "docs/ops/health-openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(CONTRACT)
AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def contract_schema(name: str) -> dict:
    doc = yaml.safe_load(CONTRACT.read_text())
    return {**doc["components"]["schemas"][name], "components": doc["components"]}


def valid(body: dict, name: str = "HealthResponse") -> bool:
    jsonschema.Draft202012Validator(contract_schema(name), format_checker=jsonschema.FormatChecker()).validate(body)
    return True


def fresh_home(path: Path, at: datetime = AT) -> Path:
    with connect(warehouse_path(path)):
        pass  # a fresh warehouse at the latest schema, as the first gate run leaves it
    write_snapshot(path, "gate", 0, at)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``phase8 serve`` on a loopback port, serving a home with a fresh snapshot."""
    home = fresh_home(tmp_path_factory.mktemp("served") / "home", datetime.now(UTC))
    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("phase8")), "serve", "--port", str(port), "--home", str(home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/livez", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("phase8 serve did not start") from None
                time.sleep(0.2)
        yield url, home
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@SCHEMA.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_running_server_keeps_its_committed_contract(case, server):
    case.call_and_validate(base_url=server[0])


def test_the_committed_contract_is_the_apps(tmp_path):
    assert CONTRACT.read_text() == openapi_yaml()


def test_health_answers_in_the_ietf_format_on_loopback_and_gate_tells_no_findings(server):
    url, home = server
    response = requests.get(f"{url}/health", timeout=5)
    assert response.headers["content-type"] == "application/health+json"
    body = response.json()
    assert valid(body) and set(body["checks"]) == {"snapshot:age", "warehouse:schemaVersion", "gate:lastRun"}
    assert (response.status_code, body["status"]) == (200, "warn")  # no gate run recorded yet
    assert body["checks"]["gate:lastRun"][0]["output"] == "no gate run recorded yet"
    gate = requests.get(f"{url}/gate", timeout=5)
    assert gate.status_code == 200 and valid(gate.json(), "GateVerdicts") and gate.json()["roots"] == []
    assert requests.post(f"{url}/health", timeout=5).status_code == 405  # read-only


def test_probes_answer_as_kubernetes_components_do(server):
    url, _ = server
    assert requests.get(f"{url}/livez", timeout=5).text == "ok"
    verbose = requests.get(f"{url}/readyz?verbose", timeout=5)
    assert verbose.status_code == 200
    assert verbose.text.splitlines() == [
        "[+]snapshot:age ok",
        "[+]warehouse:schemaVersion ok",
        "[+]gate:lastRun ok",
        "readyz check passed",
    ]


def test_the_server_answers_while_a_run_holds_the_warehouse(server):
    url, home = server
    with held_by_another_process(warehouse_path(home)):
        started = time.monotonic()
        assert requests.get(f"{url}/health", timeout=5).json()["status"] == "warn"
        assert time.monotonic() - started < 2


def test_a_missing_snapshot_fails_and_says_why(tmp_path):
    body = health(tmp_path, AT)
    assert valid(body) and body["status"] == "fail"
    assert "no health snapshot" in body["checks"]["snapshot:age"][0]["output"]


def test_an_old_snapshot_warns_then_fails(tmp_path):
    home = fresh_home(tmp_path / "home")
    assert health(home, AT + timedelta(hours=1))["checks"]["snapshot:age"][0]["status"] == "pass"
    warn = health(home, AT + timedelta(days=2))["checks"]["snapshot:age"][0]
    assert warn["status"] == "warn" and "older than 1d 0h" in warn["output"]
    assert health(home, AT + timedelta(days=8))["status"] == "fail"


def test_an_unreadable_snapshot_fails(tmp_path):
    home = fresh_home(tmp_path / "home")
    snapshot_path(home).write_text("{ half written")
    body = health(home, AT)
    assert body["status"] == "fail" and "unreadable health snapshot" in body["checks"]["snapshot:age"][0]["output"]


def test_a_warehouse_that_needs_an_upgrade_fails(tmp_path):
    home = fresh_home(tmp_path / "home")
    with connect(warehouse_path(home)) as conn:
        conn.execute("DELETE FROM schema_version WHERE version = (SELECT max(version) FROM schema_version)")
    write_snapshot(home, "upgrade", 0, AT)
    check = health(home, AT)["checks"]["warehouse:schemaVersion"][0]
    assert check["status"] == "fail" and "phase8 upgrade apply" in check["output"]


def test_a_gate_run_log_changed_by_hand_is_said_in_the_snapshot_not_a_traceback_of_every_command(tmp_path):
    """Every command ends by writing the snapshot: a ``gate_runs`` table whose columns were changed
    by hand made each one (``upgrade status``, ``preflight``, ``audit verify``...) end in a DuckDB
    Binder Error traceback, exit 1, after its own output."""
    from click.testing import CliRunner

    from phase8_assets.cli import main

    home = fresh_home(tmp_path / "home")
    with connect(warehouse_path(home)) as conn:
        conn.execute("ALTER TABLE gate_runs RENAME COLUMN release_version TO rel")
    result = CliRunner().invoke(main, ["upgrade", "status", "--home", str(home)])
    assert result.exit_code == 0 and result.exception is None, result.output
    snapshot = json.loads(snapshot_path(home).read_text())
    assert "cannot read the gate runs" in snapshot["warehouse"]["problem"], snapshot["warehouse"]
    check = health(home, AT)["checks"]["warehouse:schemaVersion"][0]
    assert check["status"] == "warn" and "cannot read the gate runs" in check["output"]


@pytest.mark.realdata
def test_the_drafts_example_keeps_the_committed_contract_and_draft_01s_does_not(real_samples):
    assert valid(json.loads((real_samples / "health/ietf_draft_health_example.json").read_text()))
    legacy = json.loads((real_samples / "health/ietf_draft01_health_example_legacy_keys.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        valid(legacy)


def test_every_command_but_serve_leaves_a_snapshot_of_its_home(tmp_path):
    from click.testing import CliRunner

    from phase8_assets.cli import main

    home = fresh_home(tmp_path / "home")
    snapshot_path(home).unlink()
    assert CliRunner().invoke(main, ["upgrade", "status", "--home", str(home)]).exit_code == 0
    snapshot = json.loads(snapshot_path(home).read_text())
    assert snapshot["command"] == {"name": "upgrade", "exit_code": 0}
    assert snapshot["warehouse"]["version"] == snapshot["warehouse"]["latest_version"]
    result = CliRunner().invoke(main, ["upgrade", "preflight", "--home", str(home)])
    assert json.loads(snapshot_path(home).read_text())["command"]["exit_code"] == result.exit_code
    elsewhere = tmp_path / "never-used"
    CliRunner().invoke(main, ["upgrade", "status", "--home", str(elsewhere)])
    assert not elsewhere.exists()  # a home nobody created is not created by the snapshot

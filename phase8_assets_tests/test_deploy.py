"""The production deployment in ``deploy/``: Dagster on PostgreSQL with the queued run coordinator,
the code location as its own gRPC server and the daemon as its own process, proved end to end on a
real PostgreSQL; the Helm values and the Compose file checked for what the chart and Compose read."""

import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from dagster._core.scheduler.instigation import InstigatorStatus

from phase8_assets_tests.conftest import REPO, SCENARIOS, _free_port, env_without_pytest

DEPLOY = REPO / "deploy"
ROOT = SCENARIOS / "perf-regression"  # blocked: its run fails on a blocking check
ROOT_TAG = "phase8/root_id"


def _load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def test_the_instance_is_postgres_with_a_queue_one_gate_per_root_and_run_monitoring():
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    config = _load("dagster.yaml")
    assert validate_config(dagster_instance_config_schema(), config).success
    db = config["storage"]["postgres"]["postgres_db"]
    assert {"hostname", "port", "username", "password", "db_name"} <= set(db)
    assert all("env" in db[k] for k in ("hostname", "port", "username", "password", "db_name"))  # no secret here
    assert db["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert {"key": ROOT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in config["concurrency"]["runs"][
        "tag_concurrency_limits"
    ]
    assert config["run_monitoring"]["enabled"] and config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    assert config["retention"]["schedule"]["purge_after_days"] > 0
    assert _load("workspace.yaml")["load_from"][0]["grpc_server"]["location_name"] == "phase8_assets"


def test_helm_values_set_what_the_official_chart_reads():
    values = _load("helm-values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "phase8_assets.definitions"]
    assert {"repository", "tag", "pullPolicy"} <= set(deployment["image"]) and deployment["port"] == 4000
    assert {e["name"] for e in deployment["env"]} >= {"PHASE8_HOME", "PHASE8_EVIDENCE"}
    daemon = values["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    limits = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert limits == _load("dagster.yaml")["concurrency"]["runs"]["tag_concurrency_limits"]
    assert daemon["runMonitoring"]["enabled"] and daemon["runMonitoring"]["freeSlotsAfterRunEndSeconds"] > 0
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
    assert values["retention"]["enabled"]


def test_compose_runs_webserver_daemon_and_code_server_apart_on_postgres():
    compose = _load("compose.yaml")
    services = compose["services"]
    assert set(services) == {"postgres", "code-server", "webserver", "daemon"}
    assert services["code-server"]["command"][:3] == ["dagster", "code-server", "start"]
    assert services["webserver"]["command"][0] == "dagster-webserver" and services["webserver"]["ports"] == [
        "3000:3000"
    ]
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    for name in ("code-server", "webserver", "daemon"):
        env = services[name]["environment"]
        assert env["DAGSTER_PG_HOST"] == "postgres" and env["PHASE8_CODE_SERVER_HOST"] == "code-server"
        assert services[name]["image"] == "phase8-assets:latest"
        assert "postgres" in services[name]["depends_on"]
    assert "pip install" in (DEPLOY / "Dockerfile").read_text()


def test_docker_compose_accepts_the_file(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose is not installed here")
    result = subprocess.run(
        [docker, "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
        capture_output=True, text=True, env={**env_without_pytest(), "PHASE8_PG_PASSWORD": "x"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _wait_for_port(port: int, proc: subprocess.Popen, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{what} did not listen on {port}")


@pytest.mark.slow
def test_release_gate_through_the_queue_and_the_daemon_on_postgres(postgres, tmp_path, monkeypatch):
    """The deploy/ instance on a real PostgreSQL: a code server, a daemon, ``dagster job launch``
    queues release_gate, the daemon launches it; run, check results and schedule state are read back
    from PostgreSQL."""
    import dagster as dg
    import psycopg

    db = f"dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.conninfo(), autocommit=True) as pg:
        pg.execute(f"CREATE DATABASE {db}")
    home = tmp_path / "dagster-home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {
        **env_without_pytest(),
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_USER": postgres.superuser,
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": db,
        "PHASE8_CODE_SERVER_HOST": "127.0.0.1",
        "PHASE8_CODE_SERVER_PORT": str(port),
        "PHASE8_HOME": str(tmp_path / "phase8-home"),
        "PHASE8_EVIDENCE": str(ROOT),
        "OTEL_SDK_DISABLED": "true",
    }
    bin_dir = Path(sys.executable).parent
    workspace = ["-w", str(DEPLOY / "workspace.yaml")]
    logs = tmp_path / "logs"
    logs.mkdir()
    started = []
    try:
        code_server = subprocess.Popen(
            [str(bin_dir / "dagster"), "code-server", "start", "-h", "127.0.0.1", "-p", str(port),
             "-m", "phase8_assets.definitions"],
            env=env, stdout=(logs / "code-server").open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(code_server)
        _wait_for_port(port, code_server, "dagster code-server")
        daemon = subprocess.Popen(
            [str(bin_dir / "dagster-daemon"), "run", *workspace],
            env=env, stdout=(logs / "daemon").open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        started.append(daemon)
        from phase8_assets.defs.gates import run_tags
        from phase8_assets.defs.resources import load_evidence_config

        tags = run_tags(load_evidence_config([str(ROOT)]))
        commands = [  # launched as from the UI: no tags given, the job's own name the default root
            [str(bin_dir / "dagster"), "job", "launch", "-j", "release_gate", *workspace],
            [str(bin_dir / "dagster"), "schedule", "start", "weekly_report_schedule", *workspace],
        ]
        for command in [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                        for c in commands]:  # fmt: skip
            output = command.communicate(timeout=120)[0]
            assert command.returncode == 0, output

        for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"):
            monkeypatch.setenv(name, env[name])
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 150
            while True:
                (run,) = instance.get_runs(filters=dg.RunsFilter(job_name="release_gate"))
                if run.is_finished or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert run.is_finished, (logs / "daemon").read_text()[-3000:]
            assert run.status == dg.DagsterRunStatus.FAILURE  # the scenario is blocked
            assert run.tags[ROOT_TAG] == tags[ROOT_TAG]
            checks = {
                e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed
                for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
            }
            assert (checks["perf_regressions"], checks["evidence_freshness"], checks["supportability"]) == (
                False,
                True,
                True,
            )
            (state,) = [s for s in instance.all_instigator_state() if s.name == "weekly_report_schedule"]
            assert state.status == InstigatorStatus.RUNNING

        with psycopg.connect(postgres.conninfo(dbname=db)) as pg:  # it is all in PostgreSQL
            events = {
                e for (e,) in pg.execute("SELECT dagster_event_type FROM event_logs WHERE run_id = %s", [run.run_id])
            }
            assert {"PIPELINE_ENQUEUED", "PIPELINE_STARTING", "PIPELINE_FAILURE"} <= events, events  # queued, launched
            assert pg.execute("SELECT status FROM runs WHERE run_id = %s", [run.run_id]).fetchone() == ("FAILURE",)
            assert pg.execute("SELECT count(*) FROM asset_check_executions WHERE run_id = %s", [run.run_id]).fetchone()[
                0
            ] == len(checks)
            schedules = pg.execute(
                "SELECT status FROM instigators WHERE instigator_type = 'SCHEDULE' AND instigator_body LIKE %s",
                ['%"weekly_report_schedule"%'],
            ).fetchall()
            assert schedules == [("RUNNING",)]
    finally:
        for proc in reversed(started):
            proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

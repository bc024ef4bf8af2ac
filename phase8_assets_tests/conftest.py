import functools
import getpass
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
SCENARIOS = DATA / "scenarios"
REAL_SAMPLES = REPO.parent / "shared" / "real-samples"

pytest_plugins = ["pytester"]  # the isolation plugin's own tests run small suites in-process


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's PHASE8_*/DAGSTER_HOME/OTEL settings."""
    names = ("PHASE8_HOME", "PHASE8_EVIDENCE", "PHASE8_AS_OF", "PHASE8_WAREHOUSE", "PHASE8_DUCKDB_POOL_LIMIT",
             "DAGSTER_HOME", "OTEL_EXPORTER_OTLP_ENDPOINT", "PHASE8_PREFETCH")  # fmt: skip
    for name in names:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")


@pytest.fixture
def real_samples() -> Path:
    if not REAL_SAMPLES.is_dir():
        pytest.skip("../shared/real-samples is not present")
    return REAL_SAMPLES


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "phase8-home"


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    """A persistent Dagster instance (``DAGSTER_HOME``) whose runs and events a test can read."""
    folder = tmp_path / "dagster-home"
    folder.mkdir()
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    return folder


def gate_report(roots, home, as_of=None) -> dict:
    """The gate report for ``roots`` (paths or URIs), run in-process on ``home``, no report files."""
    from phase8_assets.gate_run import run_gate

    return run_gate([str(r) for r in roots], out=None, as_of=as_of, home=home).report


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real HTTP S3 endpoint: moto's server mode on 127.0.0.1."""
    port = _free_port()
    server = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("moto_server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """boto3 pointed at the local S3 server through the standard AWS_* variables."""
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return boto3.client("s3", region_name="us-east-1")


def upload_tree(client, bucket: str, prefix: str, folder: Path) -> None:
    existing = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            client.put_object(
                Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes()
            )


def env_without_pytest() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return env


def _postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server binaries (initdb, pg_ctl are not on PATH there)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    superuser: str

    def conninfo(self, user: str | None = None, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={user or self.superuser} dbname={dbname} connect_timeout=5"


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 (a free port, its unix socket in its own temp folder),
    started once per session. PostgreSQL refuses to run as root: as root it runs as ``postgres``."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed (Debian: apt-get install postgresql)")
    as_root = os.geteuid() == 0
    if as_root and shutil.which("runuser") is None:
        pytest.skip("running as root and runuser is missing: PostgreSQL cannot be started as root")
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    folder = Path(tempfile.mkdtemp(prefix="phase8-pg-"))
    if as_root:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", _free_port()
    superuser = "postgres" if as_root else getpass.getuser()
    run = functools.partial(subprocess.run, check=True, capture_output=True, text=True)
    run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", superuser, "--auth=trust", "-E", "UTF8", "--no-sync"])
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off -c full_page_writes=off"
    try:
        run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"])
    except subprocess.CalledProcessError as exc:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        pytest.fail(f"PostgreSQL did not start: {exc.stderr}{log}")
    yield Postgres("127.0.0.1", port, superuser)
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                   capture_output=True, check=False)  # fmt: skip
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url():
    """A throwaway Redis (Debian's redis-server) on 127.0.0.1, no persistence, started once per session."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("redis-server did not start")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@contextmanager
def held_by_another_process(database: Path):
    """Another process holds ``database`` open read-write (as a running gate does) until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(database)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


# Modules whose tests share one expensive module-scoped fixture (several gate runs, a lake, a
# migrated warehouse): pytest-xdist keeps each on one worker, so the fixture is built once.
SHARED_FIXTURE_MODULES = {"test_fail_closed", "test_lake", "test_operations", "test_crash_safety", "test_audit"}


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in SHARED_FIXTURE_MODULES:
            item.add_marker(pytest.mark.xdist_group(module))


@pytest.fixture(autouse=True)
def _no_defs_state_storage_of_a_gone_instance():
    """A Dagster instance sets its defs-state storage in a context variable that outlives it when the
    instance is garbage-collected without being disposed; the next test's ``materialize`` would then
    resolve a dead weakref ("Attempted to resolve undefined DagsterInstance weakref"). Start each
    test without one (Dagster's own context variable: there is no public reset)."""
    from dagster._core.storage.defs_state.base import _current_storage

    _current_storage.set(None)

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
SCENARIOS = DATA / "scenarios"
REAL_SAMPLES = REPO.parent / "shared" / "real-samples"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's PHASE8_*/DAGSTER_HOME/OTEL settings."""
    for name in ("PHASE8_HOME", "PHASE8_EVIDENCE", "PHASE8_AS_OF", "DAGSTER_HOME", "OTEL_EXPORTER_OTLP_ENDPOINT"):
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

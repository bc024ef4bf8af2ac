"""Resources: where the evidence is (``Phase8Settings``) and the warehouse (``Warehouse``)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from phase8_assets.domains.gates import GATES
from phase8_assets.evidence import readers
from phase8_assets.evidence.config import ConfigError, EvidenceConfig, load_config
from phase8_assets.shared.clock import TimeParseError, evaluation_time
from phase8_assets.warehouse import connect, warehouse_path

DUCKDB_POOL = "duckdb"
DEMO_EVIDENCE = Path(__file__).resolve().parents[2] / "data"


def default_evidence() -> list[str]:
    """``PHASE8_EVIDENCE`` (comma-separated roots), else the embedded demo evidence in ``data/``."""
    value = os.environ.get("PHASE8_EVIDENCE", "").strip()
    return [part.strip() for part in value.split(",") if part.strip()] or [str(DEMO_EVIDENCE)]


def load_evidence_config(locations: list[str]) -> EvidenceConfig:
    """The config of the evidence roots, with every gate it names checked against the known gates."""
    config = load_config(locations, known_kinds=set(readers()))
    unknown = sorted(set(config.gates) - set(GATES))
    if unknown:
        raise ConfigError(f"{config.source}: gates.{unknown[0]}: unknown gate; expected one of {'|'.join(GATES)}")
    return config


class Phase8Settings(dg.ConfigurableResource):
    """Which evidence roots to evaluate and at what time (``--as-of`` > pinned config time > now)."""

    evidence: list[str] = Field(
        description="evidence roots: folders or s3://bucket/prefix; the first one's config rules"
    )
    as_of: str | None = Field(
        default=None, description="evaluation time (RFC 3339); overrides the config's pinned time"
    )

    def load(self) -> EvidenceConfig:
        return load_evidence_config(self.evidence)

    def evaluation_time(self, config: EvidenceConfig) -> datetime:
        try:
            return evaluation_time(self.as_of, config.evaluation_time)
        except TimeParseError as exc:
            raise ConfigError(str(exc)) from exc


def ensure_duckdb_pool(instance: dg.DagsterInstance) -> None:
    """Make sure the instance limits the ``duckdb`` pool to one step at a time.

    DuckDB lets one process at a time open the file, so every step that opens it sits in this
    pool. The limit is set here, not only in ``dagster.yaml``, because ``DAGSTER_HOME`` may point
    at an instance that has never heard of this project.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    if storage.get_concurrency_info(DUCKDB_POOL).slot_count != 1:
        storage.set_concurrency_slots(DUCKDB_POOL, 1)


class Warehouse(DuckDBResource):
    """The phase8 DuckDB warehouse; connections go through the one connection helper."""

    lock_wait_seconds: float = Field(default=30.0, description="how long to wait for another writer")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.instance is not None:
            ensure_duckdb_pool(context.instance)

    @property
    def reports_dir(self) -> Path:
        """Where assets write their HTML/Markdown reports: ``reports/`` beside the warehouse file."""
        return Path(self.database).resolve().parent / "reports"

    @contextmanager
    def get_connection(self):
        with connect(self.database, wait_s=self.lock_wait_seconds) as conn:
            yield conn


def default_resources() -> dict:
    return {
        "settings": Phase8Settings(evidence=default_evidence(), as_of=os.environ.get("PHASE8_AS_OF") or None),
        "warehouse": Warehouse(database=str(warehouse_path())),
    }

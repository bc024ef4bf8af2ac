"""Resources: where the evidence is (``Phase8Settings``) and the warehouse (``Warehouse``)."""

from __future__ import annotations

import os
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from dagster_duckdb import DuckDBResource
from pydantic import Field

from phase8_assets.domains.gates import GATES
from phase8_assets.evidence import readers
from phase8_assets.evidence.collect import EvidenceBatch
from phase8_assets.evidence.config import ConfigError, EvidenceConfig, load_config
from phase8_assets.shared.clock import TimeParseError, evaluation_time
from phase8_assets.shared.processes import ProcessIdentity, started_at
from phase8_assets.warehouse import connect, lake_configured, warehouse_path

DUCKDB_POOL = "duckdb"
# The process that executes a run's steps (ProcessIdentity token): a slot whose run's process has
# died is freed (``free_leaked_slots``), since run monitoring never sees in-process runs.
PROCESS_TAG = "phase8/process"
DEMO_EVIDENCE = Path(__file__).resolve().parents[2] / "data"


def default_evidence() -> list[str]:
    """``PHASE8_EVIDENCE`` (comma-separated roots), else the embedded demo evidence in ``data/``."""
    value = os.environ.get("PHASE8_EVIDENCE", "").strip()
    return [part.strip() for part in value.split(",") if part.strip()] or [str(DEMO_EVIDENCE)]


def load_evidence_config(locations: list[str]) -> EvidenceConfig:
    """The config of the evidence roots, with every gate it names checked against the known gates:
    a misspelt key would be ignored, leaving the gate with the default owner (who then approves its
    exceptions) or the default maximum exception lifetime."""
    config = load_config(locations, known_kinds=set(readers()))
    named = [
        *(f"gates.{gate}" for gate in config.gates if gate not in GATES),
        *(f"owners.{gate}" for gate in config.owners if gate not in GATES and gate != "default"),
        *(
            f"exceptions.per_gate.{gate}"
            for gate in (config.exceptions.per_gate if config.exceptions else {})
            if gate not in GATES
        ),
    ]
    if named:
        key = named[0]
        hint = " (an evidence kind's owner is evidence.<kind>.owner)" if key.split(".")[-1] in readers() else ""
        raise ConfigError(f"{config.source}: {key}: unknown gate; expected one of {'|'.join(GATES)}{hint}")
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


def duckdb_pool_limit() -> int:
    """1 for the DuckDB file (one process at a time can open it); on DuckLake, where many processes
    write, ``PHASE8_DUCKDB_POOL_LIMIT`` (default 4)."""
    if lake_configured() is None:
        return 1
    return max(1, int(os.environ.get("PHASE8_DUCKDB_POOL_LIMIT") or 4))


def ensure_duckdb_pool(instance: dg.DagsterInstance) -> None:
    """Make sure the instance limits the ``duckdb`` pool as the warehouse needs (``duckdb_pool_limit``).

    DuckDB lets one process at a time open the file, so every step that opens it sits in this
    pool. The limit is set here, not only in ``dagster.yaml``, because ``DAGSTER_HOME`` may point
    at an instance that has never heard of this project.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    limit = duckdb_pool_limit()
    if storage.get_concurrency_info(DUCKDB_POOL).slot_count != limit:
        storage.set_concurrency_slots(DUCKDB_POOL, limit)


@dataclass(frozen=True)
class LeakedSlot:
    """A pool slot (or a queued claim) of a run whose process is gone."""

    pool: str
    run_id: str
    step_key: str
    state: str  # "claimed" or "queued"
    reason: str

    def __str__(self) -> str:
        return f"pool {self.pool}: {self.state} by run {self.run_id} step {self.step_key}: {self.reason}"


def _holder_gone(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """Why the run holding a slot can no longer use it; ``None`` while it (may) still run."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return "the run is not in the instance's run storage"
    if run.is_finished:
        return f"the run has ended ({run.status.value})"
    holder = ProcessIdentity.parse(run.tags.get(PROCESS_TAG))
    if holder is not None:
        return (
            f"its {holder} (started at tick {holder.started}) is no longer alive" if holder.alive() is False else None
        )
    # A run recorded before its process was (killed before a step started, or by an older phase8):
    # the pid of Dagster's "Executing steps in process" event, which must have started before the run.
    record = instance.get_run_record_by_id(run_id)
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        pid = entry.dagster_event.engine_event_data.metadata.get("pid") if entry.dagster_event else None
        if pid is not None and str(pid.value).isdigit():
            began = started_at(int(pid.value))
            if began is None or (record.start_time is not None and began > record.start_time + 1):
                return f"its process {pid.value} (from the run's engine events) is no longer alive"
            return None
    return None


def leaked_slots(instance: dg.DagsterInstance) -> list[LeakedSlot]:
    """Every slot and queued claim, in any pool of ``instance``, whose run's recorded process is dead
    (or whose run has ended or vanished). A run without a recorded process counts as alive."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    found, verdicts = [], {}
    for pool, info in sorted(storage.get_concurrency_infos(sorted(storage.get_concurrency_keys())).items()):
        claimed = {(s.run_id, s.step_key) for s in info.claimed_slots}
        queued = {(p.run_id, p.step_key) for p in info.pending_steps} - claimed
        for state, entries in (("claimed", claimed), ("queued", queued)):
            for run_id, step_key in sorted(entries):
                if run_id not in verdicts:
                    verdicts[run_id] = _holder_gone(instance, run_id)
                if verdicts[run_id]:
                    found.append(LeakedSlot(pool, run_id, step_key, state, verdicts[run_id]))
    return found


def free_leaked_slots(instance: dg.DagsterInstance) -> list[LeakedSlot]:
    """Free the slots of dead runs and mark each such run failed, with the reason."""
    leaked = leaked_slots(instance)
    for run_id in dict.fromkeys(slot.run_id for slot in leaked):
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            reason = next(slot.reason for slot in leaked if slot.run_id == run_id)
            instance.report_run_failed(run, f"phase8 freed this run's concurrency slots: {reason}")
    return leaked


class Warehouse(DuckDBResource):
    """The phase8 DuckDB warehouse; connections go through the one connection helper."""

    lock_wait_seconds: float = Field(default=30.0, description="how long to wait for another writer")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.instance is not None:
            ensure_duckdb_pool(context.instance)
            # In-process runs set up their resources before their first step claims a slot: a slot
            # left by a killed run is freed here, whoever launched this run (UI, schedule, CLI).
            free_leaked_slots(context.instance)
            token = ProcessIdentity.current().token()
            if context.run is not None and context.run.tags.get(PROCESS_TAG) != token:
                # Whoever launched the run, record the process that holds its slots.
                context.instance.add_run_tags(context.run.run_id, {PROCESS_TAG: token})

    @property
    def reports_dir(self) -> Path:
        """Where assets write their HTML/Markdown reports: ``reports/`` beside the warehouse file."""
        return Path(self.database).resolve().parent / "reports"

    @contextmanager
    def get_connection(self):
        with connect(self.database, wait_s=self.lock_wait_seconds) as conn:
            yield conn


def _producing_run(context) -> str | None:
    """The run whose value an output is (this one), or an input reads (this run, or the run a
    re-execution takes it from); ``None`` when Dagster knows of none."""
    if isinstance(context, dg.OutputContext):
        return context.run_id
    try:
        return context.upstream_output.run_id
    except Exception:  # no upstream output (a value materialized outside this run's lineage)
        return None


class _EvidenceBatchMemo(PickledObjectFilesystemIOManager):
    """Dagster's pickling filesystem IO manager, with each run's asset values kept apart and the
    last few ``EvidenceBatch`` outputs it wrote or read kept in memory.

    Dagster's stores an asset's value by its key alone, so two runs at once (two roots, as the
    queue allows on one instance) would read each other's values between their steps. Here a run
    writes ``runs/<run id>/<asset key>`` and reads what its own lineage wrote; each output also
    becomes ``<asset key>``, the latest value, which an input whose producing run is unknown reads.

    Every gate step takes ``evidence_files`` as input, and unpickling it for each of them was a
    large share of a gate run: a batch is remembered by file path, modification time and size."""

    _memo: OrderedDict[tuple[str, int, int], EvidenceBatch] = OrderedDict()
    _MAX = 4

    def get_asset_relative_path(self, context):
        from upath import UPath

        run_id = _producing_run(context)
        key = UPath(*context.asset_key.path)
        return UPath("runs", run_id, key) if run_id else key

    def _latest(self, context):
        return self._with_extension(self._base_path.joinpath(*context.asset_key.path))

    @classmethod
    def _remember(cls, path, obj) -> None:
        if isinstance(obj, EvidenceBatch):
            stat = os.stat(path)
            cls._memo[(str(path), stat.st_mtime_ns, stat.st_size)] = obj
            while len(cls._memo) > cls._MAX:
                cls._memo.popitem(last=False)

    def dump_to_path(self, context, obj, path) -> None:
        super().dump_to_path(context, obj, path)
        if path.protocol in ("", "file"):
            self._remember(path.path, obj)
            if context is not None and context.has_asset_key:  # the latest value: a link to this run's file
                latest = self._latest(context)
                latest.parent.mkdir(parents=True, exist_ok=True)
                staged = latest.with_name(f".{latest.name}.{context.run_id}")
                staged.unlink(missing_ok=True)
                os.link(path.path, staged.path)
                os.replace(staged.path, latest.path)

    def load_from_path(self, context, path):
        if context is not None and context.has_asset_key and not path.exists():  # stored before runs were kept apart
            path = self._latest(context)
        if path.protocol in ("", "file"):
            try:
                stat = os.stat(path.path)
            except OSError:
                stat = None
            if stat is not None:
                hit = self._memo.get((str(path.path), stat.st_mtime_ns, stat.st_size))
                if hit is not None:
                    return hit
        obj = super().load_from_path(context, path)
        if path.protocol in ("", "file"):
            self._remember(path.path, obj)
        return obj


class Phase8IOManager(dg.FilesystemIOManager):
    """Step outputs pickled under the instance's storage, as Dagster's default IO manager does,
    with the evidence batch kept in memory for the steps of the same process."""

    def create_io_manager(self, context: dg.InitResourceContext) -> PickledObjectFilesystemIOManager:
        base_dir = self.base_dir or context.instance.storage_directory()
        return _EvidenceBatchMemo(base_dir=base_dir)


def default_resources() -> dict:
    return {
        "io_manager": Phase8IOManager(),
        "settings": Phase8Settings(evidence=default_evidence(), as_of=os.environ.get("PHASE8_AS_OF") or None),
        "warehouse": Warehouse(database=str(warehouse_path())),
    }

"""``phase8``: the command line for CI, evidence producers and operators.

Exit codes of ``phase8 gate``: 0 pass (warnings allowed), 1 blocked, 2 could not evaluate.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click

from phase8_assets import __version__
from phase8_assets.shared.reports import os_error_text

EXIT_PASS, EXIT_BLOCKED, EXIT_CANNOT_EVALUATE = 0, 1, 2
HOME_HELP = "Warehouse folder [env PHASE8_HOME; default .phase8]."
STATUS_COLOURS = {"pass": "green", "warn": "yellow", "fail": "red", "error": "red", "skipped": "cyan"}


def _fail(message: str) -> None:
    from phase8_assets.shared.redaction import redact_text

    click.echo(f"phase8: error: {redact_text(message)}", err=True)  # CI logs keep what is printed
    sys.exit(EXIT_CANNOT_EVALUATE)


def _colour() -> bool | None:
    """No colour when NO_COLOR is set (https://no-color.org); otherwise click colours terminals only."""
    return False if os.environ.get("NO_COLOR") else None


def _style(text: str, status: str) -> str:
    return click.style(text, fg=STATUS_COLOURS.get(status), bold=status in ("fail", "error"))


def _width() -> int:
    """The terminal's width (or ``COLUMNS``), within reason."""
    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 160))


def _json_requested(ctx: click.Context, _param, value: bool) -> bool:
    ctx.meta["phase8.json"] = value
    return value


def emit(data, text: str) -> None:
    """A command's result: ``text`` for people by default, ``data`` as JSON with ``--json``."""
    if click.get_current_context().meta.get("phase8.json"):
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text, color=_colour())


class Phase8Group(click.Group):
    """Every subcommand, whoever adds it, gets ``--json`` (machine-readable output through ``emit``)."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        if not isinstance(cmd, click.Group) and not any(p.name == "json" for p in cmd.params):
            cmd.params.append(
                click.Option(
                    ["--json"],
                    is_flag=True,
                    expose_value=False,
                    is_eager=True,
                    callback=_json_requested,
                    help="Print the result as JSON instead of text.",
                )
            )
        super().add_command(cmd, name)

    def group(self, *args, **kwargs):
        kwargs.setdefault("cls", Phase8Group)
        return super().group(*args, **kwargs)


def _home(home: str | None) -> Path:
    from phase8_assets.warehouse import phase8_home

    path = Path(home).resolve() if home else phase8_home()
    click.get_current_context().meta[_HOME_KEY] = path
    return path


_HOME_KEY = "phase8.home"
# The health endpoint must never open the warehouse, so it writes no snapshot either.
_NO_SNAPSHOT = {"serve"}


class _Phase8(Phase8Group):
    """Every command but ``serve`` ends by writing the health snapshot of the home it used (or of
    PHASE8_HOME), whatever its exit code, so ``phase8 serve`` reports what happened last."""

    def invoke(self, ctx: click.Context):
        code: int | None = 0
        try:
            return super().invoke(ctx)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            raise
        except OSError as exc:  # a folder or file of the user's that cannot be written or read: no traceback
            if isinstance(exc, BrokenPipeError):  # click handles a closed stdout
                code = None
                raise
            code = EXIT_CANNOT_EVALUATE
            _fail(os_error_text(exc))
        except BaseException:
            code = None
            raise
        finally:
            name = ctx.invoked_subcommand
            if name and name not in _NO_SNAPSHOT:
                from phase8_assets.warehouse import phase8_home
                from phase8_assets.warehouse.health import write_snapshot

                home = ctx.meta.get(_HOME_KEY) or phase8_home()
                try:
                    write_snapshot(home, name, code)
                except OSError as exc:
                    click.echo(f"phase8: warning: health snapshot not written: {os_error_text(exc)}", err=True)


@click.group(cls=_Phase8, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phase8")
def main() -> None:
    """Phase 8 release gates, evidence validation, warehouse operations, diagnostics and health."""


@main.command()
@click.option(
    "--evidence",
    "evidence",
    multiple=True,
    required=True,
    help="Evidence root: a folder or s3://bucket/prefix with phase8.yaml. Repeat to merge roots.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for gate-report.json/.xml/.md/.html.",
)
@click.option("--as-of", default=None, help="Evaluation time (RFC 3339); overrides the config's pinned time.")
@click.option("--home", default=None, envvar="PHASE8_HOME", help=HOME_HELP)
@click.option("--lock-wait", default=60.0, show_default=True, help="Seconds to wait for another run on the same home.")
def gate(evidence: tuple[str, ...], out: Path | None, as_of: str | None, home: str | None, lock_wait: float) -> None:
    """Evaluate every release gate. Exit 0 pass, 1 blocked, 2 could not evaluate."""
    import gc

    from phase8_assets.evidence import prefetch
    from phase8_assets.shared.processes import Interrupted, interruptible
    from phase8_assets.shared.without_pandas import without_pandas

    try:
        # The evidence is read on a second core; pandas, which nothing in the run uses, is not imported.
        with interruptible(), prefetch.started(list(evidence)), without_pandas():
            if "phase8_assets.gate_run" not in sys.modules:
                # Importing Dagster and the definitions makes about a million objects and almost no
                # garbage: the collector's passes over them are work for nothing (~0.2 s CPU). It
                # collects nothing while they are imported (definitions.py freezes what it built).
                gc.disable()
                try:
                    import phase8_assets.definitions  # noqa: F401
                    import phase8_assets.gate_run  # noqa: F401
                finally:
                    gc.enable()
            _gate(evidence, out, as_of, home, lock_wait)
    except Interrupted as exc:  # also while Dagster is imported, before the run has started
        _fail(f"{exc}; the gate run was stopped before a verdict")


def _gate(evidence: tuple[str, ...], out: Path | None, as_of: str | None, home: str | None, lock_wait: float) -> None:
    from phase8_assets.domains.gate_report import console_report
    from phase8_assets.evidence.config import ConfigError
    from phase8_assets.evidence.roots import RootError
    from phase8_assets.gate_run import InstanceUnavailable, ReportsNotWritten, run_gate
    from phase8_assets.shared.clock import TimeParseError
    from phase8_assets.warehouse import WarehouseError

    try:
        outcome = run_gate(
            list(evidence),
            out=out,
            as_of=as_of,
            home=_home(home),
            lock_wait_s=lock_wait,
            progress=lambda line: click.echo(line, err=True),
        )
    except (ConfigError, RootError, TimeParseError, WarehouseError, ReportsNotWritten, InstanceUnavailable) as exc:
        _fail(str(exc))
    text = console_report(outcome.report, _width(), _style)
    folder = outcome.written[0].parent
    emit(outcome.report, f"{text}\n\nreports (gate-report.json, .xml, .md, .html):\n  {folder}")
    sys.exit(outcome.exit_code)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--kind", default=None, help="Evidence kind of the files (default: guessed from content).")
def validate(paths: tuple[Path, ...], kind: str | None) -> None:
    """Check evidence files (or whole evidence roots) against their readers and schemas, without gating.

    Exit 0 when everything is valid, 1 when something is not.
    """
    from phase8_assets.validation import validate_path

    results = [(line, ok) for path in paths for line, ok in validate_path(path, kind)]
    problems = [line for line, ok in results if not ok]
    valid = [line for line, ok in results if ok]
    summary = f"{len(problems)} invalid, {len(valid)} valid"
    emit(
        {"invalid": problems, "valid": valid, "summary": summary},
        "\n".join([*(f"INVALID {line}" for line in problems), *(f"ok      {line}" for line in valid), summary]),
    )
    sys.exit(1 if problems else 0)


@main.group()
def policy() -> None:
    """Data governance: retention, deletion and access policies and their exceptions."""


@policy.command("check")
@click.option(
    "--evidence", "evidence", multiple=True,
    help="Evidence root: a folder or s3://bucket/prefix with phase8.yaml; repeat to merge roots "
    "[default: PHASE8_EVIDENCE, else the demo evidence].",
)  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "junit", "sarif"]), default="text", show_default=True,
    help="text for people; json (a GateReport), junit or sarif (SARIF 2.1.0, e.g. for code scanning) for CI.",
)  # fmt: skip
@click.option("--as-of", default=None, help="Evaluation time (RFC 3339); overrides the config's pinned time.")
def policy_check(evidence: tuple[str, ...], fmt: str, as_of: str | None) -> None:
    """The governance gates alone (policy_compliance, policy_exceptions), for a CI step.

    Reads only the governance evidence and the root's exceptions; no warehouse, no Dagster. Exit 0
    pass, 1 blocked, 2 could not evaluate (as phase8 gate).
    """
    from phase8_assets.defs.resources import default_evidence, load_evidence_config
    from phase8_assets.domains.gate_report import build_report, console_report, to_json, to_junit, to_sarif
    from phase8_assets.domains.governance import KINDS, governance_results
    from phase8_assets.evidence.collect import collect
    from phase8_assets.evidence.config import ConfigError
    from phase8_assets.shared.clock import TimeParseError, evaluation_time

    try:
        config = load_evidence_config(list(evidence) or default_evidence())
        at = evaluation_time(as_of, config.evaluation_time)
    except (ConfigError, TimeParseError) as exc:
        _fail(str(exc))
    batch = collect(config, kinds=set(KINDS), waivers=True)
    batch.set_aside_future(at, config.clock_skew)  # as the gate run does: a file dated after `at` never counts
    report = build_report(governance_results(batch, config, at), config.release, config.root_uris, at)
    if fmt == "json":
        click.echo(to_json(report), nl=False)
    elif fmt == "junit":
        click.echo(to_junit(report), nl=False)
    elif fmt == "sarif":
        click.echo(json.dumps(to_sarif(report, __version__), indent=2))
    else:
        emit(report, console_report(report, _width(), _style))
    sys.exit(EXIT_BLOCKED if report["verdict"] == "blocked" else EXIT_PASS)


@main.command("demo-data")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write.")
@click.option("--seed", type=int, default=8, show_default=True, help="Random seed (data/ is seed 8).")
def demo_data(out: Path, seed: int) -> None:
    """Write the deterministic demo evidence (the content of data/) to OUT."""
    from phase8_assets.demo import generate

    files = generate(out, seed)
    emit({"out": str(out), "files": len(files)}, f"wrote {len(files)} files under {out}")


@main.command("slo-rules")
@click.option("--evidence", "evidence", multiple=True, required=True, help="Evidence root(s) with OpenSLO definitions.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Rules file to write.")
def slo_rules(evidence: tuple[str, ...], out: Path) -> None:
    """Write Prometheus recording and alerting rules for the SLOs of the evidence root(s)."""
    from phase8_assets.defs.resources import load_evidence_config
    from phase8_assets.domains.slo import resolve
    from phase8_assets.domains.slo_rules import prometheus_rules
    from phase8_assets.evidence.collect import collect
    from phase8_assets.evidence.config import ConfigError
    from phase8_assets.shared.reports import write_text

    try:
        config = load_evidence_config(list(evidence))
    except ConfigError as exc:
        _fail(str(exc))
    batch = collect(config, kinds={"slo_definitions"})
    for rejection in batch.rejections:
        click.echo(f"rejected {rejection}", err=True)
    slos = resolve([r for f in batch.files_of("slo_definitions") for r in f.records])
    for slo in slos:
        if slo.problem:
            click.echo(f"skipped {slo.name}: {slo.problem}", err=True)
    write_text(out, prometheus_rules(slos))
    count = sum(1 for s in slos if not s.problem)
    emit({"out": str(out), "slos": count}, f"wrote rules for {count} SLO(s) to {out}")


@main.group()
def perf() -> None:
    """Performance: the frozen anchors that drift rules judge releases against."""


@perf.command("baseline")
@click.option(
    "--evidence", "evidence", multiple=True,
    help="Evidence root with the benchmark results: a folder or s3://bucket/prefix with phase8.yaml "
    "[default: PHASE8_EVIDENCE, else the demo evidence].",
)  # fmt: skip
@click.option(
    "--freeze", is_flag=True, help="Write the PerfBaseline file to --out (without it: show what it would hold)."
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="The PerfBaseline file to write; commit it."
)
@click.option(
    "--runs", type=click.IntRange(2, 200), default=10, show_default=True,
    help="Reference runs per benchmark: the release commit's runs and the base-branch runs just before them.",
)  # fmt: skip
@click.option("--as-of", default=None, help="Freezing time (RFC 3339); overrides the config's pinned time.")
def perf_baseline(evidence: tuple[str, ...], freeze: bool, out: Path | None, runs: int, as_of: str | None) -> None:
    """Freeze the release's benchmark statistics as the anchor of the drift rules (kind: PerfBaseline).

    The anchor is the release commit's runs (config release.commit) plus the base-branch runs just
    before them. Accepting a creep is freezing a new anchor: a reviewed change to that file.
    """
    import yaml

    from phase8_assets.defs.resources import default_evidence, load_evidence_config
    from phase8_assets.domains.perf import anchor_document, format_value, series_from_files
    from phase8_assets.evidence.collect import collect
    from phase8_assets.evidence.config import ConfigError
    from phase8_assets.shared.clock import TimeParseError, evaluation_time
    from phase8_assets.shared.reports import write_text

    if freeze and out is None:
        _fail("--freeze needs --out (the PerfBaseline file to write)")
    try:
        config = load_evidence_config(list(evidence) or default_evidence())
        at = evaluation_time(as_of, config.evaluation_time)
    except (ConfigError, TimeParseError) as exc:
        _fail(str(exc))
    batch = collect(config, kinds={"benchmarks", "perf_budgets"})
    for rejection in batch.rejections_of("benchmarks"):
        click.echo(f"rejected {rejection}", err=True)
    budgets = batch.files_of("perf_budgets")
    base = (budgets[0].records[0].base_branch if budgets else None) or config.release.get("base_branch") or "main"
    commit, version = str(config.release["commit"]), str(config.release["version"])
    doc = anchor_document(
        series_from_files([(f.uri, f.records[0]) for f in batch.files_of("benchmarks")]),
        commit,
        version,
        base,
        runs,
        at,
    )
    if not doc["benchmarks"]:
        _fail(f"no benchmark run of release commit {commit} (with a known direction) in {', '.join(config.root_uris)}")
    lines = [
        f"{e['benchmark']}{'[' + e['params'] + ']' if e['params'] and '[' not in e['benchmark'] else ''} / "
        f"{e['measure']}: {format_value(e['mean'], e['unit'])} over {e['runs']} runs, run-to-run sd {e['log_sd']:.1%}"
        for e in doc["benchmarks"]
    ]
    if freeze:
        write_text(out, yaml.safe_dump(doc, sort_keys=False, width=110, allow_unicode=True))
        lines.append(f"wrote {len(doc['benchmarks'])} anchor(s) of release {version} to {out}")
    else:
        lines.append("(not written: pass --freeze --out FILE)")
    emit({"out": str(out) if freeze else None, "written": freeze, "baseline": doc}, "\n".join(lines))


@main.group()
def plugin() -> None:
    """Sign and verify plugin and bot bundles (docs/security/plugin-signing.md)."""


@plugin.command("keygen")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the key pair.")
@click.option("--name", default="plugin-signing", show_default=True, help="File name stem: NAME.key and NAME.pub.")
def plugin_keygen(out: Path, name: str) -> None:
    """Write a new Ed25519 key pair: NAME.key (PEM PKCS#8, mode 0600) and NAME.pub (PEM); print its key id."""
    import os

    from phase8_assets.evidence.plugins import generate_key, key_id, private_pem, public_pem

    key = generate_key()
    out.mkdir(parents=True, exist_ok=True)
    private = out / f"{name}.key"
    if private.exists():
        _fail(f"{private} exists; refusing to overwrite a private key")
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem(key))
    (out / f"{name}.pub").write_bytes(public_pem(key.public_key()))
    click.echo(f"key id {key_id(key.public_key())}: wrote {private} and {out / f'{name}.pub'}")


@plugin.command("sign")
@click.argument("bundle", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The signing key: a PEM PKCS#8 Ed25519 private key (from phase8 plugin keygen).",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write a reproducible .tar.gz here (default: a folder is signed in place, a .tar.gz rewritten).")  # fmt: skip
def plugin_sign(bundle: Path, key_path: Path, out: Path | None) -> None:
    """Write MANIFEST (every file's SHA-256) and MANIFEST.sig into BUNDLE (a folder or .tar.gz). Exit 0 or 2."""
    from phase8_assets.evidence import EvidenceError
    from phase8_assets.evidence.plugins import (
        MANIFEST,
        SIGNATURE,
        load_contents,
        load_private_key,
        manifest_for,
        sign_manifest,
        write_bundle,
    )
    from phase8_assets.shared.reports import write_bytes

    try:
        key = load_private_key(key_path.read_bytes(), str(key_path))
        contents = load_contents(bundle)
    except EvidenceError as exc:
        _fail(f"{bundle}: {exc.field}: {exc.reason}")
    manifest = manifest_for(contents)
    contents.update({MANIFEST: manifest, SIGNATURE: sign_manifest(key, manifest)})
    if bundle.is_dir() and out is None:
        for name in (MANIFEST, SIGNATURE):
            write_bytes(bundle / name, contents[name])
        click.echo(f"signed {bundle} ({len(contents) - 2} files)")
        return
    target = out or bundle
    write_bytes(target, write_bundle(contents))
    click.echo(f"signed {bundle} ({len(contents) - 2} files): wrote {target}")


@plugin.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--trust", "trust_path", type=click.Path(path_type=Path), required=True, help="kind: PluginTrustPolicy")
@click.option("--as-of", default=None, help="Evaluation time (RFC 3339) for key validity; default now.")
@click.option("--release", default=None, help="The server release it must run on (checks min_server_version).")
def plugin_verify(bundle: Path, trust_path: Path, as_of: str | None, release: str | None) -> None:
    """Verify BUNDLE (a folder or .tar.gz) against a trust policy. Exit 0 verified, 1 refused (every reason
    listed), 2 unusable input."""
    from phase8_assets.domains.plugins import verify
    from phase8_assets.evidence import EvidenceError
    from phase8_assets.evidence.plugins import read_bundle_path, read_trust
    from phase8_assets.evidence.upgrade import parse_version
    from phase8_assets.shared.clock import TimeParseError, evaluation_time

    try:
        release_version = parse_version(release, "--release") if release is not None else None
    except EvidenceError as exc:
        _fail(f"{exc.field}: {exc.reason}")
    try:
        at = evaluation_time(as_of, None)
        policy = read_trust(trust_path.read_bytes(), str(trust_path)).records[0]
    except OSError as exc:
        _fail(f"{trust_path}: cannot read the trust policy: {exc.strerror}")
    except (EvidenceError, TimeParseError) as exc:
        _fail(f"{trust_path}: {exc}" if isinstance(exc, EvidenceError) else str(exc))
    if not bundle.exists():
        _fail(f"{bundle}: no such bundle (a folder or .tar.gz)")
    try:
        result = verify(read_bundle_path(bundle), policy, at, release=release_version)
    except EvidenceError as exc:
        _fail(f"{bundle}: {exc.field}: {exc.reason}")
    signer = (
        f"key {result.signer} ({result.publisher or 'unknown'}, {result.trust or 'untrusted'})"
        if result.signer
        else "nobody"
    )
    lines = [f"{result.bundle.subject}: {result.verdict}; signed by {signer}, signature {result.signature}"]
    lines += [f"  {p.gate}: {p.reason}: {p.observed} (expected {p.limit})" for p in result.problems]
    emit({"bundle": str(bundle), "plugin": result.bundle.plugin_id, "version": result.bundle.plugin.get("version"),
          "signer": result.signer, "publisher": result.publisher, "trust": result.trust, "signature": result.signature,
          "files_intact": result.files_intact, "requested": result.requested, "allowed": result.allowed,
          "verdict": result.verdict, "reasons": [{"gate": p.gate, "reason": p.reason, "observed": p.observed,
          "limit": p.limit} for p in result.problems]}, "\n".join(lines))  # fmt: skip
    sys.exit(EXIT_PASS if result.verdict == "verified" else EXIT_BLOCKED)


@main.group()
def upgrade() -> None:
    """Inspect and upgrade the warehouse schema."""


@upgrade.command("status")
@click.option("--home", default=None, envvar="PHASE8_HOME", help=HOME_HELP)
def upgrade_status(home: str | None) -> None:
    """Show the warehouse's schema version and the migrations this release would apply."""
    from phase8_assets.warehouse import (
        WarehouseError,
        connect,
        current_version,
        lake_configured,
        location,
        migrations,
        warehouse_path,
    )

    path = warehouse_path(_home(home))
    latest = len(migrations())
    try:
        lake = lake_configured()
    except WarehouseError as exc:
        _fail(str(exc))
    if lake is not None:
        path = location()  # the lake: created by the first connection, like a fresh file
    elif not path.exists():
        emit(
            {"warehouse": str(path), "version": None, "latest": latest, "pending": [m.name for m in migrations()]},
            f"{path}: no warehouse yet; the first `phase8 gate` creates it at version {latest}",
        )
        return
    try:
        with connect(path, check_schema=False, wait_s=10) as conn:
            version = current_version(conn)
    except WarehouseError as exc:
        _fail(str(exc))
    pending = [f"{m.version:04d}_{m.name}" for m in migrations() if m.version > version]
    emit(
        {"warehouse": str(path), "version": version, "latest": latest, "pending": pending},
        f"{path}: schema version {version} of {latest}; "
        + (f"pending: {', '.join(pending)} (run `phase8 upgrade apply`)" if pending else "up to date"),
    )


@upgrade.command("preflight")
@click.option("--home", default=None, envvar="PHASE8_HOME", help=HOME_HELP)
@click.option("--max-backup-age-hours", default=24.0, show_default=True, help="How recent a backup must be.")
def upgrade_preflight(home: str | None, max_backup_age_hours: float) -> None:
    """Is `upgrade apply` safe now? A checklist; exit 0 safe, 1 not safe."""
    from datetime import timedelta

    from phase8_assets.warehouse.operations import preflight

    checks = [*preflight(_home(home), max_backup_age=timedelta(hours=max_backup_age_hours)), _slots_check()]
    safe = all(c.ok for c in checks)
    ordered = sorted(checks, key=lambda c: c.ok)  # problems first
    emit(
        {"safe": safe, "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in ordered]},
        "\n".join(
            [*(f"{'ok  ' if c.ok else 'FAIL'}  {c.name}: {c.detail}" for c in ordered)]
            + ["safe to upgrade" if safe else "NOT safe to upgrade"]
        ),
    )
    sys.exit(0 if safe else 1)


def _slots_check():
    """Pool slots held by runs whose process is dead: the next run would wait for them."""
    import os

    from phase8_assets.warehouse.operations import Check

    name = "no Dagster pool slot held by a dead run"
    if not os.environ.get("DAGSTER_HOME"):
        return Check(name, True, "DAGSTER_HOME not set: runs use temporary storage")
    import dagster as dg

    from phase8_assets.defs.resources import leaked_slots

    try:
        with dg.DagsterInstance.get() as instance:
            leaked = leaked_slots(instance)
    except Exception as exc:  # an instance we cannot open is itself a finding, as in dagster_storage_check
        return Check(name, False, f"cannot check: {type(exc).__name__}: {exc}")
    if leaked:
        return Check(name, False, "; ".join(map(str, leaked)) + " (the next phase8 gate frees them)")
    return Check(name, True, "none")


@upgrade.command("apply")
@click.option("--home", default=None, envvar="PHASE8_HOME", help=HOME_HELP)
@click.option("--lock-wait", default=30.0, show_default=True, help="Seconds to wait for another run on the same home.")
def upgrade_apply(home: str | None, lock_wait: float) -> None:
    """Check every precondition, take a verified backup, then each pending migration in its own
    transaction with its version record, then validation; on failure the backup is restored.
    Refused (exit 2) with the warehouse untouched when a precondition does not hold."""
    from phase8_assets.shared.processes import Interrupted, interruptible
    from phase8_assets.warehouse import WarehouseError
    from phase8_assets.warehouse.operations import apply

    try:
        with interruptible():
            steps = apply(_home(home), progress=lambda line: click.echo(line, err=True), wait_s=lock_wait)
    except WarehouseError as exc:
        _fail(str(exc))
    except Interrupted as exc:
        _fail(f"{exc}; every migration applied so far is complete and recorded")
    emit(
        {"applied": [str(step) for step in steps]},
        f"applied {len(steps)} step(s)" if steps else "already at the latest schema version",
    )


@main.command("backup")
@click.option("--home", default=None, envvar="PHASE8_HOME", help=HOME_HELP)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder for the copy.")
@click.option("--lock-wait", default=30.0, show_default=True, help="Seconds to wait for another run on the same home.")
def backup_cmd(home: str | None, out: Path | None, lock_wait: float) -> None:
    """A consistent copy of the warehouse with a manifest (schema version, per-table counts and checksums),
    taken between gate runs on the home, never in the middle of one."""
    from phase8_assets.warehouse import WarehouseError, home_lock, warehouse_path
    from phase8_assets.warehouse.operations import backup, record_operation, refuse_on_lake

    path = warehouse_path(_home(home))
    try:
        refuse_on_lake("phase8 backup")
        if not path.exists():
            _fail(f"{path}: no warehouse to back up")
        with home_lock(path.parent, lock_wait, "phase8 backup"):
            folder, manifest = backup(path, out)
        record_operation(path, "warehouse.backup", "created", f"{folder} (version {manifest['schema_version']})")
    except WarehouseError as exc:
        _fail(str(exc))
    rows = sum(t["rows"] for t in manifest["tables"].values())
    emit(
        {"backup": str(folder), "manifest": manifest},
        f"backup {folder}: version {manifest['schema_version']}, {len(manifest['tables'])} tables, {rows} rows",
    )


@main.command("rollback")
@click.option("--home", default=None, envvar="PHASE8_HOME", help=HOME_HELP)
@click.option("--to", "to", type=int, default=None, help="Schema version to go down to (down-migrations).")
@click.option(
    "--backup",
    "backup_folder",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="A backup folder (from `phase8 backup`) to restore instead.",
)
@click.option("--lock-wait", default=30.0, show_default=True, help="Seconds to wait for another run on the same home.")
def rollback_cmd(home: str | None, to: int | None, backup_folder: Path | None, lock_wait: float) -> None:
    """Go back (down-migrations, or a restore), then prove it; exit 1 with the table and the numbers
    when it does not hold. ``--to``: every step in one transaction (a failed or interrupted step
    leaves the warehouse as it was, exit 1), the tables the older schema keeps unchanged by it and
    still holding every row of the last backup taken at that version; rows written since stay, and
    tables the older schema has not are named (their rows stay in the safety backup). ``--backup``:
    the warehouse equals the backup's manifest. Every precondition is checked before anything
    changes, and a verified backup of the warehouse is taken first; a refusal exits 2."""
    from phase8_assets.shared.processes import Interrupted, interruptible
    from phase8_assets.warehouse import WarehouseError
    from phase8_assets.warehouse.operations import IntegrityError, RollbackFailed, rollback

    if (to is None) == (backup_folder is None):
        _fail("give exactly one of --to VERSION or --backup PATH")
    try:
        with interruptible():
            done = rollback(
                _home(home),
                to=to,
                backup_folder=backup_folder,
                progress=lambda line: click.echo(line, err=True),
                wait_s=lock_wait,
            )
    except (IntegrityError, RollbackFailed) as exc:
        click.echo(f"phase8: {exc}", err=True)
        sys.exit(1)
    except WarehouseError as exc:
        _fail(str(exc))
    except Interrupted as exc:
        _fail(f"{exc}; every step taken so far is complete and recorded")
    emit(
        {
            "steps": done.steps,
            "verified": True,
            "safety_backup": str(done.safety) if done.safety else None,
            "rows_since": done.added,
            "set_aside": done.set_aside,
        },
        "rolled back; verified"
        + (f"; kept in {done.safety} only: {', '.join(f'{t} ({n} rows)' for t, n in done.set_aside.items())}"
           if done.set_aside else ""),
    )  # fmt: skip


@main.group()
def audit() -> None:
    """The audit trail: every decision that changes what ships, hash-chained OCSF records."""


def _audit_trail(home: str | None, lock_wait: float):
    """(rows, anchor, where, completed runs) of the home's trail: the warehouse table (the lake's,
    when ``PHASE8_WAREHOUSE`` names one), or a trail carried across a rollback below the audit
    table's migration; with the gate runs whose verdict must be in it (``audit.completed_runs``)."""
    from phase8_assets.warehouse import WarehouseError, connect, lake_configured, location, warehouse_path
    from phase8_assets.warehouse import audit as trail

    path = warehouse_path(_home(home))
    carried = path.parent / trail.CARRIED
    try:
        if lake_configured() is not None:
            with connect(path, read_only=True, wait_s=lock_wait) as conn:
                if trail.has_table(conn):
                    return trail.rows(conn), trail.anchor_of(conn), location(_home(home)), trail.completed_runs(conn)
        elif path.exists():
            with connect(path, read_only=True, check_schema=False, wait_s=lock_wait) as conn:
                if trail.has_table(conn) and not carried.exists():
                    return trail.rows(conn), trail.anchor_of(conn), str(path), trail.completed_runs(conn)
                # a carried trail not yet back in the table (a writer puts it back) is the newer one
    except WarehouseError as exc:
        _fail(str(exc))
    if carried.exists():
        anchor, rows = trail.read_carried(carried)
        return rows, anchor, str(carried), []
    if (path.parent / trail.HEAD).exists():  # records were written here: the trail is gone, not yet begun
        return [], None, location(_home(home)), []
    _fail(f"{location(_home(home))}: no audit trail yet (the first phase8 gate or warehouse command starts it)")


@audit.command("verify")
@click.option("--home", default=None, envvar="PHASE8_HOME", help=HOME_HELP)
@click.option("--lock-wait", default=30.0, show_default=True, help="Seconds to wait for a run holding the warehouse.")
def audit_verify(home: str | None, lock_wait: float) -> None:
    """Check the hash chain, the head kept in the home (records deleted from the end) and that every
    completed gate run has its verdict: exit 0 intact, 1 tampered (naming what is wrong)."""
    from phase8_assets.warehouse import warehouse_path
    from phase8_assets.warehouse.audit import CarriedTrailDamaged, Verification, head_before, verify_trail

    folder = warehouse_path(_home(home)).parent
    recorded = head_before(folder)  # before the trail: a commit in between only lengthens the trail
    try:
        rows, anchor, where, runs = _audit_trail(home, lock_wait)
        result = verify_trail(rows, anchor, folder, runs, recorded)
    except CarriedTrailDamaged as exc:  # a line that is not a record: tampered, named, not a traceback
        rows, anchor, where = [], None, str(folder / "audit")
        result = Verification(False, 0, None, str(exc), None)
    start = f" from anchor {anchor[0]}" if anchor else ""
    text = (
        f"{where}: audit trail intact: {result.checked} record(s){start}"
        if result.ok
        else f"{where}: audit trail TAMPERED: {result.problem} ({result.checked} record(s) "
        f"{'before it ' if result.first_bad is not None else ''}intact)"
    )
    emit({"intact": result.ok, "records": len(rows), "checked": result.checked, "first_bad": result.first_bad,
          "problem": result.problem, "anchor": anchor[0] if anchor else None, "trail": where}, text)  # fmt: skip
    sys.exit(EXIT_PASS if result.ok else EXIT_BLOCKED)


@audit.command("export")
@click.option("--home", default=None, envvar="PHASE8_HOME", help=HOME_HELP)
@click.option("--since", default=None, help="Only records of this ISO 8601 duration back (e.g. P7D); default all.")
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "ocsf"]), default="jsonl", show_default=True,
    help="jsonl: whole records with their chain; ocsf: the OCSF 1.5.0 events alone, one per line.",
)  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File to write [stdout].")
@click.option("--lock-wait", default=30.0, show_default=True, help="Seconds to wait for a run holding the warehouse.")
def audit_export(home: str | None, since: str | None, fmt: str, out: Path | None, lock_wait: float) -> None:
    """Export the audit trail as JSON Lines (for a SIEM or an archive)."""
    from phase8_assets.shared.clock import TimeParseError, now_utc, parse_duration
    from phase8_assets.warehouse.audit import canonical

    try:
        start = now_utc() - parse_duration(since, "--since") if since else None
    except TimeParseError as exc:
        _fail(str(exc))
    from phase8_assets.warehouse import WarehouseError

    try:
        rows, _anchor, _where, _runs = _audit_trail(home, lock_wait)
    except WarehouseError as exc:  # a carried trail that is not one
        _fail(str(exc))
    cutoff = start.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if start else ""
    lines = [canonical(r if fmt == "jsonl" else r["record"]) for r in rows if r["occurred_at"] >= cutoff]
    body = "".join(line + "\n" for line in lines)
    if out is None:
        click.echo(body, nl=False)
        return
    from phase8_assets.shared.reports import write_text

    write_text(out, body)
    emit({"out": str(out), "records": len(lines), "format": fmt}, f"wrote {out}: {len(lines)} record(s) ({fmt})")


def _audit_retention(evidence: tuple[str, ...], retention: str | None) -> tuple[str, str]:
    """(duration, where it comes from): the RetentionPolicy rule for data class ``phase8_audit`` in
    the evidence root, else its phase8.yaml ``audit.retention``, else ``--retention``."""
    if evidence:
        from phase8_assets.defs.resources import load_evidence_config
        from phase8_assets.evidence.collect import collect
        from phase8_assets.evidence.config import ConfigError

        try:
            config = load_evidence_config(list(evidence))
        except ConfigError as exc:
            _fail(str(exc))
        batch = collect(config, kinds={"retention_policies"}, waivers=False)
        for f in batch.files_of("retention_policies"):
            for doc in f.records:
                for rule in doc.get("rules", []):
                    if rule.get("data_class") == "phase8_audit" and rule.get("max"):
                        return rule["max"], f"{f.uri}: RetentionPolicy {doc.get('id')} rule {rule.get('id')}"
        if config.audit_retention:
            return config.audit_retention, f"{config.source}: audit.retention"
    if retention:
        return retention, "--retention"
    _fail("no retention for the audit trail: add a RetentionPolicy rule for data_class phase8_audit (or "
          "audit: {retention: ...} in phase8.yaml) to the evidence root (--evidence), or give --retention; "
          "nothing was removed")  # fmt: skip


@audit.command("prune")
@click.option("--home", default=None, envvar="PHASE8_HOME", help=HOME_HELP)
@click.option("--evidence", "evidence", multiple=True, help="Evidence root whose RetentionPolicy governs the trail.")
@click.option("--retention", default=None, help="ISO 8601 duration to keep when no RetentionPolicy names phase8_audit.")
@click.option("--as-of", default=None, help="Time the retention is measured from (RFC 3339); default now.")
@click.option("--ticket", default="", help="Change ticket recorded with the prune.")
@click.option("--lock-wait", default=30.0, show_default=True, help="Seconds to wait for a run holding the warehouse.")
def audit_prune(home: str | None, evidence: tuple[str, ...], retention: str | None, as_of: str | None, ticket: str,
                lock_wait: float) -> None:  # fmt: skip
    """Remove records older than the retention allows, keep the chain verifiable (the last removed
    record becomes the anchor) and record the prune itself."""
    import os

    from phase8_assets.shared.audit_events import AuditEvent, actor_from
    from phase8_assets.shared.clock import TimeParseError, evaluation_time, now_utc, parse_duration
    from phase8_assets.warehouse import WarehouseError, connect, home_lock, warehouse_path
    from phase8_assets.warehouse import audit as trail

    keep, source = _audit_retention(evidence, retention)
    try:
        at = evaluation_time(as_of, None)
        before = at - parse_duration(keep, "retention")
    except TimeParseError as exc:
        _fail(str(exc))
    path = warehouse_path(_home(home))
    event = AuditEvent("audit.pruned", "audit trail", "done", actor_from(os.environ), now_utc(), ticket=ticket)
    try:
        with home_lock(path.parent, lock_wait, "phase8 audit prune"), connect(path, wait_s=lock_wait) as conn:
            trail.record(conn, [], path.parent)  # a trail carried across a rollback goes back into the table first
            check = trail.verify(conn, path.parent)
            if not check.ok:
                click.echo(f"phase8: audit trail tampered, nothing pruned: {check.problem}", err=True)
                sys.exit(EXIT_BLOCKED)
            result = trail.prune(conn, before, f"{keep} ({source})", event, path.parent)
    except WarehouseError as exc:
        _fail(str(exc))
    emit({**result, "retention": keep, "source": source},
         f"removed {result['removed']} record(s) older than {keep} ({source}); prune recorded as {result['recorded']}")  # fmt: skip


@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Zip to write.")
@click.option("--max-size", default="50MB", show_default=True, help="Cap on the bundle's content (e.g. 50MB, 512KiB).")
@click.option("--since", default="P7D", show_default=True, help="Logs changed within this ISO 8601 duration.")
@click.option("--runs", default=20, show_default=True, help="How many recent runs to describe.")
@click.option("--home", default=None, envvar="PHASE8_HOME", help="Warehouse folder [env PHASE8_HOME; default .phase8].")
@click.option(
    "--evidence", "evidence", multiple=True, help="Evidence root(s) whose config to include [env PHASE8_EVIDENCE]."
)
@click.option("--lock-wait", default=10.0, show_default=True, help="Seconds to wait for a run holding the warehouse.")
def diagnostics(
    out: Path | None,
    max_size: str,
    since: str,
    runs: int,
    home: str | None,
    evidence: tuple[str, ...],
    lock_wait: float,
) -> None:
    """Write a redacted diagnostics bundle (zip) for a support ticket."""
    import os

    from phase8_assets.diagnostics import build, parse_size
    from phase8_assets.shared.clock import TimeParseError, now_utc, parse_duration

    at = now_utc()
    try:
        cap, window = parse_size(max_size), parse_duration(since, "--since")
    except (ValueError, TimeParseError) as exc:
        _fail(str(exc))
    roots = list(evidence) or [r for r in os.environ.get("PHASE8_EVIDENCE", "").split(",") if r]
    target = out or Path(f"phase8-diagnostics-{at:%Y%m%dT%H%M%SZ}.zip")
    try:
        manifest = build(target, home=_home(home), at=at, evidence=roots, max_size=cap, since=window, runs=runs,
                         lock_wait_s=lock_wait)  # fmt: skip
    except ValueError as exc:
        _fail(str(exc))
    size = sum(f["size"] for f in manifest["files"])
    from phase8_assets.warehouse import WarehouseError, warehouse_path
    from phase8_assets.warehouse.operations import record_operation

    try:
        record_operation(warehouse_path(_home(home)), "diagnostics.bundle", "created", f"{target}: {size} bytes",
                         wait_s=lock_wait, files=len(manifest["files"]))  # fmt: skip
    except WarehouseError as exc:  # the bundle is written; a held warehouse only delays its record
        click.echo(f"phase8: warning: the bundle was not recorded in the audit trail: {exc}", err=True)
    lines = [f"wrote {target}: {len(manifest['files'])} file(s), {size} bytes before compression"]
    lines += [
        f"  not included: {name}: {why}"
        for name, why in sorted({**manifest["unavailable"], **manifest["omitted"]}.items())
    ]
    lines += [
        f"  truncated: {e['name']} ({e['truncated_from']} -> {e['size']} bytes)"
        for e in manifest["files"]
        if "truncated_from" in e
    ]
    emit({"bundle": str(target), **manifest}, "\n".join(lines))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--home", default=None, envvar="PHASE8_HOME", help="The home whose health snapshot is served.")
@click.option("--warn-after", default="P1D", show_default=True, help="Snapshot age (ISO 8601) that warns.")
@click.option("--fail-after", default="P7D", show_default=True, help="Snapshot age (ISO 8601) that fails.")
@click.option(
    "--write-openapi",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the endpoint's OpenAPI 3.1 document to this file and exit.",
)
def serve(host: str, port: int, home: str | None, warn_after: str, fail_after: str, write_openapi: Path | None) -> None:
    """Serve GET /health (application/health+json), /livez, /readyz and /gate, read-only, from the
    health snapshot every phase8 command writes; the warehouse is never opened."""
    from phase8_assets.health_app import create_app, openapi_yaml
    from phase8_assets.shared.clock import TimeParseError, parse_duration
    from phase8_assets.shared.reports import write_text

    if write_openapi is not None:
        write_text(write_openapi, openapi_yaml())
        click.echo(f"wrote {write_openapi}")
        return
    try:
        warn, fail = parse_duration(warn_after, "--warn-after"), parse_duration(fail_after, "--fail-after")
    except TimeParseError as exc:
        _fail(str(exc))
    import uvicorn

    uvicorn.run(create_app(_home(home), warn, fail), host=host, port=port, log_level="info")


if __name__ == "__main__":
    main()

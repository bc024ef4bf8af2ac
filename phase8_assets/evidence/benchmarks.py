"""Benchmark results (evidence kind ``benchmarks``), whatever tool wrote them, as one long shape.

Formats, recognised from the content:

- **pytest-benchmark** JSON (``--benchmark-json`` and ``.benchmarks`` storage; 2.x without
  ``ops``/``data``, 3.x+ with them). ``stats.data`` (the raw samples) is used only when every
  entry is a finite number; otherwise the samples are dropped, with a warning, and the summary
  statistics are used (a partial sample would bias any test). ``commit_info.branch`` placeholders
  (``(detached head)`` of a CI checkout, ``(unknown)``, ``(error: …)``) are no branch. A benchmark with ``"stats": null``
  (or none: kept by a hook although it errored, or never measured) is a failure with no result;
  the file's other benchmarks count.
- **Google Benchmark** JSON: ``iteration`` rows (samples, one per repetition) and ``aggregate``
  rows (``mean``/``median``/``stddev``; ``cv``, the ``BigO``/``RMS`` complexity fits and user
  statistics are not timings and are left out); ``time_unit`` ns/us/ms/s. A ``cpu_time`` of 0 (a
  process CPU clock too coarse to tick, as on Windows and WSL) leaves that benchmark's cpu_time
  unmeasured, with a warning; its real_time counts. A row with
  ``error_occurred`` (``SkipWithError``) is a failure; one ``skipped`` (``SkipWithMessage``, on
  purpose) is no result, with a warning.
- **hyperfine** ``--export-json``: ``times`` are the samples (0 is a timing: hyperfine writes it
  for a run faster than the shell start-up it subtracts); a command whose ``exit_codes`` are not
  all 0 is a failure, not a timing (``null``: killed by a signal); old files without ``exit_codes`` are taken as successful.
- **k6** end-of-test summary: ``handleSummary`` data (``metrics.<name>.values``; a threshold's
  ``ok: true`` means it *passed*) and the legacy ``--summary-export`` (values inline; a
  threshold's ``true`` means it *failed*). Trends are milliseconds; rates and counts are kept.
- **go test -bench -json** (test2json events, one a line): the packages' joined ``Output`` read as
  the go text below; a ``fail`` event the text does not explain, or a package with no verdict
  event (a cut-short stream), is a failure; the run time is the first event's ``Time``.
- **go test -bench** text (``-benchmem`` and custom units; ``-8`` GOMAXPROCS suffixes stripped,
  kept as ``procs=8`` in the params where one name runs at several; ``pkg=`` likewise for a name in
  several packages; sub-benchmarks keep their ``/``); ``--- FAIL: BenchmarkX`` is a failure, at the
  start of a line (``-v``) or after the benchmark's name (``BenchmarkX-8 <tab>--- FAIL: ...``, as go
  test writes it without ``-v``), and so is a benchmark's ``panic:`` and go test's ``FAIL`` verdict
  on a package that no failed benchmark line explains (a panic, a timeout, a failed test, no build).

What the tool reports as failed (above; crossed k6 thresholds too, which fail a k6 run) is kept in
the summary's ``failures`` and as a warning: ``perf_budgets`` fails a release run that has any.

Units become SI base units (seconds, bytes, 1/s), each measure gets a direction (``lower`` or
``higher`` is better; ``unknown`` for custom units, which are stored but never judged by
direction). NaN, infinite, negative or zero timings (but hyperfine's 0) are rejected with the
field. Files that carry no time or commit (go text, hyperfine, Google Benchmark without
``context.date``) take them from their path inside the evidence root (never from the folders above
it): a ``YYYY-MM-DD`` (optionally ``THHMMSSZ``) component and a 7-40 hex-digit component (e.g. ``bench/2026-11-20T101500Z/4f2c9e1a/go.txt``); a run without a
commit is kept as history with a warning but can never be a release candidate.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from phase8_assets.evidence import EvidenceError, ReadResult, json_document, mapping, naive_time_warning
from phase8_assets.shared.clock import TimeParseError, parse_timestamp

# unit -> (factor to the SI base unit, base unit, direction)
UNITS: dict[str, tuple[float, str, str]] = {
    "ns": (1e-9, "s", "lower"),
    "us": (1e-6, "s", "lower"),
    "µs": (1e-6, "s", "lower"),
    "μs": (1e-6, "s", "lower"),
    "ms": (1e-3, "s", "lower"),
    "s": (1.0, "s", "lower"),
    "ns/op": (1e-9, "s", "lower"),
    "B/op": (1.0, "B", "lower"),
    "allocs/op": (1.0, "allocs", "lower"),
    "MB/s": (1e6, "B/s", "higher"),
    "ops/s": (1.0, "1/s", "higher"),
    "req/s": (1.0, "1/s", "higher"),
    "B": (1.0, "B", "lower"),
    "count": (1.0, "count", "lower"),
    "ratio": (1.0, "ratio", "lower"),
}
TIME_UNITS = {"ns", "us", "µs", "μs", "ms", "s"}


@dataclass(frozen=True, slots=True)
class BenchRun:
    tool: str
    commit: str | None
    branch: str | None
    time: datetime
    machine: str


@dataclass(frozen=True, slots=True)
class Measurement:
    benchmark: str
    params: str  # "" or a stable text form (k=v,k=v) of the parameters
    measure: str  # e.g. time, cpu_time, ops, B/op, http_req_duration
    unit: str  # SI base unit
    direction: str  # lower | higher | unknown
    stats: dict[str, float]  # mean, median, min, max, stddev, p90, p95, p99, n, ... in `unit`
    samples: tuple[float, ...] | None = None  # raw samples in `unit`, when the tool gives them


@dataclass
class BenchmarkFile:
    run: BenchRun
    measurements: list[Measurement] = field(default_factory=list)
    # What the tool itself reports as failed ({"benchmark", "failure"}): a benchmark that errored, a
    # command that exited non-zero, a crossed k6 threshold. The release's runs must have none
    # (perf_budgets). A benchmark skipped on purpose is no result, not a failure.
    failures: list[dict] = field(default_factory=list)


def _finite(value: object, where: str, positive: bool = False, zero_ok: bool = False) -> float:
    """A finite number; with ``positive`` a timing: > 0, or >= 0 where the tool writes 0 for a time
    below what it can measure (``zero_ok``: hyperfine, after subtracting the shell's start-up)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EvidenceError(where, f"expected a number, got {json.dumps(value)}")
    number = float(value) if isinstance(value, float) or abs(value) < 2**1023 else math.inf
    if not math.isfinite(number):
        raise EvidenceError(where, f"expected a finite number, got {str(value)[:40]}")
    if positive and (number < 0 or (number == 0 and not zero_ok)):
        raise EvidenceError(where, f"expected a timing {'>=' if zero_ok else '>'} 0, got {value}")
    return number


def _unit(unit: str, where: str) -> tuple[float, str, str]:
    if unit in UNITS:
        return UNITS[unit]
    raise EvidenceError(where, f"unknown unit {unit!r}; expected one of {'|'.join(sorted(TIME_UNITS))}")


def _path_hints(uri: str) -> tuple[datetime | None, str | None]:
    parts = re.split(r"[/\\_]", uri)
    when = commit = None
    for part in parts:
        stem = part.split(".")[0]
        m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:T(\d{2})-?(\d{2})-?(\d{2})Z?)?", stem)
        if m and when is None:
            text = m.group(1) + (f"T{m.group(2)}:{m.group(3)}:{m.group(4)}Z" if m.group(2) else "T00:00:00Z")
            when = parse_timestamp(text).at
        elif re.fullmatch(r"[0-9a-f]{7,40}", stem) and re.search(r"\d", stem) and re.search(r"[a-f]", stem):
            commit = stem
    return when, commit


def _when(value: object, field_name: str, uri: str, warnings: list[str]) -> datetime:
    if value:
        try:
            instant = parse_timestamp(value, field_name)
        except TimeParseError as exc:
            raise EvidenceError(field_name, f"expected an ISO 8601 timestamp, got {value!r}") from exc
        if instant.was_naive:
            warnings.append(naive_time_warning(field_name, value))
        return instant.at
    when, _ = _path_hints(uri)
    if when is None:
        raise EvidenceError("(path)", "no run time inside the file; put a YYYY-MM-DD[THHMMSSZ] component in its path")
    return when


def _commit(value: object, uri: str, warnings: list[str]) -> str | None:
    if isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{7,40}", value):
        return value.lower()
    _, commit = _path_hints(uri)
    if commit is None:
        warnings.append("no commit in the file or its path: kept as history, never a release candidate")
    return commit


def _failed(failures: list[dict]) -> str:
    """What the tool reported as failed, for the rejection of a file with no result at all."""
    return "".join(f"; {f['benchmark']} {f['failure']}" for f in failures)


def _samples(
    data: object, factor: float, where: str, warnings: list[str], zero_ok: bool = False
) -> tuple[float, ...] | None:
    if not isinstance(data, list) or not data:
        return None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in data):
        bad = sum(1 for x in data if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x))
        warnings.append(
            f"{where}: {bad} of {len(data)} samples are not finite numbers (NaN, Infinity or not a number); "
            "samples dropped, summary used"
        )
        return None
    bad = next((i for i, x in enumerate(data) if x < 0 or (x == 0 and not zero_ok)), None)
    if bad is not None:
        raise EvidenceError(f"{where}[{bad}]", f"expected a timing {'>=' if zero_ok else '>'} 0, got {data[bad]}")
    return tuple(float(x) * factor for x in data)


# What pytest-benchmark writes when there is no branch to name: a detached checkout (every GitLab CI
# job, a CI run of a tag or a commit), no git to ask, or git failing. No branch is recorded then.
_NO_BRANCH = re.compile(r"\((?:detached head|unknown|unknown vcs|error: .*)\)", re.DOTALL)


def _branch(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip() or _NO_BRANCH.fullmatch(value.strip()):
        return None
    return value


def _pytest(doc: dict, uri: str) -> tuple[BenchmarkFile, list[str]]:
    warnings: list[str] = []
    commit_info = mapping(doc.get("commit_info"), "commit_info")
    machine = mapping(doc.get("machine_info"), "machine_info")
    run = BenchRun(
        tool="pytest-benchmark",
        commit=_commit(commit_info.get("id"), uri, warnings),
        branch=_branch(commit_info.get("branch")),
        time=_when(doc.get("datetime"), "datetime", uri, warnings),
        machine=str(machine.get("node") or ""),
    )
    out = BenchmarkFile(run)
    for i, bench in enumerate(doc["benchmarks"]):
        where = f"benchmarks[{i}]"
        bench = mapping(bench, where)
        name = bench.get("fullname") or bench.get("name")
        if not isinstance(name, str) or not name:
            raise EvidenceError(f"{where}.name", "expected the benchmark's name")
        if bench.get("stats") is None:  # errored or never measured: no result, never 0s
            text = "has no statistics (stats: null): it errored or did not run"
            warnings.append(f"{where}: {name!r} {text}; no result")
            out.failures.append({"benchmark": name, "failure": f"{text} ({where}.stats)"})
            continue
        stats = mapping(bench["stats"], f"{where}.stats")
        values = {}
        for key in ("mean", "median", "min", "max", "stddev", "q1", "q3", "iqr"):
            if key in stats:
                values[key] = _finite(stats[key], f"{where}.stats.{key}", positive=key in ("mean", "median", "min"))
        if "mean" not in values:
            raise EvidenceError(f"{where}.stats.mean", "is required")
        if stats.get("rounds") is not None:  # unreported stays missing, never 0
            values["n"] = _finite(stats["rounds"], f"{where}.stats.rounds")
        params = bench.get("params") or {}
        param_text = ",".join(f"{k}={params[k]}" for k in sorted(params)) if isinstance(params, dict) else ""
        samples = _samples(stats.get("data"), 1.0, f"{where}.stats.data", warnings)
        out.measurements.append(Measurement(name, param_text, "time", "s", "lower", values, samples))
        if "ops" in stats:
            ops = _finite(stats["ops"], f"{where}.stats.ops", positive=True)
            out.measurements.append(Measurement(name, param_text, "ops", "1/s", "higher", {"mean": ops}))
    return out, warnings


def _google(doc: dict, uri: str) -> tuple[BenchmarkFile, list[str]]:
    warnings: list[str] = []
    context = mapping(doc.get("context"), "context")
    run = BenchRun(
        "google-benchmark",
        _commit(None, uri, warnings),
        None,
        _when(context.get("date"), "context.date", uri, warnings),
        str(context.get("host_name") or ""),
    )
    groups: dict[tuple[str, str], dict] = {}
    out = BenchmarkFile(run)
    for i, row in enumerate(doc["benchmarks"]):
        where = f"benchmarks[{i}]"
        row = mapping(row, where)
        if row.get("error_occurred"):  # SkipWithError: the benchmark failed
            text = f"reported an error ({row.get('error_message')})"
            warnings.append(f"{where}: {row.get('name')!r} {text}; no result")
            failure = {"benchmark": str(row.get("run_name") or row.get("name")), "failure": text}
            if failure not in out.failures:  # its repetitions fail alike
                out.failures.append(failure)
            continue
        if row.get("skipped"):  # SkipWithMessage: skipped on purpose (a platform without AVX-512)
            warnings.append(f"{where}: {row.get('name')!r} was skipped ({row.get('skip_message')}); no result")
            continue
        if row.get("run_type") == "aggregate" and row.get("aggregate_name") not in ("mean", "median", "stddev"):
            continue  # cv (a fraction), BigO/RMS complexity fits, user statistics: not timings of a run
        factor, base, direction = _unit(str(row.get("time_unit") or "ns"), f"{where}.time_unit")
        name = str(row.get("run_name") or row.get("name"))
        for measure in ("real_time", "cpu_time"):
            stddev = row.get("aggregate_name") == "stddev"
            value = _finite(row.get(measure), f"{where}.{measure}", positive=not stddev, zero_ok=measure == "cpu_time")
            group = groups.setdefault((name, measure), {"samples": [], "aggregates": {}})
            if value == 0 and not stddev and "unmeasured" not in group:
                group["unmeasured"] = f"{where}.{measure}"
                warnings.append(
                    f"{where}.{measure}: 0 for {name!r}: the process CPU clock did not tick (too coarse on "
                    "Windows and WSL for so short a run); its cpu_time is not measured, its real_time counts"
                )
            if row.get("run_type") == "aggregate":
                group["aggregates"][str(row.get("aggregate_name"))] = value * factor
            else:
                group["samples"].append(value * factor)
    for (name, measure), group in groups.items():
        if "unmeasured" in group:  # a cpu_time of 0: below the clock's resolution, missing (never 0)
            continue
        samples = group["samples"]
        agg = group["aggregates"]
        stats = {k: v for k, v in agg.items() if k in ("mean", "median", "stddev")}
        if samples:
            stats.setdefault("mean", sum(samples) / len(samples))
            stats.update(min=min(samples), max=max(samples), n=float(len(samples)))
        out.measurements.append(
            Measurement(name, "", measure.replace("real_time", "time"), "s", "lower", stats, tuple(samples) or None)
        )
    return out, warnings


def _hyperfine(doc: dict, uri: str) -> tuple[BenchmarkFile, list[str]]:
    warnings: list[str] = []
    run = BenchRun("hyperfine", _commit(None, uri, warnings), None, _when(None, "", uri, warnings), "")
    out = BenchmarkFile(run)
    for i, result in enumerate(doc["results"]):
        where = f"results[{i}]"
        command = result.get("command")
        if not isinstance(command, str):
            raise EvidenceError(f"{where}.command", "expected the command line")
        codes = result.get("exit_codes")
        if codes is not None and not isinstance(codes, list):
            raise EvidenceError(f"{where}.exit_codes", f"expected an array of exit codes, got {json.dumps(codes)[:40]}")
        bad = [c for c in codes or () if isinstance(c, bool) or not isinstance(c, int) and c is not None]
        if bad:
            raise EvidenceError(f"{where}.exit_codes", f"expected integer exit codes or null, got {json.dumps(bad[0])}")
        if codes is not None and any(code != 0 for code in codes):
            # null: the run was killed by a signal (hyperfine has no exit code for it): failed too
            text = ", ".join(sorted({"killed by a signal (null)" if c is None else str(c) for c in codes if c != 0}))
            warnings.append(f"{where}: {command!r} exited non-zero ({text}); not a timing, skipped")
            out.failures.append({"benchmark": command, "failure": f"exited non-zero ({text})"})
            continue
        samples = _samples(result.get("times"), 1.0, f"{where}.times", warnings, zero_ok=True)
        stats = {
            k: _finite(result[k], f"{where}.{k}", positive=k != "stddev", zero_ok=True)
            for k in ("mean", "median", "min", "max", "stddev")
            if result.get(k) is not None
        }
        if "mean" not in stats:
            raise EvidenceError(f"{where}.mean", "is required")
        if samples:
            stats["n"] = float(len(samples))
        params = result.get("parameters") or {}
        text = ",".join(f"{k}={params[k]}" for k in sorted(params))
        out.measurements.append(Measurement(command, text, "time", "s", "lower", stats, samples))
    return out, warnings


_K6_STATS = {"avg": "mean", "med": "median", "min": "min", "max": "max", "p(90)": "p90", "p(95)": "p95", "p(99)": "p99"}


def _k6(doc: dict, uri: str) -> tuple[BenchmarkFile, list[str]]:
    warnings: list[str] = []
    state = mapping(doc.get("state"), "state")
    run = BenchRun("k6", _commit(None, uri, warnings), None, _when(None, "", uri, warnings), "")
    out = BenchmarkFile(run)
    legacy = not any(isinstance(m, dict) and "values" in m for m in doc["metrics"].values())
    failed_thresholds = []
    for name, metric in sorted(doc["metrics"].items()):
        where = f"metrics.{name}"
        if not isinstance(metric, dict):
            raise EvidenceError(where, "expected a metric object")
        values = metric if legacy else mapping(metric.get("values"), f"{where}.values")
        kind = metric.get("type") or (
            "trend" if "avg" in values else "counter" if "count" in values else "rate" if "passes" in values else ""
        )
        for threshold, verdict in mapping(metric.get("thresholds"), f"{where}.thresholds").items():
            ok = (not verdict) if legacy else bool(verdict.get("ok") if isinstance(verdict, dict) else verdict)
            if not ok:
                failed_thresholds.append((name, threshold))
        if kind == "trend":
            is_time = metric["contains"] == "time" if "contains" in metric else "duration" in name
            factor, unit, direction = (1e-3, "s", "lower") if is_time else (1.0, "", "unknown")
            stats = {}
            for key, stat in _K6_STATS.items():
                if key in values:
                    stats[stat] = _finite(values[key], f"{where}.{key}") * factor
                    if is_time and stats[stat] < 0:
                        raise EvidenceError(f"{where}.{key}", f"expected a duration >= 0 ms, got {values[key]}")
            out.measurements.append(Measurement(name, "", name, unit, direction, stats))
        elif kind == "rate":
            rate = _finite(values.get("rate", values.get("value")), f"{where}.rate")
            direction = "lower" if "failed" in name or "error" in name else "higher"
            out.measurements.append(Measurement(name, "", name, "ratio", direction, {"mean": rate}))
        elif kind == "counter" and name in ("http_reqs", "iterations"):
            per_s = _finite(values.get("rate"), f"{where}.rate")
            out.measurements.append(Measurement(name, "", f"{name}_per_s", "1/s", "higher", {"mean": per_s}))
    if failed_thresholds:
        warnings.append("k6 thresholds crossed: " + "; ".join(f"{n}: {t}" for n, t in failed_thresholds))
        out.failures += [{"benchmark": name, "failure": f"k6 threshold {threshold!r} crossed (k6 fails the run)"}
                         for name, threshold in failed_thresholds]  # fmt: skip
    if state.get("testRunDurationMs") is not None:
        _finite(state["testRunDurationMs"], "state.testRunDurationMs")
    return out, warnings


_GO_LINE = re.compile(r"^(Benchmark\S+?)(?:-(\d+))?\s+(\d+)\s+(.+)$")
# Without -v, go test writes a benchmark's name and a tab before running it, so its failure shares
# the line: "BenchmarkX-8   \t--- FAIL: BenchmarkX-8"; with -v (or a parent of sub-benchmarks) the
# "--- FAIL" starts the line, indented by nesting.
_GO_FAIL = re.compile(r"(?:^|\s)--- FAIL: (Benchmark\S+?)(?:-\d+)?(?:\s|$)")
# A benchmark that panics kills the test binary: its name, a tab, then the panic.
_GO_PANIC = re.compile(r"^(Benchmark\S+?)(?:-\d+)?\s+panic: (.*)$")
# go test's verdict on a package ("FAIL\tpkg\t0.5s", "FAIL\tpkg [build failed]") or the test
# binary's own ("FAIL"): the run failed, whether or not a benchmark line says which one.
_GO_PKG_FAIL = re.compile(r"^FAIL(?:\s+(\S+).*)?$")


def _go(
    text: str, uri: str, at: Callable[[int], str] | None = None, when: str | None = None, warnings: list | None = None
) -> tuple[BenchmarkFile, list[str]]:
    """``go test -bench`` text. A name measured in several packages (``./...``) or at several
    GOMAXPROCS (``-cpu 1,8``: ``BenchmarkX`` and ``BenchmarkX-8``) is one series per package and
    GOMAXPROCS, as benchstat keys them, named in its params (``pkg=…``, ``procs=…``) only where they
    differ, so a file with one of each keeps its plain names. ``at`` names where a line of ``text``
    is in the file (``go test -json``: the event that holds it); ``when`` is a run time the file
    carries (``go test -json``'s first ``Time``)."""
    at = at or (lambda number: f"line {number}")
    warnings = [] if warnings is None else warnings
    run = BenchRun("go", _commit(None, uri, warnings), None, _when(when, "Time", uri, warnings), "")
    out = BenchmarkFile(run)
    found: dict[tuple[str, str, str, str], list[float]] = {}  # (name, pkg, procs, measure) -> values
    units: dict[tuple[str, str, str, str], tuple[str, str]] = {}
    pkg = ""
    failed_in: set[str] = set()  # packages with a failure already named (so FAIL adds nothing)
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("pkg: "):
            pkg = line[5:].strip()
            continue
        failed, panicked = _GO_FAIL.search(line), _GO_PANIC.match(line.strip())
        if failed or panicked:
            name = (failed or panicked).group(1)
            what = "--- FAIL" if failed else f"panic: {panicked.group(2).strip()[:200]}"
            if not any(f["benchmark"] == name for f in out.failures):  # -count N fails N times alike
                warnings.append(f"{at(number)}: {name} failed ({what}); no result")
                out.failures.append({"benchmark": name, "failure": f"failed ({at(number)}: {what})"})
            failed_in.add(pkg)
            continue
        verdict = _GO_PKG_FAIL.match(line.strip())
        if verdict:
            package = verdict.group(1) or pkg  # "FAIL\tpkg" names its package; a bare FAIL is the current one
            if package not in failed_in:
                warnings.append(f"{at(number)}: go test reported FAIL for {package or 'the test binary'}")
                out.failures.append(
                    {
                        "benchmark": package or "go test",
                        "failure": f"go test reported FAIL ({at(number)}: {line.strip()[:200]}): a benchmark or "
                        "test of the package failed, panicked or timed out, or it did not build",
                    }
                )
            failed_in.add(package)
            continue
        match = _GO_LINE.match(line.strip())
        if not match:
            continue
        name, procs, _iterations, rest = match.groups()
        fields = rest.split()
        if len(fields) % 2:
            raise EvidenceError(at(number), f"expected value/unit pairs after the iteration count, got {rest!r}")
        for value_text, unit in zip(fields[::2], fields[1::2], strict=True):
            try:
                value = float(value_text)
            except ValueError as exc:
                raise EvidenceError(at(number), f"expected a number before {unit!r}, got {value_text!r}") from exc
            if unit in UNITS:
                factor, base, direction = UNITS[unit]
                if base == "s":
                    value = _finite(value, at(number), positive=True)
            else:
                factor, base, direction = 1.0, unit, "unknown"
            key = (name, pkg, procs or "1", "time" if unit == "ns/op" else unit)  # no suffix: GOMAXPROCS=1
            found.setdefault(key, []).append(value * factor)
            units[key] = (base, direction)
    if not found:
        raise EvidenceError("(document)", f"no `BenchmarkXxx  N  value unit` lines found{_failed(out.failures)}")
    pkgs: dict[str, set[str]] = {}
    procs_of: dict[str, set[str]] = {}
    for name, pkg, procs, _ in found:
        pkgs.setdefault(name, set()).add(pkg)
        procs_of.setdefault(name, set()).add(procs)
    for (name, pkg, procs, measure), values in found.items():
        unit, direction = units[(name, pkg, procs, measure)]
        params = ",".join([f"pkg={pkg}"] * (len(pkgs[name]) > 1) + [f"procs={procs}"] * (len(procs_of[name]) > 1))
        stats = {"mean": sum(values) / len(values), "min": min(values), "max": max(values), "n": float(len(values))}
        out.measurements.append(
            Measurement(name, params, measure, unit, direction, stats, tuple(values) if len(values) > 1 else None)
        )
    return out, warnings


def _test2json_event(line: str, number: int) -> dict | None:
    """A line of ``go test -json`` (test2json): a JSON object with a string ``Action``; None for
    a line that is not JSON (go's stderr merged in). JSON that ``json_document`` refuses (a lone
    surrogate, which no report or warehouse row can hold; a key named twice) is refused, naming
    the line (``number``)."""
    try:
        event = json_document(line)
    except EvidenceError as exc:
        raise EvidenceError(
            f"line {number}" + ("" if exc.field == "(document)" else f".{exc.field}"), exc.reason
        ) from exc
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("Action"), str) else None


def _go_json(text: str, uri: str) -> tuple[BenchmarkFile, list[str]]:
    """``go test -bench -json`` (test2json): one event a line. The ``Output`` of a package's
    ``output`` events, joined, is the text go test writes (a benchmark's result line may be split
    over events: its name, then its numbers), so it is read as go text, one package after another
    (events of packages run in parallel may interleave); a line that is not an event (go's stderr
    merged in) is text of the go command. A ``fail`` event (a benchmark, ``build-fail``, or a
    package) the text does not already explain is a failure too, and so is a package with no
    ``pass``/``fail``/``skip`` verdict at all: the stream was cut short, its outcome is unknown."""
    warnings: list[str] = []
    pieces: dict[str, list[tuple[str, int]]] = {}  # package -> (output, line of the event), in order
    fails: list[tuple[int, str, str]] = []  # (line, package, test or "")
    verdicts: set[str] = set()
    tested: set[str] = set()  # packages with events: each must end with its verdict
    times: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        event = _test2json_event(line, number)
        if event is None:
            if line.lstrip().startswith("{"):
                raise EvidenceError(f"line {number}", "expected a go test -json event (a JSON object with an Action)")
            pieces.setdefault("", []).append((line + "\n", number))
            continue
        action, test = event["Action"], event.get("Test") or ""
        if "Package" not in event and "ImportPath" in event:  # go 1.24+ build events: only a failed build counts
            if action == "build-fail":
                fails.append((number, str(event["ImportPath"]).split(" ")[0], ""))
            continue
        package = str(event.get("Package") or "")
        if isinstance(event.get("Time"), str) and not times:
            times.append(event["Time"])
        if action == "output":
            if not isinstance(event.get("Output"), str):
                raise EvidenceError(f"line {number}.Output", "expected the text of an output event")
            pieces.setdefault(package, []).append((event["Output"], number))
        elif action == "fail":
            fails.append((number, package, test if isinstance(test, str) else ""))
        if action in ("pass", "fail", "skip") and not test:
            verdicts.add(package)
        pieces.setdefault(package, [])  # a package that printed nothing still needs its verdict
        tested.add(package)
    joined: list[str] = []
    origin: list[int] = []  # the event line where each line of the joined text starts
    texts: dict[str, str] = {}
    for package, items in pieces.items():
        if not items and package in verdicts:
            continue
        start = len(joined)
        if package:
            joined.append(f"pkg: {package}\n")  # go test writes it before a package's benchmarks
            origin.append(items[0][1] if items else 0)
        at_start = True
        for output, number in items:
            origin.extend([number] * ((1 if at_start else 0) + output[:-1].count("\n")))
            at_start = output.endswith("\n")
            joined.append(output)
        if not at_start:
            joined.append("\n")
        texts[package] = "".join(joined[start:])
    for package in pieces:
        if package in tested and package not in verdicts:  # a package without a pass/fail/skip event
            fails.append((0, package, ""))

    def at(number: int) -> str:
        return f"line {origin[min(number, len(origin)) - 1]}" if origin else "(document)"

    out, warnings = _go("".join(joined), uri, at, times[0] if times else None, warnings)
    named = {f["benchmark"] for f in out.failures}
    for number, package, test in fails:
        name = re.sub(r"-\d+$", "", test)
        if name.startswith("Benchmark"):
            if name in named:
                continue
            what, subject = "go test -json reported fail", name
        elif package in named or any(
            _GO_FAIL.search(line) or _GO_PANIC.match(line.strip()) or _GO_PKG_FAIL.match(line.strip())
            for line in texts.get(package, "").splitlines()
        ):
            continue  # the package's own text already names its failure
        elif number == 0:
            what, subject = "no pass/fail verdict: the go test -json stream was cut short", package or "go test"
        else:
            what, subject = f"go test -json reported fail{' for ' + test if test else ''}", package or "go test"
        where = f"line {number}" if number else "end of file"
        warnings.append(f"{where}: {subject}: {what}")
        out.failures.append({"benchmark": subject, "failure": f"{what} ({where})"})
        named.add(subject)
    return out, warnings


def _json_array(text: str) -> bool:
    """Whether ``text`` is one JSON array (a go test log may start with ``[`` too: ``[command]go test``)."""
    try:
        return isinstance(json.loads(text), list)
    except ValueError:
        return False


def read(data: bytes, uri: str, rel: str | None = None) -> ReadResult:
    """One benchmark file; ``rel`` is its path inside the evidence root (default ``uri``): where a
    time or commit the file does not carry is looked for. The folders above the root are not the
    file's: a root at ``ci/2026-01-05/`` must not date every go or hyperfine run in it that day."""
    path = uri if rel is None else rel
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvidenceError("(document)", f"not UTF-8 text ({exc.reason})") from exc
    stripped = text.lstrip()
    events = ((n, line) for n, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith('{"'))
    if any(_test2json_event(line, n) is not None for n, line in events):  # go test -json, maybe with stderr
        parsed, warnings = _go_json(text, path)
    elif stripped.startswith("[") and _json_array(text):  # not go text, whatever _go would say of it
        raise EvidenceError(
            "(document)",
            "a JSON array (as JMH's -rf json writes), not a pytest-benchmark, Google Benchmark, hyperfine or k6 "
            "summary JSON object",
        )
    elif not stripped.startswith("{"):
        parsed, warnings = _go(text, path)
    else:
        try:
            doc = json_document(text)
        except json.JSONDecodeError as exc:
            raise EvidenceError(f"line {exc.lineno}, column {exc.colno}", f"not valid JSON ({exc.msg})") from exc
        if isinstance(doc.get("benchmarks"), list) and "context" in doc:
            parsed, warnings = _google(doc, path)
        elif isinstance(doc.get("benchmarks"), list):
            parsed, warnings = _pytest(doc, path)
        elif isinstance(doc.get("results"), list):
            parsed, warnings = _hyperfine(doc, path)
        elif isinstance(doc.get("metrics"), dict):
            parsed, warnings = _k6(doc, path)
        else:
            raise EvidenceError(
                "(document)", "not a pytest-benchmark, Google Benchmark, hyperfine or k6 summary JSON document"
            )
    if not parsed.measurements:
        raise EvidenceError("(document)", f"no benchmark results in the file{_failed(parsed.failures)}")
    return ReadResult(
        observed_at=parsed.run.time,
        timestamp_field="run time",
        summary={
            "tool": parsed.run.tool,
            "commit": parsed.run.commit,
            "benchmarks": len({(m.benchmark, m.params) for m in parsed.measurements}),
            "measurements": len(parsed.measurements),
            "failures": parsed.failures,
        },
        records=[parsed],
        warnings=warnings,
        identity=(parsed.run.tool, parsed.run.commit, parsed.run.time, parsed.run.machine),
        parts=tuple(sorted({(m.benchmark, m.params, m.measure) for m in parsed.measurements})),
    )

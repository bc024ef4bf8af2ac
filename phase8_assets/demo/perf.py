"""Demo benchmark evidence: six months of main-branch history in five tools' formats, the release
candidate, and the performance scenarios. Deterministic for a seed.

Noise model: each run's level is the benchmark's level × (1 + N(0, cv)) (run-to-run noise, what
makes CI runners noisy); raw samples, where a tool keeps them, scatter ±3 % around the run's level.
History carries real change points: test_search[query=short] got 20 % faster 120 days ago,
test_post_message regressed 12 % at day −140 and was fixed at day −100, and the websocket fan-out
benchmark has been 15 % slower since day −75 (accepted then: the new normal). The messages
benchmarks carry a drift rule against the anchor frozen at release 10.3.0 (``anchor``); the
``perf-creep`` scenario is eight releases of 1.5 % creep on test_post_message since its anchor.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from phase8_assets.demo.config import EVALUATION_TIME
from phase8_assets.domains.perf import anchor_document, series_from_files
from phase8_assets.evidence.benchmarks import read as read_benchmarks
from phase8_assets.shared.clock import format_timestamp
from phase8_assets.shared.reports import write_text

HISTORY_RUNS = 52
STEP = timedelta(days=3.5)
SAMPLE_CV = 0.03

# name -> (tool, level in seconds (or unit), run-to-run cv, params)
PYTEST = {
    "tests/perf/test_messages.py::test_post_message": (1.8e-3, 0.02, None),
    "tests/perf/test_messages.py::test_edit_message": (1.2e-3, 0.02, None),
    "tests/perf/test_channels.py::test_list_channels[members=1000]": (4.5e-3, 0.02, {"members": 1000}),
    "tests/perf/test_search.py::test_search[query=short]": (8e-3, 0.02, {"query": "short"}),
    "tests/perf/test_search.py::test_search[query=long]": (22e-3, 0.06, {"query": "long"}),
    "tests/perf/test_auth.py::test_token_refresh": (0.35e-3, 0.02, None),
    "tests/perf/test_plugins.py::test_plugin_hook_dispatch": (0.09e-3, 0.025, None),
    "tests/perf/test_export.py::test_export_tenant": (0.12, 0.05, None),
}
GBENCH = {"BM_SearchIndexInsert/1000": (41e-6, 0.02), "BM_SearchIndexQuery/1000": (9.5e-6, 0.02), "BM_MarkdownRender/4096": (63e-6, 0.03)}  # fmt: skip
GO = {
    "BenchmarkWebsocketFanout/clients=100": (182e-6, 0.02, 48_000, 310),
    "BenchmarkPresenceUpdate": (2.4e-6, 0.02, 640, 9),
    "BenchmarkPushNotificationEncode": (5.1e-6, 0.02, 1_984, 21),
}
HYPERFINE = {"chatctl export --tenant acme": (2.35, 0.03), "chatctl import --dry-run": (0.84, 0.03)}
K6 = {"mean": 0.150, "cv": 0.02, "p95_factor": 1.57, "failed": 0.0008, "rps": 96.0}


def level(name: str, days_ago: float) -> float:
    """The true level multiplier of a benchmark at a time: the change points of the story."""
    if name.endswith("test_search[query=short]") and days_ago > 120:
        return 1.25  # 20 % faster since then: 1/1.25
    if name.endswith("test_post_message") and 100 < days_ago <= 140:
        return 1.12
    if name.startswith("BenchmarkWebsocketFanout") and days_ago <= 75:
        return 1.15
    return 1.0


def _hex(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(40))


class Candidate:
    """How the candidate run differs from the current level: {name: multiplier}, p95 of k6."""

    def __init__(self, shifts: dict[str, float] | None = None, k6_p95: float | None = None):
        self.shifts = shifts or {}
        self.k6_p95 = k6_p95


def _run_factor(rng: random.Random, cv: float) -> float:
    return max(0.5, 1 + rng.gauss(0, cv))


def pytest_json(at: datetime, commit: str, branch: str, rng: random.Random, days_ago: float, shift=None) -> str:
    benchmarks = []
    for name, (base, cv, params) in PYTEST.items():
        run_level = base * level(name, days_ago) * (shift or {}).get(name, 1.0) * _run_factor(rng, cv)
        data = [round(run_level * rng.lognormvariate(0, SAMPLE_CV), 9) for _ in range(12)]
        data_sorted = sorted(data)
        mean = sum(data) / len(data)
        sd = (sum((x - mean) ** 2 for x in data) / (len(data) - 1)) ** 0.5
        q1, q3 = data_sorted[3], data_sorted[8]
        benchmarks.append(
            {
                "group": None,
                "name": name.split("::")[1],
                "fullname": name,
                "params": params,
                "param": None if params is None else str(next(iter(params.values()))),
                "extra_info": {},
                "options": {
                    "disable_gc": False,
                    "timer": "perf_counter",
                    "min_rounds": 12,
                    "max_time": 1.0,
                    "min_time": 5e-06,
                    "warmup": False,
                },
                "stats": {
                    "min": data_sorted[0],
                    "max": data_sorted[-1],
                    "mean": mean,
                    "stddev": sd,
                    "rounds": 12,
                    "median": (data_sorted[5] + data_sorted[6]) / 2,
                    "iqr": q3 - q1,
                    "q1": q1,
                    "q3": q3,
                    "iqr_outliers": 0,
                    "stddev_outliers": 1,
                    "outliers": "1;0",
                    "ld15iqr": data_sorted[0],
                    "hd15iqr": data_sorted[-1],
                    "ops": 1 / mean,
                    "total": sum(data),
                    "data": data,
                    "iterations": 1,
                },
            }  # fmt: skip
        )
    doc = {
        "machine_info": {"node": "ci-perf-03", "processor": "x86_64", "machine": "x86_64", "python_version": "3.12.7",
                         "python_implementation": "CPython", "release": "6.1.0-26-cloud-amd64", "system": "Linux",
                         "cpu": {"brand_raw": "AMD EPYC 7B13", "count": 4}},
        "commit_info": {"id": commit, "time": format_timestamp(at - timedelta(hours=1)), "dirty": False,
                        "project": "chatterbox", "branch": branch},
        "benchmarks": benchmarks,
        "datetime": at.isoformat(),
        "version": "5.1.0",
    }  # fmt: skip
    return json.dumps(doc, indent=4) + "\n"


def gbench_json(at: datetime, rng: random.Random, days_ago: float, shift=None) -> str:
    rows = []
    for name, (base, cv) in GBENCH.items():
        run_level = base * level(name, days_ago) * (shift or {}).get(name, 1.0) * _run_factor(rng, cv)
        reps = [run_level * rng.lognormvariate(0, SAMPLE_CV) * 1e9 for _ in range(5)]
        for i, real in enumerate(reps):
            rows.append({"name": name, "family_index": 0, "per_family_instance_index": 0, "run_name": name,
                         "run_type": "iteration", "repetitions": 5, "repetition_index": i, "threads": 1,
                         "iterations": int(1 / (real * 1e-9) / 50), "real_time": round(real, 3),
                         "cpu_time": round(real * 0.995, 3), "time_unit": "ns"})  # fmt: skip
        mean = sum(reps) / 5
        for agg, value in (("mean", mean), ("median", sorted(reps)[2])):
            rows.append({"name": f"{name}_{agg}", "run_name": name, "run_type": "aggregate", "repetitions": 5,
                         "threads": 1, "aggregate_name": agg, "iterations": 5, "real_time": round(value, 3),
                         "cpu_time": round(value * 0.995, 3), "time_unit": "ns"})  # fmt: skip
    doc = {
        "context": {"date": at.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "host_name": "ci-perf-03",
                    "executable": "./build/chat_bench", "num_cpus": 4, "mhz_per_cpu": 2450,
                    "cpu_scaling_enabled": False, "library_build_type": "release"},
        "benchmarks": rows,
    }  # fmt: skip
    return json.dumps(doc, indent=2) + "\n"


def go_text(rng: random.Random, days_ago: float, shift=None) -> str:
    lines = ["goos: linux", "goarch: amd64", "pkg: chatterbox/server/realtime", "cpu: AMD EPYC 7B13"]
    for name, (base, cv, bytes_op, allocs) in GO.items():
        run_level = base * level(name, days_ago) * (shift or {}).get(name, 1.0) * _run_factor(rng, cv)
        for _ in range(5):
            ns = run_level * rng.lognormvariate(0, SAMPLE_CV) * 1e9
            lines.append(f"{name}-8   \t{int(2e8 / ns)}\t{ns:12.1f} ns/op\t{bytes_op:8d} B/op\t{allocs:6d} allocs/op")
    lines += ["PASS", "ok  \tchatterbox/server/realtime\t14.212s"]
    return "\n".join(lines) + "\n"


def hyperfine_json(rng: random.Random, days_ago: float, shift=None) -> str:
    results = []
    for command, (base, cv) in HYPERFINE.items():
        run_level = base * level(command, days_ago) * (shift or {}).get(command, 1.0) * _run_factor(rng, cv)
        times = [round(run_level * rng.lognormvariate(0, SAMPLE_CV), 6) for _ in range(10)]
        mean = sum(times) / 10
        sd = (sum((t - mean) ** 2 for t in times) / 9) ** 0.5
        results.append({"command": command, "mean": mean, "stddev": sd, "median": sorted(times)[5],
                        "user": mean * 0.8, "system": mean * 0.1, "min": min(times), "max": max(times),
                        "times": times, "exit_codes": [0] * 10})  # fmt: skip
    return json.dumps({"results": results}, indent=2) + "\n"


def k6_json(rng: random.Random, shift=None, p95: float | None = None) -> str:
    mean = K6["mean"] * (shift or {}).get("http_req_duration", 1.0) * _run_factor(rng, K6["cv"])
    p95 = p95 if p95 is not None else mean * K6["p95_factor"]
    ms = {"avg": mean * 1e3, "min": mean * 310, "med": mean * 930, "max": p95 * 2600, "p(90)": p95 * 880,
          "p(95)": p95 * 1e3}  # fmt: skip
    doc = {
        "root_group": {"name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e", "groups": [], "checks": []},
        "options": {"summaryTrendStats": ["avg", "min", "med", "max", "p(90)", "p(95)"], "summaryTimeUnit": "",
                    "noColor": False},
        "state": {"isStdOutTTY": False, "isStdErrTTY": False, "testRunDurationMs": 60012.4},
        "metrics": {
            "http_req_duration": {"type": "trend", "contains": "time",
                                  "values": {k: round(v, 4) for k, v in ms.items()},
                                  "thresholds": {"p(95)<250": {"ok": p95 < 0.25}}},
            "http_req_failed": {"type": "rate", "contains": "default",
                                "values": {"rate": K6["failed"], "passes": 5, "fails": 5755}},
            "http_reqs": {"type": "counter", "contains": "default",
                          "values": {"count": 5760, "rate": round(K6["rps"] * _run_factor(rng, 0.01), 4)}},
        },
    }  # fmt: skip
    return json.dumps(doc, indent=2) + "\n"


def run_files(
    prefix: str,
    at: datetime,
    commit: str,
    branch: str,
    rng: random.Random,
    now: datetime,
    cand: Candidate | None = None,
) -> dict[str, str]:
    """The five result files of one CI perf run, by path (the path carries time and commit for the
    tools that do not record them)."""
    days_ago = (now - at).total_seconds() / 86400
    shift = cand.shifts if cand else None
    stamp = at.strftime("%Y-%m-%dT%H%M%SZ")
    return {
        f"{prefix}/pytest/{stamp}_{commit[:12]}.json": pytest_json(at, commit, branch, rng, days_ago, shift),
        f"{prefix}/gbench/{stamp}_{commit[:12]}.json": gbench_json(at, rng, days_ago, shift),
        f"{prefix}/go/{stamp}_{commit[:12]}.txt": go_text(rng, days_ago, shift),
        f"{prefix}/hyperfine/{stamp}_{commit[:12]}.json": hyperfine_json(rng, days_ago, shift),
        f"{prefix}/k6/{stamp}_{commit[:12]}.json": k6_json(rng, shift, cand.k6_p95 if cand else None),
    }


def history(now: datetime, rng: random.Random) -> dict[str, str]:
    files: dict[str, str] = {}
    for i in range(HISTORY_RUNS, 0, -1):
        at = (now - STEP * i - timedelta(days=1)).replace(microsecond=0)
        at = at.replace(hour=2, minute=rng.randint(0, 59), second=rng.randint(0, 59), tzinfo=UTC)
        files.update(run_files("evidence/bench/history", at, _hex(rng), "main", rng, now))
    return files


BUDGETS = """\
apiVersion: phase8/v1
kind: PerfBudgets
description: Performance budgets of the Chatterbox server (Phase 8, stream A).
reviewed: "2026-10-15"
baseline: {branch: main, max_runs: 20, min_runs: 5}
false_discovery_rate: 0.05
change_point_p_value: 0.001
rules:
  - name: default-time
    benchmark: "*"
    relative: "+10%"
    owner: team:platform-reliability
  - name: default-cpu-time
    benchmark: "*"
    measure: cpu_time
    relative: "+10%"
    owner: team:platform-reliability
  - name: messages
    benchmark: "tests/perf/test_messages.py::*"
    absolute: "mean <= 3ms"
    relative: "+10%"
    drift: {limit: "+8%", anchor: policy/perf-baseline.yaml}
    owner: team:messaging
  - name: messages-throughput
    benchmark: "re:^tests/perf/test_messages\\\\.py::"
    absolute: "ops >= 300"
    owner: team:messaging
  - name: export
    benchmark: "tests/perf/test_export.py::test_export_tenant"
    absolute: "mean <= 200ms"
    relative: "+15%"
    owner: team:data-platform
  - name: go-memory
    benchmark: "Benchmark*"
    measure: B/op
    relative: "+10%"
    owner: team:realtime
  - name: cli
    benchmark: "chatctl *"
    relative: "+15%"
    owner: team:data-platform
  - name: api-latency
    benchmark: http_req_duration
    measure: http_req_duration
    absolute: "p95 <= 250ms"
    relative: "+10%"
    owner: team:api
  - name: api-errors
    benchmark: http_req_failed
    measure: http_req_failed
    absolute: "mean <= 1%"
    owner: team:api
"""


ANCHOR_RELEASE = "10.3.0"
ANCHOR_AGE = 10  # the anchor is the history run this many runs back, with the runs before it


def anchor(files: dict[str, str], commit: str, version: str, at: datetime, runs: int = 10) -> str:
    """The PerfBaseline of ``version`` (commit ``commit``) frozen from the pytest files among ``files``,
    as ``phase8 perf baseline --freeze`` writes it."""
    parsed = [(rel, read_benchmarks(text.encode(), rel).records[0]) for rel, text in files.items() if "/pytest/" in rel]
    doc = anchor_document(series_from_files(parsed), commit, version, "main", runs, at)
    doc["benchmarks"] = [e for e in doc["benchmarks"] if "test_messages.py" in e["benchmark"]]
    return yaml.safe_dump(doc, sort_keys=False, width=110, allow_unicode=True)


def history_anchor(files: dict[str, str]) -> str:
    """The main history's anchor: release 10.3.0 is the run ANCHOR_AGE runs before the newest."""
    pytest = sorted(rel for rel in files if "/pytest/" in rel)
    rel = pytest[-ANCHOR_AGE]
    doc = json.loads(files[rel])
    at = datetime.fromisoformat(doc["datetime"]) + timedelta(hours=6)
    return anchor(files, doc["commit_info"]["id"], ANCHOR_RELEASE, at)


def creep_budgets() -> str:
    """The perf-creep root holds only the pytest suite, so its budgets are the pytest rules of
    ``BUDGETS``: a rule whose selector matches no benchmark of a root fails its gates."""
    head, *rules = BUDGETS.split("  - name: ")
    keep = ("default-time", "messages", "messages-throughput", "export")
    head = head.replace("(Phase 8, stream A).", "(Phase 8, stream A), the pytest suite's rules.")
    return head + "".join(f"  - name: {rule}" for rule in rules if rule.split("\n", 1)[0] in keep)


CREEP = "tests/perf/test_messages.py::test_post_message"
CREEP_STEP = 1.015
CREEP_RELEASES = 8  # 9.6.0 is the anchor; 9.7 ... 10.3 and the 10.4 candidate each 1.5 % slower
RUNS_PER_RELEASE = 3


def creep(rng: random.Random, candidate_commit: str) -> dict[str, str]:
    """The perf-creep scenario's own pytest history and anchor: ten main runs of release 9.6.0 (frozen
    as the anchor), three main runs of each release after it, each release 1.5 % slower on
    test_post_message, then the 10.4.0 candidate (eight steps: +12.6 % since the anchor)."""
    files: dict[str, str] = {}
    step = timedelta(days=1.75)
    candidate_at = (EVALUATION_TIME - timedelta(hours=12)).replace(minute=3, second=17)
    releases = [0] * 10 + [k for k in range(1, CREEP_RELEASES) for _ in range(RUNS_PER_RELEASE)]
    runs = [(candidate_at - step * (len(releases) - i), _hex(rng), "main", k) for i, k in enumerate(releases)]
    runs.append((candidate_at, candidate_commit, "release/10.4", CREEP_RELEASES))
    for at, commit, branch, k in runs:
        days_ago = (EVALUATION_TIME - at).total_seconds() / 86400
        text = pytest_json(at, commit, branch, rng, days_ago, {CREEP: CREEP_STEP**k})
        files[f"bench/pytest/{at:%Y-%m-%dT%H%M%SZ}_{commit[:12]}.json"] = text
    at, commit = runs[9][0], runs[9][1]
    files["policy/perf-baseline.yaml"] = anchor(files, commit, "9.6.0", at + timedelta(hours=6))
    return files


def scenarios(out: Path, rng: random.Random) -> list[Path]:
    files = []

    def put(rel: str, text: str) -> None:
        files.append(write_text(out / "scenarios" / rel, text))

    at = (EVALUATION_TIME - timedelta(hours=12)).replace(minute=41, second=5)
    scenarios = {
        "perf-regression": (
            "a new 10.4.0 build lists channels 12 % slower; perf_regressions fails",
            Candidate({"tests/perf/test_channels.py::test_list_channels[members=1000]": 1.12}),
        ),
        "perf-budget": (
            "the k6 API test's p95 breaks its 250 ms budget; perf_budgets fails",
            Candidate({"http_req_duration": 1.04}, k6_p95=0.262),
        ),
        "perf-noise": (
            "the noisiest benchmark moved 2 %; nothing fails",
            Candidate({"tests/perf/test_search.py::test_search[query=long]": 1.02}),
        ),
    }
    for name, (description, candidate) in scenarios.items():
        commit = _hex(rng)
        put(
            f"{name}/phase8.yaml",
            "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
            f"description: {description}\n"
            f'release:\n  commit: "{commit}"\n'
            'evidence:\n  benchmarks:\n    extra_paths: ["bench/**/*"]\n',
        )
        for rel, text in run_files("bench", at, commit, "release/10.4", rng, EVALUATION_TIME, candidate).items():
            put(f"{name}/{rel}", text)
    commit = _hex(rng)
    put(
        "perf-creep/phase8.yaml",
        "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../../phase8.yaml\n"
        "description: eight releases of 1.5 % creep on test_post_message since the 9.6.0 anchor; "
        "perf_regressions fails on the drift rule while every per-release comparison passes\n"
        f'release:\n  commit: "{commit}"\n'
        'evidence:\n  benchmarks:\n    paths: ["bench/**/*"]\n'
        '  perf_budgets:\n    paths: ["policy/perf-budgets.yaml"]\n'
        '  perf_baselines:\n    paths: ["policy/perf-baseline.yaml"]\n',
    )
    for rel, text in creep(rng, commit).items():
        put(f"perf-creep/{rel}", text)
    put("perf-creep/policy/perf-budgets.yaml", creep_budgets())
    put(
        "perf-regression-waived/phase8.yaml",
        "apiVersion: phase8/v1\nkind: EvidenceConfig\nextends: ../perf-regression/phase8.yaml\n"
        "description: the list-channels regression is accepted with a waiver; nothing fails\n"
        'extra_waivers: ["waivers/*.yaml"]\n',
    )
    put(
        "perf-regression-waived/waivers/chat-5012.yaml",
        """\
apiVersion: phase8/v1
kind: Waiver
gate: perf_regressions
subject: "tests/perf/test_channels.py::test_list_channels*"
rule: "relative:*"
owner: team:messaging
reason: Per-member permission checks (CHAT-5012) cost ~12 % on list_channels; accepted for 10.4.0.
ticket: CHAT-5012
requested_by: lena@chatterbox.example
approved_by: ruth@chatterbox.example
approved_at: "2026-11-19T16:00:00Z"
expires: "2027-01-31T00:00:00Z"
""",
    )
    return files

"""The benchmarks reader: five tools' formats into one long shape, SI units, defined bad-input outcomes."""

import json

import pytest

from phase8_assets.evidence import EvidenceError, benchmarks

HINTED = "s3://ci/bench/2026-11-20T101500Z/4f2c9e1a/out"


def measurements(data, uri=HINTED):
    result = benchmarks.read(data if isinstance(data, bytes) else json.dumps(data).encode(), uri)
    return result, {(m.benchmark, m.measure): m for m in result.records[0].measurements}


@pytest.mark.realdata
def test_pytest_benchmark_current_and_old_layouts(real_samples):
    result, found = measurements((real_samples / "benchmarks/pytest_several_units.json").read_bytes())
    run = result.records[0].run
    assert (run.tool, run.commit, run.branch) == (
        "pytest-benchmark",
        "b8e9e2af2493a1ee2f3fa758a9572cd9972e6db7",
        "master",
    )
    # ns to seconds in one file, all in seconds now; ops is throughput: higher is better.
    assert found[("bench.py::test_fib_1", "time")].stats["mean"] == pytest.approx(1.4995610248628836e-07)
    assert found[("bench.py::test_sleep_2", "time")].stats["mean"] == pytest.approx(2.0038430469999997)
    ops = found[("bench.py::test_fib_1", "ops")]
    assert (ops.unit, ops.direction) == ("1/s", "higher")
    # stats.data holds a string in the real file: samples dropped (with a warning), summary kept.
    assert found[("bench.py::test_fib_1", "time")].samples is None
    assert any("samples are not finite numbers" in w for w in result.warnings)
    old, found = measurements((real_samples / "benchmarks/pytest-benchmark_storage_0001_v2.5.0.json").read_bytes())
    (m,) = found.values()  # 2.5.0: no ops, no data
    assert m.stats["n"] == 9987 and old.records[0].run.commit == "5b78858eb718649a31fb93d8dc96ca2cee41a4cd"


@pytest.mark.realdata
def test_pytest_benchmark_without_stats_is_a_failure_and_the_others_count(real_samples):
    """A benchmark written with ``"stats": null`` (a hook keeps an errored one; or it never
    measured) has no result: it is a named failure, not zeros, and the run's other benchmarks count."""
    doc = json.loads((real_samples / "benchmarks/pytest_several_units.json").read_text())
    names = [b["fullname"] for b in doc["benchmarks"]]
    doc["benchmarks"][1]["stats"] = None
    del doc["benchmarks"][2]["stats"]
    result, found = measurements(doc)
    assert sorted({b for b, _ in found}) == sorted(names[:1] + names[3:])
    assert result.summary["failures"] == [
        {"benchmark": names[i], "failure": f"has no statistics (stats: null): it errored or did not run "
                                           f"(benchmarks[{i}].stats)"}
        for i in (1, 2)
    ]  # fmt: skip
    assert f"benchmarks[1]: {names[1]!r} has no statistics (stats: null): it errored or did not run; no result" in (
        result.warnings
    )
    doc["benchmarks"] = doc["benchmarks"][1:3]  # nothing measured at all: rejected, naming why
    with pytest.raises(EvidenceError) as exc:
        measurements(doc)
    assert "no benchmark results in the file" in exc.value.reason and names[1] in exc.value.reason
    doc["benchmarks"][0]["stats"] = "n/a"
    with pytest.raises(EvidenceError) as exc:
        measurements(doc)
    assert exc.value.field == "benchmarks[0].stats"


@pytest.mark.realdata
def test_google_benchmark_and_go_text(real_samples):
    result, found = measurements((real_samples / "benchmarks/googlecpp_output.json").read_bytes())
    assert result.records[0].run.commit == "4f2c9e1a"  # from the path: the file has none
    assert found[("fib_20", "time")].stats["mean"] == pytest.approx(2.7455600415007055e-05)
    assert found[("fib_20", "cpu_time")].unit == "s"
    data = (real_samples / "benchmarks/go_output.txt").read_bytes()
    result, found = measurements(data)
    assert result.records[0].run.time.isoformat() == "2026-11-20T10:15:00+00:00"
    # -8 / -16 GOMAXPROCS suffixes stripped; sub-benchmarks keep their "/" and ",var=" parts.
    assert found[("BenchmarkFib10", "time")].stats["mean"] == pytest.approx(325e-9)
    assert ("BenchmarkFib/my/tabled/benchmark_-_20,var1=13,var2=14", "time") in found
    custom = found[("BenchmarkFib11", "auxMetricUnits")]
    assert (custom.unit, custom.direction, custom.stats["mean"]) == ("auxMetricUnits", "unknown", 3.0)
    # Without a time inside the file or in its path: rejected, saying where to put it.
    with pytest.raises(EvidenceError, match="no run time inside the file") as info:
        benchmarks.read(data, "bench/go_output.txt")
    assert info.value.field == "(path)"


def test_go_benchmem_units():
    text = b"BenchmarkParse-8   100000   1520 ns/op   512 B/op   7 allocs/op   95.2 MB/s\nPASS\n"
    _, found = measurements(text)
    assert found[("BenchmarkParse", "B/op")].stats["mean"] == 512 and found[("BenchmarkParse", "B/op")].unit == "B"
    assert found[("BenchmarkParse", "MB/s")].direction == "higher"
    assert found[("BenchmarkParse", "MB/s")].stats["mean"] == pytest.approx(95.2e6)


def test_go_keeps_packages_and_gomaxprocs_apart_where_one_name_has_several():
    """As benchstat keys them: ``-cpu 1,8`` and ``./...`` never pool different configurations."""
    text = (
        b"pkg: chat/realtime\nBenchmarkPresence-8  100  2300 ns/op\nBenchmarkPresence  100  4600 ns/op\n"
        b"BenchmarkFanout-8  100  9000 ns/op\npkg: chat/search\nBenchmarkPresence-8  100  500 ns/op\n"
    )
    result = benchmarks.read(text, HINTED)
    means = {(m.benchmark, m.params): m.stats["mean"] for m in result.records[0].measurements}
    assert means == pytest.approx({
        ("BenchmarkPresence", "pkg=chat/realtime,procs=8"): 2300e-9,
        ("BenchmarkPresence", "pkg=chat/realtime,procs=1"): 4600e-9,
        ("BenchmarkPresence", "pkg=chat/search,procs=8"): 500e-9,
        ("BenchmarkFanout", ""): 9000e-9,
    })  # fmt: skip


def test_hyperfine_failed_commands_are_not_timings():
    doc = {
        "results": [
            {"command": "chatctl export", "mean": 0.5, "stddev": 0.01, "median": 0.5, "min": 0.49, "max": 0.52,
             "times": [0.49, 0.5, 0.52], "exit_codes": [0, 0, 0]},
            {"command": "chatctl import", "mean": 0.1, "stddev": 0.0, "median": 0.1, "min": 0.1, "max": 0.1,
             "times": [0.1, 0.1, 0.1], "exit_codes": [0, 1, 0]},
            {"command": "chatctl old", "mean": 0.2, "stddev": 0.0, "median": 0.2, "min": 0.2, "max": 0.2,
             "times": [0.2, 0.2]},  # old hyperfine: no exit_codes
        ]
    }  # fmt: skip
    result, found = measurements(doc)
    assert sorted(b for b, _ in found) == ["chatctl export", "chatctl old"]
    assert found[("chatctl export", "time")].samples == (0.49, 0.5, 0.52)
    assert any("exited non-zero" in w for w in result.warnings)


def test_hyperfine_a_run_killed_by_a_signal_is_a_failure_not_a_crash():
    """hyperfine writes ``exit_codes`` as ``Vec<Option<i32>>``: ``null`` for a run killed by a signal
    (a timeout, the OOM killer), next to the 0s of the runs that finished."""
    doc = {
        "results": [
            {"command": "chatctl export", "mean": 0.5, "stddev": 0.01, "median": 0.5, "min": 0.49, "max": 0.52,
             "times": [0.49, 0.5, 0.52], "exit_codes": [0, 0, 0]},
            {"command": "chatctl import", "mean": 0.1, "stddev": 0.0, "median": 0.1, "min": 0.1, "max": 0.1,
             "times": [0.1, 0.1, 0.1], "exit_codes": [0, None, 2]},
        ]
    }  # fmt: skip
    result, found = measurements(doc)
    assert list(found) == [("chatctl export", "time")]
    assert result.summary["failures"] == [
        {"benchmark": "chatctl import", "failure": "exited non-zero (2, killed by a signal (null))"}
    ]
    doc["results"][1]["exit_codes"] = "0"
    with pytest.raises(EvidenceError) as exc:
        measurements(doc)
    assert exc.value.field == "results[1].exit_codes"


def test_hyperfine_writes_zero_for_a_time_below_the_shell_start_up():
    """hyperfine subtracts the shell's start-up time and writes 0 when a run was faster than it."""
    doc = {"results": [{"command": "true", "mean": 0.0004, "stddev": 0.0005, "median": 0.0, "min": 0.0,
                        "max": 0.001, "times": [0.0, 0.001, 0.0002], "exit_codes": [0, 0, 0]}]}  # fmt: skip
    _, found = measurements(doc)
    assert found[("true", "time")].samples == (0.0, 0.001, 0.0002) and found[("true", "time")].stats["min"] == 0
    doc["results"][0]["times"][1] = -0.001
    with pytest.raises(EvidenceError) as exc:
        measurements(doc)
    assert (exc.value.field, exc.value.reason) == ("results[0].times[1]", "expected a timing >= 0, got -0.001")


GOOGLE_CONTEXT = {"date": "2026-11-20T10:15:00+00:00", "host_name": "ci-7"}


def test_google_rows_that_are_not_timings_of_a_run_are_left_out():
    """Complexity fits (BigO, RMS: no real_time), cv (a fraction, 0 for identical repetitions) and
    user statistics are aggregates of Google Benchmark, not timings."""
    rows = [
        {"name": "BM_Sort/8", "run_name": "BM_Sort/8", "run_type": "iteration", "real_time": 10.0,
         "cpu_time": 9.0, "time_unit": "ns"},
        {"name": "BM_Sort/8_cv", "run_name": "BM_Sort/8", "run_type": "aggregate", "aggregate_name": "cv",
         "aggregate_unit": "percentage", "real_time": 0.0, "cpu_time": 0.0, "time_unit": "ns"},
        {"name": "BM_Sort_BigO", "run_name": "BM_Sort", "run_type": "aggregate", "aggregate_name": "BigO",
         "cpu_coefficient": 1.2, "real_coefficient": 1.3, "big_o": "N", "time_unit": "ns"},
        {"name": "BM_Sort_RMS", "run_name": "BM_Sort", "run_type": "aggregate", "aggregate_name": "RMS", "rms": 0.01},
    ]  # fmt: skip
    result, found = measurements({"context": GOOGLE_CONTEXT, "benchmarks": rows})
    assert sorted(found) == [("BM_Sort/8", "cpu_time"), ("BM_Sort/8", "time")]
    assert found[("BM_Sort/8", "time")].stats["mean"] == pytest.approx(10e-9)
    assert result.summary["failures"] == []


def test_what_the_tool_reports_as_failed_is_a_failure_of_the_run():
    """Kept in the summary for perf_budgets (the release's runs must have none) and as a warning."""
    ok = {"name": "BM_Ok", "run_type": "iteration", "real_time": 5.0, "cpu_time": 5.0, "time_unit": "ns"}
    errored = {"name": "BM_Db", "run_type": "iteration", "error_occurred": True, "error_message": "connection refused"}
    skipped = {"name": "BM_Gpu", "run_type": "iteration", "skipped": True, "skip_message": "no GPU"}
    result, _ = measurements({"context": GOOGLE_CONTEXT, "benchmarks": [ok, errored, errored, skipped]})
    # SkipWithError fails; SkipWithMessage skips on purpose: no result, a warning, not a failure.
    assert result.summary["failures"] == [{"benchmark": "BM_Db", "failure": "reported an error (connection refused)"}]
    assert "benchmarks[3]: 'BM_Gpu' was skipped (no GPU); no result" in result.warnings
    go = b"BenchmarkOk-8  100  1520 ns/op\n--- FAIL: BenchmarkPresence-8\n    bench_test.go:12: db down\nFAIL\n"
    result, found = measurements(go)
    assert list(found) == [("BenchmarkOk", "time")]
    assert result.summary["failures"] == [{"benchmark": "BenchmarkPresence", "failure": "failed (line 2: --- FAIL)"}]
    assert "line 2: BenchmarkPresence failed (--- FAIL); no result" in result.warnings
    with pytest.raises(EvidenceError) as exc:
        measurements(b"--- FAIL: BenchmarkPresence-8\nFAIL\n")
    assert "BenchmarkPresence failed" in exc.value.reason
    k6 = {"metrics": {"checks": {"type": "rate", "values": {"rate": 0.9}, "thresholds": {"rate>0.99": {"ok": False}}}}}
    result, _ = measurements(k6)
    assert result.summary["failures"] == [
        {"benchmark": "checks", "failure": "k6 threshold 'rate>0.99' crossed (k6 fails the run)"}
    ]


def test_go_failures_as_go_test_writes_them_without_v_panics_and_package_verdicts():
    """Without -v go test prints a benchmark's name and a tab before running it, so its '--- FAIL'
    (repeated under -count) shares that line; a panic kills the binary after the name; a package's
    FAIL verdict that no benchmark line explains (a panic, a failed test, no build) fails the run too."""
    go = (
        b"pkg: chat/realtime\n"
        b"BenchmarkPresence-8   \t--- FAIL: BenchmarkPresence-8\n    presence_test.go:41: redis down\n"
        b"BenchmarkPresence-8   \t--- FAIL: BenchmarkPresence-8\n    presence_test.go:41: redis down\n"
        b"BenchmarkOk-8  100  1520 ns/op\nFAIL\nexit status 1\nFAIL\tchat/realtime\t3.1s\n"
        b"pkg: chat/push\nBenchmarkEncode-8  100  4894 ns/op\nBenchmarkSign-8   \tpanic: nil map\n\n"
        b"goroutine 7 [running]:\nexit status 2\nFAIL\tchat/push\t0.2s\n"
        b"pkg: chat/search\nBenchmarkQuery-8  100  900 ns/op\n--- FAIL: TestIndex (0.00s)\nFAIL\nexit status 1\n"
        b"FAIL\tchat/search\t0.4s\n# chat/auth\nauth/token.go:3:1: syntax error\nFAIL\tchat/auth [build failed]\n"
    )
    result, found = measurements(go)
    assert sorted(found) == [("BenchmarkEncode", "time"), ("BenchmarkOk", "time"), ("BenchmarkQuery", "time")]
    failures = result.summary["failures"]
    assert [f["benchmark"] for f in failures] == ["BenchmarkPresence", "BenchmarkSign", "chat/search", "chat/auth"]
    assert failures[0]["failure"] == "failed (line 2: --- FAIL)"
    assert failures[1]["failure"] == "failed (line 12: panic: nil map)"
    assert failures[2]["failure"].startswith("go test reported FAIL (line 20: FAIL)")
    assert "FAIL\tchat/auth [build failed]" in failures[3]["failure"]


def go_json_events(*events):
    """``go test -json`` output: one event a line, ``(package, test, output)`` for an output event,
    ``(package, test, action)`` for another (an action is a word without a newline)."""
    lines = []
    for i, (package, test, what) in enumerate(events):
        event = {"Time": f"2026-11-19T16:07:{10 + i:02d}.123456789+01:00", "Package": package}
        if test:
            event["Test"] = test
        if what in ("start", "run", "pass", "fail", "skip", "bench"):
            event["Action"] = what
        else:
            event.update(Action="output", Output=what)
        lines.append(json.dumps(event))
    return ("\n".join(lines) + "\n").encode()


def test_go_test_json_is_read_as_the_go_text_it_carries():
    """test2json: the benchmark's name and its numbers are separate output events (go prints the name
    before running it); packages run in parallel interleave; -benchmem columns; the run time is the
    first event's Time. The measurements are those of the same run written as text."""
    rt, push = "chat/realtime", "chat/push"
    stream = go_json_events(
        (rt, "", "start"), (push, "", "start"),
        (rt, "", "goos: linux\n"), (rt, "", "pkg: chat/realtime\n"),
        (rt, "", "BenchmarkFanout/clients=100-8         \t"),
        (push, "", "pkg: chat/push\n"),
        (rt, "BenchmarkFanout/clients=100-8", "     926\t    215802.6 ns/op\t   48000 B/op\t     310 allocs/op\n"),
        (push, "", "BenchmarkEncode-8   \t"),
        (rt, "", "BenchmarkFanout/clients=100-8         \t"),
        (push, "BenchmarkEncode-8", "   40863\t      4894.3 ns/op\n"),
        (rt, "BenchmarkFanout/clients=100-8", "     950\t    210392.2 ns/op\t   48000 B/op\t     310 allocs/op\n"),
        (rt, "BenchmarkFanout", "bench"), (rt, "", "PASS\n"), (rt, "", "ok  \tchat/realtime\t3.2s\n"), (rt, "", "pass"),
        (push, "", "PASS\n"), (push, "", "ok  \tchat/push\t1.1s\n"), (push, "", "pass"),
    )  # fmt: skip
    stream = b"go: downloading github.com/gorilla/websocket v1.5.0\n" + stream  # go's stderr merged in (2>&1)
    result, found = measurements(stream, uri="s3://ci/bench/4f2c9e1a/go.json")
    text = (
        b"pkg: chat/realtime\nBenchmarkFanout/clients=100-8  926  215802.6 ns/op  48000 B/op  310 allocs/op\n"
        b"BenchmarkFanout/clients=100-8  950  210392.2 ns/op  48000 B/op  310 allocs/op\n"
        b"pkg: chat/push\nBenchmarkEncode-8  40863  4894.3 ns/op\nok  \tchat/push\t1.1s\n"
    )
    _, from_text = measurements(text)
    assert found == from_text
    assert found[("BenchmarkFanout/clients=100", "time")].samples == pytest.approx((215802.6e-9, 210392.2e-9))
    assert found[("BenchmarkFanout/clients=100", "B/op")].stats["mean"] == 48000
    run = result.records[0].run
    assert (run.tool, run.commit, run.time.isoformat()) == ("go", "4f2c9e1a", "2026-11-19T15:07:10.123456+00:00")
    assert result.summary["failures"] == [] and result.warnings == []


def test_go_test_json_failures_are_failures():
    """A failed benchmark (its '--- FAIL' output and its fail event), a unit test failing the package,
    a package that did not build (go 1.24+ build events), a fail event no text explains, and a stream
    cut short (a package with no pass/fail verdict) all fail the run; the other results count."""
    rt, push, search, auth, cut = "chat/realtime", "chat/push", "chat/search", "chat/auth", "chat/cut"
    stream = go_json_events(
        (rt, "", "pkg: chat/realtime\n"), (rt, "", "BenchmarkOk-8   \t"), (rt, "BenchmarkOk-8", "100\t1520 ns/op\n"),
        (rt, "", "BenchmarkPresence-8   \t"), (rt, "BenchmarkPresence-8", "--- FAIL: BenchmarkPresence-8\n"),
        (rt, "BenchmarkPresence-8", "    presence_test.go:41: redis down\n"), (rt, "BenchmarkPresence-8", "fail"),
        (rt, "", "FAIL\n"), (rt, "", "FAIL\tchat/realtime\t3.1s\n"), (rt, "", "fail"),
        (search, "", "BenchmarkQuery-8   \t"), (search, "BenchmarkQuery-8", "100\t900 ns/op\n"),
        (search, "TestIndex", "--- FAIL: TestIndex (0.00s)\n"), (search, "TestIndex", "fail"),
        (search, "", "FAIL\n"), (search, "", "FAIL\tchat/search\t0.4s\n"), (search, "", "fail"),
        (push, "", "BenchmarkEncode-8   \t"), (push, "BenchmarkEncode-8", "100\t4894 ns/op\n"),
        (push, "BenchmarkSign", "fail"), (push, "", "fail"),  # fail events, no text saying so
        (cut, "", "BenchmarkCut-8   \t"), (cut, "BenchmarkCut-8", "100\t700 ns/op\n"),  # then nothing
    )  # fmt: skip
    build = [
        {"ImportPath": "chat/auth [chat/auth.test]", "Action": "build-output", "Output": "# chat/auth\n"},
        {"ImportPath": "chat/auth [chat/auth.test]", "Action": "build-fail"},
        {"Action": "output", "Package": auth, "Output": "FAIL\tchat/auth [build failed]\n"},
        {"Action": "fail", "Package": auth, "FailedBuild": "chat/auth [chat/auth.test]"},
    ]
    stream += "".join(json.dumps(e) + "\n" for e in build).encode()
    result, found = measurements(stream)
    assert sorted(b for b, _ in found) == ["BenchmarkCut", "BenchmarkEncode", "BenchmarkOk", "BenchmarkQuery"]
    failures = {f["benchmark"]: f["failure"] for f in result.summary["failures"]}
    assert list(failures) == ["BenchmarkPresence", "chat/search", "chat/auth", "BenchmarkSign", "chat/push", "chat/cut"]
    assert failures["BenchmarkPresence"] == "failed (line 4: --- FAIL)"  # the event where its line starts
    assert failures["chat/search"].startswith("go test reported FAIL (line 15: FAIL)")
    assert "[build failed]" in failures["chat/auth"]
    assert failures["BenchmarkSign"] == "go test -json reported fail (line 20)"
    assert failures["chat/push"] == "go test -json reported fail (line 21)"
    assert failures["chat/cut"] == "no pass/fail verdict: the go test -json stream was cut short (end of file)"
    with pytest.raises(EvidenceError) as exc:  # a truncated event
        measurements(stream + b'{"Action":"outp')
    assert exc.value.field == "line 28"


def test_go_test_json_with_a_lone_surrogate_is_refused_naming_its_line():
    """An event whose text holds half of a character (a ``\\ud83d`` escape without its pair) is
    refused by the reader, naming its line: read as json.loads gives it, it reached the warehouse,
    whose UTF-8 cannot hold it, and the benchmark load failed for every file (perf gates: error)."""
    pkg = "chat/realtime"
    stream = go_json_events(
        (pkg, "", "pkg: chat/realtime\n"), (pkg, "", "BenchmarkFanout/emoji=\ud83d-8   \t"),
        (pkg, "BenchmarkFanout/emoji=\ud83d-8", "926\t215802.6 ns/op\n"), (pkg, "", "pass"),
    )  # fmt: skip
    assert b"\\ud83d" in stream  # json.dumps writes the escape, as any JSON writer would
    with pytest.raises(EvidenceError) as exc:
        measurements(stream)
    assert exc.value.field == "line 2.Output" and "lone UTF-16 surrogate" in exc.value.reason


def test_a_json_array_is_named_as_one_not_read_as_go_text():
    """JMH's ``-rf json`` (and other tools) write a top-level JSON array: it was read as go text and
    refused for having no ``BenchmarkXxx`` lines, which sent its owner looking at the wrong format."""
    jmh = [{"jmhVersion": "1.37", "benchmark": "org.sample.Bench.run", "mode": "thrpt",
            "primaryMetric": {"score": 3.4e9, "scoreUnit": "ops/s", "rawData": [[3.4e9]]}}]  # fmt: skip
    with pytest.raises(EvidenceError) as exc:
        measurements(json.dumps(jmh, indent=4).encode())
    assert exc.value.field == "(document)" and exc.value.reason.startswith("a JSON array")
    # A go log that starts with "[" is still go text.
    _, found = measurements(b"[command]/usr/bin/go test -bench .\nBenchmarkX-8  100  1520 ns/op\n")
    assert list(found) == [("BenchmarkX", "time")]


def test_k6_handle_summary_and_legacy_summary_export_thresholds():
    handle = {
        "state": {"testRunDurationMs": 30012.5},
        "metrics": {
            "http_req_duration": {"type": "trend", "contains": "time",
                                  "values": {"avg": 120.5, "med": 110.0, "min": 80.0, "max": 480.0, "p(90)": 200.0, "p(95)": 250.0},
                                  "thresholds": {"p(95)<200": {"ok": False}}},
            "http_req_failed": {"type": "rate", "contains": "default", "values": {"rate": 0.01, "passes": 3, "fails": 297}},
            "http_reqs": {"type": "counter", "contains": "default", "values": {"count": 300, "rate": 9.99}},
        },
    }  # fmt: skip
    result, found = measurements(handle)
    duration = found[("http_req_duration", "http_req_duration")]
    assert duration.stats["p95"] == pytest.approx(0.25) and duration.unit == "s"
    assert found[("http_req_failed", "http_req_failed")].direction == "lower"
    assert found[("http_reqs", "http_reqs_per_s")].stats["mean"] == pytest.approx(9.99)
    assert any("p(95)<200" in w for w in result.warnings)  # ok: false = crossed
    legacy = {
        "metrics": {
            "http_req_duration": {"avg": 120.5, "med": 110.0, "min": 80.0, "max": 480.0, "p(90)": 200.0, "p(95)": 250.0,
                                  "thresholds": {"p(95)<500": False}},
            "http_reqs": {"count": 300, "rate": 9.99},
            "http_req_failed": {"passes": 3, "fails": 297, "value": 0.01},
        }
    }  # fmt: skip
    result, found = measurements(legacy)
    assert found[("http_req_duration", "http_req_duration")].stats["p95"] == pytest.approx(0.25)
    assert found[("http_req_failed", "http_req_failed")].stats["mean"] == 0.01
    assert not any("thresholds crossed" in w for w in result.warnings)  # legacy false = not crossed


def test_nan_and_infinity_samples_are_counted_in_the_warning():
    # Python's json module writes NaN and Infinity as bare words; they parse back as floats.
    text = (
        '{"datetime": "2026-11-20T00:00:00Z", "benchmarks": [{"name": "a", '
        '"stats": {"mean": 1.0, "data": [1.0, NaN, Infinity]}}]}'
    )
    result, found = measurements(text.encode())
    assert found[("a", "time")].samples is None
    (warning,) = result.warnings
    assert warning.startswith("benchmarks[0].stats.data: 2 of 3 samples are not finite numbers")


def test_rounds_the_tool_did_not_report_stay_missing():
    _, found = measurements({"datetime": "2026-11-20T00:00:00Z", "benchmarks": [{"name": "a", "stats": {"mean": 1.0}}]})
    assert "n" not in found[("a", "time")].stats


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"context": {"date": "2026-11-20T00:00:00Z"}, "benchmarks": [{"name": "a", "run_type": "iteration", "real_time": 0, "cpu_time": 1, "time_unit": "ns"}]}, "benchmarks[0].real_time"),
        ({"context": {"date": "2026-11-20T00:00:00Z"}, "benchmarks": [{"name": "a", "run_type": "iteration", "real_time": -5, "cpu_time": 1, "time_unit": "ns"}]}, "benchmarks[0].real_time"),
        ({"context": {"date": "2026-11-20T00:00:00Z"}, "benchmarks": [{"name": "a", "run_type": "iteration", "real_time": 5, "cpu_time": 1, "time_unit": "fortnights"}]}, "benchmarks[0].time_unit"),
        ({"datetime": "2026-11-20T00:00:00Z", "benchmarks": [{"name": "a", "stats": {"mean": "fast"}}]}, "benchmarks[0].stats.mean"),
        ({"datetime": "2026-11-20T00:00:00Z", "benchmarks": [{"name": "a", "stats": {"min": 1.0}}]}, "benchmarks[0].stats.mean"),
        ({"something": "else"}, "(document)"),
        ({"state": [30012.5], "metrics": {}}, "state"),
        ({"metrics": {"http_req_duration": {"type": "trend", "values": [120.5]}}}, "metrics.http_req_duration.values"),
        ({"metrics": {"http_reqs": {"type": "counter", "values": {"rate": 1.0}, "thresholds": ["rate>1"]}}}, "metrics.http_reqs.thresholds"),
    ],
)  # fmt: skip
def test_bad_results_are_rejected_with_the_field(doc, field):
    with pytest.raises(EvidenceError) as info:
        benchmarks.read(json.dumps(doc).encode(), HINTED)
    assert info.value.field == field


def test_nan_timings_and_truncated_files_are_rejected():
    doc = '{"datetime": "2026-11-20T00:00:00Z", "benchmarks": [{"name": "a", "stats": {"mean": NaN}}]}'
    with pytest.raises(EvidenceError, match="finite"):
        benchmarks.read(doc.encode(), HINTED)
    with pytest.raises(EvidenceError, match="not valid JSON"):
        benchmarks.read(doc[:40].encode(), HINTED)
    with pytest.raises(EvidenceError) as info:
        benchmarks.read(b"BenchmarkX-8  100  12 ns/op 5\n", HINTED)
    assert info.value.field == "line 1"


def test_a_run_without_a_commit_is_history_only():
    doc = {"datetime": "2026-11-20T00:00:00Z", "benchmarks": [{"name": "a", "stats": {"mean": 1e-3, "rounds": 5}}]}
    result = benchmarks.read(json.dumps(doc).encode(), "bench/nightly.json")
    assert result.records[0].run.commit is None
    assert any("never a release candidate" in w for w in result.warnings)


@pytest.mark.realdata
def test_reader_warnings_reach_the_validity_gate_under_their_own_rule(real_samples, tmp_path):
    from phase8_assets.domains.evidence_quality import evidence_validity
    from phase8_assets.evidence import readers
    from phase8_assets.evidence.collect import collect
    from phase8_assets.evidence.config import load_config

    (tmp_path / "bench").mkdir()
    (tmp_path / "bench/pytest_output.json").write_bytes((real_samples / "benchmarks/pytest_output.json").read_bytes())
    (tmp_path / "phase8.yaml").write_text(
        'apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: "1", commit: "abcdef1"}\n'
        'evidence:\n  benchmarks: {paths: ["bench/*.json"], max_age: P30D}\n'
    )
    config = load_config([str(tmp_path)], set(readers()))
    found, _ = evidence_validity(collect(config), config, None)
    assert sorted(f.rule for f in found) == ["reader-warning", "timestamp-has-zone"]
    other = next(f for f in found if f.rule == "reader-warning")
    assert "samples are not finite numbers" in other.observed and other.severity == "warning"


def test_a_date_or_commit_in_the_folders_above_the_root_never_dates_or_names_a_run(tmp_path):
    """A root at ``ci/2026-01-05/`` (a nightly artifact prefix): every go and hyperfine run in it
    took that day from the root's path, so a release run lost its baseline and its regression."""
    from phase8_assets.evidence import readers
    from phase8_assets.evidence.collect import collect
    from phase8_assets.evidence.config import load_config

    root = tmp_path / "2026-01-05" / "deadbeef1"
    (root / "bench").mkdir(parents=True)
    (root / "bench/2026-11-20T101500Z_4f2c9e1a.txt").write_bytes(b"BenchmarkX-8  100  12 ns/op\nPASS\n")
    (root / "bench/undated.txt").write_bytes(b"BenchmarkX-8  100  13 ns/op\nPASS\n")
    (root / "phase8.yaml").write_text(
        'apiVersion: phase8/v1\nkind: EvidenceConfig\nrelease: {version: "1", commit: "abcdef1"}\n'
        'evidence:\n  benchmarks: {paths: ["bench/*.txt"], max_age: P30D}\n'
    )
    batch = collect(load_config([str(root)], set(readers())))
    (f,) = batch.files
    assert f.observed_at.isoformat() == "2026-11-20T10:15:00+00:00"
    assert f.summary["commit"] == "4f2c9e1a"
    # The file without a time in its own path is refused, not dated by the root's folders.
    (rej,) = batch.rejections
    assert rej.uri.endswith("undated.txt") and rej.field == "(path)"


@pytest.mark.parametrize(
    "written", ["(detached head)", "(unknown)", "(unknown vcs)", "(error: fatal: not a git repository)"]
)
def test_pytest_benchmark_branch_placeholders_are_no_branch(written):
    """pytest-benchmark writes ``(detached head)`` for a detached checkout (every GitLab CI job,
    most CI runs of a tag or a commit) and ``(unknown)`` when it cannot ask git: no branch is
    recorded. Kept as a branch, no run of the base branch built in CI would ever be baseline
    history, and perf_regressions would judge nothing."""
    doc = {
        "datetime": "2026-11-20T00:00:00+00:00",
        "commit_info": {"id": "4f2c9e1a7b3d5c8e0f1a2b3c4d5e6f7a8b9c0d1e", "dirty": False, "branch": written},
        "benchmarks": [{"name": "a", "fullname": "t.py::a", "stats": {"mean": 1e-3, "rounds": 5}}],
    }
    result, _ = measurements(doc)
    assert result.records[0].run.branch is None
    doc["commit_info"]["branch"] = "release/10.4"
    result, _ = measurements(doc)
    assert result.records[0].run.branch == "release/10.4"


def test_google_cpu_time_zero_is_not_measured_and_the_real_time_counts():
    """Where the process CPU clock ticks coarsely (Windows, WSL: 64 Hz), Google Benchmark writes
    ``cpu_time: 0`` for a short benchmark: the clock did not move, nothing was measured. That
    benchmark's cpu_time is missing (a warning naming the row), never 0 and never a rejection of
    the whole file; its real_time and the other benchmarks count. A real_time of 0 is still rejected."""
    agg = {"run_name": "BM_Dot/iterations:8", "run_type": "aggregate", "repetitions": 8, "time_unit": "ns"}
    rows = [
        {"name": "BM_Ok", "run_name": "BM_Ok", "run_type": "iteration", "real_time": 5.0, "cpu_time": 4.0,
         "time_unit": "ns"},
        dict(agg, name="BM_Dot/iterations:8_mean", aggregate_name="mean", real_time=100.0, cpu_time=0.0),
        dict(agg, name="BM_Dot/iterations:8_median", aggregate_name="median", real_time=99.0, cpu_time=0.0),
        dict(agg, name="BM_Dot/iterations:8_stddev", aggregate_name="stddev", real_time=213.4, cpu_time=0.0),
        dict(agg, name="BM_Dot/iterations:8_cv", aggregate_name="cv", aggregate_unit="percentage", real_time=1.2,
             cpu_time=0.0),
    ]  # fmt: skip
    result, found = measurements({"context": GOOGLE_CONTEXT, "benchmarks": rows})
    assert sorted(found) == [("BM_Dot/iterations:8", "time"), ("BM_Ok", "cpu_time"), ("BM_Ok", "time")]
    assert found[("BM_Dot/iterations:8", "time")].stats["mean"] == pytest.approx(100e-9)
    assert any(w.startswith("benchmarks[1].cpu_time: 0 for 'BM_Dot/iterations:8'") for w in result.warnings)
    # One repetition at 0 among measured ones: the cpu_time series is below the clock's resolution.
    reps = [
        {"name": "BM_X", "run_type": "iteration", "real_time": 9.0, "cpu_time": c, "time_unit": "ns"} for c in (0, 15.6)
    ]
    result, found = measurements({"context": GOOGLE_CONTEXT, "benchmarks": reps})
    assert sorted(found) == [("BM_X", "time")] and found[("BM_X", "time")].stats["n"] == 2

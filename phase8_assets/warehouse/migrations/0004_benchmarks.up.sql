-- Benchmark runs, one row per result file (run_id = the file's sha256): re-reading adds nothing.
CREATE TABLE bench_runs (
    root     VARCHAR   NOT NULL,
    run_id   VARCHAR   NOT NULL,
    uri      VARCHAR   NOT NULL,
    tool     VARCHAR   NOT NULL,
    commit   VARCHAR,              -- NULL: history only, never a release candidate
    branch   VARCHAR,              -- NULL: the tool does not record one
    run_at   TIMESTAMP NOT NULL,   -- UTC
    machine  VARCHAR   NOT NULL,
    read_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (root, run_id)
);

-- The long table: one row per run, benchmark, parameters and measure; values in SI base units.
CREATE TABLE bench_results (
    root      VARCHAR NOT NULL,
    run_id    VARCHAR NOT NULL,
    benchmark VARCHAR NOT NULL,
    params    VARCHAR NOT NULL,
    measure   VARCHAR NOT NULL,
    unit      VARCHAR NOT NULL,
    direction VARCHAR NOT NULL,   -- lower | higher | unknown
    mean      DOUBLE,
    median    DOUBLE,
    min       DOUBLE,
    max       DOUBLE,
    stddev    DOUBLE,
    p90       DOUBLE,
    p95       DOUBLE,
    p99       DOUBLE,
    n         DOUBLE,
    PRIMARY KEY (root, run_id, benchmark, params, measure)
);

-- Raw samples, when the tool gives them (SI base units).
CREATE TABLE bench_samples (
    root      VARCHAR NOT NULL,
    run_id    VARCHAR NOT NULL,
    benchmark VARCHAR NOT NULL,
    params    VARCHAR NOT NULL,
    measure   VARCHAR NOT NULL,
    seq       INTEGER NOT NULL,
    value     DOUBLE  NOT NULL
);

-- Change points over the base-branch history, recomputed whole for a root on each evaluation.
CREATE TABLE perf_change_points (
    root        VARCHAR   NOT NULL,
    benchmark   VARCHAR   NOT NULL,
    params      VARCHAR   NOT NULL,
    measure     VARCHAR   NOT NULL,
    run_id      VARCHAR   NOT NULL,   -- the first run after the change
    commit      VARCHAR,
    run_at      TIMESTAMP NOT NULL,
    before_mean DOUBLE    NOT NULL,
    after_mean  DOUBLE    NOT NULL,
    change      DOUBLE    NOT NULL,   -- (after - before) / before
    p_value     DOUBLE    NOT NULL,
    PRIMARY KEY (root, benchmark, params, measure, run_id)
);

-- OTLP metric files ingested, once per (root, content).
CREATE TABLE otel_files (
    root    VARCHAR   NOT NULL,
    sha256  VARCHAR   NOT NULL,
    uri     VARCHAR   NOT NULL,
    points  BIGINT    NOT NULL,
    read_at TIMESTAMP NOT NULL,
    PRIMARY KEY (root, sha256)
);

-- One row per OTLP data point, flat (see evidence/otlp_metrics.py). Written only together with its
-- file's row, so re-ingesting the same file adds nothing; overlapping exports are de-duplicated
-- when read.
CREATE TABLE otel_points (
    root        VARCHAR  NOT NULL,
    sha256      VARCHAR  NOT NULL,
    metric      VARCHAR  NOT NULL,
    service     VARCHAR  NOT NULL,
    attrs       VARCHAR  NOT NULL,   -- canonical JSON of resource (but service.name) + point attributes
    kind        VARCHAR  NOT NULL,   -- sum | gauge | histogram | exponentialHistogram
    temporality TINYINT  NOT NULL,   -- 0 gauge, 1 delta, 2 cumulative
    monotonic   BOOLEAN  NOT NULL,
    start_ns    BIGINT   NOT NULL,
    time_ns     BIGINT   NOT NULL,
    value       DOUBLE   NOT NULL,   -- histograms: the count
    hsum        DOUBLE,
    bounds      DOUBLE[],
    buckets     DOUBLE[]
);

-- Tenancy-isolation test results, one row per test and evidence file (retries folded in), keyed by
-- the file's content: re-reading the same report adds nothing. History for trends and audit; the
-- gate reads the evidence as it is now. Already redacted.
CREATE TABLE isolation_results (
    root       VARCHAR   NOT NULL,
    sha256     VARCHAR   NOT NULL,   -- of the JUnit file
    classname  VARCHAR   NOT NULL,
    name       VARCHAR   NOT NULL,
    uri        VARCHAR   NOT NULL,
    dimension  VARCHAR,              -- data | events | cache; NULL when the test names none
    resource   VARCHAR,
    tenants    VARCHAR[] NOT NULL,
    outcome    VARCHAR   NOT NULL,   -- passed | failed | error | skipped | flaky
    attempts   VARCHAR[] NOT NULL,   -- every attempt in order, the last one decides
    message    VARCHAR   NOT NULL,
    run_at     TIMESTAMP,            -- UTC, the suite's timestamp
    read_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (root, sha256, classname, name)
);

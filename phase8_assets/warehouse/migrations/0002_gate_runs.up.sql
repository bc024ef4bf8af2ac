-- The gate run log: the only tables a re-run on the same evidence adds rows to.
CREATE TABLE gate_runs (
    run_id          VARCHAR   PRIMARY KEY,
    evaluated_at    TIMESTAMP NOT NULL,
    recorded_at     TIMESTAMP NOT NULL,
    verdict         VARCHAR   NOT NULL CHECK (verdict IN ('pass', 'blocked')),
    release_version VARCHAR   NOT NULL,
    release_commit  VARCHAR   NOT NULL,
    evidence_roots  VARCHAR[] NOT NULL,
    report          JSON      NOT NULL
);

CREATE TABLE gate_run_results (
    run_id   VARCHAR NOT NULL,
    gate     VARCHAR NOT NULL,
    status   VARCHAR NOT NULL CHECK (status IN ('pass', 'warn', 'fail', 'error', 'skipped')),
    blocking BOOLEAN NOT NULL,
    summary  VARCHAR NOT NULL,
    errors   INTEGER NOT NULL,
    warnings INTEGER NOT NULL,
    waived   INTEGER NOT NULL,
    findings JSON    NOT NULL,
    PRIMARY KEY (run_id, gate)
);

-- Each SLO's standing at each evaluation (the weekly report reads history from here).
CREATE TABLE slo_snapshots (
    root             VARCHAR   NOT NULL,
    evaluated_at     TIMESTAMP NOT NULL,   -- UTC, the evaluation time (not when it ran)
    slo              VARCHAR   NOT NULL,
    service          VARCHAR   NOT NULL,
    target           DOUBLE    NOT NULL,
    budget_remaining DOUBLE,
    page_alerts      INTEGER   NOT NULL,
    ticket_alerts    INTEGER   NOT NULL,
    PRIMARY KEY (root, evaluated_at, slo)
);

-- Drill runs, one row per run (a Chaos Toolkit journal, or one LitmusChaos ChaosResult of a file),
-- keyed by the evidence content: re-reading the same journal adds nothing. Already redacted.
CREATE TABLE drill_runs (
    root              VARCHAR   NOT NULL,
    sha256            VARCHAR   NOT NULL,   -- of the evidence file
    idx               INTEGER   NOT NULL,   -- position of the run in its file
    uri               VARCHAR   NOT NULL,
    tool              VARCHAR   NOT NULL,   -- chaostoolkit | litmus
    title             VARCHAR   NOT NULL,
    tags              VARCHAR[] NOT NULL,
    status            VARCHAR   NOT NULL,   -- the tool's own word
    outcome           VARCHAR   NOT NULL,   -- passed | unverified | deviated | failed | aborted | interrupted | stopped | awaited
    deviated          BOOLEAN   NOT NULL,
    started_at        TIMESTAMP,            -- UTC
    ended_at          TIMESTAMP,            -- UTC
    hypothesis_before BOOLEAN,
    hypothesis_after  BOOLEAN,
    recovery_s        DOUBLE,
    recovery_note     VARCHAR   NOT NULL,
    environment       VARCHAR,
    read_at           TIMESTAMP NOT NULL,
    PRIMARY KEY (root, sha256, idx)
);

-- Every activity of a run: steady-state probes before/after, method, rollbacks (Litmus: probes).
CREATE TABLE drill_activities (
    root          VARCHAR NOT NULL,
    sha256        VARCHAR NOT NULL,
    idx           INTEGER NOT NULL,
    phase         VARCHAR NOT NULL,   -- before | method | after | rollback | probe
    seq           INTEGER NOT NULL,
    type          VARCHAR NOT NULL,
    name          VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,
    started_at    TIMESTAMP,
    ended_at      TIMESTAMP,
    duration_s    DOUBLE,
    tolerance_met BOOLEAN,
    detail        VARCHAR NOT NULL,
    PRIMARY KEY (root, sha256, idx, phase, seq)
);

-- Overdue-drill reminders: one row per drill and due date, so a reminder is raised once.
CREATE TABLE drill_reminders (
    root         VARCHAR   NOT NULL,
    drill_id     VARCHAR   NOT NULL,
    due          VARCHAR   NOT NULL,   -- RFC 3339 due date, or 'never-run'
    state        VARCHAR   NOT NULL,   -- overdue | never-run
    last_run_at  TIMESTAMP,
    recorded_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (root, drill_id, due)
);

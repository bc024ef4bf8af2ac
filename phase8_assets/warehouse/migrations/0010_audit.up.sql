-- The audit trail: append-only, one row per decision that changes or explains what ships. Each row
-- carries the SHA-256 of the one before it (prev_hash) and its own (hash, over the canonical JSON of
-- every other column), so an edited, deleted or re-ordered row is detectable (`phase8 audit verify`).
-- `record` is the OCSF 1.5.0 event, already redacted.
CREATE TABLE audit_events (
    seq          BIGINT    PRIMARY KEY,   -- 1, 2, 3 ... without gaps after the newest anchor
    event_type   VARCHAR   NOT NULL,      -- gate.verdict, finding.waived, warehouse.rollback, ...
    occurred_at  TIMESTAMP NOT NULL,      -- UTC
    actor        VARCHAR   NOT NULL,
    actor_source VARCHAR   NOT NULL,      -- how the actor was established (env:GITHUB_ACTOR, os-user, ...)
    target       VARCHAR   NOT NULL,
    outcome      VARCHAR   NOT NULL,
    run_id       VARCHAR,                 -- the gate run, when the event belongs to one
    record       JSON      NOT NULL,
    prev_hash    VARCHAR   NOT NULL,
    hash         VARCHAR   NOT NULL
);

-- What `phase8 audit prune` removed: the seq and hash of the last pruned row, the chain's new start.
CREATE TABLE audit_anchors (
    seq       BIGINT    PRIMARY KEY,
    hash      VARCHAR   NOT NULL,
    pruned_at TIMESTAMP NOT NULL,
    removed   BIGINT    NOT NULL,
    retention VARCHAR   NOT NULL
);

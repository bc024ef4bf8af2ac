-- Every evidence file read, once per (root, kind, content): re-reading the same bytes adds nothing.
CREATE TABLE evidence_files (
    root        VARCHAR   NOT NULL,
    kind        VARCHAR   NOT NULL,
    sha256      VARCHAR   NOT NULL,
    uri         VARCHAR   NOT NULL,
    size        BIGINT    NOT NULL,
    observed_at TIMESTAMP,            -- UTC, from a timestamp inside the evidence
    read_at     TIMESTAMP NOT NULL,   -- UTC, when this content was first read
    PRIMARY KEY (root, kind, sha256)
);

-- Files (or documents in them) that a reader refused, with the field and the reason.
CREATE TABLE evidence_rejections (
    root   VARCHAR   NOT NULL,
    kind   VARCHAR   NOT NULL,
    uri    VARCHAR   NOT NULL,
    sha256 VARCHAR   NOT NULL,
    field  VARCHAR   NOT NULL,
    reason VARCHAR   NOT NULL,
    rejected_at TIMESTAMP NOT NULL,
    PRIMARY KEY (root, kind, uri, sha256, field)
);

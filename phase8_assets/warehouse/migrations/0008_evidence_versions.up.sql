-- Every version of every evidence file, per root, kind and path, with the period it was current.
-- A file changed at the same path supersedes its earlier version; a file gone from the root is
-- withdrawn. Verdicts count only the files in the root now; history (the weekly trend, audit)
-- keeps every version and says when, and why, it stopped counting. A version that comes back
-- (a file restored) starts a new period: the row of its earlier period keeps its end.
CREATE TABLE evidence_versions (
    root     VARCHAR   NOT NULL,
    kind     VARCHAR   NOT NULL,
    uri      VARCHAR   NOT NULL,
    sha256   VARCHAR   NOT NULL,   -- '' when the file was there but could not be read
    seen_at  TIMESTAMP NOT NULL,   -- UTC, when this version became current
    ended_at TIMESTAMP,            -- UTC, when it stopped being current; NULL while it is
    ended_by VARCHAR CHECK (ended_by IN ('superseded', 'withdrawn')),
    PRIMARY KEY (root, kind, uri, sha256, seen_at)
);

-- Carried over from the files read so far: at a path read with several contents, each version
-- was superseded when the next one was first read; the last one is current until the next run
-- looks at the root.
INSERT INTO evidence_versions
SELECT root, kind, uri, sha256, read_at,
       lead(read_at) OVER w,
       CASE WHEN lead(read_at) OVER w IS NOT NULL THEN 'superseded' END
FROM evidence_files
WINDOW w AS (PARTITION BY root, kind, uri ORDER BY read_at, sha256);

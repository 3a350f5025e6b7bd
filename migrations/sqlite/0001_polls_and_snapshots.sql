-- Jobs, every poll, and step snapshots stored by content.
-- Times are Unix milliseconds (UTC).

-- A job dtswatch watches or has watched (from config or discovery).
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    dts_job_id  TEXT    NOT NULL UNIQUE,
    region      TEXT    NOT NULL,
    account     TEXT    NOT NULL,
    name        TEXT,
    source      TEXT    NOT NULL DEFAULT 'config',   -- config | discover
    first_seen  INTEGER NOT NULL,
    retired_at  INTEGER                              -- no longer listed by discovery
);

-- One step's non-volatile fields (name, code, state, error, details, …) as
-- JSON, stored once per distinct content. `hash` is SHA-256 of `body`.
CREATE TABLE step_states (
    id    INTEGER PRIMARY KEY,
    hash  BLOB NOT NULL UNIQUE,
    body  TEXT NOT NULL
);

-- One job's step structure: the ordered list of step_states ids (steps then
-- their sub-steps), stored once per distinct list.
CREATE TABLE snapshots (
    id     INTEGER PRIMARY KEY,
    hash   BLOB NOT NULL UNIQUE,
    steps  BLOB NOT NULL
);

-- Every poll. A successful poll points at its snapshot; its volatile numbers
-- (latency, progress per step, in snapshot order) are stored only when they
-- differ from the job's previous successful poll (NULL = unchanged), so an
-- unchanged poll costs one short row. A failed poll has no snapshot.
CREATE TABLE polls (
    id           INTEGER PRIMARY KEY,
    job          INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,                  -- ok | an error class (throttled, auth, …)
    error_code   TEXT,
    error_text   TEXT,
    request_id   TEXT,
    attempts     INTEGER NOT NULL DEFAULT 1,
    snapshot     INTEGER REFERENCES snapshots(id),
    volatile     BLOB
);

CREATE INDEX polls_by_job ON polls (job, id);

-- Lets retention find snapshots no poll refers to any more.
CREATE INDEX polls_by_snapshot ON polls (snapshot) WHERE snapshot IS NOT NULL;

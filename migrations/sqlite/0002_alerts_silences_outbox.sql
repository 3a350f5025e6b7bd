-- Alert state, the history of alert notifications, run-time silences, and the
-- outbox of notifications to deliver. Times are Unix milliseconds (UTC).

-- One row per alert identity (rule, job, step path); `state` is the lifecycle
-- state as JSON (pending since, consecutive polls, fingerprint, …).
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    rule        TEXT    NOT NULL,
    job         INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    path        TEXT    NOT NULL,                 -- '' for job-level alerts
    status      TEXT    NOT NULL,                 -- inactive | pending | firing
    severity    TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (rule, job, path)
);
CREATE INDEX alerts_by_job ON alerts (job);
CREATE INDEX alerts_firing ON alerts (status) WHERE status != 'inactive';

-- Every notification decision: sent, or held back and why.
CREATE TABLE alert_events (
    id          INTEGER PRIMARY KEY,
    alert       INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    poll        INTEGER REFERENCES polls(id) ON DELETE SET NULL,
    at          INTEGER NOT NULL,
    status      TEXT    NOT NULL,                 -- firing | resolved
    reason      TEXT    NOT NULL,                 -- first_notification, repeat, resolved, step_gone, …
    suppressed  TEXT,                             -- NULL when sent; silenced:ID, inhibited:RULE, …
    payload     TEXT    NOT NULL                  -- the event as JSON
);
CREATE INDEX alert_events_by_alert ON alert_events (alert, id);
CREATE INDEX alert_events_by_time ON alert_events (at);

-- Silences added at run time (`dtswatch silence add`); config silences are not stored.
CREATE TABLE silences (
    id          INTEGER PRIMARY KEY,
    jobs        TEXT,                             -- JSON array of globs, NULL = any
    rules       TEXT,
    steps       TEXT,
    starts      INTEGER NOT NULL,
    ends        INTEGER NOT NULL,
    comment     TEXT    NOT NULL,
    created_by  TEXT,
    created_at  INTEGER NOT NULL
);

-- Notifications to deliver, written in the poll's transaction. The channel's
-- URL and secrets are not stored: they are read from the config at send time.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    channel          TEXT    NOT NULL,
    dedup_key        TEXT    NOT NULL UNIQUE,
    job              INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    payload          TEXT    NOT NULL,             -- the events as JSON
    status           TEXT    NOT NULL DEFAULT 'pending',  -- pending | delivered | dead
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    delivered_at     INTEGER,
    dead_at          INTEGER
);
CREATE INDEX outbox_due ON outbox (status, channel, next_attempt_at) WHERE status = 'pending';

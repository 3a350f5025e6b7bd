-- Every write made through the HTTP API or the CLI (silence added or
-- expired, notification retried, config reloaded): who, what, when. Times
-- are Unix milliseconds (UTC). Tokens and secrets are never written here:
-- `actor` names a token by its position in the config, not its value.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,                 -- `api token #1 from 127.0.0.1`, `cli (root)`
    action  TEXT    NOT NULL,                 -- silence_add | silence_expire | outbox_retry | reload
    target  TEXT,                             -- the silence or outbox row id
    job     TEXT,                             -- the DTS job id the write concerns, if one
    detail  TEXT    NOT NULL                  -- JSON: what was asked and what came of it
);
CREATE INDEX audit_by_time ON audit (at);

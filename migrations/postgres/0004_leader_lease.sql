-- PostgreSQL only: several instances share this database and one of them
-- leads. Times are Unix milliseconds from the server's clock, so instances
-- with skewed clocks still agree on when a lease lapses.
CREATE FUNCTION dtswatch_now_ms() RETURNS BIGINT
    LANGUAGE sql VOLATILE
    AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

-- The one lease. `term` grows by one with every new leader; every fenced
-- write checks (and share-locks) this row, so a takeover waits for the old
-- leader's transaction in flight and every later one of the old term fails.
CREATE TABLE ha_lease (
    id           SMALLINT PRIMARY KEY CHECK (id = 1),
    holder       TEXT   NOT NULL,
    instance     TEXT   NOT NULL,
    term         BIGINT NOT NULL,
    acquired_at  BIGINT NOT NULL,
    renewed_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
INSERT INTO ha_lease (id, holder, instance, term, acquired_at, renewed_at, expires_at)
VALUES (1, '', '', 0, 0, 0, 0);

-- Every running instance, as last seen: `status` lists the standbys.
CREATE TABLE ha_instances (
    holder      TEXT PRIMARY KEY,
    instance    TEXT   NOT NULL,
    started_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL
);

CREATE TABLE evidence (
    pos          BIGSERIAL PRIMARY KEY,   -- storage order within a partition; the correlator's cursor
    id           TEXT NOT NULL UNIQUE,    -- event ULID
    part         INTEGER NOT NULL DEFAULT 0,
    time_ms      BIGINT NOT NULL,
    received_ms  BIGINT NOT NULL,
    type         TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    body         TEXT NOT NULL            -- the event as JSON
);
CREATE INDEX evidence_part_pos ON evidence (part, pos);
CREATE INDEX evidence_received ON evidence (received_ms);
CREATE TABLE batches (
    agent_id        TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    received_ms     BIGINT NOT NULL,
    events          BIGINT NOT NULL,
    first_event_id  TEXT,
    PRIMARY KEY (agent_id, seq)
);
CREATE INDEX batches_received ON batches (received_ms);
CREATE TABLE agents (
    agent_id      TEXT PRIMARY KEY,
    node          TEXT NOT NULL,
    max_seq       BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    batches       BIGINT NOT NULL,
    events        BIGINT NOT NULL,
    missing       BIGINT NOT NULL
);
CREATE TABLE incidents (
    id           TEXT PRIMARY KEY,
    part         INTEGER NOT NULL DEFAULT 0,
    fingerprint  TEXT NOT NULL,
    status       TEXT NOT NULL,
    severity     TEXT NOT NULL,
    namespace    TEXT,
    detected_ms  BIGINT NOT NULL,
    updated_ms   BIGINT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX incidents_status ON incidents (status, severity);
CREATE INDEX incidents_updated ON incidents (updated_ms);
CREATE INDEX incidents_part ON incidents (part) WHERE status <> 'resolved';
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

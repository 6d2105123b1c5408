CREATE TABLE evidence (
    pos          INTEGER PRIMARY KEY AUTOINCREMENT, -- storage order, never reused; the correlator's cursor
    id           TEXT NOT NULL UNIQUE,  -- event ULID
    time_ms      INTEGER NOT NULL,
    received_ms  INTEGER NOT NULL,
    type         TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    body         TEXT NOT NULL          -- the event as JSON
);
CREATE INDEX evidence_received ON evidence (received_ms);
CREATE TABLE batches (
    agent_id        TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    received_ms     INTEGER NOT NULL,
    events          INTEGER NOT NULL,
    first_event_id  TEXT,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;
CREATE INDEX batches_received ON batches (received_ms);
CREATE TABLE agents (
    agent_id      TEXT PRIMARY KEY,
    node          TEXT NOT NULL,
    max_seq       INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    batches       INTEGER NOT NULL,
    events        INTEGER NOT NULL,
    missing       INTEGER NOT NULL
);
CREATE TABLE incidents (
    id           TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL,
    status       TEXT NOT NULL,
    severity     TEXT NOT NULL,
    namespace    TEXT,
    detected_ms  INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX incidents_status ON incidents (status, severity);
CREATE INDEX incidents_updated ON incidents (updated_ms);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

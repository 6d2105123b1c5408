CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key           TEXT NOT NULL UNIQUE,      -- incident:state:receiver: one per state change per receiver
    incident      TEXT NOT NULL,
    receiver      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending',  -- pending, delivered, failed, superseded
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_ms       INTEGER NOT NULL,
    done_ms       INTEGER,
    last_error    TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_ms);

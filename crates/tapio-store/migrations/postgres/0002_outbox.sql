CREATE TABLE outbox (
    id            BIGSERIAL PRIMARY KEY,
    key           TEXT NOT NULL UNIQUE,      -- incident:state:receiver: one per state change per receiver
    incident      TEXT NOT NULL,
    receiver      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    body          TEXT NOT NULL,
    created_ms    BIGINT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending',
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_ms       BIGINT NOT NULL,
    done_ms       BIGINT,
    last_error    TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_ms);

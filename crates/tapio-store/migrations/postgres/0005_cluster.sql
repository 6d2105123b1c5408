-- Scale-out: per-partition correlator positions, partition leases, live replicas.
CREATE TABLE cursors (part INTEGER PRIMARY KEY, pos BIGINT NOT NULL);
CREATE TABLE leases (
    part        INTEGER PRIMARY KEY,
    owner       TEXT,                    -- replica id; NULL when released
    epoch       BIGINT NOT NULL DEFAULT 0, -- +1 on every change of owner (the fencing token)
    expires_at  TIMESTAMPTZ NOT NULL DEFAULT 'epoch',
    acquired_at TIMESTAMPTZ
);
CREATE TABLE replicas (
    id           TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    stopping     BOOLEAN NOT NULL DEFAULT FALSE
);

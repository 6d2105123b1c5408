CREATE TABLE silences (
    id       TEXT PRIMARY KEY,
    ends_ms  INTEGER NOT NULL,
    body     TEXT NOT NULL       -- the silence as JSON (matchers, times, who, expiry)
);

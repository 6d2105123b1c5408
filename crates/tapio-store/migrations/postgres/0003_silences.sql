CREATE TABLE silences (
    id       TEXT PRIMARY KEY,
    ends_ms  BIGINT NOT NULL,
    body     TEXT NOT NULL
);

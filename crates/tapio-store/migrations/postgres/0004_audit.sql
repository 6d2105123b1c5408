CREATE TABLE audit (
    seq    BIGSERIAL PRIMARY KEY,
    at_ms  BIGINT NOT NULL,
    body   TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at_ms);
CREATE FUNCTION tapio_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'audit records are append-only'; END $$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION tapio_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION tapio_audit_append_only();

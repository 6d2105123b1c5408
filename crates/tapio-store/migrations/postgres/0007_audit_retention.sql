-- Audit retention: deletions stay refused, except inside the retention's own
-- transaction, which sets `tapio.audit_prune` (audit_prune).
CREATE OR REPLACE FUNCTION tapio_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN
    IF TG_OP = 'DELETE' AND current_setting('tapio.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit records are append-only';
END $$;

-- Audit retention: deletions stay refused, except while the retention's own transaction
-- holds the gate row (audit_prune).
CREATE TABLE audit_prune_gate (open INTEGER NOT NULL);
DROP TRIGGER audit_no_delete;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
WHEN NOT EXISTS (SELECT 1 FROM audit_prune_gate)
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;

-- Renewals must never wait behind the owner's own writes (under load they did, and
-- with a group commit holding several partitions' rows the two deadlocked). A
-- unique index makes `epoch` a key column: a write's fence check takes FOR KEY
-- SHARE, which a renewal (only `expires_at`) does not conflict with, while a
-- takeover (a new epoch: a key update) still waits for in-flight fenced writes.
CREATE UNIQUE INDEX leases_part_epoch ON leases (part, epoch);

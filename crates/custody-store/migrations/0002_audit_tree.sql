-- The audit log's Merkle tree beyond its leaves, and its signed checkpoints.
--
-- `audit_nodes` holds every perfect subtree hash above the leaves (level >= 1), written by the
-- batch that completes it and never changed: node (level l, index i) covers records
-- [i * 2^l, (i + 1) * 2^l), and `node` = l * 2^56 + i. The leaves are audit_events.leaf_hash.
-- Any proof or past root needs O(log n) of these rows (custody_audit::tree).
CREATE TABLE audit_nodes (
    node BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);

-- Signed tree heads: the C2SP tlog-checkpoint text in a C2SP signed note, one per tree size,
-- signed inside the transaction that made the tree that size (or, with an interval, under the
-- audit_head lock), so two checkpoints are always of one append-only tree.
CREATE TABLE audit_checkpoints (
    size      BIGINT PRIMARY KEY,
    root      TEXT NOT NULL,
    note      TEXT NOT NULL,
    signed_at BIGINT NOT NULL
);

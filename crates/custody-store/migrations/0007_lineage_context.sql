-- What the lineage graph is built from besides events, and how replicas notice changes.
--
-- `lineage_heads` counts, per project, the changes to what its graph reads: `events` is bumped
-- by every stored event (which keeps the count it got as its `generation`), `context` by every
-- change to the registry's datasets, the transform declarations and the erasures. The bump
-- takes the row's lock until COMMIT, so a replica that reads a count has every change up to it
-- committed: it catches up by reading the events above its own count, or the context again.

CREATE TABLE lineage_heads (
    project_id TEXT PRIMARY KEY REFERENCES projects (id),
    events     BIGINT NOT NULL,
    context    BIGINT NOT NULL
);

ALTER TABLE lineage_events ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
CREATE INDEX lineage_events_generation ON lineage_events (project_id, generation);

-- A job's declaration that it anonymises or aggregates, and its approval (by someone other
-- than who declared it). Declaring again replaces the row and clears the approval: an approval
-- covers exactly what was declared. Withdrawal deletes the row; the audit log keeps the history.
CREATE TABLE lineage_transforms (
    project_id    TEXT NOT NULL REFERENCES projects (id),
    job_namespace TEXT NOT NULL,
    job_name      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    justification TEXT NOT NULL,
    declared_by   TEXT NOT NULL,
    declared_at   BIGINT NOT NULL,
    approved_by   TEXT,
    approved_at   BIGINT,
    PRIMARY KEY (project_id, job_namespace, job_name)
);

-- Erasure receipts: what a DSAR erasure reached and what was done about each item. The record
-- key is never stored, only a commitment to it (SHA-256 over a salt handed to the requester).
CREATE TABLE erasure_receipts (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects (id),
    reason          TEXT NOT NULL,
    key_commitment  TEXT,
    sources         TEXT NOT NULL,
    report_sha256   TEXT NOT NULL,
    items           TEXT NOT NULL,
    deleted         TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX erasure_receipts_project ON erasure_receipts (project_id, created_at);

-- Dataset versions whose data an erasure deleted: the bytes are gone (blob objects deleted,
-- data key destroyed), the version's metadata and digest stay as the audit trail, and no later
-- upload or lineage event brings the data back.
CREATE TABLE erased_versions (
    version_id  TEXT PRIMARY KEY REFERENCES dataset_versions (id),
    receipt_id  TEXT NOT NULL REFERENCES erasure_receipts (id),
    erased_at   BIGINT NOT NULL
);

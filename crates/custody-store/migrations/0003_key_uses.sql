-- The key-use ledger: one row per use of a key-encryption key on an object's data key (wrap,
-- unwrap, rewrap) and per destruction, written in the transaction that appends the audit
-- record of the request that used it, so "which key protected dataset X during run Y" is a
-- query and every answer has its audit record.
CREATE TABLE key_uses (
    id              TEXT PRIMARY KEY,
    at              BIGINT NOT NULL,
    operation       TEXT NOT NULL,
    provider        TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    key_version     BIGINT NOT NULL,
    object          TEXT NOT NULL,
    project         TEXT NOT NULL,
    dataset_id      TEXT,
    dataset_version TEXT,
    region          TEXT,
    classification  TEXT,
    principal       TEXT NOT NULL,
    run_id          TEXT,
    request_id      TEXT NOT NULL
);
CREATE INDEX key_uses_project ON key_uses (project, at);
CREATE INDEX key_uses_dataset ON key_uses (dataset_id, dataset_version, at);
CREATE INDEX key_uses_run ON key_uses (run_id, at);
CREATE INDEX key_uses_key ON key_uses (key_id, at);

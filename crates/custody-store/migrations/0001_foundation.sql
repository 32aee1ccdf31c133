-- Custody schema v1. Portable SQL: the same text runs on SQLite and PostgreSQL.
-- Times are BIGINT microseconds since the Unix epoch (UTC); ids are UUID text;
-- lists are JSON text; there are no BOOLEAN or binary columns.

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE datasets (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects (id),
    name           TEXT NOT NULL,
    owner          TEXT NOT NULL,
    licence        TEXT NOT NULL,
    source_uri     TEXT NOT NULL,
    classification TEXT NOT NULL,
    region         TEXT NOT NULL,
    retention_days BIGINT NOT NULL,
    intended_use   TEXT NOT NULL,
    prohibited_use TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

-- Versions are immutable: the store has no statement that updates or deletes them.
CREATE TABLE dataset_versions (
    id         TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL REFERENCES datasets (id),
    label      TEXT NOT NULL,
    digest     TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    location   TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (dataset_id, label),
    UNIQUE (dataset_id, digest)
);
CREATE INDEX dataset_versions_digest ON dataset_versions (digest);

-- Explicit grants to restricted datasets.
CREATE TABLE dataset_access (
    dataset_id TEXT NOT NULL REFERENCES datasets (id),
    principal  TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (dataset_id, principal)
);
CREATE INDEX dataset_access_principal ON dataset_access (principal);

CREATE TABLE approvals (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects (id),
    subject          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    reason           TEXT NOT NULL,
    ticket           TEXT,
    requested_by     TEXT NOT NULL,
    requested_at     BIGINT NOT NULL,
    status           TEXT NOT NULL,
    decided_by       TEXT,
    decided_at       BIGINT,
    decision_comment TEXT
);
CREATE INDEX approvals_project ON approvals (project_id, status);

-- API tokens: only the SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    principal   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    scope       TEXT NOT NULL,
    role        TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    regions     TEXT,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX api_tokens_scope ON api_tokens (scope);

-- The audit log. `audit_head` is the single row that hands out sequence numbers: a batch
-- reserves its range by updating it inside the batch's transaction, so numbers are gapless
-- and totally ordered even with several servers on one PostgreSQL database.
-- It also holds the Merkle frontier of the log (the roots of the perfect subtrees, hex,
-- comma-separated, largest first) and the root over all `next_seq` records.
CREATE TABLE audit_head (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    next_seq  BIGINT NOT NULL,
    last_time BIGINT NOT NULL,
    frontier  TEXT NOT NULL,
    root      TEXT NOT NULL
);
INSERT INTO audit_head (id, next_seq, last_time, frontier, root)
VALUES (1, 0, 0, '', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');

CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    time        BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    project     TEXT,
    region      TEXT,
    decision    TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    details     TEXT NOT NULL,
    leaf_hash   TEXT NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_resource ON audit_events (resource, seq);
CREATE INDEX audit_events_project ON audit_events (project, seq);

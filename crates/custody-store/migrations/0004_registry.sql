-- The model registry. A version's artifacts (root digest, signature, components, provenance)
-- are never updated: the store has no statement that changes them. Its `stage` changes only in
-- the transaction that completes a promotion, which also appends the `stage_changes` row and
-- the audit record, so the history is the immutable record of every move.

CREATE TABLE models (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects (id),
    name        TEXT NOT NULL,
    risk_tier   TEXT NOT NULL,
    owner       TEXT NOT NULL,
    description TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

-- The public keys a project trusts to sign its model versions and their provenance.
CREATE TABLE trusted_signers (
    project_id TEXT NOT NULL REFERENCES projects (id),
    hint       TEXT NOT NULL,
    name       TEXT NOT NULL,
    public_key TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    added_at   BIGINT NOT NULL,
    PRIMARY KEY (project_id, hint)
);

CREATE TABLE model_versions (
    id                TEXT PRIMARY KEY,
    model_id          TEXT NOT NULL REFERENCES models (id),
    version           TEXT NOT NULL,
    root_digest       TEXT NOT NULL,
    signer_hint       TEXT NOT NULL,
    signature         TEXT NOT NULL,
    serialization     TEXT NOT NULL,
    resources         BIGINT NOT NULL,
    components        TEXT NOT NULL,
    provenance        TEXT,
    provenance_bundle TEXT,
    stage             TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    UNIQUE (model_id, version)
);
CREATE INDEX model_versions_digest ON model_versions (root_digest);

CREATE TABLE promotions (
    id               TEXT PRIMARY KEY,
    model_version_id TEXT NOT NULL REFERENCES model_versions (id),
    from_stage       TEXT NOT NULL,
    to_stage         TEXT NOT NULL,
    reason           TEXT NOT NULL,
    ticket           TEXT,
    requested_by     TEXT NOT NULL,
    requested_at     BIGINT NOT NULL,
    status           TEXT NOT NULL,
    closed_at        BIGINT
);
CREATE INDEX promotions_version ON promotions (model_version_id, status);

CREATE TABLE promotion_approvals (
    promotion_id TEXT NOT NULL REFERENCES promotions (id),
    approver     TEXT NOT NULL,
    comment      TEXT NOT NULL,
    approved_at  BIGINT NOT NULL,
    PRIMARY KEY (promotion_id, approver)
);

CREATE TABLE stage_changes (
    id               TEXT PRIMARY KEY,
    model_version_id TEXT NOT NULL REFERENCES model_versions (id),
    from_stage       TEXT NOT NULL,
    to_stage         TEXT NOT NULL,
    promotion_id     TEXT NOT NULL REFERENCES promotions (id),
    changed_by       TEXT NOT NULL,
    approvers        TEXT NOT NULL,
    changed_at       BIGINT NOT NULL
);
CREATE INDEX stage_changes_version ON stage_changes (model_version_id, changed_at);

CREATE TABLE deployments (
    id               TEXT PRIMARY KEY,
    model_version_id TEXT NOT NULL REFERENCES model_versions (id),
    environment      TEXT NOT NULL,
    endpoint         TEXT NOT NULL,
    region           TEXT NOT NULL,
    running_digest   TEXT NOT NULL,
    attestation      TEXT NOT NULL,
    deployed_by      TEXT NOT NULL,
    deployed_at      BIGINT NOT NULL
);
CREATE INDEX deployments_version ON deployments (model_version_id, deployed_at);

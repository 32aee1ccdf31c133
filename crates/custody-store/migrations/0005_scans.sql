-- Scan results attached to model versions and dataset versions. A result is never updated:
-- a later scan is a new row, and the latest (by submission time, then id) is the one a
-- promotion gate reads, inside the promotion's own transaction.

CREATE TABLE scan_results (
    id             TEXT PRIMARY KEY,
    project_id     TEXT NOT NULL REFERENCES projects (id),
    -- `model_version` or `dataset_version`.
    subject_kind   TEXT NOT NULL,
    subject_id     TEXT NOT NULL,
    tool           TEXT NOT NULL,
    tool_version   TEXT NOT NULL,
    rules_version  TEXT NOT NULL,
    scanned_digest TEXT NOT NULL,
    verdict        TEXT NOT NULL,
    max_severity   TEXT,
    findings       BIGINT NOT NULL,
    -- Every file with its verdict and findings (redacted), as JSON.
    files          TEXT NOT NULL,
    submitted_by   TEXT NOT NULL,
    submitted_at   BIGINT NOT NULL
);
CREATE INDEX scan_results_subject ON scan_results (subject_kind, subject_id, submitted_at);

-- OpenLineage events as received, one row per distinct event of a project. The id is the
-- SHA-256 of the event's canonical JSON, so the same event sent twice is one row; the graph
-- is rebuilt from these rows in any order (its merges are commutative and idempotent).

CREATE TABLE lineage_events (
    project_id  TEXT NOT NULL REFERENCES projects (id),
    event_id    TEXT NOT NULL,
    -- `START`, `COMPLETE`, … for run events; `DATASET` or `JOB` for the static ones.
    event_type  TEXT NOT NULL,
    event_time  BIGINT NOT NULL,
    run_id      TEXT,
    job         TEXT,
    producer    TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_by TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, event_id)
);
CREATE INDEX lineage_events_run ON lineage_events (run_id);

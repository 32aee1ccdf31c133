//! Builders of OpenLineage events for the graph tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use custody_lineage::{Facts, facts_of, parse_event};
use serde_json::{Value, json};
use uuid::Uuid;

/// `2024-01-01T00:00:00Z` + `s` seconds, RFC 3339.
pub fn at(s: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(1_704_067_200 + s).unwrap();
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

pub fn time_at(s: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_704_067_200 + s).unwrap()
}

pub fn run_id(n: u32) -> Uuid {
    Uuid::from_u64_pair(0x0190_0000_0000_7000, u64::from(n))
}

/// A dataset mention: name, optional version facet, optional custody facet.
pub fn ds(name: &str, version: Option<&str>, custody: Option<Value>) -> Value {
    let mut facets = serde_json::Map::new();
    if let Some(v) = version {
        facets.insert("version".into(), json!({"datasetVersion": v}));
    }
    if let Some(c) = custody {
        facets.insert("custody".into(), c);
    }
    json!({"namespace": "s3://lake", "name": name, "facets": facets})
}

/// A RunEvent.
pub fn run_event(run: u32, job: &str, event_type: &str, secs: i64, inputs: Vec<Value>, outputs: Vec<Value>) -> Value {
    json!({
        "eventTime": at(secs),
        "eventType": event_type,
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id(run).to_string(), "facets": {}},
        "job": {"namespace": "etl", "name": job, "facets": {}},
        "inputs": inputs,
        "outputs": outputs
    })
}

pub fn facts(v: &Value) -> Facts {
    facts_of(&parse_event(v.to_string().as_bytes()).unwrap().event)
}

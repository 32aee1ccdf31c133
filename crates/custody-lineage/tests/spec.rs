//! Conformance with the official OpenLineage 2-0-2 spec: every example of the spec's test
//! directory parses, and a differential test against the official JSON Schemas (loaded from
//! disk, no network) checks that valid events are accepted and mutated ones refused by both,
//! with our error naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use custody_lineage::{EventBody, EventError, RawJson, parse_event};
use serde_json::{Value, json};
use std::path::PathBuf;

/// The spec directory: `$CUSTODY_SHARED/vectors/openlineage-spec`, else the monorepo layout.
fn spec_dir() -> PathBuf {
    let shared = std::env::var("CUSTODY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    let dir = shared.join("vectors/openlineage-spec");
    assert!(
        dir.join("OpenLineage.json").is_file(),
        "OpenLineage spec not found at {} (set CUSTODY_SHARED to the shared/ directory)",
        dir.display()
    );
    dir
}

fn read_json(p: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A registry with the core schema and every facet schema, under their `$id`s.
struct Schemas {
    core: Value,
    facets: Vec<(String, Value)>,
}

impl Schemas {
    fn load() -> Self {
        let dir = spec_dir();
        let core = read_json(&dir.join("OpenLineage.json"));
        let mut facets = Vec::new();
        for e in std::fs::read_dir(dir.join("facets")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                facets.push((name, read_json(&p)));
            }
        }
        facets.sort_by(|a, b| a.0.cmp(&b.0));
        Self { core, facets }
    }

    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut builder =
            jsonschema::Registry::new().add(self.core["$id"].as_str().unwrap(), self.core.clone()).unwrap();
        for (_, f) in &self.facets {
            builder = builder.add(f["$id"].as_str().unwrap(), f.clone()).unwrap();
        }
        let registry = builder.prepare().unwrap();
        jsonschema::options().with_registry(&registry).should_validate_formats(true).build(schema).unwrap()
    }

    fn facet(&self, name: &str) -> &Value {
        &self.facets.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no facet schema {name}")).1
    }
}

/// Where a facet goes in an event, from the base facet its schema extends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Run,
    Job,
    Dataset,
    Input,
    Output,
}

/// The slot of facet `key`: the base facet of the (first) definition, among those the
/// property refers to, that the example validates against.
fn slot_of(schemas: &Schemas, schema: &Value, key: &str, facet: &Value) -> Slot {
    let refs = |v: &Value| -> Vec<String> {
        let mut out: Vec<String> = v["$ref"].as_str().map(str::to_owned).into_iter().collect();
        for k in ["anyOf", "oneOf"] {
            for alt in v[k].as_array().into_iter().flatten() {
                out.extend(alt["$ref"].as_str().map(str::to_owned));
            }
        }
        out
    };
    let id = schema["$id"].as_str().unwrap();
    let mut candidates = refs(&schema["properties"][key]);
    let mut i = 0;
    while i < candidates.len() {
        let name = candidates[i].trim_start_matches("#/$defs/").to_owned();
        let def = &schema["$defs"][name.as_str()];
        let base = def["allOf"][0]["$ref"].as_str().unwrap_or_default();
        if base.is_empty() {
            candidates.extend(refs(def));
        } else if schemas.validator(&json!({"$ref": format!("{id}#/$defs/{name}")})).is_valid(facet) {
            return match base.rsplit('/').next().unwrap() {
                "RunFacet" => Slot::Run,
                "JobFacet" => Slot::Job,
                "DatasetFacet" => Slot::Dataset,
                "InputDatasetFacet" => Slot::Input,
                "OutputDatasetFacet" => Slot::Output,
                other => panic!("unknown base facet {other}"),
            };
        }
        i += 1;
    }
    panic!("{id}: no definition of `{key}` accepts the example")
}

fn base_event() -> Value {
    json!({
        "eventTime": "2024-05-01T10:00:00.123456+02:00",
        "eventType": "COMPLETE",
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.0.0/client",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0190c3a4-1b2c-7d3e-8f40-123456789abc", "facets": {}},
        "job": {"namespace": "airflow", "name": "dag.task", "facets": {}},
        "inputs": [{"namespace": "postgres://db:5432", "name": "public.users", "facets": {}, "inputFacets": {}}],
        "outputs": [{"namespace": "s3://bucket", "name": "clean/users", "facets": {}, "outputFacets": {}}]
    })
}

fn embed(facet: &Value, slot: Slot) -> Value {
    let mut e = base_event();
    let target = match slot {
        Slot::Run => &mut e["run"]["facets"],
        Slot::Job => &mut e["job"]["facets"],
        Slot::Dataset => &mut e["outputs"][0]["facets"],
        Slot::Input => &mut e["inputs"][0]["inputFacets"],
        Slot::Output => &mut e["outputs"][0]["outputFacets"],
    };
    *target = facet.clone();
    e
}

/// Every facet example of the spec: (test file, facet key, fragment, slot).
fn examples(schemas: &Schemas) -> Vec<(String, String, Value, Slot)> {
    let dir = spec_dir().join("tests");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if !p.is_dir() {
            continue;
        }
        let facet_name = p.file_name().unwrap().to_string_lossy().into_owned();
        let schema = schemas.facet(&facet_name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            let fragment = read_json(&f);
            for key in fragment.as_object().unwrap().keys() {
                let slot = slot_of(schemas, schema, key, &fragment[key.as_str()]);
                out.push((f.display().to_string(), key.clone(), fragment.clone(), slot));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_spec_example_parses_and_validates() {
    let schemas = Schemas::load();
    let core = schemas.validator(&schemas.core);
    let examples = examples(&schemas);
    assert!(examples.len() >= 45, "only {} examples found", examples.len());
    for (file, key, fragment, slot) in &examples {
        let facet_name = PathBuf::from(file).parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
        let facet_validator = schemas.validator(schemas.facet(&facet_name));
        assert!(facet_validator.is_valid(fragment), "{file}: the example does not validate against its own schema");
        let event = embed(fragment, *slot);
        let errors: Vec<String> = core.iter_errors(&event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{file}: wrapped event invalid under OpenLineage.json: {errors:?}");
        let parsed = parse_event(event.to_string().as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(parsed.event.warnings.is_empty(), "{file}: {:?}", parsed.event.warnings);
        let EventBody::Run(run) = &parsed.event.body else { panic!("{file}: not a run event") };
        let raw = match slot {
            Slot::Run => &run.run.facets.raw,
            Slot::Job => &run.job.facets.raw,
            Slot::Dataset => &run.outputs[0].dataset.facets.raw,
            Slot::Input => &run.inputs[0].input_facets.raw,
            Slot::Output => &run.outputs[0].output_facets.raw,
        };
        assert_eq!(
            raw.get(key).map(RawJson::to_value).as_ref(),
            fragment.get(key),
            "{file}: facet `{key}` not kept as received"
        );
    }
}

#[test]
fn understood_facets_are_typed() {
    let schemas = Schemas::load();
    let by_file = |name: &str| {
        examples(&schemas).into_iter().find(|(f, ..)| f.ends_with(name)).unwrap_or_else(|| panic!("{name}"))
    };
    let typed = |name: &str| {
        let (_, _, fragment, slot) = by_file(name);
        let parsed = parse_event(embed(&fragment, slot).to_string().as_bytes()).unwrap();
        let EventBody::Run(run) = parsed.event.body else { panic!() };
        *run
    };
    let r = typed("SchemaDatasetFacet/1.json");
    assert!(!r.outputs[0].dataset.facets.schema.as_ref().unwrap().fields.is_empty());
    let r = typed("DatasourceDatasetFacet/1.json");
    assert!(r.outputs[0].dataset.facets.data_source.is_some());
    let r = typed("ColumnLineageDatasetFacet/1.json");
    let cl = r.outputs[0].dataset.facets.column_lineage.as_ref().unwrap();
    let name = &cl.fields["NAME"].input_fields;
    assert_eq!(name[0].field, "NAME");
    assert_eq!(name[0].transformations[0].kind, custody_lineage::TransformationType::Direct);
    assert_eq!(name[1].transformations[0].kind, custody_lineage::TransformationType::Indirect);
    let r = typed("DataQualityMetricsDatasetFacet/1.json");
    assert!(r.outputs[0].dataset.facets.data_quality_metrics.is_some());
    let r = typed("DataQualityMetricsInputDatasetFacet/1.json");
    assert!(r.inputs[0].input_facets.data_quality_metrics.is_some());
    let r = typed("DatasetVersionDatasetFacet/1.json");
    assert!(r.outputs[0].dataset.facets.version.is_some());
    let r = typed("OwnershipDatasetFacet/1.json");
    assert!(!r.outputs[0].dataset.facets.ownership.as_ref().unwrap().owners.is_empty());
    let r = typed("OwnershipJobFacet/1.json");
    assert!(r.job.facets.ownership.is_some());
    let r = typed("ParentRunFacet/2.json");
    assert!(r.run.facets.parent.as_ref().unwrap().root.is_some());
    let r = typed("LifecycleStateChangeDatasetFacet/1.json");
    assert!(r.outputs[0].dataset.facets.lifecycle_state_change.is_some());
    let r = typed("SourceCodeLocationJobFacet/1.json");
    assert_eq!(r.job.facets.source_code_location.as_ref().unwrap().vcs, "git");
    let r = typed("ProcessingEngineRunFacet/1.json");
    assert!(r.run.facets.processing_engine.is_some());
    let r = typed("JobTypeJobFacet/1.json");
    assert!(r.job.facets.job_type.is_some());
    let r = typed("OutputStatisticsOutputDatasetFacet/1.json");
    assert!(r.outputs[0].output_facets.output_statistics.is_some());
}

#[test]
fn example_full_event_parses() {
    let schemas = Schemas::load();
    let core = schemas.validator(&schemas.core);
    let body = std::fs::read(spec_dir().join("tests/example_full_event.json")).unwrap();
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert!(core.is_valid(&value));
    let parsed = parse_event(&body).unwrap();
    assert!(matches!(parsed.event.body, EventBody::Run(_)));
    // `dataset` is not part of a RunEvent: kept as an extra field.
    assert!(parsed.event.extra.contains_key("dataset"));
    assert_eq!(parsed.raw.as_bytes(), body.trim_ascii());
}

/// Removes the field at a dotted path (`run.runId`, `inputs.0.name`).
fn remove(v: &mut Value, path: &str) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap();
    let mut cur = v;
    for p in parts {
        cur = match p.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => &mut cur[p],
        };
    }
    cur.as_object_mut().unwrap().remove(last);
}

fn set(v: &mut Value, path: &str, x: Value) {
    let mut cur = v;
    for p in path.split('.') {
        cur = match p.parse::<usize>() {
            Ok(i) => &mut cur[i],
            Err(_) => &mut cur[p],
        };
    }
    *cur = x;
}

#[test]
fn mutated_events_are_refused_by_both_and_named() {
    let schemas = Schemas::load();
    let core = schemas.validator(&schemas.core);
    let run = base_event();
    let dataset_event = json!({
        "eventTime": "2024-05-01T10:00:00Z",
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {"namespace": "s3://b", "name": "t", "facets": {}}
    });
    let job_event = json!({
        "eventTime": "2024-05-01T10:00:00Z",
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {"namespace": "ns", "name": "j"},
        "inputs": [{"namespace": "s3://b", "name": "t"}]
    });
    for (name, valid) in [("run", &run), ("dataset", &dataset_event), ("job", &job_event)] {
        assert!(core.is_valid(valid), "{name} event should be valid");
        parse_event(valid.to_string().as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // (event, mutation, path our error must name)
    let mut cases: Vec<(Value, String)> = Vec::new();
    for field in [
        "eventTime",
        "producer",
        "schemaURL",
        "run.runId",
        "job.namespace",
        "job.name",
        "inputs.0.namespace",
        "inputs.0.name",
        "outputs.0.name",
    ] {
        let mut e = run.clone();
        remove(&mut e, field);
        cases.push((e, field.replace(".0", "[0]")));
    }
    for field in ["eventTime", "producer", "schemaURL", "dataset.namespace", "dataset.name"] {
        let mut e = dataset_event.clone();
        remove(&mut e, field);
        cases.push((e, field.to_owned()));
    }
    for field in ["job.namespace", "job.name", "inputs.0.name"] {
        let mut e = job_event.clone();
        remove(&mut e, field);
        cases.push((e, field.replace(".0", "[0]")));
    }
    let mut bad = |path: &str, x: Value, expect: &str| {
        let mut e = run.clone();
        set(&mut e, path, x);
        cases.push((e, expect.to_owned()));
    };
    bad("eventType", json!("FINISHED"), "eventType");
    bad("eventType", json!("start"), "eventType");
    bad("eventType", json!(3), "eventType");
    bad("run.runId", json!("not-a-uuid"), "run.runId");
    bad("run.runId", json!("0190c3a41b2c7d3e8f40123456789abc"), "run.runId");
    bad("run.runId", json!(12), "run.runId");
    bad("eventTime", json!("2024-05-01 10:00:00"), "eventTime");
    bad("eventTime", json!("2024-05-01T10:00:00"), "eventTime");
    bad("eventTime", json!("yesterday"), "eventTime");
    bad("eventTime", json!("2024-13-01T10:00:00Z"), "eventTime");
    bad("job.name", json!(5), "job.name");
    bad("inputs", json!({}), "inputs");
    for (e, path) in cases {
        assert!(!core.is_valid(&e), "schema accepted a mutation that should be invalid ({path}): {e}");
        let err = parse_event(e.to_string().as_bytes()).expect_err(&format!("accepted mutation at {path}"));
        assert_eq!(err.path(), path, "error `{err}` does not name `{path}`");
        assert!(err.to_string().contains(&path), "message `{err}` does not mention `{path}`");
    }
    // Syntax errors and non-objects.
    assert!(matches!(parse_event(b"{\"eventTime\": "), Err(EventError::Json { .. })));
    assert!(matches!(parse_event(b"[]"), Err(EventError::WrongType { .. })));
    // Neither run, job nor dataset.
    let mut e = run.clone();
    remove(&mut e, "run");
    remove(&mut e, "job");
    assert!(!core.is_valid(&e));
    assert!(parse_event(e.to_string().as_bytes()).is_err());
}

#[test]
fn unknown_and_malformed_facets_are_kept() {
    let mut e = base_event();
    e["run"]["facets"]["acme_thing"] = json!({"_producer": "https://x", "_schemaURL": "https://x/s.json", "a": [1, 2]});
    // A known facet of the wrong shape: kept raw, warned, event accepted.
    e["outputs"][0]["facets"]["schema"] = json!({"fields": "not-an-array"});
    e["job"]["facets"]["sourceCodeLocation"] = json!({"type": "git"});
    e["x-extra"] = json!(true);
    let parsed = parse_event(e.to_string().as_bytes()).unwrap();
    let EventBody::Run(r) = &parsed.event.body else { panic!() };
    assert!(r.run.facets.raw.contains_key("acme_thing"));
    assert!(r.outputs[0].dataset.facets.schema.is_none());
    assert!(r.outputs[0].dataset.facets.raw.contains_key("schema"));
    let paths: Vec<&str> = parsed.event.warnings.iter().map(|w| w.path.as_str()).collect();
    assert!(paths.contains(&"outputs[0].facets.schema.fields"), "{paths:?}");
    assert!(paths.contains(&"job.facets.sourceCodeLocation"), "{paths:?}");
    assert!(parsed.event.extra.contains_key("x-extra"));
    // A malformed custody facet refuses the event (classification must not be dropped).
    let mut e = base_event();
    e["outputs"][0]["facets"]["custody"] = json!({"classification": "top-secret"});
    let err = parse_event(e.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.path(), "outputs[0].facets.custody.classification");
    // A deleted facet asserts nothing.
    let mut e = base_event();
    e["outputs"][0]["facets"]["version"] = json!({"datasetVersion": "7", "_deleted": true});
    let parsed = parse_event(e.to_string().as_bytes()).unwrap();
    let EventBody::Run(r) = &parsed.event.body else { panic!() };
    assert!(r.outputs[0].dataset.facets.version.is_none());
}

#[test]
fn event_id_is_content_derived() {
    let a = base_event();
    let pretty = serde_json::to_string_pretty(&a).unwrap();
    let x = parse_event(a.to_string().as_bytes()).unwrap();
    let y = parse_event(pretty.as_bytes()).unwrap();
    assert_eq!(x.event.id, y.event.id);
    let mut b = a.clone();
    b["eventType"] = json!("START");
    assert_ne!(parse_event(b.to_string().as_bytes()).unwrap().event.id, x.event.id);
}

//! What an event asserts about the graph, as plain data the server can store and replay.
//!
//! Facts are a pure function of the event, so storing the raw event is enough: rebuilding the
//! index on start re-derives them.

use crate::event::{Dataset, Event, EventBody, EventType};
use crate::event_id::EventId;
use crate::facets::{DatasetKind, LifecycleChange};
use crate::keys::{DatasetName, EdgeKind, JobName, NodeKey, VersionRef};
use custody_core::{Classification, Sha256Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Where an edge starts: a fixed node, or "the latest version of this dataset as of the edge's
/// time" (an input without version; resolved when read, see [`VersionRef`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// A fixed node.
    Node(NodeKey),
    /// The latest version of a dataset at the edge's time.
    Latest(DatasetName),
}

/// A node and the attributes this event gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFact {
    /// The node.
    pub key: NodeKey,
    /// Kind declared by the `custody` facet (dataset versions only).
    pub kind: Option<DatasetKind>,
    /// Classification declared by the `custody` facet.
    pub classification: Option<Classification>,
    /// Content digest, from the `custody` facet or the version itself.
    pub content_digest: Option<Sha256Digest>,
    /// Whether a deployment serves (`custody.live`).
    pub live: Option<bool>,
    /// `lifecycleStateChange`.
    pub lifecycle: Option<LifecycleChange>,
}

impl NodeFact {
    /// A node fact with no attributes.
    pub fn bare(key: NodeKey) -> Self {
        Self { key, kind: None, classification: None, content_digest: None, live: None, lifecycle: None }
    }
}

/// An edge asserted by the event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeFact {
    /// `Consumed`, `Produced`, `DerivedFrom` or `RunOf` (the stored kinds).
    pub kind: EdgeKind,
    /// Upstream end.
    pub from: Source,
    /// Downstream end.
    pub to: NodeKey,
}

/// What the event says about its run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFact {
    /// The run.
    pub run_id: Uuid,
    /// Its job.
    pub job: JobName,
    /// The transition, if the event reports one.
    pub event_type: Option<EventType>,
    /// Code commit (`custody.codeCommit`, else the job's `sourceCodeLocation.version`).
    pub code_commit: Option<String>,
    /// Container image digest (`custody.containerImageDigest`).
    pub image_digest: Option<Sha256Digest>,
    /// Parameters (`executionParameters`, overridden by `custody.parameters`).
    pub parameters: BTreeMap<String, String>,
    /// The parent run (`parent` facet).
    pub parent_run: Option<Uuid>,
}

/// One column-level lineage edge: `output.field` is computed from `input.input_field`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ColumnFact {
    /// The output dataset version.
    pub output: NodeKey,
    /// The output field; `None` for dataset-wide inputs (filters, sorts).
    pub field: Option<String>,
    /// The input dataset version.
    pub input: Source,
    /// The input field.
    pub input_field: String,
    /// Some transformation is DIRECT.
    pub direct: bool,
    /// Some transformation is INDIRECT.
    pub indirect: bool,
    /// Some transformation masks the data.
    pub masking: bool,
}

/// Everything one event asserts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    /// The event.
    pub event_id: EventId,
    /// The event time, µs since the epoch.
    pub time: i64,
    /// Nodes mentioned.
    pub nodes: Vec<NodeFact>,
    /// Edges asserted.
    pub edges: Vec<EdgeFact>,
    /// The run, for a RunEvent.
    pub run: Option<RunFact>,
    /// Column-level lineage.
    pub columns: Vec<ColumnFact>,
}

/// The version a dataset mention refers to, when fixed (rules 1–3 of [`VersionRef`]).
fn fixed_version(ds: &Dataset, produced_by: Option<Uuid>) -> Option<VersionRef> {
    if let Some(v) = &ds.facets.version {
        return Some(VersionRef::Declared(v.dataset_version.clone()));
    }
    if let Some(d) = ds.facets.custody.as_ref().and_then(|c| c.content_digest) {
        return Some(VersionRef::Digest(d));
    }
    produced_by.map(VersionRef::Run)
}

fn name_of(ds: &Dataset) -> DatasetName {
    DatasetName::new(ds.namespace.clone(), ds.name.clone())
}

fn node_fact(key: NodeKey, ds: &Dataset) -> NodeFact {
    let custody = ds.facets.custody.as_ref();
    let digest = match &key {
        NodeKey::DatasetVersion { version: VersionRef::Digest(d), .. } => Some(*d),
        _ => custody.and_then(|c| c.content_digest),
    };
    NodeFact {
        key,
        kind: custody.and_then(|c| c.kind),
        classification: custody.and_then(|c| c.classification),
        content_digest: digest,
        live: custody.and_then(|c| c.live),
        lifecycle: ds.facets.lifecycle_state_change.as_ref().map(|l| l.change),
    }
}

/// Turns an event into the facts it asserts.
pub fn facts_of(event: &Event) -> Facts {
    let mut f = Facts {
        event_id: event.id,
        time: event.time_micros(),
        nodes: Vec::new(),
        edges: Vec::new(),
        run: None,
        columns: Vec::new(),
    };
    match &event.body {
        EventBody::Run(r) => {
            let run_key = NodeKey::run(r.run.run_id);
            let job = JobName::new(r.job.namespace.clone(), r.job.name.clone());
            let job_key = NodeKey::Job(job.clone());
            f.nodes.push(NodeFact::bare(job_key.clone()));
            f.nodes.push(NodeFact::bare(run_key.clone()));
            f.edges.push(EdgeFact { kind: EdgeKind::RunOf, from: Source::Node(job_key), to: run_key.clone() });
            let inputs = inputs_of(&mut f, r.inputs.iter().map(|i| &i.dataset), &run_key);
            for o in &r.outputs {
                let version = fixed_version(&o.dataset, Some(r.run.run_id)).unwrap_or(VersionRef::Base);
                output_of(&mut f, &o.dataset, version, &run_key, &inputs);
            }
            let custody = r.run.facets.custody.as_ref();
            let mut parameters: BTreeMap<String, String> = r
                .run
                .facets
                .execution_parameters
                .iter()
                .flat_map(|p| &p.parameters)
                .filter_map(|p| Some((p.key.clone(), p.value.clone()?)))
                .collect();
            if let Some(c) = custody {
                parameters.extend(c.parameters.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            f.run = Some(RunFact {
                run_id: r.run.run_id,
                job,
                event_type: r.event_type,
                code_commit: custody
                    .and_then(|c| c.code_commit.clone())
                    .or_else(|| r.job.facets.source_code_location.as_ref().and_then(|s| s.version.clone())),
                image_digest: custody.and_then(|c| c.container_image_digest),
                parameters,
                parent_run: r.run.facets.parent.as_ref().map(|p| p.run.run_id),
            });
        }
        EventBody::Job(j) => {
            let job_key = NodeKey::job(j.job.namespace.clone(), j.job.name.clone());
            f.nodes.push(NodeFact::bare(job_key.clone()));
            let inputs = inputs_of(&mut f, j.inputs.iter().map(|i| &i.dataset), &job_key);
            for o in &j.outputs {
                let version = fixed_version(&o.dataset, None).unwrap_or(VersionRef::Base);
                output_of(&mut f, &o.dataset, version, &job_key, &inputs);
            }
        }
        EventBody::Dataset(d) => {
            let version = fixed_version(&d.dataset, None).unwrap_or(VersionRef::Base);
            let key = NodeKey::DatasetVersion { dataset: name_of(&d.dataset), version };
            f.nodes.push(node_fact(key.clone(), &d.dataset));
            // Column lineage in static metadata asserts dataset-to-dataset derivation.
            let derived = columns_of(&mut f, &d.dataset, &key, &[]);
            for src in derived {
                f.edges.push(EdgeFact { kind: EdgeKind::DerivedFrom, from: src, to: key.clone() });
            }
        }
    }
    dedup(&mut f);
    f
}

/// Adds input nodes and `Consumed` edges; returns each input's name and source.
fn inputs_of<'a>(
    f: &mut Facts,
    inputs: impl Iterator<Item = &'a Dataset>,
    consumer: &NodeKey,
) -> Vec<(DatasetName, Source)> {
    let mut out = Vec::new();
    for ds in inputs {
        let name = name_of(ds);
        let source = match fixed_version(ds, None) {
            Some(version) => {
                let key = NodeKey::DatasetVersion { dataset: name.clone(), version };
                f.nodes.push(node_fact(key.clone(), ds));
                Source::Node(key)
            }
            None => Source::Latest(name.clone()),
        };
        f.edges.push(EdgeFact { kind: EdgeKind::Consumed, from: source.clone(), to: consumer.clone() });
        out.push((name, source));
    }
    out
}

fn output_of(f: &mut Facts, ds: &Dataset, version: VersionRef, producer: &NodeKey, inputs: &[(DatasetName, Source)]) {
    let key = NodeKey::DatasetVersion { dataset: name_of(ds), version };
    f.nodes.push(node_fact(key.clone(), ds));
    f.edges.push(EdgeFact { kind: EdgeKind::Produced, from: Source::Node(producer.clone()), to: key.clone() });
    // Column lineage may name inputs the event did not list; they are inputs all the same.
    for src in columns_of(f, ds, &key, inputs) {
        f.edges.push(EdgeFact { kind: EdgeKind::DerivedFrom, from: src, to: key.clone() });
    }
}

/// Adds column facts for `ds`'s `columnLineage`; returns the sources it names that are not
/// among `inputs`.
fn columns_of(f: &mut Facts, ds: &Dataset, output: &NodeKey, inputs: &[(DatasetName, Source)]) -> Vec<Source> {
    let Some(cl) = &ds.facets.column_lineage else { return Vec::new() };
    let mut extra = Vec::new();
    let entries = cl
        .fields
        .iter()
        .flat_map(|(field, c)| c.input_fields.iter().map(move |i| (Some(field.clone()), i)))
        .chain(cl.dataset.iter().map(|i| (None, i)));
    for (field, input) in entries {
        let name = DatasetName::new(input.namespace.clone(), input.name.clone());
        let source = match inputs.iter().find(|(n, _)| *n == name) {
            Some((_, s)) => s.clone(),
            None => {
                let s = Source::Latest(name);
                extra.push(s.clone());
                s
            }
        };
        use crate::facets::TransformationType as T;
        let direct = input.transformations.iter().any(|x| x.kind == T::Direct);
        let indirect = input.transformations.iter().any(|x| x.kind == T::Indirect);
        f.columns.push(ColumnFact {
            output: output.clone(),
            field,
            input: source,
            input_field: input.field.clone(),
            // No transformation listed: the spec's older producers mean a direct copy.
            direct: direct || input.transformations.is_empty(),
            indirect,
            masking: input.transformations.iter().any(|x| x.masking),
        });
    }
    extra
}

fn dedup(f: &mut Facts) {
    f.edges.sort();
    f.edges.dedup();
    f.columns.sort();
    f.columns.dedup();
}

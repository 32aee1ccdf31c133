//! Impact of a dataset version and "what trained this model".

use crate::error::GraphError;
use crate::event::{EventType, micros};
use crate::graph::Graph;
use crate::keys::{JobName, NodeKey, NodeKind};
use crate::query::{Direction, EdgeRef, NodeRef, Query};
use custody_core::{Classification, Sha256Digest};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Everything downstream of a dataset version, grouped by what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    /// The dataset version.
    pub source: NodeRef,
    /// Derived dataset versions.
    pub datasets: Vec<NodeKey>,
    /// Derived caches.
    pub caches: Vec<NodeKey>,
    /// Model versions trained on it, directly or not.
    pub model_versions: Vec<NodeKey>,
    /// Deployments serving now (as of the query time) that descend from it.
    pub live_deployments: Vec<NodeKey>,
    /// Deployments that descend from it but no longer serve.
    pub retired_deployments: Vec<NodeKey>,
    /// Number of runs on the way.
    pub runs: usize,
    /// Edges closing a cycle met on the way.
    pub cycles: Vec<EdgeRef>,
    /// Nodes existed beyond the depth limit.
    pub truncated: bool,
}

/// An [`Impact`] that borrows the graph: node ids grouped as in the `Impact`, turned into
/// keys only as they are serialized (the same JSON as the `Impact`) or by
/// [`ImpactView::to_impact`].
#[derive(Debug, Clone)]
pub struct ImpactView<'g> {
    graph: &'g Graph,
    source: u32,
    datasets: Vec<u32>,
    caches: Vec<u32>,
    model_versions: Vec<u32>,
    live_deployments: Vec<u32>,
    retired_deployments: Vec<u32>,
    runs: usize,
    cycles: Vec<u32>,
    truncated: bool,
}

impl ImpactView<'_> {
    /// The owned answer.
    pub fn to_impact(&self) -> Impact {
        let g = self.graph;
        let keys = |ids: &[u32]| ids.iter().map(|&n| g.key_of(n)).collect();
        Impact {
            source: g.node_ref(self.source),
            datasets: keys(&self.datasets),
            caches: keys(&self.caches),
            model_versions: keys(&self.model_versions),
            live_deployments: keys(&self.live_deployments),
            retired_deployments: keys(&self.retired_deployments),
            runs: self.runs,
            cycles: self.cycles.iter().map(|&e| g.edge_ref(e)).collect(),
            truncated: self.truncated,
        }
    }

    /// The sizes.
    pub fn counts(&self) -> ImpactCounts {
        ImpactCounts {
            datasets: self.datasets.len(),
            caches: self.caches.len(),
            model_versions: self.model_versions.len(),
            live_deployments: self.live_deployments.len(),
            retired_deployments: self.retired_deployments.len(),
            runs: self.runs,
            cycles: self.cycles.len(),
        }
    }
}

/// Node ids serialized as their keys.
struct Keys<'a, 'g>(&'g Graph, &'a [u32]);

impl Serialize for Keys<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.1.iter().map(|&n| self.0.key_view(n)))
    }
}

impl Serialize for ImpactView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let g = self.graph;
        let cycles: Vec<EdgeRef> = self.cycles.iter().map(|&e| g.edge_ref(e)).collect();
        let mut st = s.serialize_struct("Impact", 9)?;
        st.serialize_field("source", &g.node_ref(self.source))?;
        st.serialize_field("datasets", &Keys(g, &self.datasets))?;
        st.serialize_field("caches", &Keys(g, &self.caches))?;
        st.serialize_field("model_versions", &Keys(g, &self.model_versions))?;
        st.serialize_field("live_deployments", &Keys(g, &self.live_deployments))?;
        st.serialize_field("retired_deployments", &Keys(g, &self.retired_deployments))?;
        st.serialize_field("runs", &self.runs)?;
        st.serialize_field("cycles", &cycles)?;
        st.serialize_field("truncated", &self.truncated)?;
        st.end()
    }
}

/// Counts of an impact, without materialising keys (cheap; for dashboards and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImpactCounts {
    /// Derived dataset versions.
    pub datasets: usize,
    /// Derived caches.
    pub caches: usize,
    /// Model versions.
    pub model_versions: usize,
    /// Live deployments.
    pub live_deployments: usize,
    /// Retired deployments.
    pub retired_deployments: usize,
    /// Runs.
    pub runs: usize,
    /// Cycles met.
    pub cycles: usize,
}

/// One input of a training, with what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingInput {
    /// The dataset version (or upstream model version).
    pub node: NodeRef,
    /// Content digest, when known.
    pub digest: Option<Sha256Digest>,
    /// Effective classification.
    pub classification: Classification,
    /// Registered with the dataset registry.
    pub registered: bool,
    /// No known run produced it: a source.
    pub source: bool,
    /// Edges from the model.
    pub depth: u32,
}

/// What the graph knows about a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run.
    pub run_id: Uuid,
    /// Its job.
    pub job: Option<JobName>,
    /// Its state (see [`Graph`] for the rule).
    pub state: Option<EventType>,
    /// Code commit.
    pub code_commit: Option<String>,
    /// Container image digest.
    pub image_digest: Option<Sha256Digest>,
    /// Parameters.
    pub parameters: BTreeMap<String, String>,
    /// Parent run.
    pub parent_run: Option<Uuid>,
}

/// "What trained this model": every upstream dataset version, run and job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Training {
    /// The model version.
    pub model: NodeRef,
    /// Upstream dataset versions (and model versions, for fine-tuning chains).
    pub inputs: Vec<TrainingInput>,
    /// Upstream runs, training run first.
    pub runs: Vec<RunInfo>,
    /// Jobs of those runs.
    pub jobs: BTreeSet<JobName>,
    /// All code commits on the way.
    pub code_commits: BTreeSet<String>,
    /// All container image digests on the way.
    pub image_digests: BTreeSet<Sha256Digest>,
    /// Edges closing a cycle met on the way.
    pub cycles: Vec<EdgeRef>,
}

impl Graph {
    /// Impact of a dataset version: every derived dataset, cache, model version and
    /// deployment, as of `q.as_of`.
    pub fn impact(&self, key: &NodeKey, q: &Query) -> Result<Impact, GraphError> {
        self.impact_view(key, q).map(|v| v.to_impact())
    }

    /// [`Graph::impact`] as a view borrowing the graph: it serializes to the same JSON as the
    /// [`Impact`] without building an owned key per node, which costs several times the walk.
    pub fn impact_view(&self, key: &NodeKey, q: &Query) -> Result<ImpactView<'_>, GraphError> {
        let start = self.require(key)?;
        let w = self.walk(start, Direction::Downstream, q, |_, _| true);
        let as_of = q.as_of.map(micros);
        let mut out = ImpactView {
            graph: self,
            source: start,
            datasets: Vec::new(),
            caches: Vec::new(),
            model_versions: Vec::new(),
            live_deployments: Vec::new(),
            retired_deployments: Vec::new(),
            runs: 0,
            cycles: w.cycles.clone(),
            truncated: w.truncated,
        };
        for &n in &w.order {
            match self.kind(n) {
                NodeKind::Dataset => out.datasets.push(n),
                NodeKind::Cache => out.caches.push(n),
                NodeKind::ModelVersion => out.model_versions.push(n),
                NodeKind::Deployment if self.is_live(n, as_of) => out.live_deployments.push(n),
                NodeKind::Deployment => out.retired_deployments.push(n),
                NodeKind::Run => out.runs += 1,
                NodeKind::Job => {}
            }
        }
        Ok(out)
    }

    /// The sizes of [`Graph::impact`], without building keys.
    pub fn impact_counts(&self, key: &NodeKey, q: &Query) -> Result<ImpactCounts, GraphError> {
        let start = self.require(key)?;
        let w = self.walk(start, Direction::Downstream, q, |_, _| true);
        let as_of = q.as_of.map(micros);
        let mut c = ImpactCounts { cycles: w.cycles.len(), ..ImpactCounts::default() };
        for &n in &w.order {
            match self.kind(n) {
                NodeKind::Dataset => c.datasets += 1,
                NodeKind::Cache => c.caches += 1,
                NodeKind::ModelVersion => c.model_versions += 1,
                NodeKind::Deployment if self.is_live(n, as_of) => c.live_deployments += 1,
                NodeKind::Deployment => c.retired_deployments += 1,
                NodeKind::Run => c.runs += 1,
                NodeKind::Job => {}
            }
        }
        Ok(c)
    }

    /// What the graph knows about run `run_id`, as of `as_of`.
    pub fn run_info(&self, run_id: Uuid, q: &Query) -> Result<RunInfo, GraphError> {
        let n = self.require(&NodeKey::run(run_id))?;
        Ok(self.run_info_of(n, q.as_of.map(micros)))
    }

    pub(crate) fn run_info_of(&self, n: u32, as_of: Option<i64>) -> RunInfo {
        let data = self.runs.get(&n);
        let run_id = match self.key_of(n) {
            NodeKey::Run { run_id } => run_id,
            _ => Uuid::nil(),
        };
        RunInfo {
            run_id,
            job: self.run_job(n).and_then(|j| self.job_name_of(j)),
            state: self.run_state(n, as_of),
            code_commit: data.and_then(|d| d.commit.map(|c| self.str_of(c.1).to_owned())),
            image_digest: data.and_then(|d| d.image.map(|c| c.1)),
            parameters: data
                .map(|d| d.params.iter().map(|(k, v)| (k.clone(), v.1.clone())).collect())
                .unwrap_or_default(),
            parent_run: data.and_then(|d| d.parent.map(|p| p.1)),
        }
    }

    /// Whether a data node has a producer (an incoming edge other than RunOf).
    pub(crate) fn has_producer(&self, n: u32) -> bool {
        let mut any = false;
        self.for_each_in(n, |_, ed, _| any |= ed.kind.carries_data());
        any
    }

    /// Whether `n` is a version the dataset registry holds: its dataset is registered and a
    /// registered version has its content digest.
    pub(crate) fn registered_node(&self, n: u32) -> bool {
        let entry = self.dataset_of(n).and_then(|d| self.datasets.get(d as usize));
        match (entry, self.digest_of(n)) {
            (Some(e), Some(d)) => e.registered.is_some() && e.registered_digests.contains(&d),
            _ => false,
        }
    }

    /// "What trained this model version": all upstream dataset versions with digests, the
    /// runs with code commits, image digests and parameters, and their jobs.
    pub fn what_trained(&self, model: &NodeKey, q: &Query) -> Result<Training, GraphError> {
        let start = self.require(model)?;
        let kind = self.kind(start);
        if !kind.is_data() {
            return Err(GraphError::WrongKind {
                node: model.to_string(),
                actual: kind.as_str(),
                expected: "model version",
            });
        }
        let w = self.walk(start, Direction::Upstream, q, |_, _| true);
        let as_of = q.as_of.map(micros);
        let mut t = Training {
            model: self.node_ref(start),
            inputs: Vec::new(),
            runs: Vec::new(),
            jobs: BTreeSet::new(),
            code_commits: BTreeSet::new(),
            image_digests: BTreeSet::new(),
            cycles: w.cycles.iter().map(|&e| self.edge_ref(e)).collect(),
        };
        for &n in &w.order {
            let k = self.kind(n);
            if k.is_data() {
                t.inputs.push(TrainingInput {
                    node: self.node_ref(n),
                    digest: self.digest_of(n),
                    classification: self.effective_level(n),
                    registered: self.registered_node(n),
                    source: !self.has_producer(n),
                    depth: w.depth(n),
                });
            } else if k == NodeKind::Run {
                let info = self.run_info_of(n, as_of);
                t.code_commits.extend(info.code_commit.clone());
                t.image_digests.extend(info.image_digest);
                t.jobs.extend(info.job.clone());
                t.runs.push(info);
            } else if let Some(j) = self.job_name_of(n) {
                t.jobs.insert(j);
            }
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{GraphSpec, generate};

    fn small_graph() -> (Graph, Vec<NodeKey>) {
        let generated = generate(GraphSpec::small());
        let facts: Vec<_> = generated.facts().collect();
        let mut g = Graph::new();
        g.apply_all(&facts);
        (g, generated.sources().collect())
    }

    #[test]
    fn every_borrowed_key_serializes_as_its_owned_key() {
        let (g, _) = small_graph();
        let mut kinds = BTreeSet::new();
        for n in 0..g.nodes.len() as u32 {
            let owned = serde_json::to_value(g.key_of(n)).unwrap();
            assert_eq!(serde_json::to_value(g.key_view(n)).unwrap(), owned, "node {n}");
            kinds.insert(owned["type"].as_str().unwrap().to_owned());
        }
        assert_eq!(kinds.len(), 3, "datasets, jobs and runs all compared: {kinds:?}");
    }

    #[test]
    fn the_view_serializes_as_the_owned_impact() {
        let (g, sources) = small_graph();
        assert!(sources.len() > 10);
        for src in sources.iter().take(25) {
            for q in [Query::all(), Query { depth: Some(2), ..Query::all() }] {
                let view = g.impact_view(src, &q).unwrap();
                let owned = g.impact(src, &q).unwrap();
                let json = serde_json::to_value(&view).unwrap();
                assert_eq!(json, serde_json::to_value(&owned).unwrap(), "{src}");
                assert_eq!(serde_json::from_value::<Impact>(json).unwrap(), owned);
                assert_eq!(view.counts(), g.impact_counts(src, &q).unwrap());
            }
        }
    }
}

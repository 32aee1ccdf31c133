//! Erasure (DSAR) impact: where a dataset version's data went, and what to do about each place.

use crate::error::GraphError;
use crate::event::micros;
use crate::graph::Graph;
use crate::keys::{JobName, NodeKey, NodeKind};
use crate::query::{Direction, EdgeRef, NodeRef, Query};
use serde::{Deserialize, Serialize};

/// What to do with an item the erased data reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum SuggestedAction {
    /// Delete it: a cache, or a derived dataset all of whose inputs are being erased too.
    Delete,
    /// Re-run its producer without the erased data: it also has inputs that stay.
    ReDerive,
    /// Retrain the model version without the erased data.
    Retrain,
    /// Retire the deployment, or replace it with one of a retrained model.
    RetireOrReplace,
    /// Nothing: the deployment no longer serves.
    NoneRetired,
    /// Keep it: the data reached it only through an approved anonymizing/aggregating
    /// transform. The justification is that transform's.
    AcceptWithJustification {
        /// The transform that anonymised or aggregated the data.
        transform: JobName,
        /// Its registered justification.
        justification: String,
    },
}

/// One item the erased data reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureItem {
    /// The item.
    pub node: NodeRef,
    /// Edges from the erased version to the item.
    pub path: Vec<EdgeRef>,
    /// What to do.
    pub action: SuggestedAction,
}

/// The erasure impact report of one or more dataset versions (those holding a data subject's
/// records, for a record-key request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReport {
    /// The (first) dataset version being erased.
    pub source: NodeRef,
    /// Every dataset version being erased, `source` first.
    pub sources: Vec<NodeRef>,
    /// Every dataset, cache, model version and deployment the data reached, nearest first.
    pub items: Vec<ErasureItem>,
    /// Edges closing a cycle met on the way.
    pub cycles: Vec<EdgeRef>,
}

impl Graph {
    /// The erasure impact report for `key`, as of `q.as_of` (depth is ignored: erasure must
    /// see everything).
    pub fn erasure_report(&self, key: &NodeKey, q: &Query) -> Result<ErasureReport, GraphError> {
        self.erasure_report_of(std::slice::from_ref(key), q)
    }

    /// The erasure impact report for erasing all of `keys` together (the dataset versions that
    /// hold one data subject's records): an item is re-derived only when it keeps an input that
    /// none of them reaches. Errors when `keys` is empty or a key is unknown.
    pub fn erasure_report_of(&self, keys: &[NodeKey], q: &Query) -> Result<ErasureReport, GraphError> {
        let starts = keys.iter().map(|k| self.require(k)).collect::<Result<Vec<u32>, _>>()?;
        let Some(&first) = starts.first() else {
            return Err(GraphError::UnknownNode("no dataset version to erase".into()));
        };
        let q = Query { depth: None, as_of: q.as_of };
        let as_of = q.as_of.map(micros);
        // Two walks per source: `raw` never crosses an approved anonymiser, `all` does. What
        // only `all` reaches holds anonymised or aggregated data.
        let raw: Vec<_> = starts
            .iter()
            .map(|&s| self.walk(s, Direction::Downstream, &q, |g, ed| g.blocking_job(ed).is_none()))
            .collect();
        let all: Vec<_> = starts.iter().map(|&s| self.walk(s, Direction::Downstream, &q, |_, _| true)).collect();
        let in_raw = |n: u32| raw.iter().any(|w| w.seen(n));
        let mut done = rustc_hash::FxHashSet::default();
        done.extend(starts.iter().copied());
        let mut items = Vec::new();
        for walk_all in &all {
            for &n in &walk_all.order {
                let kind = self.kind(n);
                if !kind.is_data() || !done.insert(n) {
                    continue;
                }
                let (walk, action) = match raw.iter().find(|w| w.seen(n)) {
                    Some(walk_raw) => {
                        let action = match kind {
                            NodeKind::Cache => SuggestedAction::Delete,
                            NodeKind::ModelVersion => SuggestedAction::Retrain,
                            NodeKind::Deployment if self.is_live(n, as_of) => SuggestedAction::RetireOrReplace,
                            NodeKind::Deployment => SuggestedAction::NoneRetired,
                            _ if self.has_surviving_input(n, &in_raw) => SuggestedAction::ReDerive,
                            _ => SuggestedAction::Delete,
                        };
                        (walk_raw, action)
                    }
                    None => (walk_all, self.accept_action(n, walk_all)),
                };
                let nodes = walk.path(n);
                let path = nodes.windows(2).filter_map(|w| walk.parent(w[1]).map(|p| self.edge_ref(p.1))).collect();
                items.push(ErasureItem { node: self.node_ref(n), path, action });
            }
        }
        let mut cycles: Vec<_> = all.iter().flat_map(|w| w.cycles.iter().map(|&e| self.edge_ref(e))).collect();
        cycles.dedup();
        Ok(ErasureReport {
            source: self.node_ref(first),
            sources: starts.iter().map(|&s| self.node_ref(s)).collect(),
            items,
            cycles,
        })
    }

    /// Whether a producer of `n` also read data the erasure does not reach.
    fn has_surviving_input(&self, n: u32, in_raw: &impl Fn(u32) -> bool) -> bool {
        let mut producers = Vec::new();
        let mut direct_clean = false;
        self.for_each_in(n, |_, ed, src| {
            if !ed.kind.carries_data() {
                return;
            }
            if self.kind(src).is_data() {
                direct_clean |= !in_raw(src);
            } else {
                producers.push(src);
            }
        });
        direct_clean
            || producers.into_iter().any(|p| {
                let mut clean = false;
                self.for_each_in(p, |_, ed, src| clean |= ed.kind.carries_data() && !in_raw(src));
                clean
            })
    }

    /// The accept action for a node reached only through an anonymiser: the first approved
    /// transform on its path.
    fn accept_action(&self, n: u32, all: &crate::query::Walk) -> SuggestedAction {
        let nodes = all.path(n);
        for w in nodes.windows(2) {
            if let Some((_, e)) = all.parent(w[1])
                && let Some(job) = self.blocking_job(&self.edge(e))
                && let (Some(name), Some(d)) = (self.job_name_of(job), self.approved_transform(job))
            {
                return SuggestedAction::AcceptWithJustification {
                    transform: name,
                    justification: d.justification.clone(),
                };
            }
        }
        // Reached through an anonymiser on some other path than the walk's first.
        SuggestedAction::AcceptWithJustification {
            transform: JobName::new("", ""),
            justification: "reached only through approved anonymizing or aggregating transforms".into(),
        }
    }
}

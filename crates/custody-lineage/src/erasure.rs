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

/// The erasure impact report of a dataset version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReport {
    /// The dataset version being erased.
    pub source: NodeRef,
    /// Every dataset, cache, model version and deployment the data reached, nearest first.
    pub items: Vec<ErasureItem>,
    /// Edges closing a cycle met on the way.
    pub cycles: Vec<EdgeRef>,
}

impl Graph {
    /// The erasure impact report for `key`, as of `q.as_of` (depth is ignored: erasure must
    /// see everything).
    pub fn erasure_report(&self, key: &NodeKey, q: &Query) -> Result<ErasureReport, GraphError> {
        let start = self.require(key)?;
        let q = Query { depth: None, as_of: q.as_of };
        let as_of = q.as_of.map(micros);
        // Two walks: `raw` never crosses an approved anonymiser, `all` does. What only `all`
        // reaches holds anonymised or aggregated data.
        let raw = self.walk(start, Direction::Downstream, &q, |g, ed| g.blocking_job(ed).is_none());
        let all = self.walk(start, Direction::Downstream, &q, |_, _| true);
        let mut items = Vec::new();
        for &n in &all.order {
            let kind = self.kind(n);
            if !kind.is_data() {
                continue;
            }
            let (walk, action) = if raw.seen(n) {
                let action = match kind {
                    NodeKind::Cache => SuggestedAction::Delete,
                    NodeKind::ModelVersion => SuggestedAction::Retrain,
                    NodeKind::Deployment if self.is_live(n, as_of) => SuggestedAction::RetireOrReplace,
                    NodeKind::Deployment => SuggestedAction::NoneRetired,
                    _ if self.has_surviving_input(n, &raw) => SuggestedAction::ReDerive,
                    _ => SuggestedAction::Delete,
                };
                (&raw, action)
            } else {
                (&all, self.accept_action(n, &all))
            };
            let nodes = walk.path(n);
            let path = nodes.windows(2).filter_map(|w| walk.parent(w[1]).map(|p| self.edge_ref(p.1))).collect();
            items.push(ErasureItem { node: self.node_ref(n), path, action });
        }
        Ok(ErasureReport {
            source: self.node_ref(start),
            items,
            cycles: all.cycles.iter().map(|&e| self.edge_ref(e)).collect(),
        })
    }

    /// Whether a producer of `n` also read data the erasure does not reach.
    fn has_surviving_input(&self, n: u32, raw: &crate::query::Walk) -> bool {
        let mut producers = Vec::new();
        let mut direct_clean = false;
        self.for_each_in(n, |_, ed, src| {
            if !ed.kind.carries_data() {
                return;
            }
            if self.kind(src).is_data() {
                direct_clean |= !raw.seen(src);
            } else {
                producers.push(src);
            }
        });
        direct_clean
            || producers.into_iter().any(|p| {
                let mut clean = false;
                self.for_each_in(p, |_, ed, src| clean |= ed.kind.carries_data() && !raw.seen(src));
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

//! Lineage completeness KPI.

use crate::event::micros;
use crate::graph::Graph;
use crate::keys::{NodeKey, NodeKind};
use crate::query::{Direction, Query};
use serde::{Deserialize, Serialize};

/// Why a model version is not fully traced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Untraced {
    /// The model version.
    pub model: NodeKey,
    /// It has no recorded training input at all.
    pub no_inputs: bool,
    /// Upstream dataset versions the dataset registry does not hold (by content digest).
    pub unregistered: Vec<NodeKey>,
    /// Upstream dataset versions without a content digest.
    pub undigested: Vec<NodeKey>,
}

/// Share of model versions whose training inputs are fully traced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completeness {
    /// Model versions considered.
    pub model_versions: usize,
    /// Of which fully traced.
    pub fully_traced: usize,
    /// `fully_traced / model_versions` (1.0 when there are none).
    pub share: f64,
    /// The others, and why.
    pub untraced: Vec<Untraced>,
}

impl Graph {
    /// The completeness KPI as of `q.as_of`: a model version is fully traced when it has at
    /// least one upstream dataset version and every upstream dataset version (transitively,
    /// through runs; upstream model versions count as datasets) has a content digest and is
    /// a version the dataset registry holds ([`Graph::register_dataset_version`]).
    pub fn completeness(&self, q: &Query) -> Completeness {
        let as_of = q.as_of.map(micros);
        let q = Query { depth: None, as_of: q.as_of };
        let mut total = 0;
        let mut traced = 0;
        let mut untraced = Vec::new();
        for n in 0..self.nodes.len() as u32 {
            if self.kind(n) != NodeKind::ModelVersion || as_of.is_some_and(|t| self.created(n).0 > t) {
                continue;
            }
            total += 1;
            let w = self.walk(n, Direction::Upstream, &q, |_, _| true);
            let data: Vec<u32> = w.order.iter().copied().filter(|&m| self.kind(m).is_data()).collect();
            let unregistered: Vec<NodeKey> =
                data.iter().filter(|&&m| !self.registered_node(m)).map(|&m| self.key_of(m)).collect();
            let undigested: Vec<NodeKey> =
                data.iter().filter(|&&m| self.digest_of(m).is_none()).map(|&m| self.key_of(m)).collect();
            if !data.is_empty() && unregistered.is_empty() && undigested.is_empty() {
                traced += 1;
            } else {
                untraced.push(Untraced { model: self.key_of(n), no_inputs: data.is_empty(), unregistered, undigested });
            }
        }
        untraced.sort_by(|a, b| a.model.cmp(&b.model));
        let share = if total == 0 { 1.0 } else { traced as f64 / total as f64 };
        Completeness { model_versions: total, fully_traced: traced, share, untraced }
    }
}

//! Classification propagation; the rule is documented on [`EffectiveClassification`].

use crate::error::GraphError;
use crate::graph::{EdgeData, Graph, NONE};
use crate::keys::{EdgeKind, JobName, NodeKey, NodeKind};
use crate::query::{EdgeRef, NodeRef};
use custody_core::Classification;
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Where a node's effective level comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Origin {
    /// Its own declaration (facet or registry) is the level.
    Declared,
    /// Nobody classified it and it inherits nothing: the default level.
    Default,
    /// Inherited from `from` along `chain`.
    Inherited {
        /// The node whose own (or default) level it is.
        from: NodeKey,
    },
}

/// A node's effective classification and why it holds.
///
/// # Classification propagation
///
/// The effective level of a node is the least fixpoint of
///
/// ```text
/// effective(n) = max(floor(n), max { effective(p) | p → n carries data })
/// ```
///
/// - `floor(n)` of a data node is its *own* level: the highest of its `custody` facet's
///   declaration and the registry's ([`Graph::register_dataset`]); with neither, it is
///   `Public` when the node inherits from something (it is then exactly the max of its
///   inputs) and the default level (Internal) when it does not (a source nobody classified,
///   or an output of an approved anonymiser). Runs and jobs have floor `Public`: they only
///   pass their inputs' level on to their outputs.
/// - Every edge carries data except `RunOf` and a `Produced` edge out of a run (or job) whose
///   job has an *approved* anonymizing/aggregating declaration ([`Graph::set_transform`]).
///   Such an output therefore keeps its own declared level, or the default level when it has
///   none; never its inputs'.
///
/// The fixpoint exists and is reached because levels only rise within a computation and
/// there are four of them; cycles are harmless. It is a function of the set of facts, so it
/// does not depend on event order. On ingest only the downstream closure of what changed is
/// recomputed, from scratch (so that a level can also go down, e.g. when a floating input
/// now resolves to a newer, less sensitive version, or a declaration is approved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveClassification {
    /// The node.
    pub node: NodeRef,
    /// The effective level.
    pub level: Classification,
    /// Its own declared level, if any.
    pub declared: Option<Classification>,
    /// Why the level holds.
    pub origin: Origin,
    /// For an inherited level: the edges from the origin to the node, origin first.
    pub chain: Vec<EdgeRef>,
    /// Approved anonymizing/aggregating jobs whose output this node is (inheritance through
    /// them is cut).
    pub blocked_by: Vec<JobName>,
}

impl Graph {
    pub(crate) fn effective_level(&self, n: u32) -> Classification {
        self.effective.get(n as usize).copied().unwrap_or(Classification::Public)
    }

    /// The approved-transform job that cuts edge `ed`, if any.
    pub(crate) fn blocking_job(&self, ed: &EdgeData) -> Option<u32> {
        if ed.kind != EdgeKind::Produced {
            return None;
        }
        let job = match self.kind(ed.from) {
            NodeKind::Run => self.run_job(ed.from)?,
            NodeKind::Job => ed.from,
            _ => return None,
        };
        self.approved_transform(job).map(|_| job)
    }

    pub(crate) fn carries(&self, ed: &EdgeData) -> bool {
        ed.kind.carries_data() && self.blocking_job(ed).is_none()
    }

    /// Own declared level: facet or registry, whichever is higher.
    pub(crate) fn own_level(&self, n: u32) -> Option<Classification> {
        let facet = self.nodes.get(n as usize).and_then(|d| d.declared);
        let registry = self.dataset_of(n).and_then(|d| self.datasets.get(d as usize)).and_then(|e| e.registered);
        facet.max(registry)
    }

    fn inherits(&self, n: u32) -> bool {
        let mut any = false;
        self.for_each_in(n, |_, ed, _| any |= self.carries(ed));
        any
    }

    pub(crate) fn floor(&self, n: u32) -> Classification {
        if !self.kind(n).is_data() {
            return Classification::Public;
        }
        self.own_level(n).unwrap_or(if self.inherits(n) { Classification::Public } else { self.default_level })
    }

    fn inherited(&self, n: u32) -> Classification {
        let mut level = Classification::Public;
        self.for_each_in(n, |_, ed, src| {
            if self.carries(ed) {
                level = level.max(self.effective_level(src));
            }
        });
        level
    }

    /// Recomputes the downstream closure of `seeds`; returns how many nodes changed level.
    pub(crate) fn propagate_from(&mut self, seeds: Vec<u32>) -> usize {
        let mut region: FxHashSet<u32> = FxHashSet::default();
        let mut order = Vec::new();
        let mut queue: VecDeque<u32> = VecDeque::new();
        for s in seeds {
            if (s as usize) < self.nodes.len() && region.insert(s) {
                queue.push_back(s);
            }
        }
        while let Some(n) = queue.pop_front() {
            order.push(n);
            // Blocked edges too: a newly approved anonymiser must lower what is behind it.
            self.for_each_out(n, |_, ed| {
                if ed.kind.carries_data() && region.insert(ed.to) {
                    queue.push_back(ed.to);
                }
            });
        }
        self.recompute(&order, |n| region.contains(&n))
    }

    /// Recomputes every node.
    pub(crate) fn propagate_all(&mut self) -> usize {
        let order: Vec<u32> = (0..self.nodes.len() as u32).collect();
        self.recompute(&order, |_| true)
    }

    fn recompute(&mut self, order: &[u32], in_region: impl Fn(u32) -> bool) -> usize {
        let old: Vec<Classification> = order.iter().map(|&n| self.effective_level(n)).collect();
        for &n in order {
            let f = self.floor(n);
            if let Some(slot) = self.effective.get_mut(n as usize) {
                *slot = f;
            }
        }
        let mut queued: FxHashSet<u32> = order.iter().copied().collect();
        let mut work: VecDeque<u32> = order.iter().copied().collect();
        while let Some(n) = work.pop_front() {
            queued.remove(&n);
            let new = self.effective_level(n).max(self.inherited(n));
            if new == self.effective_level(n) {
                continue;
            }
            if let Some(slot) = self.effective.get_mut(n as usize) {
                *slot = new;
            }
            let mut next = Vec::new();
            self.for_each_out(n, |_, ed| {
                if self.carries(ed) && in_region(ed.to) {
                    next.push(ed.to);
                }
            });
            for m in next {
                if queued.insert(m) {
                    work.push_back(m);
                }
            }
        }
        order.iter().zip(old).filter(|&(&n, o)| self.effective_level(n) != o).count()
    }

    /// The effective classification of a node and the reason it holds.
    pub fn effective_classification(&self, key: &NodeKey) -> Result<EffectiveClassification, GraphError> {
        let n = self.require(key)?;
        let level = self.effective_level(n);
        let declared = self.own_level(n);
        let mut blocked_by = Vec::new();
        self.for_each_in(n, |_, ed, _| {
            if let Some(j) = self.blocking_job(ed).and_then(|j| self.job_name_of(j))
                && !blocked_by.contains(&j)
            {
                blocked_by.push(j);
            }
        });
        blocked_by.sort();
        let (origin, chain) = if declared == Some(level) {
            (Origin::Declared, Vec::new())
        } else if self.floor(n) == level && self.kind(n).is_data() && !self.inherits(n) {
            (Origin::Default, Vec::new())
        } else {
            self.explain_chain(n, level)
        };
        Ok(EffectiveClassification { node: self.node_ref(n), level, declared, origin, chain, blocked_by })
    }

    /// Shortest chain of carrying edges, through nodes at `level`, from a node whose own
    /// (or default) level is `level` to `n`. Breadth-first with a visited set: cycle-safe,
    /// and the parents are chosen in a fixed order of keys, so the answer is stable.
    fn explain_chain(&self, n: u32, level: Classification) -> (Origin, Vec<EdgeRef>) {
        let mut parent: rustc_hash::FxHashMap<u32, (u32, u32)> = rustc_hash::FxHashMap::default();
        let mut seen = FxHashSet::default();
        seen.insert(n);
        let mut queue = VecDeque::from([n]);
        while let Some(cur) = queue.pop_front() {
            if cur != n && self.floor(cur) == level {
                let mut chain = Vec::new();
                let mut x = cur;
                // Walk back down towards n.
                let mut down: Vec<u32> = Vec::new();
                while let Some(&(child, e)) = parent.get(&x) {
                    down.push(e);
                    x = child;
                    if x == n {
                        break;
                    }
                }
                for e in down {
                    chain.push(self.edge_ref(e));
                }
                return (Origin::Inherited { from: self.key_of(cur) }, chain);
            }
            let mut preds = Vec::new();
            self.for_each_in(cur, |e, ed, src| {
                if self.carries(ed) && self.effective_level(src) == level {
                    preds.push((src, e));
                }
            });
            preds.sort_by(|a, b| self.key_cmp(a.0, b.0));
            for (src, e) in preds {
                if src != NONE && seen.insert(src) {
                    parent.insert(src, (cur, e));
                    queue.push_back(src);
                }
            }
        }
        (Origin::Default, Vec::new())
    }
}

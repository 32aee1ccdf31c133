//! Traversals: upstream/downstream to a depth, as of a time, cycle-safe.
//!
//! Rules common to every traversal:
//! - a visited set makes every walk terminate; an edge back to a node already on the path
//!   from the start is reported in `cycles` and not followed;
//! - `as_of` hides edges and nodes created after it, which equals the graph built from only
//!   the events up to then (floating inputs resolve among versions that existed then);
//! - `RunOf` (job → run) is followed only from a start job: a job is the code of its runs,
//!   not their data, so reaching a job never fans out into all of its runs.

use crate::error::GraphError;
use crate::event::micros;
use crate::event_id::EventId;
use crate::graph::{COL_DIRECT, COL_INDIRECT, COL_MASKING};
use crate::graph::{ColEdge, EdgeData, Graph, IKey, IVersion, NONE};
use crate::keys::{EdgeKind, NodeKey, NodeKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Options of a traversal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Maximum number of edges from the start; `None` for no limit.
    pub depth: Option<u32>,
    /// Answer as the graph was at this time; `None` for now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub as_of: Option<OffsetDateTime>,
}

impl Query {
    /// No depth limit, current graph.
    pub fn all() -> Self {
        Self::default()
    }

    /// Limited to `depth` edges.
    pub fn depth(depth: u32) -> Self {
        Self { depth: Some(depth), as_of: None }
    }

    /// As of `t`.
    pub fn as_of(t: OffsetDateTime) -> Self {
        Self { depth: None, as_of: Some(t) }
    }
}

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// Towards sources.
    Upstream,
    /// Towards consumers.
    Downstream,
}

/// A node with its kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeRef {
    /// The node.
    pub key: NodeKey,
    /// Its kind.
    pub kind: NodeKind,
}

/// An edge, with the event that created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeRef {
    /// Reported kind.
    pub kind: EdgeKind,
    /// Upstream end (a floating input shown resolved).
    pub from: NodeKey,
    /// Downstream end.
    pub to: NodeKey,
    /// When the edge was first asserted (event time).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The event that first asserted it.
    pub event: EventId,
    /// The source was "latest version as of the event time", resolved to `from`.
    pub latest_version: bool,
}

/// A node reached by a traversal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reached {
    /// The node.
    pub node: NodeRef,
    /// Edges from the start.
    pub depth: u32,
    /// The edge it was first reached through (its parent in the walk).
    pub via: EdgeRef,
}

/// A column-level lineage edge: `output.field` is computed from `input.input_field`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnEdgeRef {
    /// Output dataset version.
    pub output: NodeKey,
    /// Output field; `None` for dataset-wide inputs.
    pub field: Option<String>,
    /// Input dataset version.
    pub input: NodeKey,
    /// Input field.
    pub input_field: String,
    /// A DIRECT transformation.
    pub direct: bool,
    /// An INDIRECT transformation.
    pub indirect: bool,
    /// A masking transformation.
    pub masking: bool,
}

/// The result of an upstream or downstream traversal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// Where the walk started.
    pub start: NodeRef,
    /// Which way it went.
    pub direction: Direction,
    /// Every node reached, in walk (breadth-first) order.
    pub reached: Vec<Reached>,
    /// Column-level edges between reached dataset versions, where known.
    pub columns: Vec<ColumnEdgeRef>,
    /// Edges that close a cycle (not followed).
    pub cycles: Vec<EdgeRef>,
    /// Nodes existed beyond the depth limit.
    pub truncated: bool,
}

impl Lineage {
    /// The edges from the start to `key`, start first; `None` if `key` was not reached.
    pub fn path_to(&self, key: &NodeKey) -> Option<Vec<EdgeRef>> {
        let mut path = Vec::new();
        let mut cur = key.clone();
        let mut guard = self.reached.len() + 1;
        while cur != self.start.key {
            let r = self.reached.iter().find(|r| r.node.key == cur)?;
            path.push(r.via.clone());
            cur = match self.direction {
                Direction::Downstream => r.via.from.clone(),
                Direction::Upstream => r.via.to.clone(),
            };
            guard = guard.checked_sub(1)?;
        }
        path.reverse();
        Some(path)
    }
}

const UNSEEN: u32 = u32::MAX;

/// A walk over dense ids.
pub(crate) struct Walk {
    pub(crate) start: u32,
    /// Reached nodes (start excluded), in order.
    pub(crate) order: Vec<u32>,
    /// Per reached node: [parent node, parent edge, depth]. A hash map, not a dense array:
    /// zeroing 12 bytes × 1M nodes per query would cost more than a typical walk.
    pub(crate) meta: rustc_hash::FxHashMap<u32, [u32; 3]>,
    pub(crate) cycles: Vec<u32>,
    pub(crate) truncated: bool,
}

impl Walk {
    pub(crate) fn seen(&self, n: u32) -> bool {
        n == self.start || self.meta.contains_key(&n)
    }

    pub(crate) fn parent(&self, n: u32) -> Option<(u32, u32)> {
        let m = self.meta.get(&n)?;
        (m[0] != UNSEEN && n != self.start).then_some((m[0], m[1]))
    }

    pub(crate) fn depth(&self, n: u32) -> u32 {
        self.meta.get(&n).map_or(0, |m| m[2])
    }

    /// Nodes from the start to `n`, start first.
    pub(crate) fn path(&self, n: u32) -> Vec<u32> {
        let mut out = vec![n];
        let mut cur = n;
        while let Some((p, _)) = self.parent(cur) {
            out.push(p);
            cur = p;
            if out.len() > self.order.len() + 1 {
                break;
            }
        }
        out.reverse();
        out
    }

    fn is_ancestor(&self, a: u32, mut cur: u32) -> bool {
        let target_depth = self.depth(a);
        loop {
            if cur == a {
                return true;
            }
            if cur == self.start || self.depth(cur) <= target_depth {
                return false;
            }
            match self.parent(cur) {
                Some((p, _)) => cur = p,
                None => return false,
            }
        }
    }
}

impl Graph {
    /// The dense id of `key`, or an error naming it.
    pub(crate) fn require(&self, key: &NodeKey) -> Result<u32, GraphError> {
        self.lookup(key).ok_or_else(|| GraphError::UnknownNode(key.to_string()))
    }

    /// Breadth-first walk. `follow(graph, edge)` can refuse edges (propagation, erasure).
    pub(crate) fn walk(
        &self,
        start: u32,
        dir: Direction,
        q: &Query,
        mut follow: impl FnMut(&Graph, &EdgeData) -> bool,
    ) -> Walk {
        let as_of = q.as_of.map(micros);
        let max_depth = q.depth.unwrap_or(u32::MAX);
        let mut w = Walk {
            start,
            order: Vec::new(),
            meta: rustc_hash::FxHashMap::default(),
            cycles: Vec::new(),
            truncated: false,
        };
        w.meta.insert(start, [start, UNSEEN, 0]);
        let visible =
            |g: &Graph, ed: &EdgeData, other: u32| as_of.is_none_or(|t| ed.created.0 <= t && g.created(other).0 <= t);
        let mut head = 0usize;
        let mut cur = start;
        let mut next = Vec::new();
        loop {
            let d = w.depth(cur);
            let expand = match dir {
                // A job reached through RunOf is a leaf (see the module docs).
                Direction::Upstream => {
                    !(cur != start && self.kind(cur) == NodeKind::Job && {
                        let pe = w.parent(cur).map_or(NONE, |p| p.1);
                        self.edge(pe).kind == EdgeKind::RunOf
                    })
                }
                Direction::Downstream => true,
            };
            if expand {
                next.clear();
                match dir {
                    Direction::Downstream => self.for_each_out(cur, |e, ed| {
                        if (ed.kind != EdgeKind::RunOf || cur == start) && visible(self, ed, ed.to) && follow(self, ed)
                        {
                            next.push((e, ed.to));
                        }
                    }),
                    Direction::Upstream => self.for_each_in(cur, |e, ed, src| {
                        if visible(self, ed, src) && follow(self, ed) {
                            next.push((e, src));
                        }
                    }),
                }
                for &(e, nb) in &next {
                    if w.seen(nb) {
                        if (nb == start || w.depth(nb) <= d && w.is_ancestor(nb, cur)) && w.cycles.len() < 64 {
                            w.cycles.push(e);
                        }
                        continue;
                    }
                    if d >= max_depth {
                        w.truncated = true;
                        continue;
                    }
                    w.meta.insert(nb, [cur, e, d + 1]);
                    w.order.push(nb);
                }
            }
            match w.order.get(head) {
                Some(&n) => {
                    cur = n;
                    head += 1;
                }
                None => break,
            }
        }
        w
    }

    pub(crate) fn node_ref(&self, n: u32) -> NodeRef {
        NodeRef { key: self.key_of(n), kind: self.kind(n) }
    }

    pub(crate) fn edge_ref(&self, e: u32) -> EdgeRef {
        let ed = self.edge(e);
        EdgeRef {
            kind: self.reported_kind(&ed),
            from: self.key_of(self.source_of(&ed)),
            to: self.key_of(ed.to),
            time: OffsetDateTime::from_unix_timestamp_nanos(i128::from(ed.created.0) * 1_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            event: self.event_id(ed.created.1),
            latest_version: ed.floating,
        }
    }

    /// Everything downstream of `key`.
    pub fn downstream(&self, key: &NodeKey, q: &Query) -> Result<Lineage, GraphError> {
        self.lineage(key, Direction::Downstream, q)
    }

    /// Everything upstream of `key`.
    pub fn upstream(&self, key: &NodeKey, q: &Query) -> Result<Lineage, GraphError> {
        self.lineage(key, Direction::Upstream, q)
    }

    /// Upstream or downstream of `key`, with the column-level edges among the reached nodes.
    pub fn lineage(&self, key: &NodeKey, dir: Direction, q: &Query) -> Result<Lineage, GraphError> {
        let start = self.require(key)?;
        let w = self.walk(start, dir, q, |_, _| true);
        let reached = w
            .order
            .iter()
            .map(|&n| Reached {
                node: self.node_ref(n),
                depth: w.depth(n),
                via: self.edge_ref(w.parent(n).map_or(NONE, |p| p.1)),
            })
            .collect();
        let mut columns = Vec::new();
        let as_of = q.as_of.map(micros);
        for &n in std::iter::once(&start).chain(&w.order) {
            if !self.kind(n).is_data() {
                continue;
            }
            let candidates: Vec<u32> = match dir {
                Direction::Upstream => self.cols_by_out.get(&n).cloned().unwrap_or_default(),
                Direction::Downstream => self.cols_into_from(n),
            };
            for c in candidates {
                let Some(col) = self.cols.get(c as usize) else { continue };
                if as_of.is_some_and(|t| col.created.0 > t) {
                    continue;
                }
                let other = match dir {
                    Direction::Upstream => self.col_source(col),
                    Direction::Downstream => col.out,
                };
                if other != NONE && w.seen(other) && (other != start || n != start) {
                    columns.push(self.column_ref(col));
                }
            }
        }
        Ok(Lineage {
            start: self.node_ref(start),
            direction: dir,
            reached,
            columns,
            cycles: w.cycles.iter().map(|&e| self.edge_ref(e)).collect(),
            truncated: w.truncated,
        })
    }

    /// The version a column edge's input means (resolving "latest" for the output's run).
    pub(crate) fn col_source(&self, c: &ColEdge) -> u32 {
        if !c.floating {
            return c.input;
        }
        let Some(ds) = self.dataset_of(c.input) else { return NONE };
        let consumer = match self.nodes.get(c.out as usize).map(|d| d.key) {
            Some(IKey::Version { v: IVersion::Run(r), .. }) => {
                self.node_index.get(&IKey::Run(r)).copied().unwrap_or(c.out)
            }
            _ => c.out,
        };
        self.resolve(ds, c.created.0, consumer)
    }

    /// Column edges whose input is (or resolves to) `n`.
    pub(crate) fn cols_into_from(&self, n: u32) -> Vec<u32> {
        let mut out: Vec<u32> = self.cols_by_input.get(&n).cloned().unwrap_or_default();
        out.retain(|&c| self.cols.get(c as usize).is_some_and(|col| !col.floating));
        if let Some(base) = self.dataset_of(n).and_then(|ds| self.datasets.get(ds as usize)).and_then(|e| e.base) {
            for &c in self.cols_by_input.get(&base).into_iter().flatten() {
                if let Some(col) = self.cols.get(c as usize)
                    && col.floating
                    && self.col_source(col) == n
                {
                    out.push(c);
                }
            }
        }
        out
    }

    pub(crate) fn column_ref(&self, c: &ColEdge) -> ColumnEdgeRef {
        ColumnEdgeRef {
            output: self.key_of(c.out),
            field: (c.field != NONE).then(|| self.str_of(c.field).to_owned()),
            input: self.key_of(self.col_source(c)),
            input_field: self.str_of(c.input_field).to_owned(),
            direct: c.flags & COL_DIRECT != 0,
            indirect: c.flags & COL_INDIRECT != 0,
            masking: c.flags & COL_MASKING != 0,
        }
    }

    /// The fields `field` of `key` is computed from, transitively, with their paths
    /// (each returned edge links one step; follow `input`/`input_field` to the next).
    /// Dataset-wide inputs (filters) of each reached version are included.
    pub fn column_upstream(&self, key: &NodeKey, field: &str, q: &Query) -> Result<Vec<ColumnEdgeRef>, GraphError> {
        let start = self.require(key)?;
        let as_of = q.as_of.map(micros);
        let max_depth = q.depth.unwrap_or(u32::MAX);
        let Some(f) = self.lookup_sym(field) else { return Ok(Vec::new()) };
        let mut seen = rustc_hash::FxHashSet::default();
        let mut seen_edges = rustc_hash::FxHashSet::default();
        let mut queue = std::collections::VecDeque::from([(start, f, 0u32)]);
        seen.insert((start, f));
        let mut out = Vec::new();
        while let Some((n, f, d)) = queue.pop_front() {
            if d >= max_depth {
                continue;
            }
            for &c in self.cols_by_out.get(&n).into_iter().flatten() {
                let Some(col) = self.cols.get(c as usize) else { continue };
                if (col.field != f && col.field != NONE) || as_of.is_some_and(|t| col.created.0 > t) {
                    continue;
                }
                let src = self.col_source(col);
                if src == NONE || !seen_edges.insert(c) {
                    continue;
                }
                out.push(self.column_ref(col));
                if seen.insert((src, col.input_field)) {
                    queue.push_back((src, col.input_field, d + 1));
                }
            }
        }
        Ok(out)
    }

    /// Every strongly connected set of nodes (a cycle) in the data lineage, each sorted, the
    /// list sorted. Cycles are stored as declared; this is how they are reported.
    pub fn cycles(&self) -> Vec<Vec<NodeKey>> {
        // Iterative Tarjan over data-carrying edges.
        let n = self.nodes.len();
        let mut index = vec![u32::MAX; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next_index = 0u32;
        let mut result = Vec::new();
        let succ = |v: u32| {
            let mut s = Vec::new();
            self.for_each_out(v, |_, ed| {
                if ed.kind != EdgeKind::RunOf {
                    s.push(ed.to);
                }
            });
            s
        };
        for root in 0..n as u32 {
            if index.get(root as usize).copied() != Some(u32::MAX) {
                continue;
            }
            let mut call: Vec<(u32, Vec<u32>, usize)> = vec![(root, succ(root), 0)];
            set(&mut index, root, next_index);
            set(&mut low, root, next_index);
            next_index += 1;
            stack.push(root);
            set(&mut on_stack, root, true);
            while let Some(frame) = call.last_mut() {
                let v = frame.0;
                if let Some(&w) = frame.1.get(frame.2) {
                    frame.2 += 1;
                    if get(&index, w) == u32::MAX {
                        set(&mut index, w, next_index);
                        set(&mut low, w, next_index);
                        next_index += 1;
                        stack.push(w);
                        set(&mut on_stack, w, true);
                        call.push((w, succ(w), 0));
                    } else if get(&on_stack, w) {
                        let m = get(&low, v).min(get(&index, w));
                        set(&mut low, v, m);
                    }
                    continue;
                }
                call.pop();
                if let Some(parent) = call.last() {
                    let p = parent.0;
                    let m = get(&low, p).min(get(&low, v));
                    set(&mut low, p, m);
                }
                if get(&low, v) == get(&index, v) {
                    let mut comp = Vec::new();
                    while let Some(x) = stack.pop() {
                        set(&mut on_stack, x, false);
                        comp.push(x);
                        if x == v {
                            break;
                        }
                    }
                    let self_loop = comp.len() == 1 && succ(v).contains(&v);
                    if comp.len() > 1 || self_loop {
                        let mut keys: Vec<NodeKey> = comp.iter().map(|&x| self.key_of(x)).collect();
                        keys.sort();
                        result.push(keys);
                    }
                }
            }
        }
        result.sort();
        result
    }
}

fn get<T: Copy + Default>(v: &[T], i: u32) -> T {
    v.get(i as usize).copied().unwrap_or_default()
}

fn set<T>(v: &mut [T], i: u32, x: T) {
    if let Some(slot) = v.get_mut(i as usize) {
        *slot = x;
    }
}

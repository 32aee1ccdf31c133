//! The in-memory lineage index ([`Graph`], whose docs give the merge rules) and ingest.

use crate::adjacency::Adjacency;
use crate::event::EventType;
use crate::event_id::EventId;
use crate::facets::{DatasetKind, LifecycleChange};
use crate::facts::{Facts, NodeFact, Source};
use crate::keys::{DatasetName, EdgeKind, JobName, KeyView, NameView, NodeKey, NodeKind, VersionRef, VersionView};
use custody_core::{ApprovalId, Classification, Sha256Digest};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use uuid::Uuid;

pub(crate) type Sym = u32;
pub(crate) const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IVersion {
    Base,
    Declared(Sym),
    Digest(Sym),
    Run(Uuid),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IKey {
    Version { ds: u32, v: IVersion },
    Job { ns: Sym, name: Sym },
    Run(Uuid),
}

/// (event time µs, interned event index). Compared through the event ids' bytes.
pub(crate) type Stamp = (i64, u32);

#[derive(Debug, Clone)]
pub(crate) struct NodeData {
    pub(crate) key: IKey,
    pub(crate) created: Stamp,
    pub(crate) kind: NodeKind,
    pub(crate) declared: Option<Classification>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct EdgeData {
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) created: Stamp,
    pub(crate) kind: EdgeKind,
    /// `from` is the dataset's base node standing for "latest version at `created.0`".
    pub(crate) floating: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DatasetEntry {
    pub(crate) ns: Sym,
    pub(crate) name: Sym,
    pub(crate) base: Option<u32>,
    /// Non-base versions, sorted by creation stamp then key.
    pub(crate) versions: Vec<u32>,
    /// Floating edges from this dataset, sorted by stamp.
    pub(crate) floating: Vec<u32>,
    /// Classification registered by the server's dataset registry.
    pub(crate) registered: Option<Classification>,
    /// Content digests of the versions registered with the dataset registry.
    pub(crate) registered_digests: rustc_hash::FxHashSet<Sha256Digest>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct NodeAttrs {
    pub(crate) digest: Option<(Stamp, Sha256Digest)>,
    /// Liveness assertions of a deployment (custody.live, lifecycle DROP/CREATE).
    pub(crate) live: Vec<(Stamp, bool)>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RunData {
    pub(crate) job: Option<(Stamp, u32)>,
    pub(crate) states: Vec<(Stamp, EventType)>,
    /// Interned: commits repeat across the runs of a job.
    pub(crate) commit: Option<(Stamp, Sym)>,
    pub(crate) image: Option<(Stamp, Sha256Digest)>,
    pub(crate) params: BTreeMap<String, (Stamp, String)>,
    pub(crate) parent: Option<(Stamp, Uuid)>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ColEdge {
    pub(crate) out: u32,
    pub(crate) field: Sym,
    pub(crate) input: u32,
    pub(crate) floating: bool,
    pub(crate) input_field: Sym,
    pub(crate) created: Stamp,
    pub(crate) flags: u8,
}

pub(crate) const COL_DIRECT: u8 = 1;
pub(crate) const COL_INDIRECT: u8 = 2;
pub(crate) const COL_MASKING: u8 = 4;

/// How a job transforms data, as registered with the server (and approved there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransformKind {
    /// Removes identifying information (k-anonymity, hashing with a secret salt, …).
    Anonymizing,
    /// Outputs only aggregates over many subjects.
    Aggregating,
}

/// A job's registered declaration that it anonymises or aggregates. Only an approved one
/// stops classification inheritance; the approval itself is the server's business (a
/// custody-core `Approval`), this crate only records the outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformDeclaration {
    /// What the job does.
    pub kind: TransformKind,
    /// The approval that granted it, if any.
    pub approval: Option<ApprovalId>,
    /// Whether the declaration is approved (and so in force).
    pub approved: bool,
    /// The justification to quote in erasure reports.
    pub justification: String,
}

/// What one `apply` changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyOutcome {
    /// The event had been applied before: nothing changed.
    pub duplicate: bool,
    /// Nodes created.
    pub new_nodes: usize,
    /// Edges created.
    pub new_edges: usize,
    /// Nodes whose effective classification changed.
    pub reclassified: usize,
}

/// The in-memory lineage index: interned node keys → dense `u32` ids, edges with kind,
/// event time and event id, forward and reverse adjacency (CSR plus an append overflow).
///
/// # Idempotence and order independence
///
/// Every fact is merged with a commutative, idempotent rule, so applying any set of events in
/// any order, with duplicates, gives the same graph:
///
/// - a node or edge exists once per key; its creation *stamp* is the least (event time,
///   event id) among the events that assert it — the event id (a content hash) is the
///   tie-break, never arrival order;
/// - declared classification and kind: the highest declared;
/// - content digest, deployment liveness, run job, code commit, image digest, each
///   parameter: the value of the greatest stamp (latest event time, then greatest event id);
/// - run state: the transition of the greatest (event time, rank, event id), rank being
///   START < RUNNING < COMPLETE < ABORT < FAIL (at one instant the more final, more
///   pessimistic state wins); OTHER and absent eventType are not transitions;
/// - floating inputs ("latest version") are resolved when read (see [`VersionRef`]);
/// - an event id already applied is skipped.
///
/// Dense `u32` ids depend on arrival order, but they never leave the crate: everything
/// public is expressed in [`NodeKey`]s.
#[derive(Debug, Clone)]
pub struct Graph {
    pub(crate) strings: Vec<Arc<str>>,
    pub(crate) string_index: FxHashMap<Arc<str>, Sym>,
    pub(crate) datasets: Vec<DatasetEntry>,
    pub(crate) dataset_index: FxHashMap<(Sym, Sym), u32>,
    pub(crate) nodes: Vec<NodeData>,
    pub(crate) node_index: FxHashMap<IKey, u32>,
    pub(crate) edges: Vec<EdgeData>,
    pub(crate) edge_index: FxHashMap<(u32, u32, u8), u32>,
    pub(crate) out: Adjacency,
    pub(crate) inn: Adjacency,
    pub(crate) attrs: FxHashMap<u32, NodeAttrs>,
    pub(crate) runs: FxHashMap<u32, RunData>,
    pub(crate) events: Vec<EventId>,
    pub(crate) event_index: FxHashMap<EventId, u32>,
    pub(crate) cols: Vec<ColEdge>,
    pub(crate) col_index: FxHashMap<(u32, Sym, u32, bool, Sym), u32>,
    pub(crate) cols_by_out: FxHashMap<u32, Vec<u32>>,
    pub(crate) cols_by_input: FxHashMap<u32, Vec<u32>>,
    pub(crate) transforms: FxHashMap<(Sym, Sym), TransformDeclaration>,
    pub(crate) effective: Vec<Classification>,
    pub(crate) default_level: Classification,
    pub(crate) defer_propagation: bool,
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

/// Field used in edge dedup keys: the kind, plus the floating bit.
fn edge_tag(kind: EdgeKind, floating: bool) -> u8 {
    (kind as u8) | if floating { 0x80 } else { 0 }
}

fn rank(t: EventType) -> u8 {
    match t {
        EventType::Start => 0,
        EventType::Running => 1,
        EventType::Complete => 2,
        EventType::Abort => 3,
        EventType::Fail => 4,
        EventType::Other => 0,
    }
}

impl Graph {
    /// An empty graph. Data nobody classified is [`Classification::Internal`]; see
    /// [`Graph::set_default_classification`].
    pub fn new() -> Self {
        Self {
            strings: Vec::new(),
            string_index: FxHashMap::default(),
            datasets: Vec::new(),
            dataset_index: FxHashMap::default(),
            nodes: Vec::new(),
            node_index: FxHashMap::default(),
            edges: Vec::new(),
            edge_index: FxHashMap::default(),
            out: Adjacency::default(),
            inn: Adjacency::default(),
            attrs: FxHashMap::default(),
            runs: FxHashMap::default(),
            events: Vec::new(),
            event_index: FxHashMap::default(),
            cols: Vec::new(),
            col_index: FxHashMap::default(),
            cols_by_out: FxHashMap::default(),
            cols_by_input: FxHashMap::default(),
            transforms: FxHashMap::default(),
            effective: Vec::new(),
            default_level: Classification::Internal,
            defer_propagation: false,
        }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// Number of distinct events applied.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    // ---- interning -------------------------------------------------------------------

    pub(crate) fn sym(&mut self, s: &str) -> Sym {
        if let Some(&i) = self.string_index.get(s) {
            return i;
        }
        let arc: Arc<str> = Arc::from(s);
        let i = self.strings.len() as Sym;
        self.strings.push(arc.clone());
        self.string_index.insert(arc, i);
        i
    }

    pub(crate) fn lookup_sym(&self, s: &str) -> Option<Sym> {
        self.string_index.get(s).copied()
    }

    pub(crate) fn str_of(&self, s: Sym) -> &str {
        self.strings.get(s as usize).map_or("", |a| a)
    }

    fn event_idx(&mut self, id: EventId) -> (u32, bool) {
        if let Some(&i) = self.event_index.get(&id) {
            return (i, false);
        }
        let i = self.events.len() as u32;
        self.events.push(id);
        self.event_index.insert(id, i);
        (i, true)
    }

    pub(crate) fn event_id(&self, idx: u32) -> EventId {
        self.events.get(idx as usize).copied().unwrap_or(EventId::from_bytes([0; 32]))
    }

    /// Total order on stamps: time, then event id bytes.
    pub(crate) fn stamp_cmp(&self, a: Stamp, b: Stamp) -> Ordering {
        a.0.cmp(&b.0).then_with(|| self.event_id(a.1).cmp(&self.event_id(b.1)))
    }

    fn dataset_entry(&mut self, name: &DatasetName) -> u32 {
        let ns = self.sym(&name.namespace);
        let n = self.sym(&name.name);
        if let Some(&d) = self.dataset_index.get(&(ns, n)) {
            return d;
        }
        let d = self.datasets.len() as u32;
        self.datasets.push(DatasetEntry { ns, name: n, ..DatasetEntry::default() });
        self.dataset_index.insert((ns, n), d);
        d
    }

    pub(crate) fn lookup_dataset(&self, name: &DatasetName) -> Option<u32> {
        let ns = self.lookup_sym(&name.namespace)?;
        let n = self.lookup_sym(&name.name)?;
        self.dataset_index.get(&(ns, n)).copied()
    }

    fn intern_key(&mut self, key: &NodeKey) -> IKey {
        match key {
            NodeKey::DatasetVersion { dataset, version } => {
                let ds = self.dataset_entry(dataset);
                let v = match version {
                    VersionRef::Base => IVersion::Base,
                    VersionRef::Declared(s) => IVersion::Declared(self.sym(s)),
                    VersionRef::Digest(d) => IVersion::Digest(self.sym(&d.to_string())),
                    VersionRef::Run(r) => IVersion::Run(*r),
                };
                IKey::Version { ds, v }
            }
            NodeKey::Job(j) => IKey::Job { ns: self.sym(&j.namespace), name: self.sym(&j.name) },
            NodeKey::Run { run_id } => IKey::Run(*run_id),
        }
    }

    /// The dense id of a key, if the node exists.
    pub(crate) fn lookup(&self, key: &NodeKey) -> Option<u32> {
        let ik = match key {
            NodeKey::DatasetVersion { dataset, version } => {
                let ds = self.lookup_dataset(dataset)?;
                let v = match version {
                    VersionRef::Base => IVersion::Base,
                    VersionRef::Declared(s) => IVersion::Declared(self.lookup_sym(s)?),
                    VersionRef::Digest(d) => IVersion::Digest(self.lookup_sym(&d.to_string())?),
                    VersionRef::Run(r) => IVersion::Run(*r),
                };
                IKey::Version { ds, v }
            }
            NodeKey::Job(j) => IKey::Job { ns: self.lookup_sym(&j.namespace)?, name: self.lookup_sym(&j.name)? },
            NodeKey::Run { run_id } => IKey::Run(*run_id),
        };
        self.node_index.get(&ik).copied()
    }

    /// The public key of a dense id.
    pub(crate) fn key_of(&self, n: u32) -> NodeKey {
        self.key_view(n).to_key()
    }

    /// Node `n`'s key, borrowing the interned strings.
    pub(crate) fn key_view(&self, n: u32) -> KeyView<'_> {
        let Some(node) = self.nodes.get(n as usize) else { return KeyView::Run { run_id: Uuid::nil() } };
        match node.key {
            IKey::Version { ds, v } => {
                let entry = self.datasets.get(ds as usize);
                let dataset = NameView {
                    namespace: entry.map_or("", |e| self.str_of(e.ns)),
                    name: entry.map_or("", |e| self.str_of(e.name)),
                };
                let version = match v {
                    IVersion::Base => VersionView::Base,
                    IVersion::Declared(s) => VersionView::Declared(self.str_of(s)),
                    IVersion::Digest(s) => match Sha256Digest::parse(self.str_of(s)) {
                        Ok(d) => VersionView::Digest(d),
                        Err(_) => VersionView::Declared(self.str_of(s)),
                    },
                    IVersion::Run(r) => VersionView::Run(r),
                };
                KeyView::DatasetVersion { dataset, version }
            }
            IKey::Job { ns, name } => KeyView::Job(NameView { namespace: self.str_of(ns), name: self.str_of(name) }),
            IKey::Run(r) => KeyView::Run { run_id: r },
        }
    }

    pub(crate) fn job_name_of(&self, n: u32) -> Option<JobName> {
        match self.nodes.get(n as usize)?.key {
            IKey::Job { ns, name } => Some(JobName::new(self.str_of(ns), self.str_of(name))),
            _ => None,
        }
    }

    pub(crate) fn kind(&self, n: u32) -> NodeKind {
        self.nodes.get(n as usize).map_or(NodeKind::Run, |d| d.kind)
    }

    pub(crate) fn created(&self, n: u32) -> Stamp {
        self.nodes.get(n as usize).map_or((i64::MAX, 0), |d| d.created)
    }

    pub(crate) fn edge(&self, e: u32) -> EdgeData {
        self.edges.get(e as usize).copied().unwrap_or(EdgeData {
            from: NONE,
            to: NONE,
            created: (i64::MAX, 0),
            kind: EdgeKind::RunOf,
            floating: false,
        })
    }

    pub(crate) fn dataset_of(&self, n: u32) -> Option<u32> {
        match self.nodes.get(n as usize)?.key {
            IKey::Version { ds, .. } => Some(ds),
            _ => None,
        }
    }

    /// Total order on nodes for tie-breaks that must not depend on dense ids.
    pub(crate) fn key_cmp(&self, a: u32, b: u32) -> Ordering {
        if a == b { Ordering::Equal } else { self.key_of(a).cmp(&self.key_of(b)) }
    }

    fn version_cmp(&self, a: u32, b: u32) -> Ordering {
        self.stamp_cmp(self.created(a), self.created(b)).then_with(|| self.key_cmp(a, b))
    }

    // ---- applying facts ----------------------------------------------------------------

    /// Gets or creates a node, lowering its creation stamp if this one is earlier.
    /// Returns (id, created, stamp lowered).
    fn touch_node(&mut self, key: &NodeKey, stamp: Stamp) -> (u32, bool, bool) {
        let ik = self.intern_key(key);
        if let Some(&n) = self.node_index.get(&ik) {
            let earlier = self.stamp_cmp(stamp, self.created(n)) == Ordering::Less;
            if earlier {
                if let Some(d) = self.nodes.get_mut(n as usize) {
                    d.created = stamp;
                }
                self.reposition_version(n);
            }
            return (n, false, earlier);
        }
        let kind = match ik {
            IKey::Version { .. } => NodeKind::Dataset,
            IKey::Job { .. } => NodeKind::Job,
            IKey::Run(_) => NodeKind::Run,
        };
        let n = self.nodes.len() as u32;
        self.nodes.push(NodeData { key: ik, created: stamp, kind, declared: None });
        self.node_index.insert(ik, n);
        self.effective.push(Classification::Public);
        if let IKey::Version { ds, v } = ik {
            match v {
                IVersion::Base => {
                    if let Some(e) = self.datasets.get_mut(ds as usize) {
                        e.base = Some(n);
                    }
                }
                _ => self.insert_version(ds, n),
            }
        }
        (n, true, false)
    }

    fn insert_version(&mut self, ds: u32, n: u32) {
        // Taken out and put back so the comparison can borrow the graph.
        let Some(mut versions) = self.datasets.get_mut(ds as usize).map(|e| std::mem::take(&mut e.versions)) else {
            return;
        };
        let pos = versions.partition_point(|&v| self.version_cmp(v, n) == Ordering::Less);
        versions.insert(pos, n);
        if let Some(e) = self.datasets.get_mut(ds as usize) {
            e.versions = versions;
        }
    }

    fn reposition_version(&mut self, n: u32) {
        let Some(IKey::Version { ds, v }) = self.nodes.get(n as usize).map(|d| d.key) else { return };
        if v == IVersion::Base {
            return;
        }
        if let Some(e) = self.datasets.get_mut(ds as usize) {
            e.versions.retain(|&x| x != n);
        }
        self.insert_version(ds, n);
    }

    fn base_node(&mut self, name: &DatasetName, stamp: Stamp) -> u32 {
        self.touch_node(&NodeKey::DatasetVersion { dataset: name.clone(), version: VersionRef::Base }, stamp).0
    }

    fn apply_node(&mut self, f: &NodeFact, stamp: Stamp, seeds: &mut Vec<u32>) -> (u32, bool) {
        let (n, created, lowered) = self.touch_node(&f.key, stamp);
        if created || lowered {
            seeds.push(n);
            if let Some(ds) = self.dataset_of(n) {
                self.seed_floating_consumers(ds, self.created(n).0, seeds);
            }
        }
        if let Some(d) = self.nodes.get_mut(n as usize) {
            if let Some(k) = f.kind {
                let kind = match k {
                    DatasetKind::Dataset => NodeKind::Dataset,
                    DatasetKind::Cache => NodeKind::Cache,
                    DatasetKind::ModelVersion => NodeKind::ModelVersion,
                    DatasetKind::Deployment => NodeKind::Deployment,
                };
                if d.kind.is_data() && kind > d.kind {
                    d.kind = kind;
                }
            }
            if let Some(c) = f.classification
                && d.declared.is_none_or(|old| c > old)
            {
                d.declared = Some(c);
                seeds.push(n);
            }
        }
        let digest = f.content_digest;
        let live = f.live.or(match f.lifecycle {
            Some(LifecycleChange::Drop) => Some(false),
            Some(LifecycleChange::Create) => Some(true),
            _ => None,
        });
        if digest.is_some() || live.is_some() {
            let older = |g: &Graph, s: Stamp| g.stamp_cmp(s, stamp) == Ordering::Less;
            let current = self.attrs.get(&n).and_then(|a| a.digest.map(|d| d.0));
            let take_digest = digest.is_some() && current.is_none_or(|s| older(self, s));
            let attrs = self.attrs.entry(n).or_default();
            if let (true, Some(d)) = (take_digest, digest) {
                attrs.digest = Some((stamp, d));
            }
            if let Some(l) = live
                && !attrs.live.contains(&(stamp, l))
            {
                attrs.live.push((stamp, l));
            }
        }
        (n, created)
    }

    /// Floating consumers whose resolution may change because a version of `ds` now exists
    /// from time `t` on.
    fn seed_floating_consumers(&self, ds: u32, t: i64, seeds: &mut Vec<u32>) {
        if let Some(e) = self.datasets.get(ds as usize) {
            let start = e.floating.partition_point(|&x| self.edge(x).created.0 < t);
            seeds.extend(e.floating.iter().skip(start).map(|&x| self.edge(x).to));
        }
    }

    /// Applies the facts of one event. Idempotent; see the module docs for why the order
    /// of calls does not matter. Classification propagation runs before it returns.
    pub fn apply(&mut self, facts: &Facts) -> ApplyOutcome {
        let (ev, fresh) = self.event_idx(facts.event_id);
        if !fresh {
            return ApplyOutcome { duplicate: true, ..ApplyOutcome::default() };
        }
        let stamp = (facts.time, ev);
        let mut outcome = ApplyOutcome::default();
        let mut seeds = Vec::new();
        let first_new = self.nodes.len() as u32;
        for nf in &facts.nodes {
            let (_, created) = self.apply_node(nf, stamp, &mut seeds);
            outcome.new_nodes += usize::from(created);
        }
        for ef in &facts.edges {
            let (to, created, _) = self.touch_node(&ef.to, stamp);
            outcome.new_nodes += usize::from(created);
            let (from, floating) = match &ef.from {
                Source::Node(k) => {
                    let (n, c, _) = self.touch_node(k, stamp);
                    outcome.new_nodes += usize::from(c);
                    (n, false)
                }
                Source::Latest(name) => (self.base_node(name, stamp), true),
            };
            if self.add_edge(from, to, ef.kind, floating, stamp) {
                outcome.new_edges += 1;
            }
            seeds.push(to);
        }
        if let Some(r) = &facts.run {
            self.apply_run(r, stamp);
        }
        for c in &facts.columns {
            self.apply_column(c, stamp);
        }
        if self.out.wants_compaction() || self.inn.wants_compaction() {
            self.compact();
        }
        // Every new node needs its first level, even one no edge of this event enters.
        seeds.extend(first_new..self.nodes.len() as u32);
        if !self.defer_propagation {
            outcome.reclassified = self.propagate_from(seeds);
        }
        outcome
    }

    /// Applies many events, propagating once at the end (the server's rebuild on start).
    pub fn apply_all<'a>(&mut self, facts: impl IntoIterator<Item = &'a Facts>) -> ApplyOutcome {
        let mut total = ApplyOutcome::default();
        self.defer_propagation = true;
        for f in facts {
            let o = self.apply(f);
            total.new_nodes += o.new_nodes;
            total.new_edges += o.new_edges;
        }
        self.defer_propagation = false;
        self.shrink_to_fit();
        total.reclassified = self.propagate_all();
        total
    }

    /// Folds pending adjacency updates into the compact arrays (done automatically; public
    /// so a bulk loader can finish with a compact index).
    pub fn compact(&mut self) {
        let n = self.nodes.len();
        self.out.compact(n);
        self.inn.compact(n);
    }

    /// Compacts and releases spare capacity (after a bulk load: growth doubling can leave up
    /// to half of each array unused).
    pub fn shrink_to_fit(&mut self) {
        self.compact();
        self.nodes.shrink_to_fit();
        self.edges.shrink_to_fit();
        self.events.shrink_to_fit();
        self.strings.shrink_to_fit();
        self.effective.shrink_to_fit();
        self.cols.shrink_to_fit();
        self.node_index.shrink_to_fit();
        self.edge_index.shrink_to_fit();
        self.event_index.shrink_to_fit();
        self.string_index.shrink_to_fit();
        self.attrs.shrink_to_fit();
        self.runs.shrink_to_fit();
    }

    fn add_edge(&mut self, from: u32, to: u32, kind: EdgeKind, floating: bool, stamp: Stamp) -> bool {
        let key = (from, to, edge_tag(kind, floating));
        if let Some(&e) = self.edge_index.get(&key) {
            if self.stamp_cmp(stamp, self.edge(e).created) == Ordering::Less {
                if let Some(ed) = self.edges.get_mut(e as usize) {
                    ed.created = stamp;
                }
                if floating {
                    self.reposition_floating(from, e);
                }
            }
            return false;
        }
        let e = self.edges.len() as u32;
        self.edges.push(EdgeData { from, to, created: stamp, kind, floating });
        self.edge_index.insert(key, e);
        self.inn.push(to, e);
        if floating {
            self.reposition_floating(from, e);
        } else {
            self.out.push(from, e);
        }
        true
    }

    fn reposition_floating(&mut self, base: u32, e: u32) {
        let Some(ds) = self.dataset_of(base) else { return };
        let Some(mut list) = self.datasets.get_mut(ds as usize).map(|d| std::mem::take(&mut d.floating)) else {
            return;
        };
        if let Some(old) = list.iter().position(|&x| x == e) {
            list.remove(old);
        }
        let s = self.edge(e).created;
        let pos = list.partition_point(|&x| self.stamp_cmp(self.edge(x).created, s) == Ordering::Less);
        list.insert(pos, e);
        if let Some(d) = self.datasets.get_mut(ds as usize) {
            d.floating = list;
        }
    }

    fn apply_run(&mut self, r: &crate::facts::RunFact, stamp: Stamp) {
        let (run, _, _) = self.touch_node(&NodeKey::run(r.run_id), stamp);
        let (job, _, _) = self.touch_node(&NodeKey::Job(r.job.clone()), stamp);
        let later = |g: &Graph, old: Option<Stamp>| old.is_none_or(|o| g.stamp_cmp(o, stamp) == Ordering::Less);
        let mut data = self.runs.remove(&run).unwrap_or_default();
        if later(self, data.job.map(|j| j.0)) {
            data.job = Some((stamp, job));
        }
        if let Some(t) = r.event_type
            && t != EventType::Other
            && !data.states.contains(&(stamp, t))
        {
            data.states.push((stamp, t));
        }
        if let Some(c) = &r.code_commit
            && later(self, data.commit.map(|c| c.0))
        {
            data.commit = Some((stamp, self.sym(c)));
        }
        if let Some(d) = r.image_digest
            && later(self, data.image.map(|c| c.0))
        {
            data.image = Some((stamp, d));
        }
        for (k, v) in &r.parameters {
            if later(self, data.params.get(k).map(|p| p.0)) {
                data.params.insert(k.clone(), (stamp, v.clone()));
            }
        }
        if let Some(p) = r.parent_run
            && later(self, data.parent.map(|c| c.0))
        {
            data.parent = Some((stamp, p));
        }
        self.runs.insert(run, data);
    }

    fn apply_column(&mut self, c: &crate::facts::ColumnFact, stamp: Stamp) {
        let (out, _, _) = self.touch_node(&c.output, stamp);
        let (input, floating) = match &c.input {
            Source::Node(k) => (self.touch_node(k, stamp).0, false),
            Source::Latest(name) => (self.base_node(name, stamp), true),
        };
        let field = match &c.field {
            Some(f) => self.sym(f),
            None => NONE,
        };
        let input_field = self.sym(&c.input_field);
        let flags = (if c.direct { COL_DIRECT } else { 0 })
            | (if c.indirect { COL_INDIRECT } else { 0 })
            | (if c.masking { COL_MASKING } else { 0 });
        let key = (out, field, input, floating, input_field);
        if let Some(&i) = self.col_index.get(&key) {
            let older = self.cols.get(i as usize).is_some_and(|e| self.stamp_cmp(stamp, e.created) == Ordering::Less);
            if let Some(e) = self.cols.get_mut(i as usize) {
                // Flags accumulate (a union is order-independent); the stamp is the earliest.
                e.flags |= flags;
                if older {
                    e.created = stamp;
                }
            }
            return;
        }
        let i = self.cols.len() as u32;
        self.cols.push(ColEdge { out, field, input, floating, input_field, created: stamp, flags });
        self.col_index.insert(key, i);
        self.cols_by_out.entry(out).or_default().push(i);
        self.cols_by_input.entry(input).or_default().push(i);
    }

    // ---- resolution ---------------------------------------------------------------------

    /// Whether version `v` is the consumer itself or the version the consumer run wrote.
    fn is_own_version(&self, v: u32, consumer: u32) -> bool {
        if v == consumer {
            return true;
        }
        match (self.nodes.get(v as usize).map(|d| d.key), self.nodes.get(consumer as usize).map(|d| d.key)) {
            (Some(IKey::Version { v: IVersion::Run(a), .. }), Some(IKey::Run(b))) => a == b,
            _ => false,
        }
    }

    /// The version of dataset `ds` that "latest at time `t`" means for `consumer`.
    pub(crate) fn resolve(&self, ds: u32, t: i64, consumer: u32) -> u32 {
        let Some(e) = self.datasets.get(ds as usize) else { return NONE };
        let idx = e.versions.partition_point(|&v| self.created(v).0 <= t);
        for &v in e.versions.get(..idx).unwrap_or(&[]).iter().rev().take(2) {
            if !self.is_own_version(v, consumer) {
                return v;
            }
        }
        e.base.unwrap_or(NONE)
    }

    /// The upstream node of edge `e` (resolving a floating source).
    pub(crate) fn source_of(&self, e: &EdgeData) -> u32 {
        if e.floating {
            match self.dataset_of(e.from) {
                Some(ds) => self.resolve(ds, e.created.0, e.to),
                None => NONE,
            }
        } else {
            e.from
        }
    }

    /// Calls `f(edge id, target)` for every edge leaving `n`, floating edges included when
    /// they resolve to `n`.
    pub(crate) fn for_each_out(&self, n: u32, mut f: impl FnMut(u32, &EdgeData)) {
        for e in self.out.get(n) {
            if let Some(ed) = self.edges.get(e as usize) {
                f(e, ed);
            }
        }
        let Some(IKey::Version { ds, v }) = self.nodes.get(n as usize).map(|d| d.key) else { return };
        let Some(entry) = self.datasets.get(ds as usize) else { return };
        if entry.floating.is_empty() {
            return;
        }
        // A floating edge at time t resolves to the latest version ≤ t, or the one before it
        // when that is the consumer's own: so only t in [created(n), created(n + 2)) can.
        let (lo, idx) = if v == IVersion::Base {
            (i64::MIN, None)
        } else {
            match entry.versions.iter().position(|&x| x == n) {
                Some(i) => (self.created(n).0, Some(i)),
                None => return,
            }
        };
        let next2 = match idx {
            None => entry.versions.get(1),
            Some(i) => entry.versions.get(i + 2),
        };
        let hi = next2.map_or(i64::MAX, |&x| self.created(x).0);
        let start = entry.floating.partition_point(|&x| self.edge(x).created.0 < lo);
        for &e in entry.floating.get(start..).unwrap_or(&[]) {
            let Some(ed) = self.edges.get(e as usize) else { continue };
            if ed.created.0 >= hi {
                break;
            }
            if self.resolve(ds, ed.created.0, ed.to) == n {
                f(e, ed);
            }
        }
    }

    /// Calls `f(edge id, source)` for every edge entering `n`.
    pub(crate) fn for_each_in(&self, n: u32, mut f: impl FnMut(u32, &EdgeData, u32)) {
        for e in self.inn.get(n) {
            if let Some(ed) = self.edges.get(e as usize) {
                let s = self.source_of(ed);
                if s != NONE {
                    f(e, ed, s);
                }
            }
        }
    }

    /// The reported kind of an edge (`Produced` into a model version reads `TrainedOn`…).
    pub(crate) fn reported_kind(&self, ed: &EdgeData) -> EdgeKind {
        match (ed.kind, self.kind(ed.to)) {
            (EdgeKind::Produced, NodeKind::ModelVersion) => EdgeKind::TrainedOn,
            (EdgeKind::Produced, NodeKind::Deployment) => EdgeKind::DeployedAs,
            (k, _) => k,
        }
    }

    // ---- attributes ----------------------------------------------------------------------

    /// The job of a run node.
    pub(crate) fn run_job(&self, run: u32) -> Option<u32> {
        self.runs.get(&run).and_then(|r| r.job.map(|j| j.1))
    }

    /// The run state as of `as_of` (µs), by the rule in the module docs.
    pub(crate) fn run_state(&self, run: u32, as_of: Option<i64>) -> Option<EventType> {
        let r = self.runs.get(&run)?;
        r.states
            .iter()
            .filter(|(s, _)| as_of.is_none_or(|t| s.0 <= t))
            .max_by(|a, b| a.0.0.cmp(&b.0.0).then(rank(a.1).cmp(&rank(b.1))).then_with(|| self.stamp_cmp(a.0, b.0)))
            .map(|x| x.1)
    }

    pub(crate) fn digest_of(&self, n: u32) -> Option<Sha256Digest> {
        self.attrs.get(&n).and_then(|a| a.digest.map(|d| d.1))
    }

    /// Whether a deployment is live as of `as_of`: its latest liveness assertion, live when
    /// none (an unknown deployment is assumed to serve: the safe answer for impact).
    pub(crate) fn is_live(&self, n: u32, as_of: Option<i64>) -> bool {
        let Some(a) = self.attrs.get(&n) else { return true };
        a.live
            .iter()
            .filter(|(s, _)| as_of.is_none_or(|t| s.0 <= t))
            .max_by(|x, y| self.stamp_cmp(x.0, y.0).then(x.1.cmp(&y.1)))
            .is_none_or(|x| x.1)
    }

    // ---- registry input --------------------------------------------------------------------

    /// Records the classification the dataset registry gives a dataset (all its versions).
    /// Propagation runs before it returns; returns how many nodes changed level.
    pub fn register_dataset(&mut self, dataset: &DatasetName, classification: Classification) -> usize {
        self.register_datasets([(dataset.clone(), classification)])
    }

    /// [`Graph::register_dataset`] for many datasets, with one propagation (start-up load).
    pub fn register_datasets(&mut self, datasets: impl IntoIterator<Item = (DatasetName, Classification)>) -> usize {
        let mut seeds = Vec::new();
        for (dataset, classification) in datasets {
            let ds = self.dataset_entry(&dataset);
            if let Some(e) = self.datasets.get_mut(ds as usize) {
                e.registered = Some(classification);
                seeds.extend(e.base);
                seeds.extend(e.versions.iter().copied());
            }
        }
        // A registration can lower a level: recompute from scratch downstream.
        self.propagate_from(seeds)
    }

    /// Records that the dataset registry holds a version of `dataset` with this content
    /// digest: a lineage version with the same digest is then a registered, digested version
    /// (what the completeness KPI counts). Changes no classification.
    pub fn register_dataset_version(&mut self, dataset: &DatasetName, digest: Sha256Digest) {
        let ds = self.dataset_entry(dataset);
        if let Some(e) = self.datasets.get_mut(ds as usize) {
            e.registered_digests.insert(digest);
        }
    }

    /// The content digest recorded for a node (a dataset version's `contentDigest`), if any.
    pub fn content_digest(&self, key: &NodeKey) -> Option<Sha256Digest> {
        self.lookup(key).and_then(|n| self.digest_of(n))
    }

    /// Whether the dataset is registered with the dataset registry.
    pub fn is_registered(&self, dataset: &DatasetName) -> bool {
        self.lookup_dataset(dataset).and_then(|d| self.datasets.get(d as usize)).is_some_and(|e| e.registered.is_some())
    }

    /// Records (or, with `None`, withdraws) a job's transform declaration. Propagation runs
    /// before it returns; returns how many nodes changed level.
    pub fn set_transform(&mut self, job: &JobName, declaration: Option<TransformDeclaration>) -> usize {
        let key = (self.sym(&job.namespace), self.sym(&job.name));
        match declaration {
            Some(d) => self.transforms.insert(key, d),
            None => self.transforms.remove(&key),
        };
        let mut seeds = Vec::new();
        if let Some(j) = self.lookup(&NodeKey::Job(job.clone())) {
            seeds.push(j);
            self.for_each_out(j, |_, ed| seeds.push(ed.to));
        }
        self.propagate_from(seeds)
    }

    /// The approved declaration in force for a job node, if any.
    pub(crate) fn approved_transform(&self, job: u32) -> Option<&TransformDeclaration> {
        let IKey::Job { ns, name } = self.nodes.get(job as usize)?.key else { return None };
        self.transforms.get(&(ns, name)).filter(|d| d.approved)
    }

    /// Sets the level of data nobody classified (default Internal). Recomputes everything.
    pub fn set_default_classification(&mut self, level: Classification) -> usize {
        self.default_level = level;
        self.propagate_all()
    }

    // ---- introspection -------------------------------------------------------------------

    /// Approximate heap bytes held by the index.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let map = |cap: usize, entry: usize| cap * (entry + 1);
        self.strings.iter().map(|s| s.len() + 16).sum::<usize>()
            + map(self.string_index.capacity(), 16 + 4)
            + self.datasets.capacity() * size_of::<DatasetEntry>()
            + self.datasets.iter().map(|d| (d.versions.capacity() + d.floating.capacity()) * 4).sum::<usize>()
            + map(self.dataset_index.capacity(), 12)
            + self.nodes.capacity() * size_of::<NodeData>()
            + map(self.node_index.capacity(), size_of::<IKey>() + 4)
            + self.edges.capacity() * size_of::<EdgeData>()
            + map(self.edge_index.capacity(), 16)
            + self.out.heap_bytes()
            + self.inn.heap_bytes()
            + map(self.attrs.capacity(), 4 + size_of::<NodeAttrs>())
            + map(self.runs.capacity(), 4 + size_of::<RunData>())
            + self.events.capacity() * 32
            + map(self.event_index.capacity(), 36)
            + self.cols.capacity() * size_of::<ColEdge>()
            + self.effective.capacity()
    }

    /// A canonical, key-ordered picture of the graph as of `as_of` (everything with a
    /// creation time ≤ `as_of`), for comparing graphs and for debugging exports.
    pub fn snapshot(&self, as_of: Option<time::OffsetDateTime>) -> Snapshot {
        let t = as_of.map(crate::event::micros);
        let visible = |s: Stamp| t.is_none_or(|t| s.0 <= t);
        let mut nodes = BTreeMap::new();
        for (i, d) in self.nodes.iter().enumerate() {
            if visible(d.created) {
                nodes.insert(self.key_of(i as u32), (d.created.0, self.event_id(d.created.1)));
            }
        }
        let mut edges = BTreeSet::new();
        for ed in &self.edges {
            if visible(ed.created) {
                let src = self.source_of(ed);
                edges.insert(SnapshotEdge {
                    kind: ed.kind,
                    floating: ed.floating,
                    from: self.key_of(src),
                    to: self.key_of(ed.to),
                    time: ed.created.0,
                    event: self.event_id(ed.created.1),
                });
            }
        }
        let mut runs = BTreeMap::new();
        for &r in self.runs.keys() {
            if let Some(d) = self.nodes.get(r as usize)
                && visible(d.created)
                && let IKey::Run(id) = d.key
            {
                runs.insert(id, self.run_state(r, t));
            }
        }
        let effective = if t.is_none() {
            self.nodes
                .iter()
                .enumerate()
                .filter(|(_, d)| d.kind.is_data())
                .map(|(i, _)| (self.key_of(i as u32), self.effective.get(i).copied().unwrap_or(Classification::Public)))
                .collect()
        } else {
            BTreeMap::new()
        };
        Snapshot { nodes, edges, runs, effective }
    }
}

/// A canonical picture of the graph; two graphs built from the same events are equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Every node with its creation (µs, event).
    pub nodes: BTreeMap<NodeKey, (i64, EventId)>,
    /// Every edge, floating ones shown resolved.
    pub edges: BTreeSet<SnapshotEdge>,
    /// Every run's state.
    pub runs: BTreeMap<Uuid, Option<EventType>>,
    /// Effective classification of every data node (only without `as_of`).
    pub effective: BTreeMap<NodeKey, Classification>,
}

/// One edge of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SnapshotEdge {
    /// Stored kind.
    pub kind: EdgeKind,
    /// Whether the source is a resolved "latest version" reference.
    pub floating: bool,
    /// Upstream end (resolved).
    pub from: NodeKey,
    /// Downstream end.
    pub to: NodeKey,
    /// Creation time, µs.
    pub time: i64,
    /// Creating event.
    pub event: EventId,
}

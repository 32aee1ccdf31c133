//! Reading the audit tree: proofs and past roots from the stored subtree hashes (O(log n)
//! rows each), the frontier an archived segment starts from, and the signed checkpoints; and
//! the upkeep that keeps those stored (backfill, interval signing).

use crate::audit::{insert_checkpoint, node_from_key, node_key};
use crate::rows::{self, micros};
use crate::{Backend, CheckpointSigning, Store, StoreError};
use custody_audit::{
    Hash, MerkleFrontier, NodeId, ProofError, Span, consistency_spans, frontier_nodes, inclusion_spans, span_hashes,
};
use custody_core::Timestamp;
use sqlx::{AnyConnection, AnyPool};
use std::collections::HashMap;

/// An inclusion proof of one record, with what it is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditInclusion {
    /// The record's sequence number (leaf index).
    pub seq: u64,
    /// The tree size proven against.
    pub size: u64,
    /// The record's leaf hash.
    pub leaf_hash: Hash,
    /// The root of the tree of `size` records.
    pub root: Hash,
    /// The audit path, leaf to root.
    pub proof: Vec<Hash>,
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConsistency {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The root at `from`.
    pub from_root: Hash,
    /// The root at `to`.
    pub to_root: Hash,
    /// The proof hashes.
    pub proof: Vec<Hash>,
}

/// A signed tree head as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Hex root.
    pub root: String,
    /// The signed note (checkpoint text, blank line, signature lines).
    pub note: String,
    /// When it was signed.
    pub signed_at: Timestamp,
}

/// Leaves and inner nodes per lookup statement.
const LEAF_ARITY: usize = 8;
const NODE_ARITY: usize = 16;
/// Leaves (level 0) have key = seq, so one statement serves both tables.
const LOOKUP: &str = "SELECT seq AS k, leaf_hash AS h FROM audit_events WHERE seq IN ($1,$2,$3,$4,$5,$6,$7,$8) \
    UNION ALL SELECT node AS k, hash AS h FROM audit_nodes \
    WHERE node IN ($9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)";
/// Subtrees of at least 2^4 records are kept in memory once read: they are never rewritten,
/// every proof needs the ones near the root, and a log of n records has about n/8 of them.
const CACHED_LEVEL: u32 = 4;
/// Past this many cached subtrees (about 200 MB) the cache starts over.
const MAX_CACHED_NODES: usize = 4_000_000;

/// What proofs remember between calls: immutable subtree hashes and the largest size known
/// to be committed.
#[derive(Debug, Default)]
pub(crate) struct TreeCache {
    nodes: std::sync::Mutex<HashMap<NodeId, Hash>>,
    committed: std::sync::atomic::AtomicU64,
    /// Whether the upper levels were loaded in one scan (done at the first proof).
    preloaded: tokio::sync::OnceCell<()>,
}

/// The upper levels loaded at the first proof hold at most this many subtrees.
const PRELOAD_NODES: u64 = 1 << 17;

fn out_of_range(field: &'static str, e: ProofError) -> StoreError {
    StoreError::OutOfRange { field, reason: e.to_string() }
}

impl Store {
    /// The hashes of the perfect subtrees `ids`: upper levels from the in-memory cache, the
    /// rest from `audit_events` (leaves) and `audit_nodes`, in statements of one fixed shape so
    /// that each connection prepares them once.
    async fn audit_node_hashes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>, StoreError> {
        self.tree.preloaded.get_or_try_init(|| self.preload_upper_levels()).await?;
        let mut found = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let cached = self.tree.nodes.lock().unwrap_or_else(|p| p.into_inner());
            for id in ids {
                match cached.get(id) {
                    Some(h) => {
                        found.insert(*id, *h);
                    }
                    None => missing.push(*id),
                }
            }
        }
        let (mut leaves, mut inner): (Vec<NodeId>, Vec<NodeId>) = missing.iter().partition(|id| id.level == 0);
        let by_key: HashMap<i64, NodeId> =
            missing.iter().map(|id| Ok((node_key(*id)?, *id))).collect::<Result<_, StoreError>>()?;
        // One round trip per proof, usually: up to LEAF_ARITY leaves and NODE_ARITY nodes.
        while !leaves.is_empty() || !inner.is_empty() {
            let l: Vec<NodeId> = leaves.drain(..leaves.len().min(LEAF_ARITY)).collect();
            let n: Vec<NodeId> = inner.drain(..inner.len().min(NODE_ARITY)).collect();
            let mut q = sqlx::query(LOOKUP);
            // Padding with a key that matches nothing keeps the statement's shape fixed.
            for i in 0..LEAF_ARITY {
                q = q.bind(l.get(i).map_or(Ok(-1), |id| node_key(*id))?);
            }
            for i in 0..NODE_ARITY {
                q = q.bind(n.get(i).map_or(Ok(-1), |id| node_key(*id))?);
            }
            for row in q.fetch_all(&self.read).await? {
                if let Some(id) = by_key.get(&rows::int(&row, "k")?) {
                    found.insert(*id, rows::hash(&row, "h")?);
                }
            }
        }
        let mut cached = self.tree.nodes.lock().unwrap_or_else(|p| p.into_inner());
        if cached.len() > MAX_CACHED_NODES {
            cached.clear();
        }
        for id in missing.iter().filter(|id| id.level >= CACHED_LEVEL) {
            if let Some(h) = found.get(id) {
                cached.insert(*id, *h);
            }
        }
        Ok(found)
    }

    /// Loads, in one range scan, the levels whose subtrees number at most [`PRELOAD_NODES`]:
    /// after it a proof reads only its lowest levels from the database.
    async fn preload_upper_levels(&self) -> Result<(), StoreError> {
        let size = self.audit_len().await?;
        let mut level = CACHED_LEVEL;
        while size >> level > PRELOAD_NODES {
            level += 1;
        }
        let rows = sqlx::query("SELECT node AS k, hash AS h FROM audit_nodes WHERE node >= $1")
            .bind(i64::from(level) << 56)
            .fetch_all(&self.read)
            .await?;
        let mut cached = self.tree.nodes.lock().unwrap_or_else(|p| p.into_inner());
        for row in &rows {
            cached.insert(node_from_key(rows::int(row, "k")?), rows::hash(row, "h")?);
        }
        Ok(())
    }

    /// The hashes of `spans`, in order, reading only the subtrees they are made of.
    async fn audit_span_hashes(&self, spans: &[Span]) -> Result<Vec<Hash>, StoreError> {
        let mut ids: Vec<NodeId> = spans.iter().flat_map(Span::nodes).collect();
        ids.sort_unstable();
        ids.dedup();
        let found = self.audit_node_hashes(&ids).await?;
        span_hashes(spans, &|id| found.get(&id).copied())
            .map_err(|e| StoreError::Corrupt { what: "audit tree", reason: e.to_string() })
    }

    /// Checks that a tree of `size` records has been committed.
    async fn committed(&self, field: &'static str, size: u64) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        // A size once committed stays committed: only a larger one needs the database.
        if size <= self.tree.committed.load(Relaxed) {
            return Ok(());
        }
        let current = self.audit_len().await?;
        self.tree.committed.fetch_max(current, Relaxed);
        if size > current {
            return Err(StoreError::OutOfRange { field, reason: format!("size {size} is beyond the log's {current}") });
        }
        Ok(())
    }

    /// The inclusion proof of record `seq` in the tree of `size` records.
    pub async fn audit_inclusion(&self, seq: u64, size: u64) -> Result<AuditInclusion, StoreError> {
        let spans = inclusion_spans(seq, size).map_err(|e| out_of_range("seq", e))?;
        self.committed("size", size).await?;
        let mut all = spans.clone();
        all.push(Span { start: seq, end: seq + 1 });
        all.push(Span { start: 0, end: size });
        let mut hashes = self.audit_span_hashes(&all).await?;
        let root = hashes.pop().ok_or(StoreError::Corrupt { what: "audit tree", reason: "no root".into() })?;
        let leaf_hash = hashes.pop().ok_or(StoreError::Corrupt { what: "audit tree", reason: "no leaf".into() })?;
        Ok(AuditInclusion { seq, size, leaf_hash, root, proof: hashes })
    }

    /// The consistency proof from the tree of `from` records to the tree of `to`.
    pub async fn audit_consistency(&self, from: u64, to: u64) -> Result<AuditConsistency, StoreError> {
        let spans = consistency_spans(from, to).map_err(|e| out_of_range("from", e))?;
        self.committed("to", to).await?;
        let mut all = spans.clone();
        all.push(Span { start: 0, end: from });
        all.push(Span { start: 0, end: to });
        let mut hashes = self.audit_span_hashes(&all).await?;
        let corrupt = || StoreError::Corrupt { what: "audit tree", reason: "missing root".into() };
        let to_root = hashes.pop().ok_or_else(corrupt)?;
        let from_root = hashes.pop().ok_or_else(corrupt)?;
        Ok(AuditConsistency { from, to, from_root, to_root, proof: hashes })
    }

    /// The root of the tree of the first `size` records (the empty root for 0).
    pub async fn audit_root_at(&self, size: u64) -> Result<Hash, StoreError> {
        self.committed("size", size).await?;
        if size == 0 {
            return Ok(custody_audit::EMPTY_ROOT);
        }
        let hashes = self.audit_span_hashes(&[Span { start: 0, end: size }]).await?;
        hashes.first().copied().ok_or(StoreError::Corrupt { what: "audit tree", reason: "no root".into() })
    }

    /// The frontier of the tree of the first `size` records (its perfect subtrees, largest
    /// first): where an archived segment starting at `size` continues the tree from.
    pub async fn audit_frontier(&self, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.committed("size", size).await?;
        let ids = frontier_nodes(size);
        let found = self.audit_node_hashes(&ids).await?;
        ids.iter()
            .map(|id| {
                found.get(id).copied().ok_or(StoreError::Corrupt {
                    what: "audit tree",
                    reason: format!("subtree ({}, {}) is missing", id.level, id.index),
                })
            })
            .collect()
    }

    /// Signed checkpoints with a size of at least `from_size`, smallest first (at most `limit`).
    pub async fn audit_checkpoints(&self, from_size: u64, limit: u32) -> Result<Vec<SignedCheckpoint>, StoreError> {
        sqlx::query("SELECT * FROM audit_checkpoints WHERE size >= $1 ORDER BY size LIMIT $2")
            .bind(i64::try_from(from_size).unwrap_or(i64::MAX))
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(checkpoint_from_row)
            .collect()
    }

    /// The newest signed checkpoint, if the log has signed one.
    pub async fn audit_latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        sqlx::query("SELECT * FROM audit_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(checkpoint_from_row)
            .transpose()
    }
}

fn checkpoint_from_row(row: &sqlx::any::AnyRow) -> Result<SignedCheckpoint, StoreError> {
    Ok(SignedCheckpoint {
        size: rows::int(row, "size")? as u64,
        root: rows::text(row, "root")?,
        note: rows::text(row, "note")?,
        signed_at: rows::time(row, "signed_at")?,
    })
}

/// Stores the subtree hashes of a log written before they were kept (migration 0002), under
/// the audit head lock so no batch appends meanwhile. Does nothing when they are there.
pub(crate) async fn backfill_nodes(backend: Backend, conn: &mut AnyConnection) -> Result<(), StoreError> {
    crate::exec(conn, backend.begin_write()).await?;
    let result = async {
        let head = sqlx::query(backend.lock_audit_head()).fetch_one(&mut *conn).await?;
        let size = rows::int(&head, "next_seq")? as u64;
        // Subtrees are written with the records that complete them, so a log has all of them
        // or (written before 0002) none: one lookup of its largest tells, without a scan.
        let largest = frontier_nodes(size).into_iter().next().filter(|id| id.level > 0);
        let Some(largest) = largest else { return Ok(()) };
        let present = sqlx::query("SELECT 1 FROM audit_nodes WHERE node = $1")
            .bind(node_key(largest)?)
            .fetch_optional(&mut *conn)
            .await?;
        if present.is_some() {
            return Ok(());
        }
        crate::exec(conn, "DELETE FROM audit_nodes").await?;
        let mut frontier = MerkleFrontier::new();
        let mut nodes = Vec::new();
        let leaves = sqlx::query("SELECT leaf_hash FROM audit_events ORDER BY seq").fetch_all(&mut *conn).await?;
        for row in &leaves {
            frontier.push_reporting(rows::hash(row, "leaf_hash")?, |id, h| nodes.push((id, *h)));
        }
        crate::audit::insert_nodes(backend, conn, &nodes).await
    }
    .await;
    match result {
        Ok(()) => crate::exec(conn, "COMMIT").await.map_err(StoreError::from),
        Err(e) => {
            let _ = crate::exec(conn, "ROLLBACK").await;
            Err(e)
        }
    }
}

/// Signs a checkpoint of the committed log every `interval`, when it has grown.
pub(crate) async fn sign_periodically(backend: Backend, pool: AnyPool, signing: CheckpointSigning) {
    let mut tick = tokio::time::interval(signing.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sign_head(backend, &pool, &signing.signer).await {
            tracing::warn!(error = %e, "could not sign an audit checkpoint; retrying at the next interval");
        }
    }
}

async fn sign_head(backend: Backend, pool: &AnyPool, signer: &crate::LogSigner) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    crate::exec(&mut conn, backend.begin_write()).await?;
    let result = async {
        let head = sqlx::query(backend.lock_audit_head()).fetch_one(&mut *conn).await?;
        let size = rows::int(&head, "next_seq")?;
        let root = rows::hash(&head, "root")?;
        signer.check(size as u64, &root)?;
        if size > 0 {
            insert_checkpoint(backend, &mut conn, signer.signer(), size as u64, &root, micros(custody_core::now()))
                .await?;
        }
        Ok::<_, StoreError>((size as u64, root))
    }
    .await;
    match result {
        Ok((size, root)) => {
            crate::exec(&mut conn, "COMMIT").await?;
            if size > 0 {
                signer.committed(size, root);
            }
            Ok(())
        }
        Err(e) => {
            let _ = crate::exec(&mut conn, "ROLLBACK").await;
            Err(e)
        }
    }
}

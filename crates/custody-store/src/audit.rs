//! Sequencing and reading audit events.

use crate::rows::{self, micros};
use crate::{Backend, LogSigner, Store, StoreError};
use custody_audit::{Checkpoint, Hash, MerkleFrontier, NodeId, RecordFields, Signer};
use custody_core::{AuditDraft, AuditEvent, Name, RequestId};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

/// Parameters per multi-row INSERT: one statement (on SQLite, one round trip to the
/// connection's thread) for the audit rows of a batch, and one for their Merkle nodes.
/// Under both limits (SQLite's 32,766; PostgreSQL's 65,535).
fn insert_params(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 4096,
        Backend::Postgres => 1300,
    }
}

const COLUMNS: usize = 13;

/// The Merkle frontier stored in the audit head, for a log of `size` records.
fn load_frontier(head: &AnyRow, size: i64) -> Result<MerkleFrontier, StoreError> {
    let text = rows::text(head, "frontier")?;
    let nodes = text
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|h| rows::parse_hash("audit frontier", h))
        .collect::<Result<Vec<_>, _>>()?;
    MerkleFrontier::from_parts(size as u64, nodes)
        .map_err(|e| StoreError::Corrupt { what: "audit frontier", reason: e.to_string() })
}

/// Reserves the next gapless range of sequence numbers for `drafts` and inserts them. Runs
/// inside the batch transaction, after every write of the batch.
pub(crate) async fn insert_events(
    backend: Backend,
    conn: &mut AnyConnection,
    drafts: &[AuditDraft],
    signer: Option<&LogSigner>,
) -> Result<(Vec<AuditEvent>, Option<(u64, Hash)>), StoreError> {
    if drafts.is_empty() {
        return Ok((Vec::new(), None));
    }
    let head = sqlx::query(backend.lock_audit_head()).fetch_one(&mut *conn).await?;
    let next_seq = rows::int(&head, "next_seq")?;
    // Times never go backwards along the sequence, even if the clock does.
    let time_micros = micros(custody_core::now()).max(rows::int(&head, "last_time")?);
    let time = rows::from_micros("time", time_micros)?;
    let mut frontier = load_frontier(&head, next_seq)?;
    if let Some(signer) = signer {
        signer.check(next_seq as u64, &frontier.root())?;
    }
    let mut nodes: Vec<(NodeId, Hash)> = Vec::with_capacity(drafts.len());
    let mut events = Vec::with_capacity(drafts.len());
    let mut details_texts = Vec::with_capacity(drafts.len());
    for (i, d) in drafts.iter().enumerate() {
        let seq = next_seq + i as i64;
        let details = rows::to_json("details", &d.details)?;
        let request_id = d.request_id.to_string();
        let leaf = RecordFields {
            seq: seq as u64,
            time_micros,
            actor: &d.actor,
            action: d.action.as_str(),
            resource: &d.resource.0,
            project: d.project.as_ref().map(|p| p.as_str()),
            region: d.region.as_ref().map(|r| r.as_str()),
            decision: d.decision.as_str(),
            policy_hash: &d.policy_hash,
            request_id: &request_id,
            outcome: d.outcome.as_str(),
            details: &details,
        }
        .leaf_hash();
        frontier.push_reporting(leaf, |id, h| nodes.push((id, *h)));
        events.push(AuditEvent {
            seq: seq as u64,
            time,
            actor: d.actor.clone(),
            action: d.action,
            resource: d.resource.clone(),
            project: d.project.clone(),
            region: d.region.clone(),
            decision: d.decision,
            policy_hash: d.policy_hash.clone(),
            request_id: d.request_id,
            outcome: d.outcome,
            details: d.details.clone(),
            leaf_hash: hex::encode(leaf),
        });
        details_texts.push(details);
    }
    let border: Vec<String> = frontier.nodes().iter().map(hex::encode).collect();
    let root = frontier.root();
    let head = AuditHeadUpdate {
        next_seq: next_seq + drafts.len() as i64,
        last_time: time_micros,
        frontier: border.join(","),
        root: hex::encode(root),
    };
    let checkpoint = signer.map(|s| signed_checkpoint(s.signer(), frontier.len(), &root, time_micros)).transpose()?;
    let rows = insert_params(backend) / COLUMNS;
    let mut statements: Vec<BatchStatement<'_>> = Vec::new();
    statements.extend(
        events.chunks(rows).zip(details_texts.chunks(rows)).map(|(e, d)| BatchStatement::Events(e, d, time_micros)),
    );
    statements.extend(nodes.chunks(insert_params(backend) / 2).map(BatchStatement::Nodes));
    statements.push(BatchStatement::Head(&head));
    statements.extend(checkpoint.as_ref().map(BatchStatement::Checkpoint));
    execute_all(backend, conn, &statements).await?;
    let signed = checkpoint.map(|c| (c.size as u64, root));
    Ok((events, signed))
}

/// The stored key of a perfect subtree, `level * 2^56 + index` (see migration 0002); a leaf's
/// is its sequence number.
pub(crate) fn node_key(id: NodeId) -> Result<i64, StoreError> {
    if id.level >= 64 || id.index >= 1 << 56 {
        return Err(StoreError::Corrupt { what: "audit node", reason: format!("{id:?} is beyond the stored range") });
    }
    Ok((i64::from(id.level) << 56) | id.index as i64)
}

/// The subtree a stored key names.
pub(crate) fn node_from_key(key: i64) -> NodeId {
    NodeId { level: (key >> 56) as u32, index: (key & ((1 << 56) - 1)) as u64 }
}

pub(crate) async fn insert_nodes(
    backend: Backend,
    conn: &mut AnyConnection,
    nodes: &[(NodeId, Hash)],
) -> Result<(), StoreError> {
    let statements: Vec<_> = nodes.chunks(insert_params(backend) / 2).map(BatchStatement::Nodes).collect();
    execute_all(backend, conn, &statements).await
}

/// Signs the checkpoint of the tree of `size` records with root `root` and stores it. Runs in
/// the transaction that holds the audit head lock, so it signs only trees of the one log.
pub(crate) async fn insert_checkpoint(
    backend: Backend,
    conn: &mut AnyConnection,
    signer: &Signer,
    size: u64,
    root: &Hash,
    time_micros: i64,
) -> Result<(), StoreError> {
    let checkpoint = signed_checkpoint(signer, size, root, time_micros)?;
    execute_all(backend, conn, &[BatchStatement::Checkpoint(&checkpoint)]).await
}

fn signed_checkpoint(
    signer: &Signer,
    size: u64,
    root: &Hash,
    time_micros: i64,
) -> Result<SignedCheckpoint, StoreError> {
    let signing = |e: String| StoreError::Corrupt { what: "audit checkpoint", reason: e };
    let checkpoint = Checkpoint::new(signer.name(), size, *root).map_err(|e| signing(e.to_string()))?;
    let note = checkpoint.sign(&[signer]).map_err(|e| signing(e.to_string()))?;
    Ok(SignedCheckpoint { size: size as i64, root: hex::encode(root), note: note.to_string(), signed_at: time_micros })
}

/// The audit head as a batch leaves it.
struct AuditHeadUpdate {
    next_seq: i64,
    last_time: i64,
    frontier: String,
    root: String,
}

/// An `audit_checkpoints` row.
struct SignedCheckpoint {
    size: i64,
    root: String,
    note: String,
    signed_at: i64,
}

/// One of the statements that store a batch's audit records, after its writes.
enum BatchStatement<'a> {
    /// Audit rows (with their details as stored text) of one time.
    Events(&'a [AuditEvent], &'a [String], i64),
    /// Merkle nodes completed by the batch.
    Nodes(&'a [(NodeId, Hash)]),
    Head(&'a AuditHeadUpdate),
    Checkpoint(&'a SignedCheckpoint),
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

impl BatchStatement<'_> {
    /// The statement's text. Its parameters are numbered from 1 on PostgreSQL and positional
    /// (`?`) on SQLite, so that several statements can be sent as one.
    fn sql(&self, backend: Backend) -> String {
        let list = |rows, columns| rows::values_list(backend, rows, columns);
        let insert = backend.insert_rows();
        match self {
            Self::Events(events, ..) => format!(
                "{insert} audit_events (seq, time, actor, action, resource, project, region, decision, \
                 policy_hash, request_id, outcome, details, leaf_hash) VALUES {}",
                list(events.len(), COLUMNS)
            ),
            Self::Nodes(nodes) => format!("{insert} audit_nodes (node, hash) VALUES {}", list(nodes.len(), 2)),
            Self::Head(_) => {
                format!("UPDATE audit_head SET (next_seq, last_time, frontier, root) = {} WHERE id = 1", list(1, 4))
            }
            Self::Checkpoint(_) => format!(
                "INSERT INTO audit_checkpoints (size, root, note, signed_at) VALUES {} ON CONFLICT DO NOTHING",
                list(1, 4)
            ),
        }
    }

    /// Binds the statement's parameters, in the order of [`Self::sql`], after those bound before.
    fn bind<'q>(&self, mut q: AnyQuery<'q>) -> Result<AnyQuery<'q>, StoreError> {
        match self {
            Self::Events(events, details, time_micros) => {
                for (e, details) in events.iter().zip(details.iter()) {
                    q = q
                        .bind(e.seq as i64)
                        .bind(*time_micros)
                        .bind(e.actor.clone())
                        .bind(e.action.as_str())
                        .bind(e.resource.0.clone())
                        .bind(e.project.as_ref().map(|p| p.as_str().to_owned()))
                        .bind(e.region.as_ref().map(|r| r.as_str().to_owned()))
                        .bind(e.decision.as_str())
                        .bind(e.policy_hash.clone())
                        .bind(e.request_id.to_string())
                        .bind(e.outcome.as_str())
                        .bind(details.clone())
                        .bind(e.leaf_hash.clone());
                }
            }
            Self::Nodes(nodes) => {
                for (id, hash) in nodes.iter() {
                    q = q.bind(node_key(*id)?).bind(hex::encode(hash));
                }
            }
            Self::Head(h) => q = q.bind(h.next_seq).bind(h.last_time).bind(h.frontier.clone()).bind(h.root.clone()),
            Self::Checkpoint(c) => q = q.bind(c.size).bind(c.root.clone()).bind(c.note.clone()).bind(c.signed_at),
        }
        Ok(q)
    }
}

/// Runs `statements` in order. On SQLite they go to the connection's thread as one query
/// (sqlx runs each of its statements in turn, binding positional parameters on from where the
/// one before stopped): one round trip where there were four, on the path every write waits
/// behind. PostgreSQL's extended protocol takes one statement per query.
async fn execute_all(
    backend: Backend,
    conn: &mut AnyConnection,
    statements: &[BatchStatement<'_>],
) -> Result<(), StoreError> {
    match backend {
        Backend::Sqlite => {
            if statements.is_empty() {
                return Ok(());
            }
            let sql = statements.iter().map(|s| s.sql(backend)).collect::<Vec<_>>().join(";\n");
            let mut q = sqlx::query(&sql);
            for s in statements {
                q = s.bind(q)?;
            }
            q.execute(&mut *conn).await?;
        }
        Backend::Postgres => {
            for s in statements {
                let sql = s.sql(backend);
                s.bind(sqlx::query(&sql))?.execute(&mut *conn).await?;
            }
        }
    }
    Ok(())
}

/// Filters for reading the audit log. Empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only events with a sequence number at or after this.
    pub from_seq: u64,
    /// At most this many events (capped at 1000).
    pub limit: u32,
    /// Only this actor.
    pub actor: Option<String>,
    /// Only this action (dotted name).
    pub action: Option<String>,
    /// Only this project.
    pub project: Option<Name>,
    /// Only this resource (`dataset:<id>`).
    pub resource: Option<String>,
    /// Only resources of this kind (`dataset`, `model`, `deployment`, …).
    pub resource_kind: Option<String>,
    /// Only this region.
    pub region: Option<String>,
    /// Only this outcome (`success`, `denied`, `rejected`, `error`).
    pub outcome: Option<String>,
    /// Only events at or after this time.
    pub since: Option<custody_core::Timestamp>,
    /// Only events before this time.
    pub until: Option<custody_core::Timestamp>,
}

impl Store {
    /// Reads audit events in sequence order.
    pub async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        enum Bind {
            Text(String),
            Int(i64),
        }
        let mut sql = String::from("SELECT * FROM audit_events WHERE seq >= $1");
        let mut binds: Vec<Bind> = Vec::new();
        let mut filter = |sql: &mut String, condition: &str, value: Bind| {
            binds.push(value);
            sql.push_str(&format!(" AND {condition} ${}", binds.len() + 1));
        };
        for (col, val) in [
            ("actor", q.actor.clone()),
            ("action", q.action.clone()),
            ("project", q.project.as_ref().map(|p| p.to_string())),
            ("resource", q.resource.clone()),
            ("region", q.region.clone()),
            ("outcome", q.outcome.clone()),
        ] {
            if let Some(v) = val {
                filter(&mut sql, &format!("{col} ="), Bind::Text(v));
            }
        }
        if let Some(kind) = &q.resource_kind {
            // Resources are `<kind>:<id>`: a range on the indexed column, not a LIKE.
            filter(&mut sql, "resource >=", Bind::Text(format!("{kind}:")));
            filter(&mut sql, "resource <", Bind::Text(format!("{kind};")));
        }
        if let Some(t) = q.since {
            filter(&mut sql, "time >=", Bind::Int(micros(t)));
        }
        if let Some(t) = q.until {
            filter(&mut sql, "time <", Bind::Int(micros(t)));
        }
        sql.push_str(&format!(" ORDER BY seq LIMIT {}", q.limit.clamp(1, 1000)));
        let mut query = sqlx::query(&sql).bind(i64::try_from(q.from_seq).unwrap_or(i64::MAX));
        for b in binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        query.fetch_all(&self.read).await?.iter().map(event_from_row).collect()
    }

    /// The size of the log and its Merkle root (hex), as of the last committed batch.
    pub async fn audit_root(&self) -> Result<(u64, String), StoreError> {
        let row = sqlx::query("SELECT next_seq, root FROM audit_head WHERE id = 1").fetch_one(&self.read).await?;
        Ok((rows::int(&row, "next_seq")? as u64, rows::text(&row, "root")?))
    }

    /// The stored details text of audit events from `from_seq` on (at most `limit`): the exact
    /// bytes their leaf hashes cover.
    pub async fn audit_details_texts(&self, from_seq: u64, limit: u32) -> Result<Vec<(u64, String)>, StoreError> {
        sqlx::query("SELECT seq, details FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT $2")
            .bind(from_seq as i64)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| Ok((rows::int(r, "seq")? as u64, rows::text(r, "details")?)))
            .collect()
    }

    /// The leaf hashes of records `0..size`, in sequence order (proofs are computed from them).
    pub async fn audit_leaf_hashes(&self, size: u64) -> Result<Vec<custody_audit::Hash>, StoreError> {
        let rows = sqlx::query("SELECT leaf_hash FROM audit_events WHERE seq < $1 ORDER BY seq")
            .bind(i64::try_from(size).unwrap_or(i64::MAX))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| rows::hash(r, "leaf_hash")).collect()
    }

    /// How many audit events there are (the next sequence number).
    pub async fn audit_len(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT next_seq FROM audit_head WHERE id = 1").fetch_one(&self.read).await?;
        Ok(rows::int(&row, "next_seq")? as u64)
    }
}

fn event_from_row(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    let action_name = rows::text(row, "action")?;
    let action = custody_core::Action::ALL
        .iter()
        .copied()
        .find(|a| a.as_str() == action_name)
        .ok_or_else(|| StoreError::Corrupt { what: "audit action", reason: format!("unknown `{action_name}`") })?;
    let corrupt =
        |what: &'static str| move |e: custody_core::CoreError| StoreError::Corrupt { what, reason: e.to_string() };
    Ok(AuditEvent {
        seq: rows::int(row, "seq")? as u64,
        time: rows::time(row, "time")?,
        actor: rows::text(row, "actor")?,
        action,
        resource: custody_core::ResourceRef(rows::text(row, "resource")?),
        project: rows::opt_text(row, "project")?.map(|p| Name::new(&p)).transpose().map_err(corrupt("project"))?,
        region: rows::opt_text(row, "region")?
            .map(|r| custody_core::Region::new(&r))
            .transpose()
            .map_err(corrupt("region"))?,
        decision: match rows::text(row, "decision")?.as_str() {
            "allow" => custody_core::Decision::Allow,
            "deny" => custody_core::Decision::Deny,
            _ => custody_core::Decision::NotEvaluated,
        },
        policy_hash: rows::text(row, "policy_hash")?,
        request_id: RequestId::parse(&rows::text(row, "request_id")?).map_err(corrupt("request_id"))?,
        outcome: match rows::text(row, "outcome")?.as_str() {
            "success" => custody_core::Outcome::Success,
            "denied" => custody_core::Outcome::Denied,
            "rejected" => custody_core::Outcome::Rejected,
            _ => custody_core::Outcome::Error,
        },
        details: rows::json(row, "details")?,
        leaf_hash: rows::text(row, "leaf_hash")?,
    })
}

/// The canonical record bytes (`custody_audit::record`, the bytes its leaf hash covers) of an
/// event as read back, with `details` the JSON text the log stores for it.
pub fn canonical_record(e: &AuditEvent, details: &str) -> Vec<u8> {
    let request_id = e.request_id.to_string();
    RecordFields {
        seq: e.seq,
        // Stored times are microseconds since the epoch, within i64 by construction.
        time_micros: i64::try_from(e.time.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX),
        actor: &e.actor,
        action: e.action.as_str(),
        resource: &e.resource.0,
        project: e.project.as_ref().map(|p| p.as_str()),
        region: e.region.as_ref().map(|r| r.as_str()),
        decision: e.decision.as_str(),
        policy_hash: &e.policy_hash,
        request_id: &request_id,
        outcome: e.outcome.as_str(),
        details,
    }
    .canonical_bytes()
}

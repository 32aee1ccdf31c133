//! The audit log's Merkle root and proofs, so auditors can check records without trusting
//! the server: an inclusion proof shows a record is in the log of a given size; a
//! consistency proof shows an older log is a prefix of a newer one.

use crate::error::ApiError;
use crate::state::Ctx;
use axum::Json;
use axum::extract::Query;
use custody_core::Action;
use custody_policy::ResourceFacts;
use serde::{Deserialize, Serialize};

/// The log's size and Merkle root.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct LogRoot {
    /// Number of records.
    size: u64,
    /// Hex SHA-256 Merkle root (RFC 6962) over records `0..size`.
    root: String,
}

/// Where a record sits.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionQuery {
    /// The record's sequence number.
    seq: u64,
    /// The tree size to prove against (default: the current size).
    size: Option<u64>,
}

/// An inclusion proof (RFC 9162 §2.1.3).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct InclusionProof {
    /// The record's sequence number (leaf index).
    seq: u64,
    /// The tree size.
    size: u64,
    /// Hex leaf hash of the record.
    leaf_hash: String,
    /// Hex root of the tree of `size` records.
    root: String,
    /// Hex audit path, leaf to root.
    proof: Vec<String>,
}

/// Two sizes of the log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyQuery {
    /// The older size (at least 1).
    from: u64,
    /// The newer size (default: the current size).
    to: Option<u64>,
}

/// A consistency proof (RFC 9162 §2.1.4).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct ConsistencyProof {
    /// The older size.
    from: u64,
    /// The newer size.
    to: u64,
    /// Hex root at `from`.
    from_root: String,
    /// Hex root at `to`.
    to_root: String,
    /// Hex proof hashes.
    proof: Vec<String>,
}

async fn authorize_whole_log(ctx: &Ctx) -> Result<custody_core::AuditDraft, ApiError> {
    ctx.authorize(Action::AuditRead, ResourceFacts::AuditLog { project: None }).await
}

fn hexes(hashes: &[custody_audit::Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// The current size and Merkle root of the audit log.
#[utoipa::path(get, path = "/api/v1/audit/root", tag = "audit", responses((status = 200, body = LogRoot)))]
pub(crate) async fn root(ctx: Ctx) -> Result<Json<LogRoot>, ApiError> {
    let draft = authorize_whole_log(&ctx).await?;
    let (size, root) = ctx.store().audit_root().await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(LogRoot { size, root }))
}

/// Proves that a record is in the log of a given size.
#[utoipa::path(get, path = "/api/v1/audit/proofs/inclusion", tag = "audit", params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn inclusion(
    ctx: Ctx,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<InclusionProof>, ApiError> {
    let draft = authorize_whole_log(&ctx).await?;
    let q = ctx.query(&draft, "query", q).await?;
    let size = match q.size {
        Some(size) => size,
        None => ctx.store().audit_len().await.map_err(|e| ctx.store_error(e))?,
    };
    let (p, draft) = ctx.checked(draft, ctx.store().audit_inclusion(q.seq, size).await).await?;
    ctx.record(draft).await?;
    Ok(Json(InclusionProof {
        seq: p.seq,
        size: p.size,
        leaf_hash: hex::encode(p.leaf_hash),
        root: hex::encode(p.root),
        proof: hexes(&p.proof),
    }))
}

/// Proves that the log of an older size is a prefix of the log of a newer size.
#[utoipa::path(get, path = "/api/v1/audit/proofs/consistency", tag = "audit", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn consistency(
    ctx: Ctx,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let draft = authorize_whole_log(&ctx).await?;
    let q = ctx.query(&draft, "query", q).await?;
    let to = match q.to {
        Some(to) => to,
        None => ctx.store().audit_len().await.map_err(|e| ctx.store_error(e))?,
    };
    let (c, draft) = ctx.checked(draft, ctx.store().audit_consistency(q.from, to).await).await?;
    ctx.record(draft).await?;
    Ok(Json(ConsistencyProof {
        from: c.from,
        to: c.to,
        from_root: hex::encode(c.from_root),
        to_root: hex::encode(c.to_root),
        proof: hexes(&c.proof),
    }))
}

/// The audit log's public key.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct LogKey {
    /// The key name: the origin line of every checkpoint.
    origin: String,
    /// The C2SP verifier key string, `<name>+<hex key id>+<base64(0x01 || key)>`.
    verifier_key: String,
}

/// The key that signs the log's checkpoints. Publish it: offline verification needs it from a
/// source other than the log it checks.
#[utoipa::path(get, path = "/api/v1/audit/key", tag = "audit", responses((status = 200, body = LogKey)))]
pub(crate) async fn key(ctx: Ctx) -> Result<Json<LogKey>, ApiError> {
    let draft = authorize_whole_log(&ctx).await?;
    let key = &ctx.state.inner.log_key;
    ctx.record(draft).await?;
    Ok(Json(LogKey { origin: key.name().to_owned(), verifier_key: key.verifier_key() }))
}

/// A signed checkpoint.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct SignedCheckpoint {
    /// Tree size.
    size: u64,
    /// Hex root.
    root: String,
    /// The C2SP signed note: checkpoint text, blank line, signature lines.
    note: String,
}

impl From<custody_store::SignedCheckpoint> for SignedCheckpoint {
    fn from(c: custody_store::SignedCheckpoint) -> Self {
        Self { size: c.size, root: c.root, note: c.note }
    }
}

/// Which checkpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckpointsQuery {
    /// Only checkpoints of at least this size (default 0).
    from_size: Option<u64>,
    /// At most this many (default 1000, at most 10000).
    limit: Option<u32>,
}

/// Signed checkpoints, smallest size first.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit", params(CheckpointsQuery),
    responses((status = 200, body = Vec<SignedCheckpoint>)))]
pub(crate) async fn checkpoints(
    ctx: Ctx,
    q: Result<Query<CheckpointsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<SignedCheckpoint>>, ApiError> {
    let draft = authorize_whole_log(&ctx).await?;
    let q = ctx.query(&draft, "query", q).await?;
    let found = ctx
        .store()
        .audit_checkpoints(q.from_size.unwrap_or(0), q.limit.unwrap_or(1000))
        .await
        .map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(found.into_iter().map(Into::into).collect()))
}

/// The newest signed checkpoint (404 before the log has signed one).
#[utoipa::path(get, path = "/api/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, body = SignedCheckpoint), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn checkpoint(ctx: Ctx) -> Result<Json<SignedCheckpoint>, ApiError> {
    let draft = authorize_whole_log(&ctx).await?;
    let latest = ctx.store().audit_latest_checkpoint().await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    latest.map(|c| Json(c.into())).ok_or_else(|| ApiError::not_found("checkpoint", "the log has no checkpoint yet"))
}

/// A tree size.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct FrontierQuery {
    /// The tree size.
    size: u64,
}

/// The frontier of a tree: where a segment of the log starting at `size` continues from.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Frontier {
    /// The tree size.
    size: u64,
    /// Hex roots of its perfect subtrees, largest (leftmost) first.
    nodes: Vec<String>,
}

/// The frontier of the tree of the first `size` records.
#[utoipa::path(get, path = "/api/v1/audit/frontier", tag = "audit", params(FrontierQuery),
    responses((status = 200, body = Frontier), (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn frontier(
    ctx: Ctx,
    q: Result<Query<FrontierQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Frontier>, ApiError> {
    let draft = authorize_whole_log(&ctx).await?;
    let q = ctx.query(&draft, "query", q).await?;
    let (nodes, draft) = ctx.checked(draft, ctx.store().audit_frontier(q.size).await).await?;
    ctx.record(draft).await?;
    Ok(Json(Frontier { size: q.size, nodes: hexes(&nodes) }))
}

/// Where an export starts and ends.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    /// The first sequence number (default 0): resume from the last one received plus one.
    from: Option<u64>,
    /// One past the last sequence number (default: the log's size when the export starts).
    to: Option<u64>,
    /// `jsonl` (default): JSON lines for SIEMs; `archive`: the record archive, each record as
    /// the canonical bytes its leaf hash covers (what `custody audit export` stores and
    /// `custody audit verify` checks fastest).
    format: Option<ExportFormat>,
}

/// The two shapes of an export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExportFormat {
    /// One JSON object per line.
    #[default]
    Jsonl,
    /// `custody_audit::archive`: magic, then per record its leaf hash, length and canonical bytes.
    Archive,
}

impl ExportFormat {
    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "application/x-ndjson",
            ExportFormat::Archive => "application/octet-stream",
        }
    }

    /// Appends one record in this format.
    fn write(self, body: &mut Vec<u8>, e: &custody_core::AuditEvent) -> std::io::Result<()> {
        match self {
            ExportFormat::Jsonl => {
                serde_json::to_writer(&mut *body, e)?;
                body.push(b'\n');
            }
            ExportFormat::Archive => {
                let record = custody_store::canonical_record(e, &serde_json::to_string(&e.details)?);
                let mut leaf = [0u8; 32];
                hex::decode_to_slice(&e.leaf_hash, &mut leaf).map_err(std::io::Error::other)?;
                custody_audit::archive::push_frame(body, &leaf, &record);
            }
        }
        Ok(())
    }
}

/// Records per database read while exporting.
const EXPORT_PAGE: u32 = 1000;

/// The log from `from` to `to`: as JSON lines (`application/x-ndjson`), one record per line
/// with its sequence number and leaf hash, for SIEMs; or as a record archive
/// (`format=archive`, `application/octet-stream`) for offline verification.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(ExportQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = String),
        (status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = crate::error::ErrorBody)))]
pub(crate) async fn export(
    ctx: Ctx,
    q: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let draft = authorize_whole_log(&ctx).await?;
    let q = ctx.query(&draft, "query", q).await?;
    let size = ctx.store().audit_len().await.map_err(|e| ctx.store_error(e))?;
    let from = q.from.unwrap_or(0);
    let to = q.to.unwrap_or(size);
    if from > to || to > size {
        let err =
            ApiError::invalid("to", format!("need from <= to <= {size} (the log's size), got from {from} to {to}"));
        return Err(ctx.refuse(draft, err).await);
    }
    ctx.record(draft).await?;
    let format = q.format.unwrap_or_default();
    let store = ctx.store().clone();
    let magic = futures_util::stream::iter(
        (format == ExportFormat::Archive)
            .then(|| Ok::<_, std::io::Error>(axum::body::Bytes::from_static(custody_audit::archive::ARCHIVE_MAGIC))),
    );
    let pages = futures_util::stream::try_unfold(from, move |next| {
        let store = store.clone();
        async move {
            if next >= to {
                return Ok(None);
            }
            let limit = EXPORT_PAGE.min(u32::try_from(to - next).unwrap_or(EXPORT_PAGE));
            let page = store
                .audit_events(&custody_store::AuditQuery { from_seq: next, limit, ..Default::default() })
                .await
                .map_err(std::io::Error::other)?;
            let mut body = Vec::with_capacity(page.len() * 512);
            for e in page.iter().take_while(|e| e.seq < to) {
                format.write(&mut body, e)?;
            }
            match page.last() {
                Some(last) => Ok(Some((axum::body::Bytes::from(body), last.seq + 1))),
                None => Err(std::io::Error::other(format!("audit record {next} is missing"))),
            }
        }
    });
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, format.content_type())
        .body(axum::body::Body::from_stream(futures_util::StreamExt::chain(magic, pages)))
        .map_err(|_| ApiError::internal())
}

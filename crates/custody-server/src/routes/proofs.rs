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
    let (current, _) = ctx.store().audit_root().await.map_err(|e| ctx.store_error(e))?;
    let size = q.size.unwrap_or(current);
    if size > current || q.seq >= size {
        let err = ApiError::invalid(
            "seq",
            format!("record {} is not in a log of size {size} (current size {current})", q.seq),
        );
        return Err(ctx.refuse(draft, err).await);
    }
    let leaves = ctx.store().audit_leaf_hashes(size).await.map_err(|e| ctx.store_error(e))?;
    let proof = custody_audit::inclusion_proof(&leaves, q.seq).map_err(|e| ApiError::invalid("seq", e.to_string()))?;
    let seq = usize::try_from(q.seq).map_err(|_| ApiError::invalid("seq", "too large"))?;
    let body = InclusionProof {
        seq: q.seq,
        size,
        leaf_hash: leaves.get(seq).map(hex::encode).unwrap_or_default(),
        root: hex::encode(custody_audit::root(&leaves)),
        proof: hexes(&proof),
    };
    ctx.record(draft).await?;
    Ok(Json(body))
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
    let (current, _) = ctx.store().audit_root().await.map_err(|e| ctx.store_error(e))?;
    let to = q.to.unwrap_or(current);
    if q.from == 0 || q.from > to || to > current {
        let err = ApiError::invalid("from", format!("need 1 <= from <= to <= {current}, got from {} to {to}", q.from));
        return Err(ctx.refuse(draft, err).await);
    }
    let leaves = ctx.store().audit_leaf_hashes(to).await.map_err(|e| ctx.store_error(e))?;
    let proof =
        custody_audit::consistency_proof(&leaves, q.from).map_err(|e| ApiError::invalid("from", e.to_string()))?;
    let from = usize::try_from(q.from).map_err(|_| ApiError::invalid("from", "too large"))?;
    let body = ConsistencyProof {
        from: q.from,
        to,
        from_root: hex::encode(custody_audit::root(leaves.get(..from).unwrap_or_default())),
        to_root: hex::encode(custody_audit::root(&leaves)),
        proof: hexes(&proof),
    };
    ctx.record(draft).await?;
    Ok(Json(body))
}

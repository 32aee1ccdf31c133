//! A dataset version's data: stored encrypted in the blob store under the KEK the policy
//! chooses, read back decrypted (a byte range on request), crypto-shredded; every wrap, unwrap
//! and destruction goes into the key-use ledger with the request's audit record.

use crate::error::ApiError;
use crate::routes::datasets::{facts, load};
use crate::state::{Ctx, JsonBody};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_blobs::{BlobError, BlobScope};
use custody_core::{Action, AuditDraft, Dataset, DatasetVersion, KeyOperation, KeyUse};
use custody_crypto::{EnvelopeError, Header, KekRef, KeyError, ShredReceipt};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::io::Read;

/// The header naming the job or training run a request is for.
const RUN_HEADER: &str = "custody-run";
/// The largest byte range served at once.
const MAX_RANGE: u64 = 64 * 1024 * 1024;

/// Data stored for a dataset version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct StoredData {
    /// The plaintext SHA-256 (the version's digest).
    digest: String,
    /// The plaintext length.
    plaintext_bytes: u64,
    /// The KEK (provider, key id, version) that wraps the data key.
    #[schema(value_type = Object)]
    kek: KekRef,
    /// The object id bound into the encryption context.
    object: String,
    /// False when the data was already stored (nothing was written).
    created: bool,
}

pub(crate) fn scope(d: &Dataset, v: &DatasetVersion) -> BlobScope {
    BlobScope { project: d.project.to_string(), dataset: d.id.to_string(), version: v.label.to_string() }
}

fn run_id(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(RUN_HEADER) else { return Ok(None) };
    let text = value.to_str().map_err(|_| ApiError::invalid(RUN_HEADER, "must be visible ASCII"))?.trim();
    if text.is_empty() || text.len() > 128 {
        return Err(ApiError::invalid(RUN_HEADER, "must be 1 to 128 characters"));
    }
    Ok(Some(text.to_string()))
}

fn key_use(
    ctx: &Ctx,
    op: KeyOperation,
    header: &Header,
    d: &Dataset,
    v: &DatasetVersion,
    run: &Option<String>,
) -> KeyUse {
    KeyUse {
        at: custody_core::now(),
        operation: op,
        provider: header.kek.provider.clone(),
        key_id: header.kek.key_id.clone(),
        key_version: header.kek.version,
        object: header.context.get("object").cloned().unwrap_or_default(),
        project: d.project.to_string(),
        dataset_id: Some(d.id.to_string()),
        dataset_version: Some(v.label.to_string()),
        region: Some(d.region.to_string()),
        classification: Some(d.classification.as_str().to_string()),
        principal: ctx.principal.id.clone(),
        run_id: run.clone(),
        request_id: ctx.request_id.to_string(),
    }
}

/// What a blob failure means to the caller.
pub(crate) fn blob_error(e: BlobError, what: &str) -> ApiError {
    match e {
        BlobError::DigestMismatch { declared, actual } => ApiError::mismatch(
            "body",
            format!("the {what} hashes to {actual}, not the version's digest {declared}: nothing was stored"),
        ),
        BlobError::NotFound(_) => ApiError::not_found("data", "no data is stored for this version"),
        BlobError::Envelope { source: EnvelopeError::Key(k), .. } => match k {
            KeyError::Destroyed { key, .. } => {
                ApiError::gone(format!("the data was crypto-shredded: key `{key}` was destroyed"))
            }
            KeyError::Unavailable(m) => ApiError::unavailable(format!("key provider: {m}")),
            other => {
                tracing::error!(error = %other, "data key");
                ApiError::unavailable(format!("key provider: {other}"))
            }
        },
        BlobError::Io(io) if io.kind() == std::io::ErrorKind::FileTooLarge => ApiError::invalid("body", io.to_string()),
        BlobError::Io(io) => ApiError::invalid("body", format!("reading the body: {io}")),
        other => {
            tracing::error!(error = %other, "blob store");
            ApiError::internal()
        }
    }
}

/// Finds the version and makes it the record's resource, refusing (and recording) when there
/// is none.
pub(crate) async fn version(
    ctx: &Ctx,
    draft: &mut AuditDraft,
    d: &Dataset,
    label: &str,
) -> Result<DatasetVersion, ApiError> {
    match ctx.store().dataset_version(d.id, label).await.map_err(|e| ctx.store_error(e))? {
        Some(v) => {
            draft.resource = custody_core::ResourceRef::new("dataset_version", v.id);
            Ok(v)
        }
        None => Err(ctx.refuse(draft.clone(), ApiError::not_found("version", format!("no version `{label}`"))).await),
    }
}

/// Refuses (and records) when an erasure deleted the version's data: it is never read or
/// stored again, whatever arrives later.
async fn refuse_if_erased(ctx: &Ctx, draft: &AuditDraft, v: &DatasetVersion) -> Result<(), ApiError> {
    match ctx.store().erasure_of_version(v.id).await.map_err(|e| ctx.store_error(e))? {
        Some((receipt, at)) => {
            let at = at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            let e = ApiError::gone(format!(
                "the data was erased by erasure receipt `{receipt}` at {at}: it cannot be read or stored again"
            ));
            Err(ctx.refuse(draft.clone(), e).await)
        }
        None => Ok(()),
    }
}

/// Refuses bodies beyond the configured size.
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!("the body is larger than the {} bytes accepted", self.limit),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Store a dataset version's data (the raw body), encrypted. Its SHA-256 must be the
/// version's digest. Name the job or run in the `Custody-Run` header to find it in the
/// key-use ledger.
#[utoipa::path(put, path = "/api/v1/datasets/{id}/versions/{label}/data", tag = "data",
    params(("id" = String, Path), ("label" = String, Path)), request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = StoredData), (status = 200, body = StoredData), (status = 404, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub(crate) async fn put(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<StoredData>), ApiError> {
    let d = load(&ctx, Action::DatasetDataWrite, &id).await?;
    let mut draft = ctx.authorize(Action::DatasetDataWrite, facts(&d)).await?;
    let run = match run_id(&headers) {
        Ok(r) => r,
        Err(e) => return Err(ctx.refuse(draft, e).await),
    };
    let v = version(&ctx, &mut draft, &d, &label).await?;
    refuse_if_erased(&ctx, &draft, &v).await?;
    let data = &ctx.state.inner.data;
    let dataset_id = d.id.to_string();
    let kek = data.keys.kek_for(&crate::keys::DataFacts::of(&d, &dataset_id, v.label.as_str()));
    if let Err(e) = data.blobs.provider().ensure_key(&kek).await {
        return Err(ctx.refuse(draft, ApiError::unavailable(format!("key provider: {e}"))).await);
    }
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let limit = data.max_bytes;
    let input = Limited { inner: reader, left: limit, limit };
    let context = [
        ("classification".to_string(), d.classification.as_str().to_string()),
        ("region".to_string(), d.region.to_string()),
    ]
    .into_iter()
    .collect();
    let stored = match data.blobs.put(&scope(&d, &v), &kek, context, v.digest, input).await {
        Ok(s) => s,
        Err(e) => return Err(ctx.refuse(draft, blob_error(e, "body")).await),
    };
    let object = stored.header.context.get("object").cloned().unwrap_or_default();
    draft.details = serde_json::json!({
        "digest": stored.digest.to_string(), "plaintext_bytes": stored.plaintext_len, "kek": stored.header.kek,
        "object": object, "created": stored.created, "run": run,
    });
    if stored.created {
        let uses = vec![key_use(&ctx, KeyOperation::Wrap, &stored.header, &d, &v, &run)];
        ctx.store().record_key_uses(draft, uses).await.map_err(|e| ctx.store_error(e))?;
    } else {
        ctx.record(draft).await?;
    }
    let status = if stored.created { StatusCode::CREATED } else { StatusCode::OK };
    let report = StoredData {
        digest: stored.digest.to_string(),
        plaintext_bytes: stored.plaintext_len,
        kek: stored.header.kek,
        object,
        created: stored.created,
    };
    Ok((status, Json(report)))
}

/// `Range: bytes=A-B` (one range; `A-` to the end).
fn parse_range(headers: &HeaderMap, len: u64) -> Result<Option<std::ops::Range<u64>>, ApiError> {
    let Some(value) = headers.get(header::RANGE) else { return Ok(None) };
    let bad = || ApiError::invalid("range", "give one range as `bytes=START-END` or `bytes=START-`");
    let text = value.to_str().map_err(|_| bad())?;
    let (a, b) = text.strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end =
        if b.trim().is_empty() { len } else { b.trim().parse::<u64>().map_err(|_| bad())?.saturating_add(1).min(len) };
    if start >= end {
        return Err(ApiError::invalid("range", format!("`{text}` selects nothing of {len} bytes")));
    }
    if end - start > MAX_RANGE {
        return Err(ApiError::invalid("range", format!("at most {MAX_RANGE} bytes per range")));
    }
    Ok(Some(start..end))
}

/// Read a dataset version's data, decrypted (a `Range: bytes=A-B` reads only the chunks it
/// needs). The unwrap is recorded in the key-use ledger before any byte is sent; a stream cut
/// short means the data did not authenticate.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/versions/{label}/data", tag = "data",
    params(("id" = String, Path), ("label" = String, Path)),
    responses((status = 200, content_type = "application/octet-stream"), (status = 206), (status = 404, body = crate::error::ErrorBody), (status = 410, body = crate::error::ErrorBody)))]
pub(crate) async fn get(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let d = load(&ctx, Action::DatasetDataRead, &id).await?;
    let mut draft = ctx.authorize(Action::DatasetDataRead, facts(&d)).await?;
    let run = match run_id(&headers) {
        Ok(r) => r,
        Err(e) => return Err(ctx.refuse(draft, e).await),
    };
    let v = version(&ctx, &mut draft, &d, &label).await?;
    refuse_if_erased(&ctx, &draft, &v).await?;
    let blobs = ctx.state.inner.data.blobs.clone();
    let digest = v.digest;
    let blob = match blobs.open(&scope(&d, &v), &digest).await {
        Ok(b) => b,
        Err(e) => return Err(ctx.refuse(draft, blob_error(e, "data")).await),
    };
    let len = v.size_bytes;
    let range = match parse_range(&headers, len) {
        Ok(r) => r,
        Err(e) => return Err(ctx.refuse(draft, e).await),
    };
    let header = blob.header().clone();
    draft.details = serde_json::json!({
        "digest": digest.to_string(), "kek": header.kek, "run": run,
        "range": range.as_ref().map(|r| [r.start, r.end]),
    });
    let uses = vec![key_use(&ctx, KeyOperation::Unwrap, &header, &d, &v, &run)];
    ctx.store().record_key_uses(draft, uses).await.map_err(|e| ctx.store_error(e))?;
    let kek = HeaderValue::from_str(&format!("{}:{}:{}", header.kek.provider, header.kek.key_id, header.kek.version))
        .unwrap_or(HeaderValue::from_static("unknown"));
    let digest_value = HeaderValue::from_str(&digest.to_string()).unwrap_or(HeaderValue::from_static("unknown"));
    if let Some(range) = range {
        let (start, end) = (range.start, range.end);
        let bytes = blobs.read_range_opened(blob, range).await.map_err(|e| blob_error(e, "data"))?;
        let content_range = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1))
            .unwrap_or(HeaderValue::from_static("bytes */0"));
        return Ok((
            StatusCode::PARTIAL_CONTENT,
            [(header::CONTENT_RANGE, content_range), (header::HeaderName::from_static("custody-kek"), kek)],
            bytes,
        )
            .into_response());
    }
    // Decrypt on a worker into a channel the response streams from; an error ends the stream
    // with an error, which cuts the response short.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    let writer = ChannelWriter { tx: tx.clone() };
    tokio::spawn(async move {
        if let Err(e) = blobs.read_opened(blob, writer).await {
            tracing::error!(error = %e, "data read failed after the response started");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let stream = receiver_stream(rx);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::HeaderName::from_static("custody-digest"), digest_value),
            (header::HeaderName::from_static("custody-kek"), kek),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn receiver_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A sync writer feeding the response (called on a blocking thread).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why data is shredded.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShredRequest {
    /// Why (an erasure request, end of retention...).
    reason: String,
}

/// What a shred destroyed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ShredReport {
    /// One receipt per KEK destroyed.
    #[schema(value_type = Vec<Object>)]
    receipts: Vec<ShredReceipt>,
    /// The blobs made unrecoverable.
    blobs: usize,
}

/// Crypto-shred a dataset version's data: destroy the KEK that protects it, so no copy of the
/// ciphertext (replicas, backups) can be decrypted again. Refused when that KEK also protects
/// other data. Needs a change ticket (`Custody-Ticket`).
#[utoipa::path(post, path = "/api/v1/datasets/{id}/versions/{label}/data/shred", tag = "data",
    params(("id" = String, Path), ("label" = String, Path)), request_body = ShredRequest,
    responses((status = 200, body = ShredReport), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn shred(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
    body: Result<JsonBody, ApiError>,
) -> Result<Json<ShredReport>, ApiError> {
    let d = load(&ctx, Action::DatasetDataShred, &id).await?;
    let mut draft = ctx.authorize(Action::DatasetDataShred, facts(&d)).await?;
    let request: ShredRequest = ctx.parse(&draft, body).await?;
    let reason = request.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(ctx.refuse(draft, ApiError::invalid("reason", "must be 1 to 1000 characters")).await);
    }
    let v = version(&ctx, &mut draft, &d, &label).await?;
    let blobs = &ctx.state.inner.data.blobs;
    let scope = scope(&d, &v);
    let mut headers: Vec<Header> = Vec::new();
    let digests = blobs.list(&scope).await.map_err(|e| blob_error(e, "data"))?;
    for digest in &digests {
        if let Some(b) = blobs.stored(&scope, digest).await.map_err(|e| blob_error(e, "data"))?
            && !headers.iter().any(|h| h.kek.key_id == b.header.kek.key_id)
        {
            headers.push(b.header);
        }
    }
    if headers.is_empty() {
        return Err(ctx.refuse(draft, ApiError::not_found("data", "no data is stored for this version")).await);
    }
    for h in &headers {
        let elsewhere = ctx
            .store()
            .key_uses_elsewhere(&h.kek.key_id, &d.id.to_string(), v.label.as_str())
            .await
            .map_err(|e| ctx.store_error(e))?;
        if elsewhere > 0 {
            let e = ApiError::conflict(
                "kek",
                format!(
                    "key `{}` also protects other data ({elsewhere} uses elsewhere in the key-use ledger): shredding it \
                     would destroy that too; give versions their own KEK ({{dataset}} and {{version}} in the KEK policy)",
                    h.kek.key_id
                ),
            );
            return Err(ctx.refuse(draft, e).await);
        }
    }
    let mut receipts = Vec::new();
    let mut uses = Vec::new();
    for h in &headers {
        match blobs.provider().destroy(&h.kek.key_id, None).await {
            Ok(r) => {
                let mut u = key_use(&ctx, KeyOperation::Destroy, h, &d, &v, &None);
                u.object = h.kek.key_id.clone();
                u.key_version = r.versions.iter().copied().max().unwrap_or(h.kek.version);
                uses.push(u);
                receipts.push(r);
            }
            Err(e) => {
                // What was destroyed stays destroyed: record it with the failure.
                draft.details =
                    serde_json::json!({ "reason": reason, "receipts": receipts, "failed_key": h.kek.key_id });
                let err = ApiError::unavailable(format!("key provider: {e}"));
                if !uses.is_empty() {
                    draft.outcome = custody_core::Outcome::Error;
                    ctx.store().record_key_uses(draft, uses).await.map_err(|e| ctx.store_error(e))?;
                    return Err(err.with_request(ctx.request_id));
                }
                return Err(ctx.refuse(draft, err).await);
            }
        }
    }
    draft.details = serde_json::json!({ "reason": reason, "receipts": receipts, "blobs": digests.len() });
    ctx.store().record_key_uses(draft, uses).await.map_err(|e| ctx.store_error(e))?;
    Ok(Json(ShredReport { receipts, blobs: digests.len() }))
}

/// Filters for the key-use ledger.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyUseSearch {
    /// Only this dataset (id).
    dataset: Option<String>,
    /// Only this dataset version (label).
    version: Option<String>,
    /// Only uses for this job or run (the `Custody-Run` header of the request).
    run: Option<String>,
    /// Only this KEK.
    key: Option<String>,
    /// Only this principal.
    principal: Option<String>,
    /// Only this operation: wrap, unwrap, rewrap, destroy.
    operation: Option<String>,
    /// At or after (RFC 3339).
    since: Option<String>,
    /// Before (RFC 3339).
    until: Option<String>,
    /// At most this many (default 1000, at most 10000).
    limit: Option<u32>,
}

fn search(project: &str, s: KeyUseSearch) -> Result<custody_store::KeyUseQuery, ApiError> {
    let time = |field: &str, t: Option<String>| -> Result<Option<custody_core::Timestamp>, ApiError> {
        t.map(|t| {
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                .map_err(|_| ApiError::invalid(field, format!("`{t}` is not an RFC 3339 time")))
        })
        .transpose()
    };
    let operation = match s.operation {
        Some(o) => Some(
            KeyOperation::parse(&o)
                .ok_or_else(|| ApiError::invalid("operation", "one of wrap, unwrap, rewrap, destroy"))?,
        ),
        None => None,
    };
    Ok(custody_store::KeyUseQuery {
        project: project.to_string(),
        dataset_id: s.dataset,
        dataset_version: s.version,
        run_id: s.run,
        key_id: s.key,
        principal: s.principal,
        operation,
        since: time("since", s.since)?,
        until: time("until", s.until)?,
        limit: s.limit.unwrap_or(1000).clamp(1, 10_000),
    })
}

/// The key-use ledger of a project: which KEK (and version) protected which object, for whom,
/// during which run ("which key protected dataset X during run Y").
#[utoipa::path(get, path = "/api/v1/projects/{project}/key-uses", tag = "data",
    params(("project" = String, Path), KeyUseSearch), responses((status = 200, body = Vec<KeyUse>)))]
pub(crate) async fn key_uses(
    ctx: Ctx,
    Path(project): Path<String>,
    q: Result<Query<KeyUseSearch>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<KeyUse>>, ApiError> {
    let project = crate::routes::projects::load(&ctx, Action::KeyUseRead, &project).await?;
    let draft = ctx
        .authorize(Action::KeyUseRead, custody_policy::ResourceFacts::Project { name: project.name.clone() })
        .await?;
    let q = ctx.query(&draft, "query", q).await?;
    let query = match search(project.name.as_str(), q) {
        Ok(q) => q,
        Err(e) => return Err(ctx.refuse(draft, e).await),
    };
    let uses = ctx.store().key_uses(&query).await.map_err(|e| ctx.store_error(e))?;
    let mut draft = draft;
    draft.details["returned"] = uses.len().into();
    ctx.record(draft).await?;
    Ok(Json(uses))
}

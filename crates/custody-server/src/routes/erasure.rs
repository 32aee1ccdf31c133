//! Erasure (DSAR, right to be forgotten): the impact report of one or more dataset versions
//! (those holding a data subject's records), and carrying it out — every item the data
//! reached answered with what was done, the data Custody itself holds deleted for real (blob
//! objects and the wrapped data key gone, the version marked so nothing stores or serves it
//! again), and a receipt written with its audit record in one transaction.

use crate::error::ApiError;
use crate::routes::data::{blob_error, scope};
use crate::routes::datasets::facts;
use crate::routes::lineage::{NodeSpec, graph_error, node_of, synced};
use crate::routes::projects;
use crate::state::{Ctx, JsonBody};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use custody_core::{Action, AuditDraft, Dataset, DatasetVersion, Project};
use custody_lineage::{ErasureReport, NodeKey, Query, SuggestedAction, VersionRef};
use custody_policy::ResourceFacts;
use custody_store::ErasureReceiptRecord;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The dataset versions to report on.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportRequest {
    /// The dataset versions being erased (for a record key: every version holding its records).
    sources: Vec<NodeSpec>,
}

/// What was done about one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Done {
    /// Deleted (Custody deletes what it holds itself).
    Deleted,
    /// Re-derived without the erased data (for a source: the records removed, a new version).
    Rederived,
    /// The model version was retrained without the erased data.
    Retrained,
    /// The deployment was retired.
    Retired,
    /// The deployment was replaced by one of a retrained model.
    Replaced,
    /// Kept, with a justification (`note`).
    Accepted,
}

/// One item's answer.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemAction {
    /// The item, as the report names it (`items[].node.key`, or a source's key).
    #[schema(value_type = Object)]
    node: NodeKey,
    /// What was done.
    done: Done,
    /// Details; required to accept an item the report did not suggest accepting.
    #[serde(default)]
    note: Option<String>,
}

/// An erasure carried out.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErasureRequest {
    /// The dataset versions erased from.
    sources: Vec<NodeSpec>,
    /// The data subject's record key, when the request is for one subject's records. Never
    /// stored: the receipt keeps a salted commitment, and the salt is returned once.
    #[serde(default)]
    record_key: Option<String>,
    /// Why (the request's reference).
    reason: String,
    /// What was done about each source and each item of the report.
    actions: Vec<ItemAction>,
}

/// Report the erasure impact of erasing several dataset versions together (a record key's).
#[utoipa::path(post, path = "/api/v1/projects/{project}/lineage/erasure/report", tag = "lineage",
    params(("project" = String, Path)), request_body = ReportRequest,
    responses((status = 200, body = Object), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn report(
    ctx: Ctx,
    Path(project): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let p = projects::load(&ctx, Action::LineageRead, &project).await?;
    let draft = ctx.authorize(Action::LineageRead, ResourceFacts::Project { name: p.name.clone() }).await?;
    let r: ReportRequest = ctx.parse(&draft, body).await?;
    let (keys, report) = match keyed_report(&ctx, &p, &r.sources).await {
        Ok(v) => v,
        Err(e) => return Err(ctx.refuse(draft, e).await),
    };
    let mut draft = draft;
    draft.details = json!({ "sources": keys });
    ctx.record(draft).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or_default()))
}

async fn keyed_report(ctx: &Ctx, p: &Project, sources: &[NodeSpec]) -> Result<(Vec<NodeKey>, ErasureReport), ApiError> {
    if sources.is_empty() || sources.len() > 1000 {
        return Err(ApiError::invalid("sources", "name 1 to 1000 dataset versions"));
    }
    let keys = sources
        .iter()
        .enumerate()
        .map(|(i, s)| node_of(s).map_err(|e| ApiError::invalid(format!("sources[{i}]"), e.message)))
        .collect::<Result<Vec<_>, _>>()?;
    synced(ctx, p.id).await?;
    let report = ctx
        .state
        .inner
        .lineage
        .read(p.id, |g| g.erasure_report_of(&keys, &Query::all()))
        .ok_or_else(ApiError::internal)?
        .map_err(graph_error)?;
    Ok((keys, report))
}

/// Whether `done` answers `suggested` (an accept against the suggestion needs a note).
fn answers(suggested: Option<&SuggestedAction>, done: Done, note: bool) -> bool {
    use Done::*;
    match (suggested, done) {
        (_, Accepted) if note => true,
        // A source: deleted whole, or rewritten without the subject's records.
        (None, d) => matches!(d, Deleted | Rederived),
        (Some(SuggestedAction::Delete), d) => d == Deleted,
        (Some(SuggestedAction::ReDerive), d) => matches!(d, Rederived | Deleted),
        (Some(SuggestedAction::Retrain), d) => matches!(d, Retrained | Deleted),
        (Some(SuggestedAction::RetireOrReplace), d) => matches!(d, Retired | Replaced),
        (Some(SuggestedAction::NoneRetired), d) => matches!(d, Retired | Accepted | Deleted),
        (Some(SuggestedAction::AcceptWithJustification { .. }), d) => matches!(d, Accepted | Deleted | Rederived),
    }
}

fn action_name(a: Option<&SuggestedAction>) -> &'static str {
    match a {
        None => "delete or re-derive (a source)",
        Some(SuggestedAction::Delete) => "delete",
        Some(SuggestedAction::ReDerive) => "reDerive",
        Some(SuggestedAction::Retrain) => "retrain",
        Some(SuggestedAction::RetireOrReplace) => "retireOrReplace",
        Some(SuggestedAction::NoneRetired) => "noneRetired",
        Some(SuggestedAction::AcceptWithJustification { .. }) => "acceptWithJustification",
    }
}

/// Checks that the actions answer the report exactly: one per source and item, none for
/// anything else, each fitting its suggestion.
fn check_actions(keys: &[NodeKey], report: &ErasureReport, actions: &[ItemAction]) -> Result<(), ApiError> {
    let mut expected: HashMap<&NodeKey, Option<&SuggestedAction>> = keys.iter().map(|k| (k, None)).collect();
    for item in &report.items {
        expected.insert(&item.node.key, Some(&item.action));
    }
    let mut seen: HashMap<&NodeKey, usize> = HashMap::new();
    for (i, a) in actions.iter().enumerate() {
        let field = format!("actions[{i}]");
        let Some(suggested) = expected.get(&a.node) else {
            return Err(ApiError::invalid(
                format!("{field}.node"),
                format!("{} is not reached by this erasure", a.node),
            ));
        };
        if let Some(first) = seen.insert(&a.node, i) {
            return Err(ApiError::invalid(
                format!("{field}.node"),
                format!("{} is answered already by actions[{first}]", a.node),
            ));
        }
        let note = a.note.as_deref().is_some_and(|n| !n.trim().is_empty());
        if a.note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
            return Err(ApiError::invalid(format!("{field}.note"), "at most 2000 characters"));
        }
        if !answers(*suggested, a.done, note) {
            let done = serde_json::to_value(a.done).unwrap_or_default();
            return Err(ApiError::invalid(
                format!("{field}.done"),
                format!(
                    "`{}` does not answer `{}` for {}{}",
                    done.as_str().unwrap_or_default(),
                    action_name(*suggested),
                    a.node,
                    if a.done == Done::Accepted { " (accepting needs a note saying why)" } else { "" }
                ),
            ));
        }
    }
    let mut missing: Vec<String> = expected
        .iter()
        .filter(|(k, _)| !seen.contains_key(*k))
        .map(|(k, s)| format!("{k} ({})", action_name(*s)))
        .collect();
    missing.sort();
    if let Some(first) = missing.first() {
        return Err(ApiError::invalid("actions", format!("{} item(s) have no action, first {first}", missing.len())));
    }
    Ok(())
}

/// The registry's versions (of this project) a deleted item is.
async fn held_versions(
    ctx: &Ctx,
    p: &Project,
    deleted: &[&NodeKey],
) -> Result<Vec<(Dataset, DatasetVersion)>, ApiError> {
    let registered = ctx.store().registered_datasets(p.id).await.map_err(|e| ctx.store_error(e))?;
    let mut out: Vec<(Dataset, DatasetVersion)> = Vec::new();
    for key in deleted {
        let NodeKey::DatasetVersion { dataset, version } = key else { continue };
        let digest = ctx.state.inner.lineage.read(p.id, |g| g.content_digest(key)).flatten();
        for reg in &registered {
            if !crate::lineage::lineage_names(p.name.as_str(), reg).contains(dataset) {
                continue;
            }
            // The registry's own list decides the match; only a match is read in full.
            let label = reg.versions.iter().find_map(|(label, dg)| {
                let hit = match version {
                    VersionRef::Declared(l) => label == l,
                    VersionRef::Digest(d) => dg == d,
                    _ => digest.as_ref() == Some(dg),
                };
                hit.then_some(label.as_str())
            });
            let Some(label) = label else { continue };
            let d = ctx.store().dataset(reg.id).await.map_err(|e| ctx.store_error(e))?;
            let v = ctx.store().dataset_version(d.id, label).await.map_err(|e| ctx.store_error(e))?;
            if let Some(v) = v
                && !out.iter().any(|(_, o)| o.id == v.id)
            {
                out.push((d, v));
            }
        }
    }
    Ok(out)
}

/// Deletes the held data of each version; what it deleted, per version.
async fn delete_held(ctx: &Ctx, held: &[(Dataset, DatasetVersion)]) -> Result<Vec<Value>, (ApiError, Vec<Value>)> {
    let blobs = &ctx.state.inner.data.blobs;
    let mut deleted = Vec::new();
    for (d, v) in held {
        let scope = scope(d, v);
        let digests = blobs.list(&scope).await.map_err(|e| (blob_error(e, "data"), deleted.clone()))?;
        let mut removed = 0usize;
        for digest in &digests {
            if blobs.delete(&scope, digest).await.map_err(|e| (blob_error(e, "data"), deleted.clone()))? {
                removed += 1;
            }
        }
        deleted.push(json!({
            "dataset_id": d.id, "dataset": d.name, "version": v.label, "version_id": v.id, "digest": v.digest,
            "blobs_deleted": removed,
        }));
    }
    Ok(deleted)
}

/// A salted commitment to the record key: SHA-256("custody-erasure-key/1" ‖ salt ‖ key).
fn commitment(key: &str) -> Result<(String, String), ApiError> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| ApiError::internal())?;
    let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    h.update(b"custody-erasure-key/1");
    h.update(&salt);
    h.update(key.as_bytes());
    Ok((hex::encode(salt), hex::encode(h.finish())))
}

/// Carry out an erasure: answer every source and item of the report with what was done. The
/// data Custody holds for every version answered `deleted` is deleted now (authorized as
/// `dataset.data.shred` per dataset); the receipt, with the report's SHA-256, is recorded in
/// the audit log. Needs a ticket (`Custody-Ticket`).
#[utoipa::path(post, path = "/api/v1/projects/{project}/lineage/erasures", tag = "lineage",
    params(("project" = String, Path)), request_body = ErasureRequest,
    responses((status = 201, body = Object), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub(crate) async fn erase(
    ctx: Ctx,
    Path(project): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let p = projects::load(&ctx, Action::LineageErase, &project).await?;
    let draft = ctx.authorize(Action::LineageErase, ResourceFacts::Project { name: p.name.clone() }).await?;
    let r: ErasureRequest = ctx.parse(&draft, body).await?;
    match prepare(&ctx, &p, &r).await {
        Ok((keys, report, held)) => carry_out(ctx, &p, draft, r, keys, report, held).await,
        Err(e) => Err(ctx.refuse(draft, e).await),
    }
}

type Prepared = (Vec<NodeKey>, ErasureReport, Vec<(Dataset, DatasetVersion)>);

async fn prepare(ctx: &Ctx, p: &Project, r: &ErasureRequest) -> Result<Prepared, ApiError> {
    let n = r.reason.trim().chars().count();
    if n == 0 || n > 1000 {
        return Err(ApiError::invalid("reason", "must be 1 to 1000 characters"));
    }
    if r.record_key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 4096) {
        return Err(ApiError::invalid("record_key", "must be 1 to 4096 bytes"));
    }
    let (keys, report) = keyed_report(ctx, p, &r.sources).await?;
    check_actions(&keys, &report, &r.actions)?;
    let deleted: Vec<&NodeKey> = r.actions.iter().filter(|a| a.done == Done::Deleted).map(|a| &a.node).collect();
    let held = held_versions(ctx, p, &deleted).await?;
    for (d, v) in &held {
        if !ctx.allows(Action::DatasetDataShred, &facts(d)) {
            return Err(ApiError::forbidden(format!(
                "deleting the data of `{}` version `{}` is not allowed (dataset.data.shred)",
                d.name, v.label
            )));
        }
    }
    Ok((keys, report, held))
}

async fn carry_out(
    ctx: Ctx,
    p: &Project,
    mut draft: AuditDraft,
    r: ErasureRequest,
    keys: Vec<NodeKey>,
    report: ErasureReport,
    held: Vec<(Dataset, DatasetVersion)>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let deleted = match delete_held(&ctx, &held).await {
        Ok(d) => d,
        Err((e, partial)) => {
            // What was deleted stays deleted: record it with the failure.
            draft.details = json!({ "reason": r.reason, "deleted_before_failure": partial });
            return Err(ctx.refuse(draft, e).await);
        }
    };
    let (salt, key_commitment) = match r.record_key.as_deref().map(commitment).transpose() {
        Ok(Some((s, c))) => (Some(s), Some(c)),
        Ok(None) => (None, None),
        Err(e) => return Err(ctx.refuse(draft, e).await),
    };
    let report_json = serde_json::to_vec(&report).unwrap_or_default();
    let items: Vec<Value> = r
        .actions
        .iter()
        .map(|a| {
            let suggested = report.items.iter().find(|i| i.node.key == a.node).map(|i| &i.action);
            json!({ "node": a.node, "suggested": suggested, "done": a.done, "note": a.note })
        })
        .collect();
    let receipt = ErasureReceiptRecord {
        id: uuid::Uuid::now_v7().to_string(),
        project_id: p.id,
        reason: r.reason.trim().to_owned(),
        key_commitment,
        sources: json!(keys),
        report_sha256: hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &report_json)),
        items: Value::Array(items),
        deleted: Value::Array(deleted),
        created_by: ctx.principal.id.clone(),
        created_at: custody_core::now(),
    };
    let erased = held.iter().map(|(_, v)| v.id).collect();
    let (receipt, event) = ctx.store().record_erasure(draft, receipt, erased).await.map_err(|e| ctx.store_error(e))?;
    let mut body = receipt_json(&receipt);
    body["audit_seq"] = json!(event.seq);
    if let Some(s) = salt {
        body["record_key_salt"] = json!(s);
    }
    Ok((StatusCode::CREATED, Json(body)))
}

fn receipt_json(r: &ErasureReceiptRecord) -> Value {
    json!({
        "id": r.id, "reason": r.reason, "key_commitment": r.key_commitment, "sources": r.sources,
        "report_sha256": r.report_sha256, "items": r.items, "deleted": r.deleted, "created_by": r.created_by,
        "created_at": r.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
    })
}

/// A project's erasure receipts, oldest first.
#[utoipa::path(get, path = "/api/v1/projects/{project}/lineage/erasures", tag = "lineage",
    params(("project" = String, Path)), responses((status = 200, body = Vec<Object>)))]
pub(crate) async fn receipts(ctx: Ctx, Path(project): Path<String>) -> Result<Json<Vec<Value>>, ApiError> {
    let p = projects::load(&ctx, Action::LineageRead, &project).await?;
    let draft = ctx.authorize(Action::LineageRead, ResourceFacts::Project { name: p.name.clone() }).await?;
    let all = ctx.store().erasure_receipts(p.id).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(all.iter().map(receipt_json).collect()))
}

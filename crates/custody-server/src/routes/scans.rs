//! Scan results attached to model versions and dataset versions. A result is accepted only for
//! the subject's own digest, and for a model version only if it covers exactly the files the
//! version's signature lists, so "the scan is clean" is a statement about the signed bytes.

use crate::error::ApiError;
use crate::routes::{data, datasets, models};
use crate::state::{Ctx, JsonBody};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use custody_core::{Action, NewScanResult, ScanResult, ScanSubject};
use std::collections::BTreeSet;

/// Attach a scan of a model version's files.
#[utoipa::path(post, path = "/api/v1/models/{id}/versions/{label}/scans", tag = "scans", request_body = NewScanResult,
    params(("id" = String, Path), ("label" = String, Path)),
    responses((status = 201, body = ScanResult), (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn attach_to_model(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<ScanResult>), ApiError> {
    let m = models::load(&ctx, Action::ModelScanAttach, &id).await?;
    let draft = ctx.authorize(Action::ModelScanAttach, models::facts(&m)).await?;
    let new: NewScanResult = ctx.parse(&draft, body).await?;
    if let Err(e) = new.validate() {
        return Err(ctx.refuse(draft, e.into()).await);
    }
    let v = models::version(&ctx, &draft, &m, &label).await?;
    if new.scanned_digest != v.root_digest {
        let e = ApiError::mismatch(
            "scanned_digest",
            format!("the scan is of {}, but version `{label}` is {}", new.scanned_digest, v.root_digest),
        );
        return Err(ctx.refuse(draft, e).await);
    }
    if let Err(e) = covers_signed_files(&ctx, &m, v.id, &new).await {
        return Err(ctx.refuse(draft, e).await);
    }
    let by = ctx.principal.id.clone();
    let result = ctx.store().attach_scan(draft.clone(), m.project_id, ScanSubject::ModelVersion(v.id), new, by).await;
    let ((r, _), _) = ctx.checked(draft, result).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// The scan must list every signed file and nothing else (shards count as their file).
async fn covers_signed_files(
    ctx: &Ctx,
    m: &custody_core::Model,
    version: custody_core::ModelVersionId,
    new: &NewScanResult,
) -> Result<(), ApiError> {
    let signed = models::stored_manifest(ctx, m, version).await?;
    let signed: BTreeSet<&str> = signed.manifest.resources.iter().map(|r| r.name.path.as_str()).collect();
    let scanned: BTreeSet<&str> = new.files.iter().map(|f| f.path.as_str()).collect();
    let missing: Vec<&str> = signed.difference(&scanned).copied().take(5).collect();
    let extra: Vec<&str> = scanned.difference(&signed).copied().take(5).collect();
    match (missing.is_empty(), extra.is_empty()) {
        (true, true) => Ok(()),
        (false, _) => {
            Err(ApiError::mismatch("files", format!("the scan leaves out signed files: {}", missing.join(", "))))
        }
        (true, false) => Err(ApiError::mismatch(
            "files",
            format!("the scan lists files the version does not have: {}", extra.join(", ")),
        )),
    }
}

/// The scans of a model version, newest first (the first is the one promotions read).
#[utoipa::path(get, path = "/api/v1/models/{id}/versions/{label}/scans", tag = "scans",
    params(("id" = String, Path), ("label" = String, Path)), responses((status = 200, body = Vec<ScanResult>)))]
pub(crate) async fn model_scans(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
) -> Result<Json<Vec<ScanResult>>, ApiError> {
    let m = models::load(&ctx, Action::ModelRead, &id).await?;
    let draft = ctx.authorize(Action::ModelRead, models::facts(&m)).await?;
    let v = models::version(&ctx, &draft, &m, &label).await?;
    let scans = ctx.store().scans(ScanSubject::ModelVersion(v.id)).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(scans))
}

/// Attach a scan of a dataset version's content.
#[utoipa::path(post, path = "/api/v1/datasets/{id}/versions/{label}/scans", tag = "scans", request_body = NewScanResult,
    params(("id" = String, Path), ("label" = String, Path)),
    responses((status = 201, body = ScanResult), (status = 422, body = crate::error::ErrorBody)))]
pub(crate) async fn attach_to_dataset(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<ScanResult>), ApiError> {
    let d = datasets::load(&ctx, Action::DatasetScanAttach, &id).await?;
    let mut draft = ctx.authorize(Action::DatasetScanAttach, datasets::facts(&d)).await?;
    let new: NewScanResult = ctx.parse(&draft, body).await?;
    if let Err(e) = new.validate() {
        return Err(ctx.refuse(draft, e.into()).await);
    }
    let v = data::version(&ctx, &mut draft, &d, &label).await?;
    if new.scanned_digest != v.digest {
        let e = ApiError::mismatch(
            "scanned_digest",
            format!("the scan is of {}, but version `{label}` is {}", new.scanned_digest, v.digest),
        );
        return Err(ctx.refuse(draft, e).await);
    }
    if new.files.len() != 1 {
        let e =
            ApiError::mismatch("files", format!("a dataset version is one object; the scan lists {}", new.files.len()));
        return Err(ctx.refuse(draft, e).await);
    }
    let by = ctx.principal.id.clone();
    let result = ctx.store().attach_scan(draft.clone(), d.project_id, ScanSubject::DatasetVersion(v.id), new, by).await;
    let ((r, _), _) = ctx.checked(draft, result).await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// The scans of a dataset version, newest first.
#[utoipa::path(get, path = "/api/v1/datasets/{id}/versions/{label}/scans", tag = "scans",
    params(("id" = String, Path), ("label" = String, Path)), responses((status = 200, body = Vec<ScanResult>)))]
pub(crate) async fn dataset_scans(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
) -> Result<Json<Vec<ScanResult>>, ApiError> {
    let d = datasets::load(&ctx, Action::DatasetRead, &id).await?;
    let mut draft = ctx.authorize(Action::DatasetRead, datasets::facts(&d)).await?;
    let v = data::version(&ctx, &mut draft, &d, &label).await?;
    let scans = ctx.store().scans(ScanSubject::DatasetVersion(v.id)).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(scans))
}

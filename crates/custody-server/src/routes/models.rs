//! The model registry: models, the keys a project trusts, signed versions, promotions that
//! the policies gate on approvals, the stage history, deployments.

use crate::error::ApiError;
use crate::routes::projects;
use crate::state::{Ctx, JsonBody};
use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use custody_core::{
    Action, AuditDraft, DatasetDependency, Deployment, Model, ModelId, ModelVersion, ModelVersionId, NewDeployment,
    NewModel, NewModelVersion, NewPromotion, NewTrustedSigner, Promotion, PromotionId, PromotionStatus,
    ProvenanceSummary, RiskTier, Sha256Digest, Stage, StageChange, TrustedSigner,
};
use custody_policy::ResourceFacts;
use custody_provenance::{Bundle, PublicKey, manifest_from_statement, slsa};
use custody_store::{PromotionRequest, VersionDraft};
use serde::{Deserialize, Serialize};

pub(crate) fn facts(m: &Model) -> ResourceFacts {
    ResourceFacts::Model { id: m.id, project: m.project.clone(), risk_tier: m.risk_tier, owner: m.owner.clone() }
}

fn promotion_facts(p: &Promotion) -> ResourceFacts {
    ResourceFacts::Promotion {
        id: p.id,
        project: p.project.clone(),
        risk_tier: p.risk_tier,
        to: p.to,
        approvals: u32::try_from(p.approvals.len()).unwrap_or(u32::MAX),
        requested_by: p.requested_by.clone(),
    }
}

pub(crate) async fn load(ctx: &Ctx, action: Action, id: &str) -> Result<Model, ApiError> {
    let looked_up = match ModelId::parse(id) {
        Ok(id) => ctx.store().model(id).await,
        Err(e) => Err(custody_store::StoreError::Invalid(e)),
    };
    ctx.found(action, looked_up).await
}

pub(crate) async fn version(
    ctx: &Ctx,
    draft: &AuditDraft,
    model: &Model,
    label: &str,
) -> Result<ModelVersion, ApiError> {
    match ctx.store().model_version(model.id, label).await {
        Ok(v) => Ok(v),
        Err(e) if e.is_caller_error() => Err(ctx.refuse(draft.clone(), e.into()).await),
        Err(e) => Err(ctx.store_error(e)),
    }
}

/// Register a model in a project.
#[utoipa::path(post, path = "/api/v1/projects/{project}/models", tag = "models", request_body = NewModel,
    params(("project" = String, Path)), responses((status = 201, body = Model), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn register(
    ctx: Ctx,
    Path(project): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Model>), ApiError> {
    let project = projects::load(&ctx, Action::ModelRegister, &project).await?;
    let draft = ctx.authorize(Action::ModelRegister, ResourceFacts::Project { name: project.name.clone() }).await?;
    let new: NewModel = ctx.parse(&draft, body).await?;
    if let Err(e) = new.validate() {
        return Err(ctx.refuse(draft, e.into()).await);
    }
    let by = ctx.principal.id.clone();
    let result = ctx.store().register_model(draft.clone(), &project, new, by).await;
    let ((m, _), _) = ctx.checked(draft, result).await?;
    Ok((StatusCode::CREATED, Json(m)))
}

/// Read a model with its versions.
#[utoipa::path(get, path = "/api/v1/models/{id}", tag = "models", params(("id" = String, Path)),
    responses((status = 200, body = ModelView)))]
pub(crate) async fn get(ctx: Ctx, Path(id): Path<String>) -> Result<Json<ModelView>, ApiError> {
    let m = load(&ctx, Action::ModelRead, &id).await?;
    let draft = ctx.authorize(Action::ModelRead, facts(&m)).await?;
    let versions = ctx.store().model_versions(m.id).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(ModelView { model: m, versions }))
}

/// A model with its versions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ModelView {
    model: Model,
    versions: Vec<ModelVersion>,
}

/// Trust a public key to sign the project's models (project administrators).
#[utoipa::path(post, path = "/api/v1/projects/{project}/signers", tag = "models", request_body = NewTrustedSigner,
    params(("project" = String, Path)), responses((status = 201, body = TrustedSigner)))]
pub(crate) async fn add_signer(
    ctx: Ctx,
    Path(project): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<TrustedSigner>), ApiError> {
    let project = projects::load(&ctx, Action::ModelSignerManage, &project).await?;
    let draft = ctx.authorize(Action::ModelSignerManage, ResourceFacts::Project { name: project.name.clone() }).await?;
    let new: NewTrustedSigner = ctx.parse(&draft, body).await?;
    let key = match PublicKey::from_pem(new.public_key.as_bytes(), "public_key") {
        Ok(k) => k,
        Err(e) => return Err(ctx.refuse(draft, ApiError::invalid("public_key", e.to_string())).await),
    };
    let signer = TrustedSigner {
        project: project.name.clone(),
        name: new.name,
        hint: key.hint(),
        public_key: key.to_pem(),
        added_by: ctx.principal.id.clone(),
        added_at: custody_core::now(),
    };
    let result = ctx.store().add_trusted_signer(draft.clone(), &project, signer).await;
    let ((s, _), _) = ctx.checked(draft, result).await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// The keys a project trusts.
#[utoipa::path(get, path = "/api/v1/projects/{project}/signers", tag = "models", params(("project" = String, Path)),
    responses((status = 200, body = Vec<TrustedSigner>)))]
pub(crate) async fn signers(ctx: Ctx, Path(project): Path<String>) -> Result<Json<Vec<TrustedSigner>>, ApiError> {
    let project = projects::load(&ctx, Action::ProjectRead, &project).await?;
    let draft = ctx.authorize(Action::ProjectRead, ResourceFacts::Project { name: project.name.clone() }).await?;
    let list = ctx.store().trusted_signers(project.id, &project.name).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(list))
}

/// The keys `m`'s project trusts, read once per request.
async fn trusted_signers(ctx: &Ctx, m: &Model) -> Result<Vec<TrustedSigner>, ApiError> {
    ctx.store().trusted_signers(m.project_id, &m.project).await.map_err(|e| ctx.store_error(e))
}

/// The trusted key a bundle names, with its hint; `field` names the bundle in errors.
fn trusted_key(
    trusted: &[TrustedSigner],
    m: &Model,
    bundle: &Bundle,
    field: &str,
) -> Result<(String, PublicKey), ApiError> {
    let hint = bundle.verification_material.public_key.as_ref().and_then(|k| k.hint.clone()).ok_or_else(|| {
        ApiError::invalid(
            format!("{field}.verificationMaterial.publicKey.hint"),
            "names no key; re-sign with a key hint",
        )
    })?;
    let signer = trusted.iter().find(|s| s.hint == hint).ok_or_else(|| {
        ApiError::invalid(field, format!("signed by key {hint}, which project `{}` does not trust", m.project))
    })?;
    let key = PublicKey::from_pem(signer.public_key.as_bytes(), "trusted signer")
        .map_err(|e| ApiError::invalid(field, e.to_string()))?;
    Ok((hint, key))
}

/// Opens an OMS bundle with the trusted key it names and reads its manifest's root.
fn signed_root(
    trusted: &[TrustedSigner],
    m: &Model,
    bundle: &Bundle,
) -> Result<(custody_provenance::SignedManifest, String), ApiError> {
    let (hint, key) = trusted_key(trusted, m, bundle, "signature")?;
    let statement = bundle.open(&key).map_err(|e| ApiError::invalid("signature", e.to_string()))?;
    let signed = manifest_from_statement(&statement).map_err(|e| ApiError::invalid("signature", e.to_string()))?;
    Ok((signed, hint))
}

/// Reads the provenance bundle: signed by a trusted key, about this root digest; each dataset
/// dependency is looked up among the project's registered versions.
async fn provenance(
    ctx: &Ctx,
    m: &Model,
    trusted: &[TrustedSigner],
    value: &serde_json::Value,
    root: &Sha256Digest,
) -> Result<(ProvenanceSummary, String), ApiError> {
    let text = value.to_string();
    let bundle = Bundle::from_json(text.as_bytes()).map_err(|e| ApiError::invalid("provenance", e.to_string()))?;
    let (hint, key) = trusted_key(trusted, m, &bundle, "provenance")?;
    let statement = slsa::open_provenance(&bundle, &key).map_err(|e| ApiError::invalid("provenance", e.to_string()))?;
    let hex_root = hex::encode(root.as_bytes());
    if !statement.subject.iter().any(|s| s.digest.get("sha256") == Some(&hex_root)) {
        return Err(ApiError::invalid("provenance", format!("its subjects do not include this version's root {root}")));
    }
    let p = statement.predicate;
    let mut summary = ProvenanceSummary {
        run_id: p.run_details.metadata.invocation_id.clone(),
        builder: p.run_details.builder.id.clone(),
        job: p.build_definition.external_parameters.get("job").and_then(|j| j.as_str()).map(str::to_owned),
        code_commit: None,
        image_digest: None,
        datasets: Vec::new(),
        signer_hint: hint,
    };
    for dep in &p.build_definition.resolved_dependencies {
        match dep.name.as_deref() {
            Some("code") => summary.code_commit = dep.digest.get("gitCommit").cloned(),
            Some("image") => summary.image_digest = dep.digest.get("sha256").map(|d| format!("sha256:{d}")),
            Some("base-model") => {}
            _ => {
                let Some(digest) = dep.digest.get("sha256").and_then(|d| Sha256Digest::parse(d).ok()) else {
                    return Err(ApiError::invalid("provenance", "a dataset dependency has no SHA-256 digest"));
                };
                let found = ctx
                    .store()
                    .dataset_version_by_digest(m.project_id, &digest)
                    .await
                    .map_err(|e| ctx.store_error(e))?;
                summary.datasets.push(DatasetDependency {
                    uri: dep.uri.clone().unwrap_or_default(),
                    digest,
                    dataset_version: found,
                });
            }
        }
    }
    Ok((summary, text))
}

/// Register a signed version of a model: the OMS bundle must be signed by a key the project
/// trusts; the version is bound to the statement's root digest and can never be overwritten.
#[utoipa::path(post, path = "/api/v1/models/{id}/versions", tag = "models", request_body = NewModelVersion,
    params(("id" = String, Path)), responses((status = 201, body = ModelVersion), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn add_version(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<ModelVersion>), ApiError> {
    let m = load(&ctx, Action::ModelVersionCreate, &id).await?;
    let draft = ctx.authorize(Action::ModelVersionCreate, facts(&m)).await?;
    let new: NewModelVersion = ctx.parse(&draft, body).await?;
    match version_draft(&ctx, &m, new).await {
        Ok(v) => {
            let by = ctx.principal.id.clone();
            let result = ctx.store().add_model_version(draft.clone(), &m, v, by).await;
            let ((mv, _), _) = ctx.checked(draft, result).await?;
            Ok((StatusCode::CREATED, Json(mv)))
        }
        Err(e) => Err(ctx.refuse(draft, e).await),
    }
}

async fn version_draft(ctx: &Ctx, m: &Model, new: NewModelVersion) -> Result<VersionDraft, ApiError> {
    let trusted = trusted_signers(ctx, m).await?;
    let text = new.signature.to_string();
    let bundle = Bundle::from_json(text.as_bytes()).map_err(|e| ApiError::invalid("signature", e.to_string()))?;
    let (signed, hint) = signed_root(&trusted, m, &bundle)?;
    if signed.legacy {
        return Err(ApiError::invalid("signature", "a legacy v0.1 statement has no root digest; re-sign the model"));
    }
    let root = Sha256Digest::from_bytes(signed.manifest.root_digest());
    let provenance = match &new.provenance {
        Some(p) => Some(provenance(ctx, m, &trusted, p, &root).await?),
        None => None,
    };
    let s = &signed.manifest.serialization;
    Ok(VersionDraft {
        version: new.version,
        root_digest: root,
        signer_hint: hint,
        signature: text,
        serialization: s.to_json(),
        resources: signed.manifest.resources.len() as u64,
        components: new.components,
        provenance,
    })
}

/// Read a model version.
#[utoipa::path(get, path = "/api/v1/models/{id}/versions/{label}", tag = "models",
    params(("id" = String, Path), ("label" = String, Path)), responses((status = 200, body = ModelVersion)))]
pub(crate) async fn get_version(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
) -> Result<Json<ModelVersion>, ApiError> {
    let m = load(&ctx, Action::ModelRead, &id).await?;
    let draft = ctx.authorize(Action::ModelRead, facts(&m)).await?;
    let v = version(&ctx, &draft, &m, &label).await?;
    ctx.record(draft).await?;
    Ok(Json(v))
}

/// The OMS bundle a version was registered with (verify offline with `custody verify`).
#[utoipa::path(get, path = "/api/v1/models/{id}/versions/{label}/signature", tag = "models",
    params(("id" = String, Path), ("label" = String, Path)), responses((status = 200, body = Object)))]
pub(crate) async fn signature(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let m = load(&ctx, Action::ModelRead, &id).await?;
    let draft = ctx.authorize(Action::ModelRead, facts(&m)).await?;
    let v = version(&ctx, &draft, &m, &label).await?;
    let (sig, _) = ctx.store().model_version_bundles(v.id).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    serde_json::from_str(&sig).map(Json).map_err(|_| ApiError::internal())
}

/// The manifest of the bundle `version` was registered with, opened under the key the project
/// trusts for it now (a conflict if that key is no longer trusted or the bundle no longer opens).
pub(crate) async fn stored_manifest(
    ctx: &Ctx,
    m: &Model,
    version: ModelVersionId,
) -> Result<custody_provenance::SignedManifest, ApiError> {
    let trusted = trusted_signers(ctx, m).await?;
    let (sig, _) = ctx.store().model_version_bundles(version).await.map_err(|e| ctx.store_error(e))?;
    let bundle = Bundle::from_json(sig.as_bytes()).map_err(|e| ApiError::conflict("signature", e.to_string()))?;
    let (signed, _) = signed_root(&trusted, m, &bundle).map_err(|e| ApiError::conflict("signature", e.message))?;
    Ok(signed)
}

/// Checks what a move needs beyond approvals: the signature still verifies under a key the
/// project still trusts, the latest scan is clean (unless `[registry] require_clean_scan` is
/// off; the store checks it again in the completing transaction), and the lineage evidence
/// the risk tier asks for is there.
async fn gates(ctx: &Ctx, m: &Model, v: &ModelVersion, to: Stage) -> Result<(), ApiError> {
    if to == Stage::Archived {
        return Ok(());
    }
    let signed = stored_manifest(ctx, m, v.id).await?;
    if Sha256Digest::from_bytes(signed.manifest.root_digest()) != v.root_digest {
        return Err(ApiError::conflict("signature", "the stored signature no longer matches the version's digest"));
    }
    if ctx.state.inner.registry.require_clean_scan && matches!(to, Stage::Staging | Stage::Production) {
        match ctx.store().clean_scan(v.id).await {
            Ok(_) => {}
            Err(e) if e.is_caller_error() => return Err(e.into()),
            Err(e) => return Err(ctx.store_error(e)),
        }
    }
    match (m.risk_tier, &v.provenance) {
        (RiskTier::Low, _) => Ok(()),
        (RiskTier::Medium, Some(_)) => Ok(()),
        (RiskTier::High, Some(p)) if p.fully_traced() => Ok(()),
        (RiskTier::High, Some(_)) => Err(ApiError::conflict(
            "provenance",
            "a high-risk model needs every training dataset traced to a registered, digested dataset version",
        )),
        (tier, None) => {
            Err(ApiError::conflict("provenance", format!("a {tier}-risk model needs signed training provenance")))
        }
    }
}

/// Ask for a version to move to another stage. It moves at once when the policies need no
/// approval for the move (archiving); otherwise when the approvals arrive.
#[utoipa::path(post, path = "/api/v1/models/{id}/versions/{label}/promotions", tag = "models", request_body = NewPromotion,
    params(("id" = String, Path), ("label" = String, Path)), responses((status = 201, body = Promotion), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn request_promotion(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Promotion>), ApiError> {
    let m = load(&ctx, Action::ModelPromotionRequest, &id).await?;
    let draft = ctx.authorize(Action::ModelPromotionRequest, facts(&m)).await?;
    let new: NewPromotion = ctx.parse(&draft, body).await?;
    if let Err(e) = new.validate() {
        return Err(ctx.refuse(draft, e.into()).await);
    }
    let v = version(&ctx, &draft, &m, &label).await?;
    if let Err(e) = gates(&ctx, &m, &v, new.to).await {
        return Err(ctx.refuse(draft, e).await);
    }
    let by = ctx.principal.id.clone();
    let request = PromotionRequest { to: new.to, reason: new.reason, ticket: ctx.ticket.clone(), by };
    let result = ctx.store().request_promotion(draft.clone(), &m, &v, request).await;
    let ((p, _), _) = ctx.checked(draft, result).await?;
    let p = try_complete(&ctx, &m, p).await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// Carries out `p` if the policies now allow it (their count of approvals) and the gates
/// hold; otherwise leaves it pending.
async fn try_complete(ctx: &Ctx, m: &Model, p: Promotion) -> Result<Promotion, ApiError> {
    let facts = promotion_facts(&p);
    if p.status != PromotionStatus::Pending || !ctx.allows(Action::ModelPromotionComplete, &facts) {
        return Ok(p);
    }
    let draft = ctx.authorize(Action::ModelPromotionComplete, facts).await?;
    let v = ctx.store().model_version(m.id, p.version.as_str()).await.map_err(|e| ctx.store_error(e))?;
    if let Err(e) = gates(ctx, m, &v, p.to).await {
        return Err(ctx.refuse(draft, e).await);
    }
    let require_scan = ctx.state.inner.registry.require_clean_scan;
    let result = ctx.store().complete_promotion(draft.clone(), p.id, ctx.principal.id.clone(), require_scan).await;
    let (((p, _), _), _) = ctx.checked(draft, result).await?;
    Ok(p)
}

async fn load_promotion(ctx: &Ctx, action: Action, id: &str) -> Result<(Promotion, Model), ApiError> {
    let looked_up = match PromotionId::parse(id) {
        Ok(id) => ctx.store().promotion(id).await,
        Err(e) => Err(custody_store::StoreError::Invalid(e)),
    };
    let p = ctx.found(action, looked_up).await?;
    let v = ctx.store().model_version_by_id(p.model_version_id).await.map_err(|e| ctx.store_error(e))?;
    let m = ctx.store().model(v.model_id).await.map_err(|e| ctx.store_error(e))?;
    Ok((p, m))
}

/// Read a promotion and its approvals.
#[utoipa::path(get, path = "/api/v1/promotions/{id}", tag = "models", params(("id" = String, Path)),
    responses((status = 200, body = Promotion)))]
pub(crate) async fn get_promotion(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Promotion>, ApiError> {
    let (p, m) = load_promotion(&ctx, Action::ModelRead, &id).await?;
    let draft = ctx.authorize(Action::ModelRead, facts(&m)).await?;
    ctx.record(draft).await?;
    Ok(Json(p))
}

/// The body of an approval.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalBody {
    /// Why.
    comment: String,
}

/// Approve a promotion; it completes when the policies' count of approvals is reached.
#[utoipa::path(post, path = "/api/v1/promotions/{id}/approvals", tag = "models", request_body = ApprovalBody,
    params(("id" = String, Path)), responses((status = 200, body = Promotion), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn approve(
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<JsonBody, ApiError>,
) -> Result<Json<Promotion>, ApiError> {
    let (p, m) = load_promotion(&ctx, Action::ModelPromotionApprove, &id).await?;
    let draft = ctx.authorize(Action::ModelPromotionApprove, promotion_facts(&p)).await?;
    let body: ApprovalBody = ctx.parse(&draft, body).await?;
    if body.comment.trim().is_empty() || body.comment.chars().count() > 2000 {
        return Err(ctx.refuse(draft, ApiError::invalid("comment", "must be 1 to 2000 characters")).await);
    }
    let result = ctx.store().approve_promotion(draft.clone(), p.id, ctx.principal.id.clone(), body.comment).await;
    let ((p, _), _) = ctx.checked(draft, result).await?;
    Ok(Json(try_complete(&ctx, &m, p).await?))
}

/// A version's immutable stage history.
#[utoipa::path(get, path = "/api/v1/models/{id}/versions/{label}/history", tag = "models",
    params(("id" = String, Path), ("label" = String, Path)), responses((status = 200, body = Vec<StageChange>)))]
pub(crate) async fn history(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
) -> Result<Json<Vec<StageChange>>, ApiError> {
    let m = load(&ctx, Action::ModelRead, &id).await?;
    let draft = ctx.authorize(Action::ModelRead, facts(&m)).await?;
    let v = version(&ctx, &draft, &m, &label).await?;
    let h = ctx.store().stage_history(v.id).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(h))
}

/// Record a deployment: only of a version in staging or production, and only when what is
/// served hashes to the approved root digest.
#[utoipa::path(post, path = "/api/v1/models/{id}/versions/{label}/deployments", tag = "models", request_body = NewDeployment,
    params(("id" = String, Path), ("label" = String, Path)), responses((status = 201, body = Deployment), (status = 409, body = crate::error::ErrorBody)))]
pub(crate) async fn deploy(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
    body: Result<JsonBody, ApiError>,
) -> Result<(StatusCode, Json<Deployment>), ApiError> {
    let m = load(&ctx, Action::DeploymentRecord, &id).await?;
    let draft = ctx.authorize(Action::DeploymentRecord, facts(&m)).await?;
    let new: NewDeployment = ctx.parse(&draft, body).await?;
    if let Err(e) = new.validate() {
        return Err(ctx.refuse(draft, e.into()).await);
    }
    let v = version(&ctx, &draft, &m, &label).await?;
    if !matches!(v.stage, Stage::Staging | Stage::Production) {
        let e = ApiError::conflict(
            "stage",
            format!("version `{}` is in `{}`, not staging or production", v.version, v.stage),
        );
        return Err(ctx.refuse(draft, e).await);
    }
    if new.running_digest != v.root_digest {
        let e = ApiError::conflict(
            "running_digest",
            format!("what is served hashes to {}, not to the approved {}", new.running_digest, v.root_digest),
        );
        return Err(ctx.refuse(draft, e).await);
    }
    let result = ctx.store().record_deployment(draft.clone(), &v, new, ctx.principal.id.clone()).await;
    let ((d, _), _) = ctx.checked(draft, result).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// A model's deployments, newest first.
#[utoipa::path(get, path = "/api/v1/models/{id}/deployments", tag = "models", params(("id" = String, Path)),
    responses((status = 200, body = Vec<Deployment>)))]
pub(crate) async fn deployments(ctx: Ctx, Path(id): Path<String>) -> Result<Json<Vec<Deployment>>, ApiError> {
    let m = load(&ctx, Action::ModelRead, &id).await?;
    let draft = ctx.authorize(Action::ModelRead, facts(&m)).await?;
    let list = ctx.store().deployments(m.id).await.map_err(|e| ctx.store_error(e))?;
    ctx.record(draft).await?;
    Ok(Json(list))
}

/// Which approval to prove.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalProofQuery {
    /// The stage the approval moved the version into (default production).
    stage: Option<Stage>,
}

/// The audit record of a version's newest approval into a stage, with what proves it offline.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ApprovalProof {
    /// The successful `model.promotion.complete` record, as the log's JSON export holds it:
    /// its details name the model, version, stage, approvers, root digest and signer's key hint.
    record: custody_core::AuditEvent,
    /// The tree size the proof is against: the newest signed checkpoint's.
    size: u64,
    /// Hex audit path from the record's leaf to that checkpoint's root.
    inclusion_proof: Vec<String>,
    /// The signed checkpoint (C2SP signed note).
    checkpoint: String,
    /// The log's verifier key as this server states it; a verifier should take the key from
    /// elsewhere.
    log_key: String,
}

/// The proof that a version was approved into a stage: the approval's audit record, its
/// inclusion proof and the signed checkpoint it is proven against (what an edge bundle
/// carries). Readable by whoever may read the model, without access to the rest of the log.
#[utoipa::path(get, path = "/api/v1/models/{id}/versions/{label}/approval-proof", tag = "models",
    params(("id" = String, Path), ("label" = String, Path), ApprovalProofQuery),
    responses((status = 200, body = ApprovalProof), (status = 404, body = crate::error::ErrorBody)))]
pub(crate) async fn approval_proof(
    ctx: Ctx,
    Path((id, label)): Path<(String, String)>,
    q: Result<axum::extract::Query<ApprovalProofQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ApprovalProof>, ApiError> {
    let m = load(&ctx, Action::ModelRead, &id).await?;
    let draft = ctx.authorize(Action::ModelRead, facts(&m)).await?;
    let stage = ctx.query(&draft, "query", q).await?.stage.unwrap_or(Stage::Production);
    let v = version(&ctx, &draft, &m, &label).await?;
    let store = ctx.store();
    let history = store.stage_history(v.id).await.map_err(|e| ctx.store_error(e))?;
    let Some(change) = history.iter().rev().find(|h| h.to == stage) else {
        let err = ApiError::not_found("stage", format!("version {} was never approved into {stage}", v.version));
        return Err(ctx.refuse(draft, err).await);
    };
    let query = custody_store::AuditQuery {
        limit: 1,
        action: Some(Action::ModelPromotionComplete.as_str().to_owned()),
        project: Some(m.project.clone()),
        resource: Some(format!("promotion:{}", change.promotion)),
        outcome: Some("success".to_owned()),
        ..Default::default()
    };
    let record = store.audit_events(&query).await.map_err(|e| ctx.store_error(e))?.into_iter().next();
    let checkpoint = store.audit_latest_checkpoint().await.map_err(|e| ctx.store_error(e))?;
    let (record, checkpoint) = match (record, checkpoint) {
        (Some(r), Some(c)) if c.size > r.seq => (r, c),
        (Some(r), _) => {
            let err = ApiError::unavailable(format!(
                "audit record {} is not yet covered by a signed checkpoint; try again shortly",
                r.seq
            ));
            return Err(ctx.refuse(draft, err).await);
        }
        (None, _) => {
            let reason = format!("promotion {} completed without its audit record", change.promotion);
            return Err(ctx.store_error(custody_store::StoreError::Corrupt { what: "audit log", reason }));
        }
    };
    let (p, draft) = ctx.checked(draft, store.audit_inclusion(record.seq, checkpoint.size).await).await?;
    ctx.record(draft).await?;
    Ok(Json(ApprovalProof {
        record,
        size: p.size,
        inclusion_proof: p.proof.iter().map(hex::encode).collect(),
        checkpoint: checkpoint.note,
        log_key: ctx.state.inner.log_key.verifier_key(),
    }))
}

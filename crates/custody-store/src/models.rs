//! The model registry: models, trusted signers, signed versions, promotions and their
//! approvals, the stage history and deployments.

use crate::rows::{self, micros};
use crate::{Store, StoreError};
use custody_core::{
    AuditDraft, AuditEvent, Component, DatasetVersionId, Deployment, DeploymentId, Model, ModelId, ModelVersion,
    ModelVersionId, Name, NewDeployment, NewModel, Project, ProjectId, Promotion, PromotionApproval, PromotionId,
    PromotionStatus, ProvenanceSummary, ResourceRef, Sha256Digest, Stage, StageChange, TrustedSigner, VersionLabel,
};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

const MODEL_SELECT: &str = "SELECT m.*, p.name AS project_name FROM models m JOIN projects p ON p.id = m.project_id";
const VERSION_SELECT: &str = "SELECT v.*, m.name AS model_name, p.name AS project_name FROM model_versions v \
     JOIN models m ON m.id = v.model_id JOIN projects p ON p.id = m.project_id";

/// A model version about to be registered, its signature already verified by the caller.
#[derive(Debug, Clone)]
pub struct VersionDraft {
    /// The label.
    pub version: VersionLabel,
    /// The manifest's root digest.
    pub root_digest: Sha256Digest,
    /// The signer's key hint.
    pub signer_hint: String,
    /// The OMS bundle, as JSON text.
    pub signature: String,
    /// The OMS serialization record.
    pub serialization: serde_json::Value,
    /// How many resources.
    pub resources: u64,
    /// Named components.
    pub components: Vec<Component>,
    /// What the provenance says, and the bundle it came from.
    pub provenance: Option<(ProvenanceSummary, String)>,
}

/// Who asks for which move, why, under which change ticket.
#[derive(Debug, Clone)]
pub struct PromotionRequest {
    /// The stage asked for.
    pub to: Stage,
    /// Why.
    pub reason: String,
    /// The change ticket, if given.
    pub ticket: Option<String>,
    /// Who asks.
    pub by: String,
}

impl Store {
    /// Registers a model in `project`.
    pub async fn register_model(
        &self,
        draft: AuditDraft,
        project: &Project,
        new: NewModel,
        by: String,
    ) -> Result<(Model, AuditEvent), StoreError> {
        new.validate()?;
        let (project_id, project_name) = (project.id, project.name.clone());
        self.write(draft, move |conn, draft| {
            let (project_name, new, by) = (project_name.clone(), new.clone(), by.clone());
            Box::pin(async move {
                let exists = sqlx::query("SELECT 1 FROM models WHERE project_id = $1 AND name = $2")
                    .bind(project_id.to_string())
                    .bind(new.name.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                if exists.is_some() {
                    return Err(StoreError::conflict(
                        "name",
                        format!("project `{project_name}` already has a model named `{}`", new.name),
                    ));
                }
                let m = Model {
                    id: ModelId::new(),
                    project_id,
                    project: project_name,
                    name: new.name,
                    risk_tier: new.risk_tier,
                    owner: new.owner.unwrap_or_else(|| by.clone()),
                    description: new.description,
                    created_by: by,
                    created_at: custody_core::now(),
                };
                sqlx::query(
                    "INSERT INTO models (id, project_id, name, risk_tier, owner, description, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(m.id.to_string())
                .bind(m.project_id.to_string())
                .bind(m.name.as_str())
                .bind(m.risk_tier.as_str())
                .bind(&m.owner)
                .bind(&m.description)
                .bind(&m.created_by)
                .bind(micros(m.created_at))
                .execute(&mut *conn)
                .await?;
                draft.resource = ResourceRef::new("model", m.id);
                draft.details = serde_json::json!({ "name": m.name, "risk_tier": m.risk_tier, "owner": m.owner });
                Ok(m)
            })
        })
        .await
    }

    /// The model with `id`.
    pub async fn model(&self, id: ModelId) -> Result<Model, StoreError> {
        sqlx::query(&format!("{MODEL_SELECT} WHERE m.id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(model_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::not_found("model", id))
    }

    /// The models of a project, by name.
    pub async fn models(&self, project: &Project) -> Result<Vec<Model>, StoreError> {
        sqlx::query(&format!("{MODEL_SELECT} WHERE m.project_id = $1 ORDER BY m.name"))
            .bind(project.id.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(model_from_row)
            .collect()
    }

    /// Adds a key the project trusts to sign its models.
    pub async fn add_trusted_signer(
        &self,
        draft: AuditDraft,
        project: &Project,
        signer: TrustedSigner,
    ) -> Result<(TrustedSigner, AuditEvent), StoreError> {
        let project_id = project.id;
        self.write(draft, move |conn, draft| {
            let s = signer.clone();
            Box::pin(async move {
                let exists = sqlx::query("SELECT 1 FROM trusted_signers WHERE project_id = $1 AND hint = $2")
                    .bind(project_id.to_string())
                    .bind(&s.hint)
                    .fetch_optional(&mut *conn)
                    .await?;
                if exists.is_some() {
                    return Err(StoreError::conflict("public_key", format!("the key {} is already trusted", s.hint)));
                }
                sqlx::query(
                    "INSERT INTO trusted_signers (project_id, hint, name, public_key, added_by, added_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(project_id.to_string())
                .bind(&s.hint)
                .bind(s.name.as_str())
                .bind(&s.public_key)
                .bind(&s.added_by)
                .bind(micros(s.added_at))
                .execute(&mut *conn)
                .await?;
                draft.details = serde_json::json!({ "signer": s.name, "hint": s.hint });
                Ok(s)
            })
        })
        .await
    }

    /// The keys the project `project_id` (named `project`) trusts.
    pub async fn trusted_signers(
        &self,
        project_id: ProjectId,
        project: &Name,
    ) -> Result<Vec<TrustedSigner>, StoreError> {
        sqlx::query("SELECT * FROM trusted_signers WHERE project_id = $1 ORDER BY name")
            .bind(project_id.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| signer_from_row(r, project))
            .collect()
    }

    /// The registered dataset version of the project whose content has `digest`, if any.
    pub async fn dataset_version_by_digest(
        &self,
        project_id: ProjectId,
        digest: &Sha256Digest,
    ) -> Result<Option<DatasetVersionId>, StoreError> {
        let row = sqlx::query(
            "SELECT v.id FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id \
             WHERE d.project_id = $1 AND v.digest = $2 ORDER BY v.created_at LIMIT 1",
        )
        .bind(project_id.to_string())
        .bind(digest.to_string())
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| rows::parsed::<DatasetVersionId>(&r, "id")).transpose()
    }

    /// Registers a signed version of `model` (its label must be new). It starts in development.
    pub async fn add_model_version(
        &self,
        draft: AuditDraft,
        model: &Model,
        v: VersionDraft,
        by: String,
    ) -> Result<(ModelVersion, AuditEvent), StoreError> {
        let model = model.clone();
        self.write(draft, move |conn, draft| {
            let (model, v, by) = (model.clone(), v.clone(), by.clone());
            Box::pin(async move {
                let exists = sqlx::query("SELECT 1 FROM model_versions WHERE model_id = $1 AND version = $2")
                    .bind(model.id.to_string())
                    .bind(v.version.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
                if exists.is_some() {
                    return Err(StoreError::conflict(
                        "version",
                        format!("model `{}` already has a version `{}`; versions are never overwritten", model.name, v.version),
                    ));
                }
                let mv = ModelVersion {
                    id: ModelVersionId::new(),
                    model_id: model.id,
                    project: model.project.clone(),
                    model: model.name.clone(),
                    version: v.version,
                    root_digest: v.root_digest,
                    signer_hint: v.signer_hint,
                    serialization: v.serialization,
                    resources: v.resources,
                    components: v.components,
                    provenance: v.provenance.as_ref().map(|(p, _)| p.clone()),
                    stage: Stage::Development,
                    created_by: by,
                    created_at: custody_core::now(),
                };
                sqlx::query(
                    "INSERT INTO model_versions (id, model_id, version, root_digest, signer_hint, signature, \
                     serialization, resources, components, provenance, provenance_bundle, stage, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(mv.id.to_string())
                .bind(mv.model_id.to_string())
                .bind(mv.version.as_str())
                .bind(mv.root_digest.to_string())
                .bind(&mv.signer_hint)
                .bind(&v.signature)
                .bind(rows::to_json("serialization", &mv.serialization)?)
                .bind(i64::try_from(mv.resources).unwrap_or(i64::MAX))
                .bind(rows::to_json("components", &mv.components)?)
                .bind(mv.provenance.as_ref().map(|p| rows::to_json("provenance", p)).transpose()?)
                .bind(v.provenance.as_ref().map(|(_, b)| b.clone()))
                .bind(mv.stage.as_str())
                .bind(&mv.created_by)
                .bind(micros(mv.created_at))
                .execute(&mut *conn)
                .await?;
                // The lineage graph shows registered model versions and deployments.
                crate::lineage::bump_context_of(conn, crate::lineage::Owner::Model, &model.id.to_string()).await?;
                draft.details = serde_json::json!({
                    "model": mv.model, "version": mv.version, "root_digest": mv.root_digest,
                    "signer_hint": mv.signer_hint, "resources": mv.resources,
                    "provenance_run": mv.provenance.as_ref().map(|p| &p.run_id),
                });
                Ok(mv)
            })
        })
        .await
    }

    /// A model's version by label.
    pub async fn model_version(&self, model: ModelId, label: &str) -> Result<ModelVersion, StoreError> {
        sqlx::query(&format!("{VERSION_SELECT} WHERE v.model_id = $1 AND v.version = $2"))
            .bind(model.to_string())
            .bind(label)
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(version_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::not_found("model version", label))
    }

    /// A model version by id.
    pub async fn model_version_by_id(&self, id: ModelVersionId) -> Result<ModelVersion, StoreError> {
        sqlx::query(&format!("{VERSION_SELECT} WHERE v.id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(version_from_row)
            .transpose()?
            .ok_or_else(|| StoreError::not_found("model version", id))
    }

    /// A version's signature bundle and provenance bundle, as registered.
    pub async fn model_version_bundles(&self, id: ModelVersionId) -> Result<(String, Option<String>), StoreError> {
        let row = sqlx::query("SELECT signature, provenance_bundle FROM model_versions WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?
            .ok_or_else(|| StoreError::not_found("model version", id))?;
        Ok((rows::text(&row, "signature")?, rows::opt_text(&row, "provenance_bundle")?))
    }

    /// A model's versions, oldest first.
    pub async fn model_versions(&self, model: ModelId) -> Result<Vec<ModelVersion>, StoreError> {
        sqlx::query(&format!("{VERSION_SELECT} WHERE v.model_id = $1 ORDER BY v.created_at, v.id"))
            .bind(model.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(version_from_row)
            .collect()
    }

    /// Opens a promotion of `version` to `to` (one pending promotion per version at a time).
    pub async fn request_promotion(
        &self,
        draft: AuditDraft,
        model: &Model,
        version: &ModelVersion,
        request: PromotionRequest,
    ) -> Result<(Promotion, AuditEvent), StoreError> {
        let (model, version) = (model.clone(), version.clone());
        self.write(draft, move |conn, draft| {
            let (model, version) = (model.clone(), version.clone());
            let PromotionRequest { to, reason, ticket, by } = request.clone();
            Box::pin(async move {
                let pending =
                    sqlx::query("SELECT id FROM promotions WHERE model_version_id = $1 AND status = 'pending'")
                        .bind(version.id.to_string())
                        .fetch_optional(&mut *conn)
                        .await?;
                if let Some(row) = pending {
                    let id = rows::text(&row, "id")?;
                    return Err(StoreError::conflict("to", format!("promotion {id} of this version is still pending")));
                }
                let current = current_stage(conn, version.id).await?;
                current.check_move(to)?;
                let p = Promotion {
                    id: PromotionId::new(),
                    model_version_id: version.id,
                    project: model.project.clone(),
                    model: model.name.clone(),
                    version: version.version.clone(),
                    risk_tier: model.risk_tier,
                    from: current,
                    to,
                    reason,
                    ticket,
                    requested_by: by,
                    requested_at: custody_core::now(),
                    status: PromotionStatus::Pending,
                    approvals: Vec::new(),
                    closed_at: None,
                };
                sqlx::query(
                    "INSERT INTO promotions (id, model_version_id, from_stage, to_stage, reason, ticket, requested_by, \
                     requested_at, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
                )
                .bind(p.id.to_string())
                .bind(p.model_version_id.to_string())
                .bind(p.from.as_str())
                .bind(p.to.as_str())
                .bind(&p.reason)
                .bind(&p.ticket)
                .bind(&p.requested_by)
                .bind(micros(p.requested_at))
                .execute(&mut *conn)
                .await?;
                draft.details = serde_json::json!({
                    "promotion": p.id, "version": p.version, "from": p.from, "to": p.to, "ticket": p.ticket,
                });
                Ok(p)
            })
        })
        .await
    }

    /// A promotion with its approvals.
    pub async fn promotion(&self, id: PromotionId) -> Result<Promotion, StoreError> {
        let mut conn = self.read.acquire().await?;
        promotion_by_id(&mut conn, id).await
    }

    /// Records `approver`'s approval (once per approver; never the requester's, which the
    /// policies refuse before this is called).
    pub async fn approve_promotion(
        &self,
        draft: AuditDraft,
        id: PromotionId,
        approver: String,
        comment: String,
    ) -> Result<(Promotion, AuditEvent), StoreError> {
        self.write(draft, move |conn, draft| {
            let (approver, comment) = (approver.clone(), comment.clone());
            Box::pin(async move {
                let p = promotion_by_id(conn, id).await?;
                if p.status != PromotionStatus::Pending {
                    return Err(StoreError::conflict("promotion", format!("promotion {id} is {}", p.status.as_str())));
                }
                if p.approvals.iter().any(|a| a.approver == approver) {
                    return Err(StoreError::conflict("approver", format!("{approver} already approved promotion {id}")));
                }
                sqlx::query(
                    "INSERT INTO promotion_approvals (promotion_id, approver, comment, approved_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(id.to_string())
                .bind(&approver)
                .bind(&comment)
                .bind(micros(custody_core::now()))
                .execute(&mut *conn)
                .await?;
                let p = promotion_by_id(conn, id).await?;
                draft.details = serde_json::json!({
                    "promotion": id, "version": p.version, "to": p.to, "approvals": p.approvals.len(), "comment": comment,
                });
                Ok(p)
            })
        })
        .await
    }

    /// Carries out a pending promotion: the version's stage moves (only if it is still where
    /// the promotion found it), the history gains its entry, the promotion closes.
    ///
    /// With `require_clean_scan`, a move into staging or production also needs the version's
    /// latest scan to be clean, read in this transaction, so a scan attached while the
    /// promotion was deciding cannot be missed; the record names that scan.
    pub async fn complete_promotion(
        &self,
        draft: AuditDraft,
        id: PromotionId,
        by: String,
        require_clean_scan: bool,
    ) -> Result<((Promotion, StageChange), AuditEvent), StoreError> {
        self.write(draft, move |conn, draft| {
            let by = by.clone();
            Box::pin(async move {
                let p = promotion_by_id(conn, id).await?;
                let scan = match require_clean_scan && matches!(p.to, Stage::Staging | Stage::Production) {
                    true => Some(crate::scans::clean_scan(conn, p.model_version_id).await?),
                    false => None,
                };
                let now = custody_core::now();
                let closed = sqlx::query(
                    "UPDATE promotions SET status = 'completed', closed_at = $1 WHERE id = $2 AND status = 'pending'",
                )
                .bind(micros(now))
                .bind(id.to_string())
                .execute(&mut *conn)
                .await?;
                if closed.rows_affected() != 1 {
                    return Err(StoreError::conflict("promotion", format!("promotion {id} is {}", p.status.as_str())));
                }
                let moved = sqlx::query("UPDATE model_versions SET stage = $1 WHERE id = $2 AND stage = $3")
                    .bind(p.to.as_str())
                    .bind(p.model_version_id.to_string())
                    .bind(p.from.as_str())
                    .execute(&mut *conn)
                    .await?;
                if moved.rows_affected() != 1 {
                    return Err(StoreError::conflict(
                        "promotion",
                        format!("the version left `{}` since promotion {id} was asked for", p.from),
                    ));
                }
                let change = StageChange {
                    model_version_id: p.model_version_id,
                    from: p.from,
                    to: p.to,
                    promotion: id,
                    changed_by: by,
                    approvers: p.approvals.iter().map(|a| a.approver.clone()).collect(),
                    changed_at: now,
                };
                sqlx::query(
                    "INSERT INTO stage_changes (id, model_version_id, from_stage, to_stage, promotion_id, changed_by, \
                     approvers, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                // A promotion moves a version at most once: its id names the change.
                .bind(id.to_string())
                .bind(change.model_version_id.to_string())
                .bind(change.from.as_str())
                .bind(change.to.as_str())
                .bind(id.to_string())
                .bind(&change.changed_by)
                .bind(rows::to_json("approvers", &change.approvers)?)
                .bind(micros(now))
                .execute(&mut *conn)
                .await?;
                // The record names the artifact, not only the promotion: an edge bundle proves
                // "this digest, signed by this key, was approved into this stage" from this one
                // record and its inclusion proof.
                let v = sqlx::query(&format!("{VERSION_SELECT} WHERE v.id = $1"))
                    .bind(p.model_version_id.to_string())
                    .fetch_one(&mut *conn)
                    .await?;
                let v = version_from_row(&v)?;
                draft.details = serde_json::json!({
                    "promotion": id, "model_id": v.model_id, "model": v.model, "version": p.version,
                    "from": p.from, "to": p.to, "approvers": change.approvers,
                    "root_digest": v.root_digest, "signer_hint": v.signer_hint, "scan": scan,
                });
                let p = promotion_by_id(conn, id).await?;
                Ok((p, change))
            })
        })
        .await
    }

    /// A version's stage history, oldest first.
    pub async fn stage_history(&self, version: ModelVersionId) -> Result<Vec<StageChange>, StoreError> {
        sqlx::query("SELECT * FROM stage_changes WHERE model_version_id = $1 ORDER BY changed_at, id")
            .bind(version.to_string())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok(StageChange {
                    model_version_id: rows::parsed(r, "model_version_id")?,
                    from: rows::parsed(r, "from_stage")?,
                    to: rows::parsed(r, "to_stage")?,
                    promotion: rows::parsed(r, "promotion_id")?,
                    changed_by: rows::text(r, "changed_by")?,
                    approvers: rows::json(r, "approvers")?,
                    changed_at: rows::time(r, "changed_at")?,
                })
            })
            .collect()
    }

    /// Records a deployment of `version`.
    pub async fn record_deployment(
        &self,
        draft: AuditDraft,
        version: &ModelVersion,
        new: NewDeployment,
        by: String,
    ) -> Result<(Deployment, AuditEvent), StoreError> {
        let version = version.clone();
        self.write(draft, move |conn, draft| {
            let (version, new, by) = (version.clone(), new.clone(), by.clone());
            Box::pin(async move {
                let d = Deployment {
                    id: DeploymentId::new(),
                    model_version_id: version.id,
                    project: version.project,
                    model: version.model,
                    version: version.version,
                    environment: new.environment,
                    endpoint: new.endpoint,
                    region: new.region,
                    running_digest: new.running_digest,
                    attestation: new.attestation,
                    deployed_by: by,
                    deployed_at: custody_core::now(),
                };
                sqlx::query(
                    "INSERT INTO deployments (id, model_version_id, environment, endpoint, region, running_digest, \
                     attestation, deployed_by, deployed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(d.id.to_string())
                .bind(d.model_version_id.to_string())
                .bind(d.environment.as_str())
                .bind(&d.endpoint)
                .bind(d.region.as_str())
                .bind(d.running_digest.to_string())
                .bind(rows::to_json("attestation", &d.attestation)?)
                .bind(&d.deployed_by)
                .bind(micros(d.deployed_at))
                .execute(&mut *conn)
                .await?;
                // The lineage graph shows registered model versions and deployments.
                crate::lineage::bump_context_of(conn, crate::lineage::Owner::ModelVersion, &version.id.to_string())
                    .await?;
                draft.region = Some(d.region.clone());
                draft.details = serde_json::json!({
                    "deployment": d.id, "version": d.version, "environment": d.environment, "endpoint": d.endpoint,
                    "running_digest": d.running_digest, "attestation": d.attestation,
                });
                Ok(d)
            })
        })
        .await
    }

    /// A model's deployments, newest first.
    pub async fn deployments(&self, model: ModelId) -> Result<Vec<Deployment>, StoreError> {
        sqlx::query(
            "SELECT d.*, v.version, m.name AS model_name, p.name AS project_name FROM deployments d \
             JOIN model_versions v ON v.id = d.model_version_id JOIN models m ON m.id = v.model_id \
             JOIN projects p ON p.id = m.project_id WHERE m.id = $1 ORDER BY d.deployed_at DESC, d.id",
        )
        .bind(model.to_string())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(Deployment {
                id: rows::parsed(r, "id")?,
                model_version_id: rows::parsed(r, "model_version_id")?,
                project: rows::parsed(r, "project_name")?,
                model: rows::parsed(r, "model_name")?,
                version: rows::parsed(r, "version")?,
                environment: rows::parsed(r, "environment")?,
                endpoint: rows::text(r, "endpoint")?,
                region: rows::parsed(r, "region")?,
                running_digest: rows::parsed(r, "running_digest")?,
                attestation: rows::json(r, "attestation")?,
                deployed_by: rows::text(r, "deployed_by")?,
                deployed_at: rows::time(r, "deployed_at")?,
            })
        })
        .collect()
    }
}

async fn current_stage(conn: &mut AnyConnection, id: ModelVersionId) -> Result<Stage, StoreError> {
    let row = sqlx::query("SELECT stage FROM model_versions WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::not_found("model version", id))?;
    rows::parsed(&row, "stage")
}

async fn promotion_by_id(conn: &mut AnyConnection, id: PromotionId) -> Result<Promotion, StoreError> {
    let row = sqlx::query(
        "SELECT pr.*, v.version, m.name AS model_name, m.risk_tier, p.name AS project_name FROM promotions pr \
         JOIN model_versions v ON v.id = pr.model_version_id JOIN models m ON m.id = v.model_id \
         JOIN projects p ON p.id = m.project_id WHERE pr.id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("promotion", id))?;
    let approvals =
        sqlx::query("SELECT * FROM promotion_approvals WHERE promotion_id = $1 ORDER BY approved_at, approver")
            .bind(id.to_string())
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| {
                Ok(PromotionApproval {
                    approver: rows::text(r, "approver")?,
                    comment: rows::text(r, "comment")?,
                    approved_at: rows::time(r, "approved_at")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Promotion {
        id,
        model_version_id: rows::parsed(&row, "model_version_id")?,
        project: rows::parsed(&row, "project_name")?,
        model: rows::parsed(&row, "model_name")?,
        version: rows::parsed(&row, "version")?,
        risk_tier: rows::parsed(&row, "risk_tier")?,
        from: rows::parsed(&row, "from_stage")?,
        to: rows::parsed(&row, "to_stage")?,
        reason: rows::text(&row, "reason")?,
        ticket: rows::opt_text(&row, "ticket")?,
        requested_by: rows::text(&row, "requested_by")?,
        requested_at: rows::time(&row, "requested_at")?,
        status: rows::parsed(&row, "status")?,
        approvals,
        closed_at: rows::opt_time(&row, "closed_at")?,
    })
}

fn model_from_row(r: &AnyRow) -> Result<Model, StoreError> {
    Ok(Model {
        id: rows::parsed(r, "id")?,
        project_id: rows::parsed(r, "project_id")?,
        project: rows::parsed(r, "project_name")?,
        name: rows::parsed(r, "name")?,
        risk_tier: rows::parsed(r, "risk_tier")?,
        owner: rows::text(r, "owner")?,
        description: rows::text(r, "description")?,
        created_by: rows::text(r, "created_by")?,
        created_at: rows::time(r, "created_at")?,
    })
}

fn version_from_row(r: &AnyRow) -> Result<ModelVersion, StoreError> {
    let provenance: Option<String> = r.try_get("provenance")?;
    Ok(ModelVersion {
        id: rows::parsed(r, "id")?,
        model_id: rows::parsed(r, "model_id")?,
        project: rows::parsed(r, "project_name")?,
        model: rows::parsed(r, "model_name")?,
        version: rows::parsed(r, "version")?,
        root_digest: rows::parsed(r, "root_digest")?,
        signer_hint: rows::text(r, "signer_hint")?,
        serialization: rows::json(r, "serialization")?,
        resources: u64::try_from(rows::int(r, "resources")?).unwrap_or(0),
        components: rows::json(r, "components")?,
        provenance: provenance
            .map(|p| serde_json::from_str(&p))
            .transpose()
            .map_err(|e| StoreError::Corrupt { what: "provenance", reason: e.to_string() })?,
        stage: rows::parsed(r, "stage")?,
        created_by: rows::text(r, "created_by")?,
        created_at: rows::time(r, "created_at")?,
    })
}

fn signer_from_row(r: &AnyRow, project: &Name) -> Result<TrustedSigner, StoreError> {
    Ok(TrustedSigner {
        project: project.clone(),
        name: rows::parsed(r, "name")?,
        hint: rows::text(r, "hint")?,
        public_key: rows::text(r, "public_key")?,
        added_by: rows::text(r, "added_by")?,
        added_at: rows::time(r, "added_at")?,
    })
}

//! Decisions of the built-in policies, data-driven; loading errors; the policy hash.

#![allow(clippy::unwrap_used, clippy::panic, reason = "test helpers fail loudly on bad fixtures")]

use custody_core::{
    Action, ApprovalId, Classification, DatasetId, Decision, Grant, ModelId, Name, Principal, PrincipalKind,
    ProjectScope, PromotionId, Region, RiskTier, Role, Stage,
};
use custody_policy::{AuthzRequest, PolicyEngine, PolicyError, RequestContext, ResourceFacts};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use time::macros::datetime;

const ME: &str = "oidc:tester";
const OTHER: &str = "oidc:someone-else";

fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PolicyEngine::builtin().unwrap())
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn region(s: &str) -> Region {
    Region::new(s).unwrap()
}

/// A principal `ME` with grants written `project:role` (`*:role` for every project).
fn who(grants: &[&str]) -> Principal {
    let grants = grants
        .iter()
        .map(|g| {
            let (scope, role) = g.split_once(':').unwrap();
            Grant { scope: ProjectScope::parse(scope).unwrap(), role: role.parse().unwrap() }
        })
        .collect();
    Principal { id: ME.into(), kind: PrincipalKind::User, grants, restricted_access: vec![], allowed_regions: None }
}

fn with_access(mut p: Principal, dataset: DatasetId) -> Principal {
    p.restricted_access.push(dataset);
    p
}

fn limited_to(mut p: Principal, regions: &[&str]) -> Principal {
    p.allowed_regions = Some(regions.iter().map(|r| region(r)).collect());
    p
}

/// The restricted dataset of the tests (its id is fixed so grants can name it).
fn restricted_id() -> DatasetId {
    DatasetId::parse("01900000-0000-7000-8000-000000000003").unwrap()
}

fn dataset_in(project: &str, classification: Classification, region_name: &str, owner: &str) -> ResourceFacts {
    let id = if classification == Classification::Restricted {
        restricted_id()
    } else {
        DatasetId::parse("01900000-0000-7000-8000-000000000001").unwrap()
    };
    ResourceFacts::Dataset {
        id,
        project: name(project),
        classification,
        region: region(region_name),
        owner: owner.into(),
    }
}

/// An internal dataset in `fraud`, in `eu-west-1`, owned by someone else.
fn ds() -> ResourceFacts {
    dataset_in("fraud", Classification::Internal, "eu-west-1", OTHER)
}

fn restricted() -> ResourceFacts {
    dataset_in("fraud", Classification::Restricted, "eu-west-1", OTHER)
}

fn owned() -> ResourceFacts {
    dataset_in("fraud", Classification::Confidential, "eu-west-1", ME)
}

fn project(p: &str) -> ResourceFacts {
    ResourceFacts::Project { name: name(p) }
}

fn approval(p: &str, requested_by: &str) -> ResourceFacts {
    ResourceFacts::Approval { id: ApprovalId::new(), project: name(p), requested_by: requested_by.into() }
}

fn model(risk: RiskTier) -> ResourceFacts {
    ResourceFacts::Model { id: ModelId::new(), project: name("fraud"), risk_tier: risk, owner: OTHER.into() }
}

fn promotion(risk: RiskTier, to: Stage, approvals: u32, requested_by: &str) -> ResourceFacts {
    ResourceFacts::Promotion {
        id: PromotionId::new(),
        project: name("fraud"),
        risk_tier: risk,
        to,
        approvals,
        requested_by: requested_by.into(),
    }
}

fn token(p: Option<&str>) -> ResourceFacts {
    ResourceFacts::Token { id: None, project: p.map(name) }
}

fn audit(p: Option<&str>) -> ResourceFacts {
    ResourceFacts::AuditLog { project: p.map(name) }
}

/// Monday 2024-06-03, 10:00 UTC, no ticket.
fn ctx() -> RequestContext {
    RequestContext::at(datetime!(2024-06-03 10:00 UTC))
}

fn ticket() -> RequestContext {
    RequestContext { ticket: Some("CHG-1234".into()), ..ctx() }
}

/// A resource each action applies to, in project `fraud`.
fn resource_for(action: Action) -> ResourceFacts {
    match action {
        Action::ProjectCreate | Action::KeyManage => ResourceFacts::Platform,
        Action::ProjectRead
        | Action::DatasetRegister
        | Action::KeyUseRead
        | Action::LineageWrite
        | Action::LineageRead
        | Action::LineageTransformDeclare
        | Action::LineageTransformApprove
        | Action::LineageErase => project("fraud"),
        Action::ApprovalRead | Action::ApprovalDecide => approval("fraud", OTHER),
        Action::TokenCreate | Action::TokenRead | Action::TokenRevoke => token(Some("fraud")),
        Action::AuditRead => audit(Some("fraud")),
        Action::ModelRegister | Action::ModelSignerManage => project("fraud"),
        Action::ModelRead
        | Action::ModelVersionCreate
        | Action::ModelPromotionRequest
        | Action::DeploymentRecord
        | Action::ModelScanAttach => model(RiskTier::High),
        Action::ModelPromotionApprove | Action::ModelPromotionComplete => {
            promotion(RiskTier::High, Stage::Production, 2, OTHER)
        }
        _ => ds(),
    }
}

struct Case {
    what: &'static str,
    principal: Principal,
    action: Action,
    resource: ResourceFacts,
    context: RequestContext,
    allow: bool,
    /// A policy that must be among the determining ones.
    by: Option<&'static str>,
}

fn allow(what: &'static str, principal: Principal, action: Action, resource: ResourceFacts) -> Case {
    Case { what, principal, action, resource, context: ctx(), allow: true, by: None }
}

fn deny(what: &'static str, principal: Principal, action: Action, resource: ResourceFacts) -> Case {
    Case { allow: false, ..allow(what, principal, action, resource) }
}

impl Case {
    fn by(mut self, policy: &'static str) -> Self {
        self.by = Some(policy);
        self
    }
    fn ctx(mut self, context: RequestContext) -> Self {
        self.context = context;
        self
    }
}

fn cases() -> Vec<Case> {
    use Action::*;
    let viewer = || who(&["fraud:viewer"]);
    let scientist = || who(&["fraud:data-scientist"]);
    let engineer = || who(&["fraud:ml-engineer"]);
    let approver = || who(&["fraud:approver"]);
    let auditor = || who(&["fraud:auditor"]);
    let admin = || who(&["fraud:admin"]);
    let global_admin = || who(&["*:admin"]);
    let global_auditor = || who(&["*:auditor"]);
    vec![
        // viewer
        allow("viewer reads the project", viewer(), ProjectRead, project("fraud")).by("project-members-read"),
        allow("viewer reads a dataset", viewer(), DatasetRead, ds()),
        allow("viewer reads an approval", viewer(), ApprovalRead, approval("fraud", OTHER)),
        deny("viewer cannot register", viewer(), DatasetRegister, project("fraud")),
        deny("viewer cannot update", viewer(), DatasetUpdate, ds()),
        deny("viewer cannot decide", viewer(), ApprovalDecide, approval("fraud", OTHER)),
        deny("viewer cannot read the audit log", viewer(), AuditRead, audit(Some("fraud"))),
        deny("viewer cannot create tokens", viewer(), TokenCreate, token(Some("fraud"))),
        // data scientist
        allow("scientist registers", scientist(), DatasetRegister, project("fraud")).by("dataset-write"),
        allow("scientist adds a version", scientist(), DatasetVersionCreate, ds()),
        allow("scientist reads", scientist(), DatasetRead, ds()),
        deny("scientist cannot update", scientist(), DatasetUpdate, ds()),
        deny("scientist cannot raise others' datasets", scientist(), DatasetClassificationRaise, ds()),
        deny("scientist cannot manage grants", scientist(), DatasetGrantManage, ds()),
        allow("scientist stores data", scientist(), DatasetDataWrite, ds()).by("dataset-data-write"),
        allow("scientist reads data", scientist(), DatasetDataRead, ds()).by("dataset-data-write"),
        deny("scientist cannot shred", scientist(), DatasetDataShred, ds()).ctx(ticket()),
        deny("viewer cannot read data", viewer(), DatasetDataRead, ds()),
        deny("auditor cannot read data", auditor(), DatasetDataRead, ds()),
        allow("auditor reads the key-use ledger", auditor(), KeyUseRead, project("fraud")).by("key-use-read"),
        deny("scientist cannot read the key-use ledger", scientist(), KeyUseRead, project("fraud")),
        allow("admin shreds with a ticket", admin(), DatasetDataShred, ds()).ctx(ticket()).by("dataset-data-shred"),
        deny("admin cannot shred without a ticket", admin(), DatasetDataShred, ds()).by("shred-needs-ticket"),
        // ml engineer
        allow("engineer updates", engineer(), DatasetUpdate, ds()).by("dataset-update"),
        allow("engineer raises", engineer(), DatasetClassificationRaise, ds()).by("dataset-raise-role"),
        allow("engineer registers", engineer(), DatasetRegister, project("fraud")),
        deny("engineer cannot lower others' datasets", engineer(), DatasetClassificationLower, ds()).ctx(ticket()),
        deny("engineer cannot manage grants", engineer(), DatasetGrantManage, ds()),
        deny("engineer cannot decide", engineer(), ApprovalDecide, approval("fraud", OTHER)),
        // the model registry
        allow("engineer registers models", engineer(), ModelRegister, project("fraud")).by("model-write"),
        allow("engineer adds versions", engineer(), ModelVersionCreate, model(RiskTier::Low)).by("model-write"),
        allow("engineer records deployments", engineer(), DeploymentRecord, model(RiskTier::Low)),
        allow("engineer sends lineage", engineer(), LineageWrite, project("fraud")).by("lineage-write"),
        allow("scientist sends lineage", scientist(), LineageWrite, project("fraud")),
        deny("viewer cannot send lineage", viewer(), LineageWrite, project("fraud")),
        deny("auditor cannot send lineage", auditor(), LineageWrite, project("fraud")),
        allow("viewer reads lineage", viewer(), LineageRead, project("fraud")).by("lineage-read"),
        allow("auditor reads lineage", auditor(), LineageRead, project("fraud")),
        allow("engineer declares a transform", engineer(), LineageTransformDeclare, project("fraud"))
            .by("lineage-transform-declare"),
        deny("viewer cannot declare a transform", viewer(), LineageTransformDeclare, project("fraud")),
        allow("approver approves a transform", approver(), LineageTransformApprove, project("fraud"))
            .by("lineage-transform-approve"),
        deny("engineer cannot approve a transform", engineer(), LineageTransformApprove, project("fraud")),
        deny("admin cannot erase without a ticket", admin(), LineageErase, project("fraud")).by("erasure-needs-ticket"),
        deny("engineer cannot erase", engineer(), LineageErase, project("fraud")).ctx(ticket()),
        allow("admin erases with a ticket", admin(), LineageErase, project("fraud")).ctx(ticket()).by("lineage-erase"),
        allow("engineer attaches a scan", engineer(), ModelScanAttach, model(RiskTier::High)).by("model-scan-attach"),
        deny("scientist cannot attach a model scan", scientist(), ModelScanAttach, model(RiskTier::Low)),
        deny("approver cannot attach a model scan", approver(), ModelScanAttach, model(RiskTier::Low)),
        allow("scientist attaches a dataset scan", scientist(), DatasetScanAttach, ds()).by("dataset-scan-attach"),
        deny("viewer cannot attach a dataset scan", viewer(), DatasetScanAttach, ds()),
        deny("scientist cannot register models", scientist(), ModelRegister, project("fraud")),
        deny("engineer cannot manage signers", engineer(), ModelSignerManage, project("fraud")),
        allow("admin manages signers", admin(), ModelSignerManage, project("fraud")).by("model-signer-manage"),
        allow("viewer reads models", viewer(), ModelRead, model(RiskTier::High)).by("model-read"),
        allow("engineer asks to promote", engineer(), ModelPromotionRequest, model(RiskTier::Low)),
        deny("high-risk promotion without a ticket", engineer(), ModelPromotionRequest, model(RiskTier::High))
            .by("high-risk-production-needs-ticket"),
        allow("high-risk promotion with a ticket", engineer(), ModelPromotionRequest, model(RiskTier::High))
            .ctx(ticket()),
        allow(
            "approver approves",
            approver(),
            ModelPromotionApprove,
            promotion(RiskTier::Low, Stage::Staging, 0, OTHER),
        )
        .by("promotion-approve"),
        deny(
            "approver cannot approve own",
            approver(),
            ModelPromotionApprove,
            promotion(RiskTier::Low, Stage::Staging, 0, ME),
        )
        .by("no-self-promotion-approval"),
        deny(
            "engineer cannot approve",
            engineer(),
            ModelPromotionApprove,
            promotion(RiskTier::Low, Stage::Staging, 0, OTHER),
        ),
        deny(
            "staging needs an approval",
            engineer(),
            ModelPromotionComplete,
            promotion(RiskTier::Low, Stage::Staging, 0, ME),
        )
        .by("promotion-needs-approval"),
        allow(
            "staging with one approval",
            engineer(),
            ModelPromotionComplete,
            promotion(RiskTier::Low, Stage::Staging, 1, ME),
        )
        .by("promotion-complete"),
        allow(
            "archiving needs none",
            engineer(),
            ModelPromotionComplete,
            promotion(RiskTier::High, Stage::Archived, 0, ME),
        ),
        deny(
            "high-risk production needs two",
            approver(),
            ModelPromotionComplete,
            promotion(RiskTier::High, Stage::Production, 1, OTHER),
        )
        .by("high-risk-production-needs-two-approvals"),
        allow(
            "high-risk production with two",
            approver(),
            ModelPromotionComplete,
            promotion(RiskTier::High, Stage::Production, 2, OTHER),
        ),
        allow(
            "medium-risk production with one",
            approver(),
            ModelPromotionComplete,
            promotion(RiskTier::Medium, Stage::Production, 1, OTHER),
        ),
        deny(
            "global admin still needs two for high risk",
            global_admin(),
            ModelPromotionComplete,
            promotion(RiskTier::High, Stage::Production, 1, OTHER),
        )
        .by("high-risk-production-needs-two-approvals"),
        // approver
        allow("approver decides", approver(), ApprovalDecide, approval("fraud", OTHER)).by("approval-decide"),
        allow("approver reads approvals", approver(), ApprovalRead, approval("fraud", OTHER)),
        deny("approver cannot decide own request", approver(), ApprovalDecide, approval("fraud", ME))
            .by("no-self-approval"),
        deny("approver cannot register", approver(), DatasetRegister, project("fraud")),
        deny("approver cannot decide in another project", approver(), ApprovalDecide, approval("churn", OTHER)),
        // auditor
        allow("auditor reads the project's log", auditor(), AuditRead, audit(Some("fraud"))).by("audit-read"),
        allow("auditor reads a dataset", auditor(), DatasetRead, ds()),
        deny("auditor cannot read the whole log", auditor(), AuditRead, audit(None)),
        deny("auditor cannot update", auditor(), DatasetUpdate, ds()),
        deny("auditor cannot read tokens", auditor(), TokenRead, token(Some("fraud"))),
        // project admin
        allow("admin creates project tokens", admin(), TokenCreate, token(Some("fraud"))).by("token-admin"),
        allow("admin revokes project tokens", admin(), TokenRevoke, token(Some("fraud"))),
        allow("admin manages grants", admin(), DatasetGrantManage, ds()).by("dataset-grant-manage"),
        allow("admin manages grants of restricted data", admin(), DatasetGrantManage, restricted()),
        allow("admin reads the project's log", admin(), AuditRead, audit(Some("fraud"))),
        allow("admin decides", admin(), ApprovalDecide, approval("fraud", OTHER)),
        allow("admin asks to lower with a ticket", admin(), DatasetClassificationLower, ds())
            .ctx(ticket())
            .by("dataset-lower-request"),
        deny("admin needs a ticket to lower", admin(), DatasetClassificationLower, ds()).by("lowering-needs-ticket"),
        deny("a blank ticket is no ticket", admin(), DatasetClassificationLower, ds())
            .ctx(RequestContext { ticket: Some("  ".into()), ..ctx() }),
        deny("admin cannot create global tokens", admin(), TokenCreate, token(None)),
        deny("admin cannot create projects", admin(), ProjectCreate, ResourceFacts::Platform),
        deny("project admin cannot manage keys", admin(), KeyManage, ResourceFacts::Platform),
        deny("admin cannot read the whole log", admin(), AuditRead, audit(None)),
        deny("admin cannot decide own request", admin(), ApprovalDecide, approval("fraud", ME)).by("no-self-approval"),
        // restricted data needs an explicit grant, for admins too
        deny("admin without grant cannot read restricted", admin(), DatasetRead, restricted())
            .by("restricted-needs-grant"),
        deny("admin without grant cannot attach a scan to restricted", admin(), DatasetScanAttach, restricted())
            .by("restricted-needs-grant"),
        allow("admin with grant reads restricted", with_access(admin(), restricted_id()), DatasetRead, restricted()),
        deny("viewer without grant cannot read restricted", viewer(), DatasetRead, restricted()),
        allow("viewer with grant reads restricted", with_access(viewer(), restricted_id()), DatasetRead, restricted()),
        deny("engineer without grant cannot update restricted", engineer(), DatasetUpdate, restricted()),
        deny("a grant does not replace a role", with_access(who(&[]), restricted_id()), DatasetRead, restricted()),
        deny("global admin without grant cannot read restricted", global_admin(), DatasetRead, restricted()),
        allow(
            "global admin with grant reads restricted",
            with_access(global_admin(), restricted_id()),
            DatasetRead,
            restricted(),
        ),
        // owners
        allow("owner raises", who(&["fraud:viewer"]), DatasetClassificationRaise, owned()).by("dataset-raise-owner"),
        allow("owner asks to lower with a ticket", who(&[]), DatasetClassificationLower, owned()).ctx(ticket()),
        deny("owner needs a ticket to lower", who(&[]), DatasetClassificationLower, owned()),
        // regions
        allow("region-limited engineer in region", limited_to(engineer(), &["eu-west-1"]), DatasetUpdate, ds()),
        deny("region-limited engineer out of region", limited_to(engineer(), &["us-east-1"]), DatasetUpdate, ds())
            .by("region-limit"),
        deny("no allowed region at all", limited_to(viewer(), &[]), DatasetRead, ds()),
        deny("region limits bind global admins", limited_to(global_admin(), &["us-east-1"]), DatasetRead, ds()),
        allow("region limits apply only to datasets", limited_to(viewer(), &[]), ProjectRead, project("fraud")),
        // global roles
        allow("global admin manages keys", global_admin(), KeyManage, ResourceFacts::Platform).by("global-admin"),
        allow("global admin creates projects", global_admin(), ProjectCreate, ResourceFacts::Platform)
            .by("global-admin"),
        allow("global admin creates global tokens", global_admin(), TokenCreate, token(None)),
        allow(
            "global admin updates any dataset",
            global_admin(),
            DatasetUpdate,
            dataset_in("churn", Classification::Public, "us-east-1", OTHER),
        ),
        allow("global admin reads the whole log", global_admin(), AuditRead, audit(None)),
        deny("global admin cannot decide own request", global_admin(), ApprovalDecide, approval("churn", ME)),
        allow("global auditor reads the whole log", global_auditor(), AuditRead, audit(None)).by("global-auditor-read"),
        allow("global auditor reads any project's log", global_auditor(), AuditRead, audit(Some("churn"))),
        allow("global auditor reads any dataset", global_auditor(), DatasetRead, ds()),
        deny("global auditor cannot update", global_auditor(), DatasetUpdate, ds()),
        deny("global auditor cannot read tokens", global_auditor(), TokenRead, token(None)),
        deny("global auditor cannot create projects", global_auditor(), ProjectCreate, ResourceFacts::Platform),
        allow("a global role counts in every project", who(&["*:data-scientist"]), DatasetRegister, project("churn")),
        deny("a global scientist is not an admin", who(&["*:data-scientist"]), TokenCreate, token(Some("churn"))),
        deny("a global viewer manages no global tokens", who(&["*:viewer"]), TokenRead, token(None)),
        // wrong project
        deny("viewer of fraud cannot read churn", viewer(), ProjectRead, project("churn")),
        deny(
            "viewer of fraud cannot read churn's datasets",
            viewer(),
            DatasetRead,
            dataset_in("churn", Classification::Public, "eu-west-1", OTHER),
        ),
        deny("admin of fraud cannot create churn's tokens", admin(), TokenCreate, token(Some("churn"))),
        deny("auditor of fraud cannot read churn's log", auditor(), AuditRead, audit(Some("churn"))),
        allow("roles in two projects", who(&["fraud:viewer", "churn:admin"]), TokenCreate, token(Some("churn"))),
        // mismatched resource
        deny("an action on the wrong kind of resource", global_admin(), DatasetRead, project("fraud")),
    ]
}

#[test]
fn decision_table() {
    let engine = engine();
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let req = AuthzRequest {
            principal: &case.principal,
            action: case.action,
            resource: &case.resource,
            context: &case.context,
        };
        let got = engine.authorize(&req);
        let want = if case.allow { Decision::Allow } else { Decision::Deny };
        if got.decision != want {
            failures.push(format!("{}: want {want:?}, got {got:?}", case.what));
        }
        if let Some(policy) = case.by
            && !got.determining_policies.iter().any(|p| p == policy)
        {
            failures.push(format!("{}: want `{policy}` among {:?}", case.what, got.determining_policies));
        }
        if case.what != "an action on the wrong kind of resource" && !got.errors.is_empty() {
            failures.push(format!("{}: errors {:?}", case.what, got.errors));
        }
        assert_eq!(got.policy_hash, engine.policy_hash());
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));

    // Every role has at least one allow and one deny in the table.
    for role in Role::ALL {
        for allowed in [true, false] {
            assert!(
                cases.iter().any(|c| c.allow == allowed && c.principal.grants.iter().any(|g| g.role == role)),
                "no {} case for {role}",
                if allowed { "allow" } else { "deny" }
            );
        }
    }
}

#[test]
fn wrong_resource_kind_is_denied_with_an_error() {
    let p = who(&["*:admin"]);
    let resource = project("fraud");
    let context = ctx();
    let d = engine().authorize(&AuthzRequest {
        principal: &p,
        action: Action::DatasetRead,
        resource: &resource,
        context: &context,
    });
    assert_eq!(d.decision, Decision::Deny);
    assert_eq!(d.errors.len(), 1, "{d:?}");
    assert!(d.errors[0].contains("`dataset.read`"), "{}", d.errors[0]);
}

#[test]
fn no_grants_denied_everything() {
    let nobody = who(&[]);
    for &action in Action::ALL {
        for resource in [resource_for(action), restricted(), token(None), audit(None)] {
            let context = ticket();
            let d = engine().authorize(&AuthzRequest {
                principal: &nobody,
                action,
                resource: &resource,
                context: &context,
            });
            assert_eq!(d.decision, Decision::Deny, "{action} on {resource:?}: {d:?}");
        }
    }
}

#[test]
fn global_admin_may_do_every_action_without_errors() {
    let root = who(&["*:admin"]);
    for &action in Action::ALL {
        let resource = resource_for(action);
        let context = ticket();
        let d = engine().authorize(&AuthzRequest { principal: &root, action, resource: &resource, context: &context });
        assert_eq!(d.decision, Decision::Allow, "{action}: {d:?}");
        assert!(d.errors.is_empty(), "{action}: {d:?}");
        assert!(d.determining_policies.iter().any(|p| p == "global-admin"), "{action}: {d:?}");
    }
}

#[test]
fn decision_as_json() {
    let p = who(&["fraud:viewer"]);
    let resource = project("fraud");
    let context = ctx();
    let d = engine().authorize(&AuthzRequest {
        principal: &p,
        action: Action::ProjectRead,
        resource: &resource,
        context: &context,
    });
    let json = d.to_json();
    assert_eq!(json["decision"], "allow");
    assert_eq!(json["policies"][0], "project-members-read");
    assert_eq!(json["policy_hash"], engine().policy_hash());
}

#[test]
fn engine_is_shareable() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<PolicyEngine>();
}

// ---- loading ----

fn builtin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// A temp dir holding copies of the `*.cedar` files of `dirs`.
fn copy_of(dirs: &[&Path]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for dir in dirs {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "cedar") {
                std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    tmp
}

fn invalid(err: PolicyError) -> Vec<custody_policy::PolicyDiagnostic> {
    match err {
        PolicyError::Invalid { errors } => errors,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn builtin_files_all_validate_and_match_the_directory() {
    let from_dir = PolicyEngine::from_dir(&builtin_dir()).unwrap();
    let builtin = engine();
    assert_eq!(from_dir.policy_hash(), builtin.policy_hash(), "BUILTIN must list every file of policies/");
    assert_eq!(from_dir.policy_count(), builtin.policy_count());
    // Every built-in policy has an `@id`.
    let ids: usize = PolicyEngine::builtin_files().iter().map(|(_, text)| text.matches("@id(").count()).sum();
    assert_eq!(builtin.policy_count(), ids);
    assert!(builtin.policy_count() >= 14, "{}", builtin.policy_count());
    assert!(PolicyEngine::schema_text().contains("namespace Custody"));
}

#[test]
fn policy_hash_is_sha256_of_names_and_bytes() {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for (name, text) in PolicyEngine::builtin_files() {
        ctx.update(name.as_bytes());
        ctx.update(&[0]);
        ctx.update(text.as_bytes());
        ctx.update(&[0]);
    }
    let want = hex::encode(ctx.finish().as_ref());
    assert_eq!(engine().policy_hash(), want);
    assert_eq!(PolicyEngine::builtin().unwrap().policy_hash(), want, "stable across loads");
}

#[test]
fn policy_hash_changes_when_a_file_changes() {
    let tmp = copy_of(&[&builtin_dir()]);
    let before = PolicyEngine::from_dir(tmp.path()).unwrap().policy_hash().to_owned();
    assert_eq!(before, engine().policy_hash());
    let file = tmp.path().join("read.cedar");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("\n// a comment changes the hash too\n");
    std::fs::write(&file, text).unwrap();
    let after = PolicyEngine::from_dir(tmp.path()).unwrap().policy_hash().to_owned();
    assert_ne!(before, after);
    // Renaming a file changes it as well.
    std::fs::rename(&file, tmp.path().join("reading.cedar")).unwrap();
    let renamed = PolicyEngine::from_dir(tmp.path()).unwrap().policy_hash().to_owned();
    assert_ne!(after, renamed);
    assert_eq!(renamed.len(), 64);
}

#[test]
fn examples_validate_with_the_builtin_policies() {
    let tmp = copy_of(&[&builtin_dir(), &examples_dir()]);
    let engine = PolicyEngine::from_dir(tmp.path()).unwrap();
    assert_eq!(engine.policy_count(), self::engine().policy_count() + 2);

    // Office hours: restricted data on a Monday morning, not on a Saturday.
    let reader = with_access(who(&["fraud:viewer"]), restricted_id());
    let resource = restricted();
    let monday = RequestContext { source_region: Some(region("eu-west-1")), ..ctx() };
    let saturday = RequestContext { time: datetime!(2024-06-08 10:00 UTC), ..monday.clone() };
    let night = RequestContext { time: datetime!(2024-06-03 21:30 UTC), ..monday.clone() };
    let elsewhere = RequestContext { source_region: Some(region("us-east-1")), ..monday.clone() };
    let decide = |context: &RequestContext| {
        engine.authorize(&AuthzRequest {
            principal: &reader,
            action: Action::DatasetRead,
            resource: &resource,
            context,
        })
    };
    assert_eq!(decide(&monday).decision, Decision::Allow);
    let d = decide(&saturday);
    assert_eq!(d.decision, Decision::Deny);
    assert_eq!(d.determining_policies, ["example-restricted-office-hours"]);
    assert_eq!(decide(&night).decision, Decision::Deny);
    let d = decide(&elsewhere);
    assert_eq!(d.determining_policies, ["example-read-in-region"]);
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("roles.cedar"),
        "// roles\n@id(\"ok\")\npermit (principal, action, resource);\n\n    permitt (principal, action, resource);\n",
    )
    .unwrap();
    let err = PolicyEngine::from_dir(tmp.path()).unwrap_err();
    let text = err.to_string();
    let path = tmp.path().join("roles.cedar");
    assert!(text.starts_with(&format!("{}:5:5: ", path.display())), "{text}");
    assert!(text.contains("permitt"), "{text}");
    let errors = invalid(err);
    assert_eq!((errors[0].line, errors[0].column), (5, 5));
}

#[test]
fn validation_errors_name_the_policy_and_location() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("a.cedar"),
        "@id(\"colour\")\npermit (principal, action == Custody::Action::\"dataset.read\", resource)\nwhen { resource.colour == \"red\" };\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("b.cedar"),
        "@id(\"robots\")\npermit (principal is Custody::Robot, action, resource);\n",
    )
    .unwrap();
    let errors = invalid(PolicyEngine::from_dir(tmp.path()).unwrap_err());
    assert_eq!(errors.len(), 2, "{errors:#?}");
    let a = &errors[0];
    assert!(a.path.ends_with("a.cedar"));
    assert_eq!(a.policy.as_deref(), Some("colour"));
    assert_eq!((a.line, a.column), (3, 8), "{a}");
    assert!(a.message.contains("colour"), "{a}");
    let b = &errors[1];
    assert!(b.path.ends_with("b.cedar"));
    assert_eq!((b.line, b.column), (2, 22), "{b}");
    assert!(b.message.contains("Custody::Robot"), "{b}");
}

#[test]
fn every_file_is_checked_before_failing() {
    let tmp = copy_of(&[&builtin_dir()]);
    std::fs::write(tmp.path().join("x.cedar"), "permit (principal, action, resource) when { 1 };").unwrap();
    std::fs::write(tmp.path().join("y.cedar"), "forbid (principal").unwrap();
    let errors = invalid(PolicyEngine::from_dir(tmp.path()).unwrap_err());
    assert!(errors.iter().any(|e| e.path.ends_with("x.cedar")), "{errors:#?}");
    assert!(errors.iter().any(|e| e.path.ends_with("y.cedar")), "{errors:#?}");
}

#[test]
fn duplicate_ids_and_templates_are_refused() {
    let tmp = copy_of(&[&builtin_dir()]);
    std::fs::write(
        tmp.path().join("zz.cedar"),
        "// again\n@id(\"global-admin\")\npermit (principal, action, resource);\n",
    )
    .unwrap();
    let errors = invalid(PolicyEngine::from_dir(tmp.path()).unwrap_err());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].line, errors[0].column), (2, 5));
    assert!(errors[0].message.contains("`global-admin`"), "{}", errors[0]);

    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.cedar"), "@id(\"t\")\npermit (principal == ?principal, action, resource);\n")
        .unwrap();
    let errors = invalid(PolicyEngine::from_dir(tmp.path()).unwrap_err());
    assert!(errors[0].message.contains("template"), "{}", errors[0]);
    assert_eq!((errors[0].line, errors[0].column), (2, 22));
}

#[test]
fn policies_without_id_are_named_after_their_file() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("plain.cedar"),
        "permit (principal, action == Custody::Action::\"project.read\", resource);\n",
    )
    .unwrap();
    let engine = PolicyEngine::from_dir(tmp.path()).unwrap();
    let p = who(&[]);
    let resource = project("fraud");
    let context = ctx();
    let d = engine.authorize(&AuthzRequest {
        principal: &p,
        action: Action::ProjectRead,
        resource: &resource,
        context: &context,
    });
    assert_eq!(d.determining_policies, ["plain.cedar#0"]);
}

#[test]
fn an_evaluation_error_denies() {
    // `context.time * 10^10` overflows for any date after 1970-04-26.
    let tmp = copy_of(&[&builtin_dir()]);
    std::fs::write(
        tmp.path().join("overflow.cedar"),
        "@id(\"overflowing-forbid\")\nforbid (principal, action == Custody::Action::\"project.read\", resource)\nwhen { context.time * 10000000000 < 0 };\n",
    )
    .unwrap();
    let engine = PolicyEngine::from_dir(tmp.path()).unwrap();
    let p = who(&["fraud:viewer"]);
    let resource = project("fraud");
    let context = ctx();
    let d = engine.authorize(&AuthzRequest {
        principal: &p,
        action: Action::ProjectRead,
        resource: &resource,
        context: &context,
    });
    // Cedar alone would skip the erroring forbid and allow; the engine denies.
    assert_eq!(d.decision, Decision::Deny, "{d:?}");
    assert!(d.determining_policies.is_empty(), "{d:?}");
    assert_eq!(d.errors.len(), 1, "{d:?}");
    assert!(d.errors[0].contains("overflowing-forbid"), "{}", d.errors[0]);
}

#[test]
fn empty_or_missing_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(PolicyEngine::from_dir(tmp.path()), Err(PolicyError::Empty { .. })));
    std::fs::write(tmp.path().join("README.md"), "not a policy").unwrap();
    std::fs::create_dir(tmp.path().join("sub.cedar")).unwrap();
    let err = PolicyEngine::from_dir(tmp.path()).unwrap_err();
    assert!(matches!(err, PolicyError::Empty { .. }), "{err:?}");
    assert!(err.to_string().contains("no `*.cedar` policy files"), "{err}");

    let missing = tmp.path().join("missing");
    let err = PolicyEngine::from_dir(&missing).unwrap_err();
    assert!(matches!(err, PolicyError::Io { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&missing.display().to_string()), "{err}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn grant() -> impl Strategy<Value = String> {
        (prop_oneof![Just("*"), Just("fraud"), Just("churn")], 0..Role::ALL.len())
            .prop_map(|(scope, role)| format!("{scope}:{}", Role::ALL[role]))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any principal, any action on a matching resource: a decision without errors, and
        /// restricted data is never readable without a grant.
        #[test]
        fn decisions_never_error(
            grants in proptest::collection::vec(grant(), 0..5),
            action in 0..Action::ALL.len(),
            hour in 0i64..(24 * 14),
            has_grant: bool,
            level in 0usize..4,
        ) {
            let grants: Vec<&str> = grants.iter().map(String::as_str).collect();
            let mut p = who(&grants);
            if has_grant {
                p = with_access(p, restricted_id());
            }
            let action = Action::ALL[action];
            let mut resource = resource_for(action);
            if let ResourceFacts::Dataset { classification, id, .. } = &mut resource {
                *classification = Classification::ALL[level];
                *id = restricted_id();
            }
            let context = RequestContext::at(time::OffsetDateTime::UNIX_EPOCH + time::Duration::hours(hour));
            let d = engine().authorize(&AuthzRequest { principal: &p, action, resource: &resource, context: &context });
            prop_assert!(d.errors.is_empty(), "{:?}", d);
            if level == 3 && !has_grant && action == Action::DatasetRead {
                prop_assert_eq!(d.decision, Decision::Deny);
            }
        }
    }
}

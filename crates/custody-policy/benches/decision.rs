//! Latency of one authorization decision, entity building included, next to a peer.
//!
//! Runs `ITERATIONS` decisions for a realistic request (a principal with three grants and two
//! restricted-access grants reading a restricted dataset), timing each with [`Instant`], and
//! prints the percentiles and the throughput. Run with
//! `cargo bench -p custody-policy --bench decision`.
//!
//! The peer decides the same request the way a typical integrator of the public `cedar-policy`
//! API would: one `PolicySet` parsed from the same built-in policy files, the `Schema` from
//! [`PolicyEngine::schema_text`], and per decision `Entity::new` for the same entities
//! (attributes and parents as the engine builds them), `Entities::from_entities` and
//! `Request::new` checked against the schema, then `Authorizer::is_authorized`. Both must
//! agree on the request and on a denied variant before anything is timed. The two are
//! measured in alternating blocks of `BLOCK` decisions, so machine noise hits both alike.

#![allow(clippy::print_stdout, reason = "a benchmark reports its figures")]

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression, Schema,
};
use custody_core::{
    Action, Classification, DatasetId, Decision, Grant, Name, Principal, PrincipalKind, ProjectScope, Region, Role,
};
use custody_policy::{AuthzRequest, PolicyEngine, RequestContext, ResourceFacts};
use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

const WARMUP: usize = 20_000;
const ITERATIONS: usize = 250_000;
/// Decisions per block; the engine and the peer take turns block by block.
const BLOCK: usize = 10_000;

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    // `cargo test --benches` runs this too; keep that quick.
    let iterations = if std::env::args().any(|a| a == "--bench") { ITERATIONS } else { 1_000 };
    let engine = PolicyEngine::builtin()?;
    let peer = Peer::new()?;
    let fraud = Name::new("fraud-detection")?;
    let dataset = DatasetId::new();
    let principal = Principal {
        id: "oidc:alice@example.com".into(),
        kind: PrincipalKind::User,
        grants: vec![
            Grant { scope: ProjectScope::Project(fraud.clone()), role: Role::DataScientist },
            Grant { scope: ProjectScope::Project(fraud.clone()), role: Role::Viewer },
            Grant { scope: ProjectScope::Project(Name::new("churn")?), role: Role::MlEngineer },
        ],
        restricted_access: vec![DatasetId::new(), dataset],
        allowed_regions: Some(vec![Region::new("eu-west-1")?, Region::new("eu-central-1")?]),
    };
    let resource = ResourceFacts::Dataset {
        id: dataset,
        project: fraud,
        classification: Classification::Restricted,
        region: Region::new("eu-west-1")?,
        owner: "oidc:bob@example.com".into(),
    };
    let context = RequestContext {
        time: time::OffsetDateTime::now_utc(),
        ticket: Some("CHG-1234".into()),
        source_region: Some(Region::new("eu-west-1")?),
    };
    let request =
        AuthzRequest { principal: &principal, action: Action::DatasetRead, resource: &resource, context: &context };
    let first = engine.authorize(&request);
    if first.decision != Decision::Allow || !first.errors.is_empty() {
        println!("unexpected decision: {first:?}");
        return Ok(ExitCode::FAILURE);
    }

    // The peer must decide as the engine does (and for the same policies), allowed and denied.
    let ungranted = Principal { restricted_access: vec![DatasetId::new()], ..principal.clone() };
    let denied = AuthzRequest { principal: &ungranted, ..request };
    for (what, req, expected) in [("allowed", &request, Decision::Allow), ("denied", &denied, Decision::Deny)] {
        let ours = engine.authorize(req);
        let theirs = peer.authorize(req)?;
        let theirs_policies = peer.determining_policies(&theirs);
        let theirs_decision = match theirs.decision() {
            cedar_policy::Decision::Allow => Decision::Allow,
            cedar_policy::Decision::Deny => Decision::Deny,
        };
        let theirs_errors = theirs.diagnostics().errors().count();
        if ours.decision != expected
            || !ours.errors.is_empty()
            || theirs_decision != ours.decision
            || theirs_policies != ours.determining_policies
            || theirs_errors != 0
        {
            println!(
                "peer disagrees on the {what} request: ours {:?} {:?} {:?}, peer {theirs_decision:?} \
                 {theirs_policies:?} ({theirs_errors} errors)",
                ours.decision, ours.determining_policies, ours.errors
            );
            return Ok(ExitCode::FAILURE);
        }
    }

    for _ in 0..WARMUP.min(iterations) {
        black_box(engine.authorize(black_box(&request)));
        black_box(peer.authorize(black_box(&request))?);
    }
    let mut ours = Samples::new(iterations);
    let mut theirs = Samples::new(iterations);
    let mut round = 0;
    while ours.samples.len() < iterations {
        let n = BLOCK.min(iterations - ours.samples.len());
        // Alternate which goes first, so neither always follows the other.
        for turn in [round % 2, 1 - round % 2] {
            if turn == 0 {
                ours.block(n, || black_box(engine.authorize(black_box(&request))));
            } else {
                let mut failed = false;
                theirs.block(n, || failed |= black_box(peer.authorize(black_box(&request))).is_err());
                if failed {
                    println!("the peer failed to decide");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        round += 1;
    }

    println!("decision (dataset.read on a restricted dataset, entity building included), {iterations} runs:");
    let (ours_p50, ours_p99) = ours.report();
    println!(
        "peer: plain cedar-policy API (Entity::new + Entities::from_entities + Request::new with schema, \
         whole PolicySet), {iterations} runs, alternating blocks of {BLOCK}:"
    );
    let (theirs_p50, theirs_p99) = theirs.report();
    println!(
        "ratio peer/custody p50 {:.2} p99 {:.2}",
        theirs_p50.as_secs_f64() / ours_p50.as_secs_f64(),
        theirs_p99.as_secs_f64() / ours_p99.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Per-decision latencies, and the time spent in the blocks that measured them.
struct Samples {
    samples: Vec<Duration>,
    total: Duration,
}

impl Samples {
    fn new(capacity: usize) -> Self {
        Self { samples: Vec::with_capacity(capacity), total: Duration::ZERO }
    }

    /// Runs and times `n` decisions.
    fn block<T>(&mut self, n: usize, mut decide: impl FnMut() -> T) {
        let start = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            let decision = decide();
            self.samples.push(t.elapsed());
            black_box(decision);
        }
        self.total += start.elapsed();
    }

    /// Prints the percentiles and the throughput; returns p50 and p99.
    fn report(&mut self) -> (Duration, Duration) {
        let samples = &mut self.samples;
        samples.sort_unstable();
        let pct = |p: f64| {
            let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
            samples.get(i).copied().unwrap_or_default()
        };
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "  p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs  max {:.1} µs",
            us(pct(0.50)),
            us(pct(0.90)),
            us(pct(0.99)),
            us(pct(0.999)),
            us(pct(1.0)),
        );
        println!("  {:.0} decisions/s (single thread)", samples.len() as f64 / self.total.as_secs_f64());
        (pct(0.50), pct(0.99))
    }
}

/// The same decisions through the public `cedar-policy` API only, as an integrator would make
/// them: names parsed once, entities and request built and checked against the schema each time.
struct Peer {
    policies: PolicySet,
    schema: Schema,
    authorizer: Authorizer,
    principal: EntityTypeName,
    role: EntityTypeName,
    access: EntityTypeName,
    project: EntityTypeName,
    dataset: EntityTypeName,
    action: EntityTypeName,
}

type PeerError = Box<dyn std::error::Error>;

impl Peer {
    fn new() -> Result<Self, PeerError> {
        let text: String = PolicyEngine::builtin_files().iter().map(|(_, text)| format!("{text}\n")).collect();
        let name = |n: &str| EntityTypeName::from_str(n).map_err(Box::new);
        Ok(Self {
            policies: PolicySet::from_str(&text)?,
            schema: Schema::from_cedarschema_str(PolicyEngine::schema_text())?.0,
            authorizer: Authorizer::new(),
            principal: name("Custody::Principal")?,
            role: name("Custody::Role")?,
            access: name("Custody::Access")?,
            project: name("Custody::Project")?,
            dataset: name("Custody::Dataset")?,
            action: name("Custody::Action")?,
        })
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }

    fn role_group(&self, project: &str, role: Role) -> EntityUid {
        Self::uid(&self.role, &format!("{project}/{}", role.as_str()))
    }

    /// The `@id`s of the policies that decided, sorted, as the engine reports them.
    fn determining_policies(&self, response: &cedar_policy::Response) -> Vec<String> {
        let mut ids: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| self.policies.policy(id).and_then(|p| p.annotation("id")).unwrap_or("?").to_owned())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Decides a request on a dataset (the only resource kind the benchmark uses).
    fn authorize(&self, req: &AuthzRequest<'_>) -> Result<cedar_policy::Response, PeerError> {
        let ResourceFacts::Dataset { id, project, classification, region, owner } = req.resource else {
            return Err(format!("the peer decides only on datasets, not on a `{}`", req.resource.kind()).into());
        };
        let project = project.as_str();
        let dataset_id = id.to_string();
        let str_ = |s: &str| RestrictedExpression::new_string(s.to_owned());
        let uid_ = RestrictedExpression::new_entity_uid;

        // The project, with its role groups as attributes.
        let project_uid = Self::uid(&self.project, project);
        let mut attrs = HashMap::from([
            ("name".to_owned(), str_(project)),
            ("global".to_owned(), RestrictedExpression::new_bool(false)),
            ("project".to_owned(), uid_(project_uid.clone())),
        ]);
        for (attr, role) in [
            ("viewer", Role::Viewer),
            ("data_scientist", Role::DataScientist),
            ("ml_engineer", Role::MlEngineer),
            ("approver", Role::Approver),
            ("auditor", Role::Auditor),
            ("admin", Role::Admin),
        ] {
            attrs.insert(attr.to_owned(), uid_(self.role_group(project, role)));
        }
        let project_entity = Entity::new(project_uid.clone(), attrs, HashSet::new())?;

        // The dataset, in its project.
        let dataset_uid = Self::uid(&self.dataset, &dataset_id);
        let attrs = HashMap::from([
            ("project".to_owned(), uid_(project_uid.clone())),
            ("classification".to_owned(), str_(classification.as_str())),
            ("level".to_owned(), RestrictedExpression::new_long(classification.level())),
            ("region".to_owned(), str_(region.as_str())),
            ("owner".to_owned(), str_(owner)),
            ("restricted_access".to_owned(), uid_(Self::uid(&self.access, &dataset_id))),
        ]);
        let dataset_entity = Entity::new(dataset_uid.clone(), attrs, HashSet::from([project_uid]))?;

        // The principal, a member of its role groups and access grants.
        let p = req.principal;
        let principal_uid = Self::uid(&self.principal, &p.id);
        let mut parents = HashSet::new();
        for grant in &p.grants {
            match &grant.scope {
                ProjectScope::All => {
                    parents.insert(self.role_group("*", grant.role));
                    parents.insert(self.role_group(project, grant.role));
                }
                ProjectScope::Project(name) => {
                    parents.insert(self.role_group(name.as_str(), grant.role));
                }
            }
        }
        for access in &p.restricted_access {
            parents.insert(Self::uid(&self.access, &access.to_string()));
        }
        let regions = p.allowed_regions.as_deref().unwrap_or_default();
        let attrs = HashMap::from([
            ("id".to_owned(), str_(&p.id)),
            ("kind".to_owned(), str_(p.kind.as_str())),
            ("region_limited".to_owned(), RestrictedExpression::new_bool(p.allowed_regions.is_some())),
            ("allowed_regions".to_owned(), RestrictedExpression::new_set(regions.iter().map(|r| str_(r.as_str())))),
        ]);
        let principal_entity = Entity::new(principal_uid.clone(), attrs, parents)?;

        let entities = Entities::from_entities([project_entity, dataset_entity, principal_entity], Some(&self.schema))?;

        let ctx = req.context;
        let time = ctx.time.unix_timestamp();
        let ticket = ctx.ticket.as_deref().map_or("", str::trim);
        let context = Context::from_pairs([
            ("time".to_owned(), RestrictedExpression::new_long(time)),
            ("hour_utc".to_owned(), RestrictedExpression::new_long(time.rem_euclid(86_400) / 3_600)),
            ("weekday".to_owned(), RestrictedExpression::new_long((time.div_euclid(86_400) + 3).rem_euclid(7))),
            ("has_ticket".to_owned(), RestrictedExpression::new_bool(!ticket.is_empty())),
            ("ticket".to_owned(), str_(ticket)),
            ("source_region".to_owned(), str_(ctx.source_region.as_ref().map_or("", |r| r.as_str()))),
        ])?;
        let action = Self::uid(&self.action, req.action.as_str());
        let request = Request::new(principal_uid, action, dataset_uid, context, Some(&self.schema))?;
        Ok(self.authorizer.is_authorized(&request, &self.policies, &entities))
    }
}

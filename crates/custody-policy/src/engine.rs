use crate::entities::Vocabulary;
use crate::error::{PolicyDiagnostic, PolicyError};
use crate::request::{AuthzDecision, AuthzRequest};
use cedar_policy::{ActionConstraint, Authorizer, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use custody_core::{Action, Decision};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// The Cedar schema, in Cedar schema syntax.
const SCHEMA: &str = include_str!("../schema/custody.cedarschema");

/// The built-in policy files, sorted by file name.
const BUILTIN: &[(&str, &str)] = &[
    ("approvals.cedar", include_str!("../policies/approvals.cedar")),
    ("audit.cedar", include_str!("../policies/audit.cedar")),
    ("datasets.cedar", include_str!("../policies/datasets.cedar")),
    ("global.cedar", include_str!("../policies/global.cedar")),
    ("guards.cedar", include_str!("../policies/guards.cedar")),
    ("lineage.cedar", include_str!("../policies/lineage.cedar")),
    ("models.cedar", include_str!("../policies/models.cedar")),
    ("read.cedar", include_str!("../policies/read.cedar")),
    ("tokens.cedar", include_str!("../policies/tokens.cedar")),
];

/// A validated Cedar policy set that decides every Custody request.
///
/// Cheap to clone (the policies are shared) and safe to share between threads.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// For each action (in the order of [`Action::ALL`]), the policies whose action scope
    /// admits it. A policy whose scope excludes an action can never apply to it (the schema
    /// declares no action groups), so deciding with this subset gives the same answer as
    /// with the whole set, only faster.
    by_action: Vec<PolicySet>,
    authorizer: Authorizer,
    vocabulary: Vocabulary,
    hash: String,
    count: usize,
}

/// One policy file: where it came from (for messages), its name (for the hash) and its text.
struct Source {
    path: PathBuf,
    name: String,
    text: String,
}

impl PolicyEngine {
    /// The default policies shipped with Custody (`crates/custody-policy/policies/*.cedar`).
    pub fn builtin() -> Result<Self, PolicyError> {
        let sources = BUILTIN
            .iter()
            .map(|(name, text)| Source {
                path: Path::new("policies").join(name),
                name: (*name).to_owned(),
                text: (*text).to_owned(),
            })
            .collect();
        Self::from_sources(sources)
    }

    /// Loads every `*.cedar` file directly in `dir` (sorted by file name), parses each and
    /// validates it against the built-in schema in strict mode. Every problem in every file is
    /// reported at once. A directory without policy files is refused: it would deny everything.
    pub fn from_dir(dir: &Path) -> Result<Self, PolicyError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PolicyError::Io { path, source }
        };
        let mut sources = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let entry = entry.map_err(io(dir))?;
            let path = entry.path();
            if path.extension().is_none_or(|ext| ext != "cedar") {
                continue;
            }
            // Follows symbolic links, as reading does.
            if !std::fs::metadata(&path).map_err(io(&path))?.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            sources.push(Source { path, name, text });
        }
        if sources.is_empty() {
            return Err(PolicyError::Empty { dir: dir.to_path_buf() });
        }
        sources.sort_by(|a, b| a.name.cmp(&b.name));
        Self::from_sources(sources)
    }

    fn from_sources(sources: Vec<Source>) -> Result<Self, PolicyError> {
        let (schema, _warnings) =
            Schema::from_cedarschema_str(SCHEMA).map_err(|e| PolicyError::Internal { message: e.to_string() })?;
        let vocabulary = Vocabulary::new().map_err(|message| PolicyError::Internal { message })?;
        let validator = Validator::new(schema);

        let mut policies = PolicySet::new();
        let mut seen_ids = HashSet::new();
        let mut errors = Vec::new();
        let mut hash = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for source in &sources {
            hash.update(source.name.as_bytes());
            hash.update(&[0]);
            hash.update(source.text.as_bytes());
            hash.update(&[0]);
            match load_file(source, &validator, &mut seen_ids) {
                Ok(file) => {
                    for policy in file.policies() {
                        // Ids are unique (checked in `load_file`), so this cannot fail.
                        if let Err(e) = policies.add(policy.clone()) {
                            errors.push(PolicyDiagnostic::at(&source.path, &source.text, 0, None, e.to_string()));
                        }
                    }
                }
                Err(mut file_errors) => errors.append(&mut file_errors),
            }
        }
        if !errors.is_empty() {
            return Err(PolicyError::Invalid { errors });
        }
        let count = policies.num_of_policies();
        let by_action = Action::ALL
            .iter()
            .map(|&action| {
                let uid = vocabulary.action_uid(action).map_err(|message| PolicyError::Internal { message })?;
                let mut subset = PolicySet::new();
                for policy in policies.policies() {
                    let applies = match policy.action_constraint() {
                        ActionConstraint::Any => true,
                        ActionConstraint::Eq(a) => a == uid,
                        ActionConstraint::In(list) => list.contains(&uid),
                    };
                    if applies {
                        subset.add(policy.clone()).map_err(|e| PolicyError::Internal { message: e.to_string() })?;
                    }
                }
                Ok(subset)
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                by_action,
                authorizer: Authorizer::new(),
                vocabulary,
                hash: hex::encode(hash.finish().as_ref()),
                count,
            }),
        })
    }

    /// Hex SHA-256 over the policy set: for each file in file-name order, its name, a NUL
    /// byte, its bytes, a NUL byte. Recorded with every decision, so an audit record names
    /// exactly the policies that made it.
    pub fn policy_hash(&self) -> &str {
        &self.inner.hash
    }

    /// How many policies the set holds.
    pub fn policy_count(&self) -> usize {
        self.inner.count
    }

    /// The Cedar schema (in Cedar schema syntax) every policy is validated against.
    pub fn schema_text() -> &'static str {
        SCHEMA
    }

    /// The built-in policy files, as `(file name, text)` in file-name order.
    pub fn builtin_files() -> &'static [(&'static str, &'static str)] {
        BUILTIN
    }

    /// Decides one request. Never panics. Anything that goes wrong while deciding (building
    /// the request, evaluating a policy) makes the decision a deny, with the error listed.
    pub fn authorize(&self, req: &AuthzRequest<'_>) -> AuthzDecision {
        let inner = &*self.inner;
        let (request, entities) = match inner.vocabulary.build(req) {
            Ok(built) => built,
            Err(error) => {
                return AuthzDecision {
                    decision: Decision::Deny,
                    determining_policies: Vec::new(),
                    errors: vec![error],
                    policy_hash: inner.hash.clone(),
                };
            }
        };
        let Some(policies) = Action::ALL.iter().position(|a| *a == req.action).and_then(|i| inner.by_action.get(i))
        else {
            return AuthzDecision {
                decision: Decision::Deny,
                determining_policies: Vec::new(),
                errors: vec![format!("action `{}` is unknown to the policy engine", req.action)],
                policy_hash: inner.hash.clone(),
            };
        };
        let response = inner.authorizer.is_authorized(&request, policies, &entities);
        let diagnostics = response.diagnostics();
        let errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
        // Cedar skips a policy whose evaluation fails, even a `forbid`; we deny instead.
        let cedar_allows = response.decision() == cedar_policy::Decision::Allow;
        let decision = if cedar_allows && errors.is_empty() { Decision::Allow } else { Decision::Deny };
        // The permits that would have allowed an erroneous request did not decide it.
        let mut determining_policies: Vec<String> = if cedar_allows && !errors.is_empty() {
            Vec::new()
        } else {
            diagnostics.reason().map(ToString::to_string).collect()
        };
        determining_policies.sort_unstable();
        AuthzDecision { decision, determining_policies, errors, policy_hash: inner.hash.clone() }
    }
}

/// Parses and validates one file. Policies are renamed after their `@id` annotation (or
/// `<file>#<n>` without one) so decisions and messages name them.
fn load_file(
    source: &Source,
    validator: &Validator,
    seen_ids: &mut HashSet<String>,
) -> Result<PolicySet, Vec<PolicyDiagnostic>> {
    let at = |offset, policy, message| PolicyDiagnostic::at(&source.path, &source.text, offset, policy, message);
    let parsed = PolicySet::from_str(&source.text).map_err(|errs| {
        errs.iter().map(|e| PolicyDiagnostic::from_cedar(&source.path, &source.text, None, e)).collect::<Vec<_>>()
    })?;
    let mut errors = Vec::new();
    if parsed.num_of_templates() > 0 {
        let offset = ["?principal", "?resource"].iter().filter_map(|slot| source.text.find(slot)).min().unwrap_or(0);
        errors.push(at(offset, None, "policy templates are not supported; write a static policy".to_owned()));
    }

    // Cedar numbers the policies of a file `policy0`, `policy1`, … in order.
    let mut file_policies: Vec<_> = parsed
        .policies()
        .map(|p| {
            let n = p.id().to_string().trim_start_matches("policy").parse::<usize>().unwrap_or(usize::MAX);
            (n, p)
        })
        .collect();
    file_policies.sort_by_key(|(n, _)| *n);

    let mut renamed = PolicySet::new();
    for (n, policy) in file_policies {
        let id = match policy.annotation("id") {
            Some(id) => id.to_owned(),
            None => format!("{}#{n}", source.name),
        };
        if !seen_ids.insert(id.clone()) {
            // Point at the duplicate's annotation: the last mention of the id so far.
            let offset =
                nth_mention(&source.text, &id, renamed.policies().filter(|p| p.id().to_string() == id).count());
            errors.push(at(offset, Some(id.clone()), format!("policy id `{id}` is used by another policy")));
            continue;
        }
        if let Err(e) = renamed.add(policy.new_id(PolicyId::new(&id))) {
            errors.push(at(0, Some(id), e.to_string()));
        }
    }

    let result = validator.validate(&renamed, ValidationMode::Strict);
    for e in result.validation_errors() {
        errors.push(PolicyDiagnostic::from_cedar(&source.path, &source.text, Some(e.policy_id().to_string()), e));
    }
    if errors.is_empty() { Ok(renamed) } else { Err(errors) }
}

/// The byte offset of the `n`-th (0-based) mention of `"<id>"` in `text`, or 0.
fn nth_mention(text: &str, id: &str, n: usize) -> usize {
    let quoted = format!("\"{id}\"");
    text.match_indices(&quoted).nth(n).map_or(0, |(i, _)| i)
}

//! Edge bundles: a model, its signature, the signer's key, and the audit log's proof that the
//! registry approved exactly this digest into a stage, checkable with no network.
//!
//! The chain `custody verify --offline` checks, from the one thing it is given out of band
//! (the log's verifier key):
//!
//! 1. the checkpoint is signed by that key (C2SP signed note): a tree size and root;
//! 2. the approval record's leaf hash, recomputed from its content, is in that tree
//!    (RFC 9162 inclusion proof);
//! 3. the record is the successful completion of a promotion of this model version into the
//!    required stage, and names the root digest and the signer's key hint;
//! 4. the bundled public key has that hint, and the signature verifies under it;
//! 5. the files re-hash to the signed manifest, whose root is the approved digest.

use crate::auditlog::TAMPERED;
use crate::cli::{ApprovedStage, BundleCmd, LogKeyArgs};
use crate::client::Client;
use crate::commands::{Exit, path_segment, query, show};
use crate::provenance::{check_model, read};
use crate::registry::{SignedVersion, signed_version};
use anyhow::{Context, bail};
use custody_audit::{Checkpoint, Verifier};
use custody_provenance::PublicKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The format name in `custody-bundle.json`.
const FORMAT: &str = "custody-edge-bundle/1";
/// The bundle's description of itself.
const MANIFEST_FILE: &str = "custody-bundle.json";
/// The model's files (a directory, or the single file of a single-file model).
const MODEL: &str = "model";
/// The OMS signature bundle, byte for byte as the registry holds it.
const SIGNATURE: &str = "model.sig";
/// The signer's PEM public key.
const SIGNER_KEY: &str = "signer.pem";

/// `custody-bundle.json`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeManifest {
    format: String,
    created_at: String,
    model: EdgeModel,
    signer: EdgeSigner,
    approval: EdgeApproval,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeModel {
    id: String,
    project: String,
    name: String,
    version: String,
    root_digest: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeSigner {
    name: String,
    hint: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EdgeApproval {
    /// The audit record as one JSON text (kept as a string so its bytes, which the leaf hash
    /// covers, survive pretty-printing of this file).
    record: String,
    /// Hex audit path from the record's leaf to the checkpoint's root.
    inclusion_proof: Vec<String>,
    /// The signed checkpoint note.
    checkpoint: String,
    /// The verifier key the server stated; informative only — verification takes the key
    /// from elsewhere.
    log_key: String,
}

/// What the approval record proves, once checked.
#[derive(Debug, Serialize)]
struct ProvenApproval {
    seq: u64,
    tree_size: u64,
    log: String,
    promotion: String,
    to: String,
    approvers: Vec<String>,
    time: String,
}

/// Why a bundle does not verify: always exit 9.
#[derive(Debug)]
pub struct NotVerified(pub String);

fn not_verified(reason: impl Into<String>) -> NotVerified {
    NotVerified(reason.into())
}

/// Steps 1–3: the checkpoint, the inclusion of the record, and what the record says.
fn check_approval(m: &EdgeManifest, key: &Verifier, stage: ApprovedStage) -> Result<ProvenApproval, NotVerified> {
    let checkpoint = Checkpoint::open(&m.approval.checkpoint, std::slice::from_ref(key))
        .map_err(|e| not_verified(format!("the checkpoint is not signed by the given log key: {e}")))?;
    let record: custody_audit::export::ExportedRecord<'_> = serde_json::from_str(&m.approval.record)
        .map_err(|e| not_verified(format!("the approval record is not an audit record: {e}")))?;
    let leaf = record.computed_leaf_hash().map_err(not_verified)?;
    let proof = m
        .approval
        .inclusion_proof
        .iter()
        .map(|h| {
            let bytes = hex::decode(h).map_err(|_| not_verified(format!("inclusion proof hash `{h}` is not hex")))?;
            custody_audit::hash_from_slice(&bytes).map_err(|e| not_verified(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    custody_audit::verify_inclusion(&leaf, record.seq, checkpoint.size, &proof, &checkpoint.root).map_err(|e| {
        not_verified(format!(
            "audit record {} is not in the log of size {} that the checkpoint signs: {e}",
            record.seq, checkpoint.size
        ))
    })?;
    let details: Value = serde_json::from_str(record.details.get())
        .map_err(|e| not_verified(format!("the record's details are not JSON: {e}")))?;
    let expect = |what: &str, got: &str, want: &str| {
        if got == want {
            Ok(())
        } else {
            Err(not_verified(format!("the approval record's {what} is `{got}`, not `{want}`")))
        }
    };
    let field = |name: &str| details[name].as_str().unwrap_or_default().to_owned();
    expect("action", &record.action, "model.promotion.complete")?;
    expect("outcome", &record.outcome, "success")?;
    expect("stage", &field("to"), stage.as_str())?;
    expect("model", &field("model_id"), &m.model.id)?;
    expect("version", &field("version"), &m.model.version)?;
    expect("root digest", &field("root_digest"), &m.model.root_digest)?;
    expect("signer key", &field("signer_hint"), &m.signer.hint)?;
    let approvers = details["approvers"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    Ok(ProvenApproval {
        seq: record.seq,
        tree_size: checkpoint.size,
        log: checkpoint.origin,
        promotion: field("promotion"),
        to: field("to"),
        approvers,
        time: record.time.into_owned(),
    })
}

pub(crate) fn log_verifier(args: &LogKeyArgs) -> anyhow::Result<Verifier> {
    let text = match (&args.log_key, &args.log_key_file) {
        (Some(k), _) => k.clone(),
        (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("reading `{}`", f.display()))?,
        (None, None) => bail!("--log-key or --log-key-file is required"),
    };
    Verifier::parse(text.trim()).context("the log key is not a verifier key string (`custody audit key`)")
}

/// A bundle that verified: what it proves.
#[derive(Debug)]
pub struct CheckedBundle {
    manifest: EdgeManifest,
    approval: ProvenApproval,
    root: String,
}

impl CheckedBundle {
    /// The approval's audit record's sequence number.
    pub fn approval_seq(&self) -> u64 {
        self.approval.seq
    }

    /// Who approved it.
    pub fn approvers(&self) -> &[String] {
        &self.approval.approvers
    }
}

/// Checks an edge bundle with no network. `Ok(Err)` is "not verified" (exit 9); `Err` is
/// "could not check" (I/O, a file that is not a bundle).
pub async fn check_bundle(
    bundle: &Path,
    key: &Verifier,
    stage: ApprovedStage,
    quiet: bool,
) -> anyhow::Result<Result<CheckedBundle, NotVerified>> {
    let text = read(&bundle.join(MANIFEST_FILE), "bundle manifest")?;
    let manifest: EdgeManifest = serde_json::from_slice(&text)
        .with_context(|| format!("`{}` is not an edge bundle manifest", bundle.join(MANIFEST_FILE).display()))?;
    if manifest.format != FORMAT {
        bail!("`{}` is format `{}`, not `{FORMAT}`", bundle.display(), manifest.format);
    }
    let approval = match check_approval(&manifest, key, stage) {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    Ok(check_files(bundle, &manifest, quiet).await?.map(|root| CheckedBundle { manifest, approval, root }))
}

/// `custody verify --offline BUNDLE`.
pub async fn verify_offline(
    bundle: &Path,
    log_key: &LogKeyArgs,
    stage: ApprovedStage,
    json: bool,
) -> anyhow::Result<()> {
    let key = log_verifier(log_key)?;
    match check_bundle(bundle, &key, stage, json).await? {
        Ok(CheckedBundle { manifest: m, approval, root }) => {
            let value = json!({
                "verified": true, "model": m.model, "signer": m.signer, "approval": approval, "root_digest": root,
            });
            show(json, &value, || {
                println!(
                    "verified {}/{} {} ({}): {root}",
                    m.model.project,
                    m.model.name,
                    m.model.version,
                    bundle.display()
                );
                println!("  signature   by `{}` (key {}), every file re-hashed", m.signer.name, m.signer.hint);
                println!(
                    "  approval    promotion {} to {} by {} at {}",
                    approval.promotion,
                    approval.to,
                    approval.approvers.join(", "),
                    approval.time
                );
                println!(
                    "  audit log   record {} included in {}'s signed checkpoint of size {}",
                    approval.seq, approval.log, approval.tree_size
                );
            })
        }
        Err(NotVerified(reason)) => {
            let value = json!({ "verified": false, "bundle": bundle, "reason": reason });
            show(json, &value, || eprintln!("NOT VERIFIED: {}: {reason}", bundle.display()))?;
            Err(Exit(TAMPERED).into())
        }
    }
}

/// Steps 4–5: the signer's key, the signature, and every file. `Ok(Err)` is "not verified";
/// `Err` is "could not check" (I/O).
async fn check_files(bundle: &Path, m: &EdgeManifest, json: bool) -> anyhow::Result<Result<String, NotVerified>> {
    let pem = read(&bundle.join(SIGNER_KEY), "signer's key")?;
    let key = match PublicKey::from_pem(&pem, SIGNER_KEY) {
        Ok(k) => k,
        Err(e) => return Ok(Err(not_verified(e.to_string()))),
    };
    if key.hint() != m.signer.hint {
        return Ok(Err(not_verified(format!(
            "{SIGNER_KEY} is key {}, not the approved signer's {}",
            key.hint(),
            m.signer.hint
        ))));
    }
    let signature = bundle.join(SIGNATURE);
    let sig_text = read(&signature, "signature")?;
    match check_model(&bundle.join(MODEL), &signature, &sig_text, &key, json).await? {
        Err(e) => Ok(Err(not_verified(format!("the signature does not verify: {e}")))),
        Ok(v) if !v.is_verified() => {
            let d = &v.diff;
            let mut parts: Vec<String> = d.changed.iter().map(|c| format!("changed {}", c.name)).collect();
            parts.extend(d.missing.iter().map(|n| format!("missing {n}")));
            parts.extend(d.extra.iter().map(|n| format!("extra {n}")));
            Ok(Err(not_verified(format!("the model's files differ from the signature: {}", parts.join(", ")))))
        }
        Ok(v) => {
            let root = format!("sha256:{}", v.signed.root_digest);
            if root != m.model.root_digest {
                return Ok(Err(not_verified(format!(
                    "the signature covers {root}, not the approved {}",
                    m.model.root_digest
                ))));
            }
            Ok(Ok(root))
        }
    }
}

/// A bundle written by [`create_bundle`].
#[derive(Debug)]
pub struct CreatedBundle {
    manifest: EdgeManifest,
    approval: ProvenApproval,
}

/// Writes an edge bundle for version `label` of model `id` at `out` (which must not exist):
/// the files are copied and the copy verified before the bundle is renamed into place, so `out`
/// is either a whole, verified bundle or absent. `Ok(Err)`: the files are not what was signed.
pub async fn create_bundle(
    c: &Client,
    id: &str,
    label: &str,
    model_dir: &Path,
    out: &Path,
    stage: ApprovedStage,
    quiet: bool,
) -> anyhow::Result<Result<CreatedBundle, NotVerified>> {
    if std::fs::symlink_metadata(out).is_ok() {
        bail!("`{}` exists; a bundle is written only to a new path", out.display());
    }
    let sv = signed_version(c, id, label).await?;
    let approval = fetch_approval(c, &sv, stage).await?;
    let manifest = EdgeManifest {
        format: FORMAT.to_owned(),
        created_at: custody_core::now().format(&time::format_description::well_known::Rfc3339)?,
        model: EdgeModel {
            id: sv.version.model_id.to_string(),
            project: sv.version.project.to_string(),
            name: sv.version.model.to_string(),
            version: sv.version.version.to_string(),
            root_digest: sv.version.root_digest.to_string(),
        },
        signer: EdgeSigner { name: sv.signer.name.to_string(), hint: sv.signer.hint.clone() },
        approval,
    };
    // Check what the server sent before anything is written: the log key it states must sign
    // the checkpoint, and the record must say what the bundle claims.
    let stated_key = Verifier::parse(&manifest.approval.log_key).context("the server's log key")?;
    let approval = check_approval(&manifest, &stated_key, stage).map_err(|NotVerified(r)| anyhow::anyhow!(r))?;

    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let staging = tempfile::Builder::new()
        .prefix(".custody-partial-")
        .tempdir_in(parent)
        .with_context(|| format!("creating a directory in `{}`", parent.display()))?;
    copy_model(model_dir, &staging.path().join(MODEL), &sv)?;
    std::fs::write(staging.path().join(SIGNATURE), &sv.bundle_text)?;
    std::fs::write(staging.path().join(SIGNER_KEY), sv.key.to_pem())?;
    std::fs::write(staging.path().join(MANIFEST_FILE), serde_json::to_string_pretty(&manifest)?)?;
    // The copy, not the source, is what ships: verify it as the edge will.
    if let Err(e) = check_files(staging.path(), &manifest, quiet).await? {
        return Ok(Err(e));
    }
    sync_tree(staging.path())?;
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, out) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(e).with_context(|| format!("moving the bundle into `{}`", out.display()));
    }
    Ok(Ok(CreatedBundle { manifest, approval }))
}

/// `custody bundle create`.
pub async fn create(cmd: BundleCmd, c: &Client, json: bool) -> anyhow::Result<()> {
    let BundleCmd::Create { id, label, model_dir, out, stage } = cmd;
    let CreatedBundle { manifest, approval } =
        match create_bundle(c, &id, &label, &model_dir, &out, stage, json).await? {
            Ok(created) => created,
            Err(NotVerified(reason)) => {
                let value = json!({ "written": false, "model_dir": model_dir, "reason": reason });
                show(json, &value, || eprintln!("NOT WRITTEN: {}: {reason}", model_dir.display()))?;
                return Err(Exit(TAMPERED).into());
            }
        };
    let value = json!({ "bundle": out, "model": manifest.model, "approval": approval });
    show(json, &value, || {
        println!(
            "wrote {}: {}/{} {} ({}), approved to {} (audit record {} in the signed tree of size {})",
            out.display(),
            manifest.model.project,
            manifest.model.name,
            manifest.model.version,
            manifest.model.root_digest,
            approval.to,
            approval.seq,
            approval.tree_size
        );
        println!(
            "check it anywhere: custody verify --offline {} --log-key '{}'",
            out.display(),
            manifest.approval.log_key
        );
    })
}

/// The newest approval into `stage`: its record, the newest signed checkpoint, the proof
/// between them, and the log key the server states (one call, readable with model access).
async fn fetch_approval(c: &Client, sv: &SignedVersion, stage: ApprovedStage) -> anyhow::Result<EdgeApproval> {
    #[derive(Deserialize)]
    struct Answer {
        record: Value,
        inclusion_proof: Vec<String>,
        checkpoint: String,
        log_key: String,
    }
    let a: Answer = c
        .get(&format!(
            "/api/v1/models/{}/versions/{}/approval-proof?{}",
            path_segment(&sv.version.model_id.to_string()),
            path_segment(sv.version.version.as_str()),
            query(&[("stage", stage.as_str().to_owned())])
        ))
        .await?;
    Ok(EdgeApproval {
        record: serde_json::to_string(&a.record)?,
        inclusion_proof: a.inclusion_proof,
        checkpoint: a.checkpoint,
        log_key: a.log_key,
    })
}

/// Copies the files the signature names (nothing else) from `from` into `to`.
fn copy_model(from: &Path, to: &Path, sv: &SignedVersion) -> anyhow::Result<()> {
    let mut paths: Vec<&str> = sv.signed.manifest.resources.iter().map(|r| r.name.path.as_str()).collect();
    paths.dedup();
    if paths == ["."] {
        std::fs::copy(from, to).with_context(|| format!("copying `{}`", from.display()))?;
        return Ok(());
    }
    std::fs::create_dir(to)?;
    for p in paths {
        let (src, dst): (PathBuf, PathBuf) = (from.join(p), to.join(p));
        if let Some(dir) = dst.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let meta = std::fs::symlink_metadata(&src).with_context(|| format!("reading `{}`", src.display()))?;
        if !meta.is_file() {
            bail!("`{}` is not a regular file", src.display());
        }
        std::fs::copy(&src, &dst).with_context(|| format!("copying `{}`", src.display()))?;
    }
    Ok(())
}

/// Flushes every file and directory under `root` to disk before the bundle is renamed into
/// place, so a crash leaves either no bundle or a whole one.
fn sync_tree(root: &Path) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(root)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(root)? {
            sync_tree(&entry?.path())?;
        }
    }
    std::fs::File::open(root)?.sync_all().with_context(|| format!("syncing `{}`", root.display()))?;
    Ok(())
}

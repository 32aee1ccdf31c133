//! `custody sign`, `custody verify` and `custody signing-key`: OpenSSF Model Signing bundles,
//! offline.

use crate::auditlog::TAMPERED;
use crate::cli::{HashChoice, HashingArgs, SignArgs, SigningKeyCmd, VerifyArgs};
use crate::commands::{Exit, show};
use crate::output::write_atomically;
use anyhow::{Context, bail};
use custody_openbao::{OpenBaoConfig, OpenBaoTransit, TransitSigningKey};
use custody_provenance::{
    Bundle, HashAlgorithm, KeyAlgorithm, Method, ModelVerification, Progress, ProvenanceError, PublicKey,
    Serialization, SigningKey, StatementSigner as _,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A progress bar on stderr (shown for models of 64 MiB and more) that Ctrl-C cancels.
pub(crate) struct BarProgress {
    /// The bar (hidden until the work is known to be large).
    pub(crate) bar: ProgressBar,
    cancel: Arc<AtomicBool>,
    quiet: bool,
}

impl BarProgress {
    pub(crate) fn new(quiet: bool, what: &str) -> Self {
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::Relaxed);
            }
        });
        let bar = ProgressBar::hidden();
        bar.set_message(what.to_owned());
        Self { bar, cancel, quiet }
    }
}

impl Progress for BarProgress {
    fn planned(&self, files: u64, bytes: u64) {
        if self.quiet || bytes < 64 << 20 {
            return;
        }
        self.bar.set_length(bytes);
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{{msg}} {files} resources {{wide_bar}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}} eta {{eta}}"
        )) {
            self.bar.set_style(style);
        }
        self.bar.set_draw_target(ProgressDrawTarget::stderr());
    }

    fn advanced(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Where `file` lies inside `model`, as a manifest path, if it does.
fn inside(model: &Path, file: &Path) -> Option<String> {
    let model = model.canonicalize().ok()?;
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.canonicalize().ok()?,
        _ => std::env::current_dir().ok()?,
    };
    let relative = parent.join(file.file_name()?).strip_prefix(&model).ok()?.to_str()?.to_owned();
    (!relative.is_empty()).then_some(relative)
}

fn serialization(args: &HashingArgs) -> anyhow::Result<Serialization> {
    let hash = match args.hash {
        HashChoice::Sha256 => HashAlgorithm::Sha256,
        HashChoice::Blake3 => HashAlgorithm::Blake3,
    };
    let mut s = Serialization::files(hash);
    if args.no_ignore_git_paths {
        s.ignore_paths.clear();
    }
    if let Some(size) = args.shard_size {
        if size == 0 {
            bail!("--shard-size must be at least 1 byte");
        }
        s.method = Method::Shards { shard_size: size };
    }
    s.allow_symlinks = args.allow_symlinks;
    for p in &args.ignore_paths {
        let p = p.trim_start_matches("./").trim_end_matches('/');
        if p.is_empty() || p.starts_with('/') || p.split('/').any(|c| c == "..") {
            bail!("--ignore-path `{p}` is not a path relative to the model");
        }
        s.ignore(p);
    }
    Ok(s)
}

pub(crate) fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the {what} `{}`", path.display()))
}

/// Runs blocking hashing work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ProvenanceError> + Send + 'static,
) -> anyhow::Result<T> {
    match tokio::task::spawn_blocking(work).await.context("the hashing task failed")? {
        Err(ProvenanceError::Cancelled) => bail!("cancelled: nothing was written"),
        other => Ok(other?),
    }
}

/// `custody sign`.
pub async fn sign(args: SignArgs, json: bool) -> anyhow::Result<()> {
    // Read the key before hashing: a bad key or an unreachable key service fails fast.
    let key = match (&args.private_key, &args.openbao_key) {
        (Some(path), _) => {
            KeySource::File(SigningKey::from_pem(&read(path, "private key")?, &path.display().to_string())?)
        }
        (None, Some(name)) => {
            let bao = OpenBaoTransit::new(OpenBaoConfig::from_env()?)?;
            let key = bao.signing_key(name).await?;
            KeySource::OpenBao(bao, key)
        }
        (None, None) => bail!("give --private-key or --openbao-key"),
    };
    let mut serialization = serialization(&args.hashing)?;
    if let Some(sig) = inside(&args.model, &args.signature) {
        serialization.ignore(sig);
    }
    let progress = BarProgress::new(json, "hashing");
    let model = args.model.clone();
    let bar = progress.bar.clone();
    let manifest = blocking(move || custody_provenance::compute_manifest(&model, &serialization, &progress)).await?;
    bar.finish_and_clear();
    let statement = custody_provenance::statement_bytes(&manifest);
    let bundle = match &key {
        KeySource::File(key) => Bundle::sign(&statement, key)?,
        KeySource::OpenBao(bao, key) => {
            let sig = bao.sign(key, &Bundle::signing_input(&statement)).await?;
            Bundle::from_signature(&statement, &key.public_key, sig)?
        }
    };
    write_atomically(&args.signature, bundle.to_json().as_bytes())?;
    let root = hex::encode(manifest.root_digest());
    let value = json!({
        "model": args.model, "signature": args.signature, "root_digest": format!("sha256:{root}"),
        "resources": manifest.resources.len(), "hash": manifest.serialization.hash.as_str(),
        "key_hint": bundle.verification_material.public_key.as_ref().and_then(|k| k.hint.clone()),
    });
    show(json, &value, || {
        println!(
            "signed {} ({} resources, {}) → {}\nroot sha256:{root}",
            args.model.display(),
            manifest.resources.len(),
            manifest.serialization.hash,
            args.signature.display()
        );
    })
}

/// `custody verify`.
pub async fn verify(args: VerifyArgs, json: bool) -> anyhow::Result<()> {
    if let Some(bundle) = &args.offline {
        return crate::edge::verify_offline(bundle, &args.log_key, args.stage, json).await;
    }
    let (Some(model), Some(key_path)) = (args.model, args.public_key) else {
        bail!("give MODEL and --public-key, or --offline BUNDLE");
    };
    let key = PublicKey::from_pem(&read(&key_path, "public key")?, &key_path.display().to_string())?;
    let bundle_text = read(&args.signature, "signature")?;
    let outcome = check_model(&model, &args.signature, &bundle_text, &key, json).await?;
    report(&model, outcome, json)
}

/// Verifies a model against bundle bytes; `Err` only when the check could not run (I/O).
pub async fn check_model(
    model: &Path,
    signature: &Path,
    bundle_text: &[u8],
    key: &PublicKey,
    quiet: bool,
) -> anyhow::Result<Result<ModelVerification, ProvenanceError>> {
    let bundle = match Bundle::from_json(bundle_text) {
        Ok(b) => b,
        Err(e) => return Ok(Err(e)),
    };
    let extra: Vec<String> = inside(model, signature).into_iter().collect();
    let progress = BarProgress::new(quiet, "verifying");
    let bar = progress.bar.clone();
    let (model, key) = (model.to_owned(), key.clone());
    let result =
        tokio::task::spawn_blocking(move || custody_provenance::verify_model(&model, &bundle, &key, &extra, &progress))
            .await
            .context("the hashing task failed")?;
    bar.finish_and_clear();
    match result {
        Err(
            e @ (ProvenanceError::Io { .. } | ProvenanceError::Symlink(_) | ProvenanceError::NotFileOrDirectory(_)),
        ) => Err(e.into()),
        Err(ProvenanceError::Cancelled) => bail!("cancelled"),
        other => Ok(other),
    }
}

/// Prints the outcome; not verified ends with exit 9.
pub fn report(model: &Path, outcome: Result<ModelVerification, ProvenanceError>, json: bool) -> anyhow::Result<()> {
    match outcome {
        Ok(v) if v.is_verified() => {
            let value = json!({
                "verified": true, "model": model, "root_digest": format!("sha256:{}", v.signed.root_digest),
                "resources": v.signed.manifest.resources.len(), "legacy_statement": v.signed.legacy,
            });
            show(json, &value, || {
                println!(
                    "verified {}: {} resources, root sha256:{}{}",
                    model.display(),
                    v.signed.manifest.resources.len(),
                    v.signed.root_digest,
                    if v.signed.legacy { " (legacy v0.1 statement)" } else { "" }
                );
            })
        }
        Ok(v) => {
            let value = json!({ "verified": false, "model": model, "reason": "model_differs", "differences": v.diff });
            show(json, &value, || {
                eprintln!("NOT VERIFIED: {} differs from its signature", model.display());
                for c in &v.diff.changed {
                    eprintln!("  changed  {}  (signed {}, found {})", c.name, c.expected, c.actual);
                }
                for m in &v.diff.missing {
                    eprintln!("  missing  {m}");
                }
                for e in &v.diff.extra {
                    eprintln!("  extra    {e}");
                }
            })?;
            Err(Exit(TAMPERED).into())
        }
        Err(e) => {
            let value =
                json!({ "verified": false, "model": model, "reason": "signature_invalid", "error": e.to_string() });
            show(json, &value, || eprintln!("NOT VERIFIED: {}: {e}", model.display()))?;
            Err(Exit(TAMPERED).into())
        }
    }
}

/// Where `custody sign` gets its signature.
enum KeySource {
    File(SigningKey),
    OpenBao(OpenBaoTransit, TransitSigningKey),
}

fn algorithm(name: &str) -> anyhow::Result<KeyAlgorithm> {
    KeyAlgorithm::parse(name).with_context(|| format!("--algorithm `{name}` is not p256, p384, p521 or ed25519"))
}

/// `custody signing-key`.
pub async fn signing_key(cmd: SigningKeyCmd, json: bool) -> anyhow::Result<()> {
    let (out, algorithm) = match cmd {
        SigningKeyCmd::Generate { out, algorithm: a } => (out, algorithm(&a)?),
        SigningKeyCmd::Openbao { name, out, algorithm: a } => {
            let bao = OpenBaoTransit::new(OpenBaoConfig::from_env()?)?;
            let key = bao.create_signing_key(&name, algorithm(&a)?).await?;
            write_atomically(&out, key.public_key.to_pem().as_bytes())?;
            let value = json!({ "openbao_key": name, "version": key.version, "public_key": out,
                                "algorithm": key.public_key.algorithm().as_str(), "hint": key.public_key.hint() });
            return show(json, &value, || {
                println!(
                    "OpenBao transit key `{name}` ({}, version {}) signs; its public key is in {}",
                    key.public_key.algorithm(),
                    key.version,
                    out.display()
                );
            });
        }
    };
    let (key, pem) = SigningKey::generate(algorithm)?;
    let mut public_path = out.clone().into_os_string();
    public_path.push(".pub");
    let public_path = PathBuf::from(public_path);
    write_private(&out, pem.as_bytes())?;
    write_atomically(&public_path, key.public_key().to_pem().as_bytes())?;
    let value = json!({ "private_key": out, "public_key": public_path, "algorithm": algorithm.as_str(), "hint": key.public_key().hint() });
    show(json, &value, || {
        println!("wrote {} (0600) and {} ({algorithm})", out.display(), public_path.display());
    })
}

/// Creates a private key file readable by its owner only; never replaces an existing file.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating `{}` (an existing key is never replaced)", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_signature_inside_the_model_is_named_relative() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        assert_eq!(inside(dir.path(), &dir.path().join("sub/model.sig")).as_deref(), Some("sub/model.sig"));
        assert_eq!(inside(&dir.path().join("sub"), &dir.path().join("model.sig")), None);
    }
}

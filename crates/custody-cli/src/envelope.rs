//! `custody encrypt`, `custody decrypt` and `custody keys`: envelope encryption with the local
//! keyring (offline) or a key service (OpenBao/Vault transit, AWS KMS).
//!
//! Outputs are written to a temporary file beside the destination (mode 0600) and renamed
//! over it only when everything authenticated, so a failure never leaves partial plaintext
//! under the destination's name. Standard output streams instead: check the exit code.

use crate::cli::{DecryptArgs, EncryptArgs, KeysCmd, ProviderArgs, ProviderKind};
use crate::commands::{Exit, show};
use anyhow::{Context, bail};
use custody_crypto::chunked::{self, ChunkedError, FileAt, RandomAccess};
use custody_crypto::container::{ContainerError, EnvelopeError, Header};
use custody_crypto::{EncryptionContext, KeyProvider, LocalKeyring, Unlocker};
use custody_openbao::{OpenBaoConfig, OpenBaoTransit};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The exit code of a ciphertext that does not authenticate (shared with `audit verify`).
const TAMPERED: u8 = crate::auditlog::TAMPERED;

/// The provider `kind`, reached as `args` say.
async fn open_provider(kind: ProviderKind, args: &ProviderArgs) -> anyhow::Result<Box<dyn KeyProvider>> {
    Ok(match kind {
        ProviderKind::Local => {
            let Some(path) = &args.keyring else {
                bail!("the local key provider needs a keyring: --keyring FILE or CUSTODY_KEYRING");
            };
            Box::new(LocalKeyring::open(path, &Unlocker::from_env()?)?)
        }
        ProviderKind::Openbao => Box::new(OpenBaoTransit::new(OpenBaoConfig::from_env()?)?),
        ProviderKind::AwsKms => Box::new(custody_aws_kms::AwsKms::from_env().await?),
    })
}

/// The provider an object's header names.
async fn provider_of(header: &Header, args: &ProviderArgs) -> anyhow::Result<Box<dyn KeyProvider>> {
    let kind = match header.kek.provider.as_str() {
        "local" => ProviderKind::Local,
        custody_openbao::PROVIDER => ProviderKind::Openbao,
        custody_aws_kms::PROVIDER => ProviderKind::AwsKms,
        other => bail!("the object's key is held by provider `{other}`, which this build does not know"),
    };
    open_provider(kind, args).await
}

/// A destination that only appears complete: a temporary file beside it (mode 0600, removed
/// if dropped) renamed over it by [`Output::finish`], or standard output.
enum Output {
    Stdout(std::io::BufWriter<std::io::Stdout>),
    File { dest: PathBuf, file: std::io::BufWriter<tempfile::NamedTempFile> },
}

impl Output {
    fn create(dest: &Path) -> anyhow::Result<Output> {
        if dest.as_os_str() == "-" {
            return Ok(Output::Stdout(std::io::BufWriter::with_capacity(1 << 20, std::io::stdout())));
        }
        let name = dest.file_name().context("the output names no file")?.to_string_lossy();
        let dir = dest.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.partial-"))
            .tempfile_in(dir)
            .with_context(|| format!("creating a temporary file in `{}`", dir.display()))?;
        Ok(Output::File { dest: dest.to_owned(), file: std::io::BufWriter::with_capacity(1 << 20, tmp) })
    }

    fn writer(&mut self) -> &mut (dyn Write + Send) {
        match self {
            Output::Stdout(w) => w,
            Output::File { file, .. } => file,
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Output::Stdout(mut w) => Ok(w.flush()?),
            Output::File { dest, file } => {
                let tmp = file.into_inner().map_err(|e| e.into_error())?;
                tmp.as_file().sync_all()?;
                tmp.persist(&dest).with_context(|| format!("writing `{}`", dest.display()))?;
                Ok(())
            }
        }
    }
}

fn open_input(path: &Path) -> anyhow::Result<(Box<dyn Read + Send>, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin()), None));
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
    let size = file.metadata().ok().map(|m| m.len());
    Ok((Box::new(file), size))
}

fn bar(size: Option<u64>, quiet: bool, what: &str) -> ProgressBar {
    match size {
        Some(n) if !quiet && n >= 64 << 20 => {
            let bar = ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            {
                bar.set_style(style);
            }
            bar.set_message(what.to_owned());
            bar
        }
        _ => ProgressBar::hidden(),
    }
}

fn parse_context(pairs: &[String]) -> anyhow::Result<EncryptionContext> {
    let mut context = EncryptionContext::new();
    for pair in pairs {
        let (k, v) = pair.split_once('=').with_context(|| format!("--context `{pair}` is not NAME=VALUE"))?;
        if k.is_empty() || context.insert(k.to_owned(), v.to_owned()).is_some() {
            bail!("--context `{pair}`: the name is empty or given twice");
        }
    }
    Ok(context)
}

/// Whether a failure means the ciphertext does not authenticate (exit 9).
fn is_tampering(e: &EnvelopeError) -> bool {
    matches!(
        e,
        EnvelopeError::Container(ContainerError::Payload(
            ChunkedError::Chunk(_)
                | ChunkedError::Truncated(_)
                | ChunkedError::CutTag(_)
                | ChunkedError::Commitment
                | ChunkedError::Short(_)
        ))
    )
}

/// Reports a failure about `object`: exit 9 for tampering, else an error naming it.
fn fail(object: &Path, e: EnvelopeError) -> anyhow::Error {
    if is_tampering(&e) {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("error: `{}` does not authenticate: {e}", object.display());
        }
        return Exit(TAMPERED).into();
    }
    anyhow::Error::new(e).context(format!("`{}`", object.display()))
}

/// `custody encrypt`.
pub async fn encrypt(args: EncryptArgs, json: bool) -> anyhow::Result<()> {
    let provider = open_provider(args.keys.provider, &args.keys).await?;
    let context = parse_context(&args.context)?;
    provider.ensure_key(&args.key).await?;
    let sealing =
        custody_crypto::seal_header(provider.as_ref(), &args.key, context).await.map_err(|e| fail(&args.input, e))?;
    let dest = args.output.clone().unwrap_or_else(|| {
        let mut p = args.input.clone().into_os_string();
        p.push(".custody");
        p.into()
    });
    let (mut input, size) = open_input(&args.input)?;
    let mut out = Output::create(&dest)?;
    let header = sealing.header.to_bytes();
    out.writer().write_all(&header)?;
    let progress = bar(size, json, "encrypt");
    let plain =
        chunked::encrypt(&sealing.data_key, &sealing.header.payload_context(), &mut input, &mut out.writer(), |n| {
            progress.set_position(n)
        })
        .map_err(|e| fail(&args.input, e.into()))?;
    progress.finish_and_clear();
    out.finish()?;
    let report = serde_json::json!({
        "object": dest, "plaintext_bytes": plain, "kek": sealing.header.kek, "context": sealing.header.context,
    });
    if dest.as_os_str() == "-" {
        return Ok(());
    }
    show(json, &report, || {
        println!(
            "encrypted {} bytes to {} under {} version {}",
            plain,
            dest.display(),
            sealing.header.kek.key_id,
            sealing.header.kek.version
        )
    })
}

/// `custody decrypt`.
pub async fn decrypt(args: DecryptArgs, json: bool) -> anyhow::Result<()> {
    let dest = match &args.output {
        Some(o) => o.clone(),
        None => match args.input.to_str().and_then(|s| s.strip_suffix(".custody")) {
            Some(stem) if !stem.is_empty() => PathBuf::from(stem),
            _ => bail!("name the output with -o (the input does not end in `.custody`)"),
        },
    };
    let (mut input, size) = open_input(&args.input)?;
    let (header, header_len) = Header::read(&mut input).map_err(|e| fail(&args.input, e.into()))?;
    let provider = provider_of(&header, &args.keys).await?;
    let data_key = custody_crypto::open_header(provider.as_ref(), &header).await.map_err(|e| fail(&args.input, e))?;
    let context = header.payload_context();
    let mut out = Output::create(&dest)?;
    let plain = match &args.range {
        Some(range) => {
            let (start, end) = parse_range(range)?;
            if args.input.as_os_str() == "-" {
                bail!("--range needs a file (random access), not stdin");
            }
            let file = std::fs::File::open(&args.input)?;
            let at = FileAt { file: &file, offset: header_len };
            let mut ra = RandomAccess::open(&data_key, &context, &at).map_err(|e| fail(&args.input, e.into()))?;
            let end = end.unwrap_or(ra.len());
            let bytes = ra.read_range(start..end).map_err(|e| fail(&args.input, e.into()))?;
            out.writer().write_all(&bytes)?;
            bytes.len() as u64
        }
        None => {
            let progress = bar(size, json, "decrypt");
            let n = chunked::decrypt(&data_key, &context, &mut input, &mut out.writer(), |n| {
                progress.set_position(n + header_len)
            })
            .map_err(|e| fail(&args.input, e.into()))?;
            progress.finish_and_clear();
            n
        }
    };
    out.finish()?;
    if dest.as_os_str() == "-" {
        return Ok(());
    }
    let report =
        serde_json::json!({ "output": dest, "plaintext_bytes": plain, "kek": header.kek, "context": header.context });
    show(json, &report, || println!("decrypted {} bytes to {}", plain, dest.display()))
}

fn parse_range(text: &str) -> anyhow::Result<(u64, Option<u64>)> {
    let (a, b) = text.split_once("..").with_context(|| format!("--range `{text}` is not START..END"))?;
    let start = if a.is_empty() { 0 } else { a.parse().with_context(|| format!("--range start `{a}`"))? };
    let end = if b.is_empty() { None } else { Some(b.parse().with_context(|| format!("--range end `{b}`"))?) };
    Ok((start, end))
}

/// `custody keys`.
pub async fn keys(cmd: KeysCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::Init(arg) => {
            LocalKeyring::create(&arg.keyring, &Unlocker::from_env()?)?;
            show(json, &serde_json::json!({ "keyring": arg.keyring }), || {
                println!("created keyring {} (mode 0600)", arg.keyring.display())
            })
        }
        KeysCmd::List(args) => {
            let keys = open_provider(args.provider, &args).await?.keys().await?;
            show(json, &keys, || {
                for k in &keys {
                    println!(
                        "{}  current v{}  min decryption v{}  live {:?}  destroyed {:?}",
                        k.key_id, k.current, k.min_decryption_version, k.live_versions, k.destroyed_versions
                    );
                }
            })
        }
        KeysCmd::Rotate { key, keys } => {
            let v = open_provider(keys.provider, &keys).await?.rotate(&key).await?;
            show(json, &serde_json::json!({ "key_id": key, "current": v }), || println!("{key} is now at version {v}"))
        }
        KeysCmd::Retire { key, min_version, keys } => {
            open_provider(keys.provider, &keys).await?.set_min_decryption_version(&key, min_version).await?;
            show(json, &serde_json::json!({ "key_id": key, "min_decryption_version": min_version }), || {
                println!("{key}: versions below {min_version} no longer decrypt")
            })
        }
        KeysCmd::Shred { key, key_version, keys } => {
            let receipt = open_provider(keys.provider, &keys).await?.destroy(&key, key_version).await?;
            show(json, &receipt, || {
                println!(
                    "destroyed {} versions {:?} at {}: what they protected is unrecoverable",
                    receipt.key_id, receipt.versions, receipt.destroyed_at
                )
            })
        }
        KeysCmd::Rewrap { files, keys } => rewrap(&keys, &files, json).await,
    }
}

/// Rewraps each object's data key under its KEK's current version; objects already current
/// are skipped, so an interrupted run resumes.
/// KEK name to current version.
type CurrentVersions = BTreeMap<String, u32>;

async fn rewrap(args: &ProviderArgs, files: &[PathBuf], json: bool) -> anyhow::Result<()> {
    // One provider (and one listing of current versions) per provider the objects name.
    let mut providers: BTreeMap<String, (Box<dyn KeyProvider>, CurrentVersions)> = BTreeMap::new();
    let progress = if json || files.len() < 100 {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(files.len() as u64), ProgressDrawTarget::stderr())
    };
    let (mut rewrapped, mut skipped) = (0u64, 0u64);
    for path in files {
        let mut file = std::fs::File::open(path).with_context(|| format!("opening `{}`", path.display()))?;
        let (header, header_len) = Header::read(&mut file).map_err(|e| fail(path, e.into()))?;
        if !providers.contains_key(&header.kek.provider) {
            let provider = provider_of(&header, args).await?;
            let current = provider.keys().await?.into_iter().map(|k| (k.key_id, k.current)).collect();
            providers.insert(header.kek.provider.clone(), (provider, current));
        }
        let Some((provider, current)) = providers.get(&header.kek.provider) else { continue };
        if current.get(&header.kek.key_id) == Some(&header.kek.version) {
            skipped += 1;
            progress.inc(1);
            continue;
        }
        let new = custody_crypto::rewrap_header(provider.as_ref(), &header).await.map_err(|e| fail(path, e))?;
        let mut out = Output::create(path)?;
        out.writer().write_all(&new.to_bytes())?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(header_len))?;
        std::io::copy(&mut file, &mut out.writer())?;
        out.finish()?;
        rewrapped += 1;
        progress.inc(1);
    }
    progress.finish_and_clear();
    show(json, &serde_json::json!({ "rewrapped": rewrapped, "already_current": skipped }), || {
        println!("rewrapped {rewrapped} objects ({skipped} already current)")
    })
}

//! What each command does.

use crate::cli::*;
use crate::client::Client;
use crate::output;
use anyhow::{Context, bail};
use custody_core::{ApiToken, Approval, AuditEvent, Dataset, DatasetVersion, Principal, Project};
use serde_json::{Value, json};

/// A failure that carries its own exit code, already explained on stderr.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for Exit {}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Demo(args) => crate::demo::run(args, json).await,
        Command::Policy(cmd) => policy(cmd, json),
        Command::Digest { file } => {
            let (d, n) = crate::digest::sha256_file(&file, json)?;
            show(json, &json!({ "digest": d, "size_bytes": n }), || println!("{d}  {n} bytes  {}", file.display()))
        }
        Command::Completions { .. } => Ok(()),
        Command::Encrypt(args) => crate::envelope::encrypt(args, json).await,
        Command::Decrypt(args) => crate::envelope::decrypt(args, json).await,
        Command::Keys(cmd) => crate::envelope::keys(cmd, json).await,
        Command::Scan(args) => crate::scan::run(args, json).await,
        Command::Sign(args) => crate::provenance::sign(args, json).await,
        Command::Verify(args) => crate::provenance::verify(args, json).await,
        Command::SigningKey(cmd) => crate::provenance::signing_key(cmd, json).await,
        Command::Audit(AuditCmd::Verify { dir, key, key_file, jsonl }) => {
            let key = match (key, key_file) {
                (Some(k), _) => k,
                (None, Some(f)) => std::fs::read_to_string(&f).with_context(|| format!("reading `{}`", f.display()))?,
                (None, None) => bail!("--key or --key-file is required"),
            };
            let v = crate::auditlog::verify(&dir, &key, json)?;
            let to_stdout = jsonl.as_deref().is_some_and(|p| p.as_os_str() == "-");
            if let Some(path) = &jsonl {
                if to_stdout {
                    crate::auditlog::write_json_lines(&dir, &mut std::io::stdout().lock())?;
                } else {
                    let file = std::fs::File::create(path).with_context(|| format!("creating `{}`", path.display()))?;
                    crate::auditlog::write_json_lines(&dir, &mut std::io::BufWriter::new(file))?;
                }
            }
            let summary = format!(
                "verified records {}..{}: every leaf, root {}, {} signed checkpoints",
                v.start, v.end, v.root, v.checkpoints_matched
            );
            let tail = (v.unsigned_tail > 0)
                .then(|| format!("note: the last {} records are after the last signed checkpoint", v.unsigned_tail));
            if to_stdout {
                eprintln!("{summary}");
                tail.iter().for_each(|t| eprintln!("{t}"));
                return Ok(());
            }
            show(json, &v, || {
                println!("{summary}");
                tail.iter().for_each(|t| println!("{t}"));
            })
        }
        Command::Audit(AuditCmd::Key { key_file: Some(path) }) => {
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading `{}`", path.display()))?;
            let signer = custody_audit::Signer::parse_private_key(text.trim())
                .with_context(|| format!("`{}` holds no log key", path.display()))?;
            let key = json!({ "origin": signer.name(), "verifier_key": signer.verifier_key() });
            show(json, &key, || println!("{}", signer.verifier_key()))
        }
        command => {
            let file = CliConfig::load(cli.cli_config.as_deref())?;
            let server = cli.server.or(file.server).unwrap_or_else(|| "http://127.0.0.1:7070".into());
            let token_file = cli.token_file.or(file.token_file);
            let ca_cert = cli.ca_cert.or(file.ca_cert);
            let client = connect(&server, token_file.as_deref(), ca_cert.as_deref())?;
            api(command, &client, json).await
        }
    }
}

/// The CLI's own settings file; options and variables take precedence over it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CliConfig {
    /// The server URL.
    server: Option<String>,
    /// A file holding the API token.
    token_file: Option<std::path::PathBuf>,
    /// A PEM CA certificate to trust.
    ca_cert: Option<std::path::PathBuf>,
}

impl CliConfig {
    /// Reads `path`, or the default location when it exists; a missing default is no error.
    fn load(path: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => match default_cli_config() {
                Some(p) => (p, false),
                None => return Ok(Self::default()),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("reading `{}`", path.display())),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading `{}`", path.display())),
        }
    }
}

fn default_cli_config() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config")))?;
    Some(base.join("custody").join("cli.toml"))
}

fn connect(server: &str, token_file: Option<&std::path::Path>, ca: Option<&std::path::Path>) -> anyhow::Result<Client> {
    let token = match token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the token file `{}`", f.display()))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var("CUSTODY_TOKEN").ok().filter(|t| !t.is_empty()),
    };
    if token.is_none() {
        bail!("no credentials: set CUSTODY_TOKEN or --token-file");
    }
    let ca_pem = ca.map(|p| std::fs::read(p).with_context(|| format!("reading `{}`", p.display()))).transpose()?;
    Client::new(server, token, ca_pem.as_deref())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUSTODY_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let config = custody_server::Config::load(args.config.as_deref())?;
    let mut server = custody_server::start(config).await?;
    if let Some(token) = &server.bootstrap_token {
        // Shown once, on stdout only (never in the logs): the store keeps only its hash.
        println!("Administrator token (shown once; store it now):\n\n    {token}\n");
        println!("    export CUSTODY_SERVER={} CUSTODY_TOKEN={token}\n", server.url());
    }
    tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            server.shutdown().await;
        }
        _ = server.wait() => bail!("the server stopped unexpectedly"),
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn policy(cmd: PolicyCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        PolicyCmd::Check { dir } => match custody_policy::PolicyEngine::from_dir(&dir) {
            Ok(engine) => {
                if json {
                    output::json(
                        &json!({ "valid": true, "policies": engine.policy_count(), "policy_hash": engine.policy_hash() }),
                    )
                } else {
                    println!(
                        "{}: {} policies valid; policy set hash {}",
                        dir.display(),
                        engine.policy_count(),
                        engine.policy_hash()
                    );
                    Ok(())
                }
            }
            Err(e) => {
                if json {
                    output::json(&json!({ "valid": false, "error": e.to_string() }))?;
                } else {
                    eprintln!("{e}");
                }
                Err(Exit(crate::exit::FAILURE).into())
            }
        },
        PolicyCmd::Schema => {
            print!("{}", custody_policy::PolicyEngine::schema_text());
            Ok(())
        }
        PolicyCmd::Export { dir } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating `{}`", dir.display()))?;
            for (name, text) in custody_policy::PolicyEngine::builtin_files() {
                let path = dir.join(name);
                if path.exists() {
                    bail!("`{}` exists; not overwriting it", path.display());
                }
                std::fs::write(&path, text).with_context(|| format!("writing `{}`", path.display()))?;
            }
            println!("wrote {} policy files to {}", custody_policy::PolicyEngine::builtin_files().len(), dir.display());
            Ok(())
        }
    }
}

async fn api(command: Command, c: &Client, json: bool) -> anyhow::Result<()> {
    match command {
        Command::Lineage(cmd) => crate::lineage::run(cmd, c, json).await,
        Command::Whoami => {
            let p: Principal = c.get("/api/v1/whoami").await?;
            show(json, &p, || {
                let grants: Vec<String> = p.grants.iter().map(|g| format!("{}:{}", g.scope, g.role)).collect();
                output::fields(&[
                    ("principal", p.id.clone()),
                    ("kind", p.kind.as_str().into()),
                    ("roles", grants.join(", ")),
                ]);
            })
        }
        Command::Project(cmd) => project(cmd, c, json).await,
        Command::Dataset(cmd) => dataset(cmd, c, json).await,
        Command::Approval(cmd) => approval(cmd, c, json).await,
        Command::Token(cmd) => token(cmd, c, json).await,
        Command::Model(cmd) => crate::registry::model(cmd, c, json).await,
        Command::Deploy(cmd) => crate::registry::deploy(cmd, c, json).await,
        Command::Bundle(cmd) => crate::edge::create(cmd, c, json).await,
        Command::Audit(AuditCmd::Log {
            from,
            limit,
            actor,
            action,
            project,
            resource,
            resource_kind,
            region,
            outcome,
            since,
            until,
            with_proofs,
        }) => {
            let mut q = vec![("from", from.to_string()), ("limit", limit.to_string())];
            for (k, v) in [
                ("actor", actor),
                ("action", action),
                ("project", project),
                ("resource", resource),
                ("resource_kind", resource_kind),
                ("region", region),
                ("outcome", outcome),
                ("since", since),
                ("until", until),
            ] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            if with_proofs {
                q.push(("with_proofs", "true".into()));
            }
            let entries: Vec<Value> = c.get(&format!("/api/v1/audit?{}", query(&q))).await?;
            if with_proofs {
                crate::auditlog::check_entry_proofs(&entries)?;
            }
            let events = entries
                .iter()
                .map(|e| serde_json::from_value::<AuditEvent>(e.clone()))
                .collect::<Result<Vec<_>, _>>()
                .context("reading the server's audit events")?;
            show(json, &entries, || {
                audit_table(&events);
                if with_proofs {
                    println!("each record's leaf hash recomputed and its inclusion proof verified");
                }
            })
        }
        Command::Audit(AuditCmd::Root) => {
            let r: Value = c.get("/api/v1/audit/root").await?;
            show(json, &r, || {
                output::fields(&[("size", r["size"].to_string()), ("root", r["root"].as_str().unwrap_or("").into())])
            })
        }
        Command::Audit(AuditCmd::Prove { seq, size }) => {
            let mut q = vec![("seq", seq.to_string())];
            if let Some(size) = size {
                q.push(("size", size.to_string()));
            }
            let p: Value = c.get(&format!("/api/v1/audit/proofs/inclusion?{}", query(&q))).await?;
            let size = p["size"].as_u64().context("the answer has a size")?;
            custody_audit::verify_inclusion(
                &hash(&p["leaf_hash"])?,
                seq,
                size,
                &hashes(&p["proof"])?,
                &hash(&p["root"])?,
            )
            .with_context(|| format!("the server's inclusion proof for record {seq} does not verify"))?;
            show(json, &p, || {
                println!(
                    "record {seq} is in the log of size {size} with root {}: proof verified",
                    p["root"].as_str().unwrap_or("")
                )
            })
        }
        Command::Audit(AuditCmd::Consistency { from, to }) => {
            let mut q = vec![("from", from.to_string())];
            if let Some(to) = to {
                q.push(("to", to.to_string()));
            }
            let p: Value = c.get(&format!("/api/v1/audit/proofs/consistency?{}", query(&q))).await?;
            let to = p["to"].as_u64().context("the answer has a size")?;
            custody_audit::verify_consistency(
                from,
                to,
                &hash(&p["from_root"])?,
                &hash(&p["to_root"])?,
                &hashes(&p["proof"])?,
            )
            .with_context(|| format!("the server's consistency proof {from} -> {to} does not verify"))?;
            show(json, &p, || println!("the log of size {from} is a prefix of the log of size {to}: proof verified"))
        }
        Command::Audit(AuditCmd::Key { key_file: None }) => {
            let k: Value = c.get("/api/v1/audit/key").await?;
            show(json, &k, || println!("{}", k["verifier_key"].as_str().unwrap_or("")))
        }
        Command::Audit(AuditCmd::Checkpoint) => {
            let cp: Value = c.get("/api/v1/audit/checkpoint").await?;
            show(json, &cp, || print!("{}", cp["note"].as_str().unwrap_or("")))
        }
        Command::Audit(AuditCmd::Export { dir, from, to }) if dir.as_os_str() == "-" => {
            let mut path = format!("/api/v1/audit/export?from={from}");
            if let Some(to) = to {
                path.push_str(&format!("&to={to}"));
            }
            let mut resp = c.get_raw(&path).await?;
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = resp.chunk().await.context("the export stream broke off")? {
                std::io::Write::write_all(&mut out, &chunk)?;
            }
            Ok(())
        }
        Command::Audit(AuditCmd::Export { dir, from, to }) => {
            let e = crate::auditlog::export(c, &dir, from, to, json).await?;
            show(json, &e, || {
                println!(
                    "exported records {}..{} ({} resumed) and {} signed checkpoints to {}",
                    e.start,
                    e.end,
                    e.resumed,
                    e.checkpoints,
                    dir.display()
                )
            })
        }
        _ => bail!("not an API command"),
    }
}

/// Reads a hex hash from a JSON answer.
pub fn hash(v: &Value) -> anyhow::Result<custody_audit::Hash> {
    let text = v.as_str().context("a hex hash was expected")?;
    let bytes = hex::decode(text).with_context(|| format!("`{text}` is not hex"))?;
    Ok(custody_audit::hash_from_slice(&bytes)?)
}

/// Reads a list of hex hashes from a JSON answer.
pub fn hashes(v: &Value) -> anyhow::Result<Vec<custody_audit::Hash>> {
    v.as_array().context("a list of hashes was expected")?.iter().map(hash).collect()
}

pub fn audit_table(events: &[AuditEvent]) {
    let rows = events
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                e.time.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                e.actor.clone(),
                e.action.to_string(),
                e.resource.0.clone(),
                e.decision.as_str().into(),
                e.outcome.as_str().into(),
            ]
        })
        .collect::<Vec<_>>();
    output::table(&["SEQ", "TIME", "ACTOR", "ACTION", "RESOURCE", "DECISION", "OUTCOME"], &rows);
}

pub fn show<T: serde::Serialize>(json: bool, value: &T, human: impl FnOnce()) -> anyhow::Result<()> {
    if json {
        output::json(value)
    } else {
        human();
        Ok(())
    }
}

/// Percent-encodes query parameters (RFC 3986 unreserved characters pass through).
pub fn query(pairs: &[(&str, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// Percent-encodes one path segment.
pub fn path_segment(s: &str) -> String {
    query(&[("", s.to_owned())]).trim_start_matches('=').to_owned()
}

async fn project(cmd: ProjectCmd, c: &Client, json: bool) -> anyhow::Result<()> {
    match cmd {
        ProjectCmd::Create { name, description } => {
            let p: Project = c.post("/api/v1/projects", &json!({ "name": name, "description": description })).await?;
            show(json, &p, || println!("created project {}", p.name))
        }
        ProjectCmd::List => {
            let ps: Vec<Project> = c.get("/api/v1/projects").await?;
            show(json, &ps, || {
                let rows = ps
                    .iter()
                    .map(|p| vec![p.name.to_string(), p.created_by.clone(), p.description.clone()])
                    .collect::<Vec<_>>();
                output::table(&["NAME", "CREATED BY", "DESCRIPTION"], &rows);
            })
        }
        ProjectCmd::Get { name } => {
            let p: Project = c.get(&format!("/api/v1/projects/{}", path_segment(&name))).await?;
            show(json, &p, || {
                output::fields(&[
                    ("name", p.name.to_string()),
                    ("id", p.id.to_string()),
                    ("description", p.description.clone()),
                ])
            })
        }
    }
}

fn dataset_fields(d: &Dataset) {
    output::fields(&[
        ("id", d.id.to_string()),
        ("project", d.project.to_string()),
        ("name", d.name.to_string()),
        ("owner", d.owner.clone()),
        ("classification", d.classification.to_string()),
        ("region", d.region.to_string()),
        ("retention", d.retention.to_string()),
        ("licence", d.licence.clone()),
        ("source", d.source_uri.clone()),
        ("intended use", d.intended_use.items().join("; ")),
        ("prohibited use", d.prohibited_use.items().join("; ")),
    ]);
}

async fn dataset(cmd: DatasetCmd, c: &Client, json: bool) -> anyhow::Result<()> {
    match cmd {
        DatasetCmd::Register(a) => {
            let body = json!({
                "name": a.name, "owner": a.owner, "licence": a.licence, "source_uri": a.source,
                "classification": a.classification, "region": a.region, "retention": a.retention,
                "intended_use": a.intended_use, "prohibited_use": a.prohibited_use,
            });
            let d: Dataset = c.post(&format!("/api/v1/projects/{}/datasets", path_segment(&a.project)), &body).await?;
            show(json, &d, || dataset_fields(&d))
        }
        DatasetCmd::List { project, query: q, classification, region, owner } => {
            let mut params = vec![("limit", "500".to_owned())];
            for (k, v) in [("q", q), ("classification", classification), ("region", region), ("owner", owner)] {
                if let Some(v) = v {
                    params.push((k, v));
                }
            }
            let ds: Vec<Dataset> =
                c.get(&format!("/api/v1/projects/{}/datasets?{}", path_segment(&project), query(&params))).await?;
            show(json, &ds, || {
                let rows = ds
                    .iter()
                    .map(|d| {
                        vec![
                            d.name.to_string(),
                            d.classification.to_string(),
                            d.region.to_string(),
                            d.owner.clone(),
                            d.id.to_string(),
                        ]
                    })
                    .collect::<Vec<_>>();
                output::table(&["NAME", "CLASSIFICATION", "REGION", "OWNER", "ID"], &rows);
            })
        }
        DatasetCmd::Get { id } => {
            let d: Dataset = c.get(&format!("/api/v1/datasets/{}", path_segment(&id))).await?;
            show(json, &d, || dataset_fields(&d))
        }
        DatasetCmd::AddVersion { id, label, file, digest, size, location } => {
            let (digest, size) = match (file, digest, size) {
                (Some(f), _, _) => {
                    let (d, n) = crate::digest::sha256_file(&f, json)?;
                    (d.to_string(), n)
                }
                (None, Some(d), Some(n)) => (d, n),
                _ => bail!("give a FILE, or --digest with --size"),
            };
            let body = json!({ "label": label, "digest": digest, "size_bytes": size, "location": location });
            let v: DatasetVersion = c.post(&format!("/api/v1/datasets/{}/versions", path_segment(&id)), &body).await?;
            show(json, &v, || println!("added version {} {} ({} bytes)", v.label, v.digest, v.size_bytes))
        }
        DatasetCmd::Scan { id, label, file } => crate::scan_attach::dataset(c, &id, &label, &file, json).await,
        DatasetCmd::Versions { id } => {
            let vs: Vec<DatasetVersion> = c.get(&format!("/api/v1/datasets/{}/versions", path_segment(&id))).await?;
            show(json, &vs, || {
                let rows = vs
                    .iter()
                    .map(|v| {
                        vec![v.label.to_string(), v.digest.to_string(), v.size_bytes.to_string(), v.created_by.clone()]
                    })
                    .collect::<Vec<_>>();
                output::table(&["LABEL", "DIGEST", "BYTES", "BY"], &rows);
            })
        }
        DatasetCmd::Raise { id, to, reason } => {
            let d: Dataset = c
                .post(
                    &format!("/api/v1/datasets/{}/classification/raise", path_segment(&id)),
                    &json!({ "classification": to, "reason": reason }),
                )
                .await?;
            show(json, &d, || println!("{} is now {}", d.name, d.classification))
        }
        DatasetCmd::Lower { id, to, reason, ticket } => {
            let a: Approval = c
                .post(
                    &format!("/api/v1/datasets/{}/classification/lower", path_segment(&id)),
                    &json!({ "classification": to, "reason": reason, "ticket": ticket }),
                )
                .await?;
            show(json, &a, || {
                println!("approval {} requested; nothing changes until another approver approves it", a.id)
            })
        }
        DatasetCmd::Grant { id, principal } => {
            let _: Value = c
                .post(&format!("/api/v1/datasets/{}/grants", path_segment(&id)), &json!({ "principal": principal }))
                .await?;
            show(json, &json!({ "granted": principal }), || println!("granted {principal}"))
        }
        DatasetCmd::Revoke { id, principal } => {
            let _: Value = c
                .delete(&format!("/api/v1/datasets/{}/grants/{}", path_segment(&id), path_segment(&principal)))
                .await?;
            show(json, &json!({ "revoked": principal }), || println!("revoked {principal}"))
        }
    }
}

async fn approval(cmd: ApprovalCmd, c: &Client, json: bool) -> anyhow::Result<()> {
    let (id, approve, comment) = match cmd {
        ApprovalCmd::List { project, status } => {
            let q = status.map(|s| format!("?{}", query(&[("status", s)]))).unwrap_or_default();
            let list: Vec<Approval> =
                c.get(&format!("/api/v1/projects/{}/approvals{q}", path_segment(&project))).await?;
            return show(json, &list, || {
                let rows = list
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.to_string(),
                            a.subject.0.clone(),
                            a.status.as_str().into(),
                            a.requested_by.clone(),
                            a.reason.clone(),
                        ]
                    })
                    .collect::<Vec<_>>();
                output::table(&["ID", "SUBJECT", "STATUS", "REQUESTED BY", "REASON"], &rows);
            });
        }
        ApprovalCmd::Approve { id, comment } => (id, true, comment),
        ApprovalCmd::Reject { id, comment } => (id, false, comment),
    };
    let a: Approval = c
        .post(
            &format!("/api/v1/approvals/{}/decision", path_segment(&id)),
            &json!({ "approve": approve, "comment": comment }),
        )
        .await?;
    show(json, &a, || println!("approval {} is {}", a.id, a.status.as_str()))
}

async fn token(cmd: TokenCmd, c: &Client, json: bool) -> anyhow::Result<()> {
    match cmd {
        TokenCmd::Create { name, principal, kind, project, role, regions, expires_in_days } => {
            let body = json!({
                "name": name, "principal": principal, "kind": kind, "project": project, "role": role,
                "allowed_regions": (!regions.is_empty()).then_some(regions), "expires_in_days": expires_in_days,
            });
            let issued: Value = c.post("/api/v1/tokens", &body).await?;
            show(json, &issued, || {
                println!(
                    "token {} for {} ({}); the secret is shown once:\n",
                    issued["token"]["id"].as_str().unwrap_or("?"),
                    principal,
                    role
                );
                println!("    {}", issued["secret"].as_str().unwrap_or("?"));
            })
        }
        TokenCmd::List { project } => {
            let ts: Vec<ApiToken> = c.get(&format!("/api/v1/tokens?{}", query(&[("project", project)]))).await?;
            show(json, &ts, || {
                let rows = ts
                    .iter()
                    .map(|t| {
                        let state = if t.revoked_at.is_some() { "revoked" } else { "active" };
                        vec![
                            t.id.to_string(),
                            t.name.clone(),
                            t.principal.clone(),
                            format!("{}:{}", t.grant.scope, t.grant.role),
                            state.into(),
                        ]
                    })
                    .collect::<Vec<_>>();
                output::table(&["ID", "NAME", "PRINCIPAL", "ROLE", "STATE"], &rows);
            })
        }
        TokenCmd::Revoke { id } => {
            let t: ApiToken = c.delete(&format!("/api/v1/tokens/{}", path_segment(&id))).await?;
            show(json, &t, || println!("revoked token {}", t.id))
        }
    }
}

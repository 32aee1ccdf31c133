//! `custody demo`: an embedded server on a temporary data directory, and a realistic
//! lifecycle walked through the real HTTP API, each step checked and explained.

use crate::cli::DemoArgs;
use crate::client::{Client, ClientError};
use crate::commands::{hash, hashes};
use anyhow::{Context, bail};
use custody_core::{Approval, AuditEvent, Dataset, DatasetVersion, Decision, Outcome};
use serde_json::{Value, json};
use std::io::Write;

mod lineage;
mod registry;

struct Demo {
    json: bool,
    steps: Vec<Value>,
}

impl Demo {
    fn step(&mut self, what: &str, proves: &str) {
        if !self.json {
            println!("✓ {what}\n    proves: {proves}");
        }
        self.steps.push(json!({ "step": what, "proves": proves }));
    }

    fn note(&self, text: &str) {
        if !self.json {
            println!("\n== {text}");
        }
    }
}

/// Expects the call to fail with `status`; returns the error message.
fn refused<T: std::fmt::Debug>(r: Result<T, ClientError>, status: u16) -> anyhow::Result<String> {
    match r {
        Err(e) if e.status().map(|s| s.as_u16()) == Some(status) => Ok(e.to_string()),
        Err(e) => bail!("expected HTTP {status}, got: {e}"),
        Ok(v) => bail!("expected HTTP {status}, but the call succeeded: {v:?}"),
    }
}

pub async fn run(args: DemoArgs, json: bool) -> anyhow::Result<()> {
    let temp;
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => {
            temp = tempfile::tempdir().context("creating a temporary data directory")?;
            temp.path().to_path_buf()
        }
    };
    let config = custody_server::Config {
        data_dir: data_dir.join("data"),
        bind: "127.0.0.1:0".parse()?,
        ..custody_server::Config::default()
    };
    let server = custody_server::start(config).await?;
    let admin_token = server.bootstrap_token.clone().context("a new data directory gets an administrator token")?;
    let mut demo = Demo { json, steps: Vec::new() };
    if !json {
        println!("custody demo: embedded server at {} (SQLite in {})", server.url(), data_dir.display());
    }
    let admin = Client::new(&server.url(), Some(admin_token), None)?;
    let mut result = walk(&mut demo, &admin, &data_dir).await;
    if result.is_ok() {
        result = encryption(&mut demo, &data_dir).await;
    }
    if result.is_ok() {
        result = scanning(&mut demo);
    }
    if result.is_ok() {
        result = registry::run(&mut demo, &admin, &data_dir).await;
    }
    if result.is_ok() {
        result = lineage::run(&mut demo, &admin).await;
    }
    server.shutdown().await;
    result?;
    if json {
        crate::output::json(&json!({ "ok": true, "steps": demo.steps }))?;
    } else {
        println!("\nAll {} checks passed.", demo.steps.len());
    }
    Ok(())
}

async fn issue(
    admin: &Client,
    principal: &str,
    kind: &str,
    project: &str,
    role: &str,
    regions: Option<Vec<&str>>,
) -> anyhow::Result<Client> {
    let body = json!({ "name": format!("{principal} demo"), "principal": principal, "kind": kind, "project": project, "role": role, "allowed_regions": regions });
    let issued: Value = admin.post("/api/v1/tokens", &body).await?;
    let secret = issued["secret"].as_str().context("the answer carries the secret")?;
    Ok(admin.with_token(secret))
}

async fn walk(demo: &mut Demo, admin: &Client, dir: &std::path::Path) -> anyhow::Result<()> {
    demo.note("Projects and people");
    let _: Value = admin
        .post("/api/v1/projects", &json!({ "name": "fraud-detection", "description": "card fraud models" }))
        .await?;
    demo.step(
        "the platform admin created project `fraud-detection`",
        "only a platform admin may create projects; the change is in the audit log",
    );
    let alice = issue(admin, "alice", "user", "fraud-detection", "data-scientist", None).await?;
    let bob = issue(admin, "bob", "user", "fraud-detection", "approver", None).await?;
    let dave = issue(admin, "dave", "user", "fraud-detection", "viewer", None).await?;
    let eve = issue(admin, "eve", "user", "fraud-detection", "auditor", None).await?;
    let pipeline =
        issue(admin, "etl-pipeline", "workload", "fraud-detection", "data-scientist", Some(vec!["us-east-1"])).await?;
    demo.step(
        "issued tokens: alice (data-scientist), bob (approver), dave (viewer), eve (auditor), etl-pipeline (workload, us-east-1 only)",
        "tokens are scoped to one project and one role; only their SHA-256 is stored",
    );

    demo.note("Datasets and versions");
    let tx: Dataset = alice
        .post(
            "/api/v1/projects/fraud-detection/datasets",
            &json!({
                "name": "card-transactions", "licence": "proprietary", "source_uri": "s3://acme-raw/transactions/",
                "classification": "confidential", "region": "eu-west-1", "retention": "7y",
                "intended_use": ["fraud model training"], "prohibited_use": ["marketing", "credit scoring"],
            }),
        )
        .await?;
    demo.step(
        "alice registered `card-transactions` (confidential, eu-west-1, kept 7 years)",
        "data scientists may register datasets; owner defaults to the registrant",
    );

    let file = dir.join("transactions-2026-11.csv");
    {
        let mut f = std::fs::File::create(&file)?;
        for i in 0..50_000u32 {
            writeln!(f, "{i},4111********{:04},{}.{:02},EUR", i % 10_000, i % 900, i % 100)?;
        }
    }
    let (digest, size) = crate::digest::sha256_file(&file, true)?;
    let v1: DatasetVersion = alice
        .post(&format!("/api/v1/datasets/{}/versions", tx.id), &json!({ "label": "2026-11", "digest": digest, "size_bytes": size, "location": "s3://acme-raw/transactions/2026-11.csv" }))
        .await?;
    demo.step(
        &format!("alice added version `2026-11` = {} ({size} bytes, hashed while streaming)", v1.digest),
        "versions are identified by the SHA-256 of their bytes",
    );
    let dup = alice
        .post::<_, Value>(
            &format!("/api/v1/datasets/{}/versions", tx.id),
            &json!({ "label": "2026-11-again", "digest": digest, "size_bytes": size }),
        )
        .await;
    let msg = refused(dup, 409)?;
    demo.step(
        &format!("the same bytes under another label were refused: {msg}"),
        "versions are immutable and unique by content; the refusal is audited",
    );

    let bad = alice.post::<_, Value>("/api/v1/projects/fraud-detection/datasets", &json!({ "name": "Bad Name!", "licence": "x", "source_uri": "s3://x", "classification": "secret", "region": "eu-west-1", "retention": "1y" })).await;
    let msg = refused(bad, 400)?;
    demo.step(
        &format!("invalid input was refused: {msg}"),
        "bad input gets a 4xx naming the field; nothing is written but the audit record",
    );

    demo.note("Authorization (Cedar)");
    let denied = dave.post::<_, Value>("/api/v1/projects/fraud-detection/datasets", &json!({ "name": "shadow-copy", "licence": "x", "source_uri": "s3://x/y", "classification": "public", "region": "eu-west-1", "retention": "30d" })).await;
    refused(denied, 403)?;
    let _: Dataset = dave.get(&format!("/api/v1/datasets/{}", tx.id)).await?;
    demo.step(
        "dave (viewer) could read `card-transactions` but not register a dataset",
        "roles decide actions; a denial is answered 403 and recorded with the policy set's hash",
    );
    let region = pipeline.get::<Dataset>(&format!("/api/v1/datasets/{}", tx.id)).await;
    refused(region, 403)?;
    demo.step(
        "etl-pipeline (limited to us-east-1) could not touch the eu-west-1 dataset",
        "attributes (region) constrain roles",
    );

    let pii: Dataset = alice
        .post("/api/v1/projects/fraud-detection/datasets", &json!({ "name": "cardholder-pii", "licence": "proprietary", "source_uri": "postgres://crm/cardholders", "classification": "restricted", "region": "eu-west-1", "retention": "2y" }))
        .await?;
    refused(dave.get::<Dataset>(&format!("/api/v1/datasets/{}", pii.id)).await, 403)?;
    let _: Dataset = alice.get(&format!("/api/v1/datasets/{}", pii.id)).await?;
    demo.step(
        "restricted `cardholder-pii`: alice (registrant, granted on registration) may read it, dave may not",
        "restricted data needs an explicit grant, whatever the role",
    );
    let _: Value = admin.post(&format!("/api/v1/datasets/{}/grants", pii.id), &json!({ "principal": "dave" })).await?;
    let _: Dataset = dave.get(&format!("/api/v1/datasets/{}", pii.id)).await?;
    demo.step("after an explicit grant by the admin, dave can read it", "grants are explicit, audited changes");

    demo.note("Classification changes and approvals");
    let raised: Dataset = alice
        .post(
            &format!("/api/v1/datasets/{}/classification/raise", tx.id),
            &json!({ "classification": "restricted", "reason": "contains full PANs" }),
        )
        .await?;
    demo.step(
        &format!("alice (owner) raised `card-transactions` to {}", raised.classification),
        "owners may raise a classification at once",
    );
    let no_ticket = alice
        .post::<_, Value>(
            &format!("/api/v1/datasets/{}/classification/lower", tx.id),
            &json!({ "classification": "confidential", "reason": "PANs masked" }),
        )
        .await;
    refused(no_ticket, 403)?;
    let req: Approval = alice
        .post(
            &format!("/api/v1/datasets/{}/classification/lower", tx.id),
            &json!({ "classification": "confidential", "reason": "PANs masked", "ticket": "CHG-4711" }),
        )
        .await?;
    demo.step(
        "lowering without a change ticket was denied; with ticket CHG-4711 it became a pending approval",
        "lowering needs a ticket and someone else's approval; nothing changed yet",
    );
    refused(
        alice.post::<_, Value>(&format!("/api/v1/approvals/{}/decision", req.id), &json!({ "approve": true })).await,
        403,
    )?;
    let done: Approval = bob
        .post(
            &format!("/api/v1/approvals/{}/decision", req.id),
            &json!({ "approve": true, "comment": "masking verified" }),
        )
        .await?;
    let now: Dataset = alice.get(&format!("/api/v1/datasets/{}", tx.id)).await?;
    demo.step(
        &format!(
            "alice could not approve her own request; bob approved it ({}); the dataset is {} again",
            done.status.as_str(),
            now.classification
        ),
        "separation of duties; the approved change applied in the same transaction as the decision",
    );

    demo.note("Tokens");
    let ptoken: Value = pipeline.get("/api/v1/whoami").await?;
    let issued: Vec<custody_core::ApiToken> = admin.get("/api/v1/tokens?project=fraud-detection").await?;
    let pid = issued.iter().find(|t| t.principal == "etl-pipeline").context("the pipeline token is listed")?.id;
    let _: Value = admin.delete(&format!("/api/v1/tokens/{pid}")).await?;
    refused(pipeline.get::<Value>("/api/v1/whoami").await, 401)?;
    demo.step(
        &format!("revoked the token of {}; its next request got 401", ptoken["id"].as_str().unwrap_or("?")),
        "revocation takes effect at once",
    );

    demo.note("The audit log");
    let events: Vec<AuditEvent> = eve.get("/api/v1/audit?project=fraud-detection&limit=1000").await?;
    let denied = events.iter().filter(|e| e.decision == Decision::Deny).count();
    let rejected = events.iter().filter(|e| e.outcome == Outcome::Rejected).count();
    let gapless = events.windows(2).all(|w| w[1].seq > w[0].seq);
    if !demo.json {
        crate::commands::audit_table(&events[events.len().saturating_sub(8)..]);
    }
    if denied < 4 || rejected < 2 || !gapless {
        bail!("the audit log misses events: {denied} denials, {rejected} rejections");
    }
    demo.step(
        &format!("eve (auditor) read {} events of the project: {denied} denials and {rejected} rejected inputs among them, each with actor, decision and policy hash", events.len()),
        "every request — allowed, denied or invalid — is in the audit log, in sequence",
    );
    refused(eve.post::<_, Value>("/api/v1/projects/fraud-detection/datasets", &json!({})).await, 403)?;
    demo.step("eve could not change anything", "auditors read; they do not write");

    let denial = events.iter().find(|e| e.decision == Decision::Deny).context("a denial is in the log")?;
    let root: Value = admin.get("/api/v1/audit/root").await?;
    let size = root["size"].as_u64().context("size")?;
    let proof: Value = admin.get(&format!("/api/v1/audit/proofs/inclusion?seq={}&size={size}", denial.seq)).await?;
    custody_audit::verify_inclusion(
        &hash(&Value::String(denial.leaf_hash.clone()))?,
        denial.seq,
        size,
        &hashes(&proof["proof"])?,
        &hash(&root["root"])?,
    )
    .context("the inclusion proof verifies")?;
    let later: Value = admin.get("/api/v1/audit/root").await?;
    let to = later["size"].as_u64().context("size")?;
    let cons: Value = admin.get(&format!("/api/v1/audit/proofs/consistency?from={size}&to={to}")).await?;
    custody_audit::verify_consistency(
        size,
        to,
        &hash(&root["root"])?,
        &hash(&later["root"])?,
        &hashes(&cons["proof"])?,
    )
    .context("the consistency proof verifies")?;
    demo.step(
        &format!("record {} ({} denied {}) is in the Merkle log of size {size}; the log of size {size} is a prefix of size {to}", denial.seq, denial.actor, denial.action),
        "each record's leaf hash is in an RFC 6962 tree; inclusion and consistency proofs verify offline with custody-audit",
    );
    signed_log(demo, admin, &eve, &tx, dir).await?;
    stored_data(demo, admin, &alice, &eve, &tx, &v1, &file).await
}

/// A dataset version's data encrypted at rest on the embedded default (local keyring, local
/// blob store): stored, read for a run, found in the key-use ledger, crypto-shredded.
async fn stored_data(
    demo: &mut Demo,
    admin: &Client,
    alice: &Client,
    eve: &Client,
    tx: &Dataset,
    v1: &DatasetVersion,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    use reqwest::Method;
    demo.note("Data encrypted at rest, the key-use ledger, crypto-shredding");
    let path = format!("/api/v1/datasets/{}/versions/{}/data", tx.id, v1.label);
    let bytes = std::fs::read(file)?;
    let stored: Value = alice.put_bytes(&path, bytes.clone(), &[("custody-run", "etl-2026-11")]).await?;
    let kek = stored["kek"]["key_id"].as_str().context("the answer names the KEK")?.to_owned();
    demo.step(
        &format!("alice stored version {} ({} bytes) encrypted under KEK `{kek}` v{}", v1.label, bytes.len(), stored["kek"]["version"]),
        "a fresh data key per object, wrapped by the KEK the policy chose for this dataset version; the version's digest is checked and bound into the header",
    );
    let got = alice.send_with(Method::GET, &path, &[("custody-run", "train-run-42")], None).await?.bytes().await?;
    anyhow::ensure!(got.as_ref() == bytes.as_slice(), "the data read back differs");
    let part = alice.send_with(Method::GET, &path, &[("range", "bytes=1000-1099")], None).await?.bytes().await?;
    anyhow::ensure!(part.as_ref() == &bytes[1000..1100], "the range read back differs");
    demo.step(
        "alice read it back for training run `train-run-42`, then 100 bytes by range",
        "a range read decrypts only the chunks it needs; a whole read is checked against the version's digest",
    );
    let uses: Value =
        eve.get(&format!("/api/v1/projects/fraud-detection/key-uses?dataset={}&run=train-run-42", tx.id)).await?;
    let first = uses.as_array().and_then(|u| u.first()).context("the ledger has the read")?;
    anyhow::ensure!(first["key_id"] == kek.as_str() && first["principal"] == "alice", "the ledger entry: {first}");
    demo.step(
        &format!(
            "eve asked which key protected card-transactions during train-run-42: `{kek}` v{}, unwrapped for alice",
            first["key_version"]
        ),
        "every wrap, unwrap and destruction is in the key-use ledger, written with its audit record",
    );
    let shred = format!("{path}/shred");
    let reason = json!({ "reason": "erasure request DSAR-2026-117" });
    refused(admin.send_with(Method::POST, &shred, &[], Some(&reason)).await, 403)?;
    let report: Value = admin
        .send_with(Method::POST, &shred, &[("custody-ticket", "DSAR-2026-117")], Some(&reason))
        .await?
        .json()
        .await?;
    let receipt = &report["receipts"][0];
    refused(alice.send_with(Method::GET, &path, &[], None).await, 410)?;
    demo.step(
        &format!(
            "with ticket DSAR-2026-117 the admin crypto-shredded version {}: KEK `{}` destroyed at {}; reads now answer 410 Gone",
            v1.label, receipt["key_id"].as_str().unwrap_or("?"), receipt["destroyed_at"].as_str().unwrap_or("?")
        ),
        "destroying the version's own KEK makes every copy of its ciphertext unrecoverable; shredding needs a ticket and is audited with its receipt",
    );
    Ok(())
}

/// The signed log: its key, the auditor's question answered with proofs, an export verified
/// offline, and a tampered copy caught.
async fn signed_log(
    demo: &mut Demo,
    admin: &Client,
    eve: &Client,
    tx: &Dataset,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    demo.note("The signed log, verified offline");
    let key: Value = admin.get("/api/v1/audit/key").await?;
    let vkey = key["verifier_key"].as_str().context("the log has a key")?.to_owned();
    let verifier = custody_audit::Verifier::parse(&vkey)?;
    let latest: Value = admin.get("/api/v1/audit/checkpoint").await?;
    let signed = custody_audit::Checkpoint::open(latest["note"].as_str().unwrap_or_default(), &[verifier])
        .context("the newest checkpoint is signed by the log key")?;
    if !demo.json {
        print!("{}", latest["note"].as_str().unwrap_or_default());
    }
    demo.step(
        &format!("the log's key is {vkey}; its newest checkpoint (size {}) carries a valid Ed25519 signature", signed.size),
        "every write batch ends with a C2SP signed checkpoint of the tree; `custody audit key` prints the key to publish",
    );
    let today = time::OffsetDateTime::now_utc().date();
    let question = format!(
        "/api/v1/audit?project=fraud-detection&resource=dataset:{}&action=dataset.read&since={today}&with_proofs=true",
        tx.id
    );
    let entries: Vec<Value> = eve.get(&question).await?;
    crate::auditlog::check_entry_proofs(&entries)?;
    let readers: std::collections::BTreeSet<&str> = entries.iter().filter_map(|e| e["actor"].as_str()).collect();
    demo.step(
        &format!("\"who read dataset {} today?\" — {} read attempts by {:?}, one query (outcome included), each record with a verified inclusion proof", tx.name, entries.len(), readers),
        "audit retrieval filters by time, actor, action, project, resource, region and outcome, with proofs",
    );
    let export = dir.join("audit-export");
    let exported = crate::auditlog::export(admin, &export, 0, None, true).await?;
    let verified = crate::auditlog::verify_dir(&export, &vkey, true)?
        .map_err(|f| anyhow::anyhow!("the fresh export does not verify: {f}"))?;
    demo.step(
        &format!(
            "exported records 0..{} with {} signed checkpoints to {}; verified offline: every leaf, the root, every signature",
            exported.end, verified.checkpoints_matched, export.display()
        ),
        "an auditor needs only the export and the published key (`custody audit export`, `custody audit verify`)",
    );
    let records = export.join("records.archive");
    let original = std::fs::read(&records)?;
    // eve's name as the canonical bytes hold it: present, 3 bytes long.
    let eve = b"\x01\x00\x00\x00\x03eve";
    let at = original.windows(eve.len()).position(|w| w == eve).context("eve's records are in the export")?;
    let mut forged = original.clone();
    forged[at + eve.len() - 1] = b'a';
    std::fs::write(&records, &forged)?;
    let caught = crate::auditlog::verify_dir(&export, &vkey, true)?;
    std::fs::write(&records, &original)?;
    let failure = match caught {
        Err(f) => f,
        Ok(_) => bail!("a forged record went unnoticed"),
    };
    demo.step(
        &format!("changed one actor name in the export: verification fails with \"{failure}\""),
        "tampering is detected and pinpointed to the record; `custody audit verify` exits 9",
    );
    Ok(())
}

/// Envelope encryption on the embedded default: a local keyring, one data key per object.
async fn encryption(demo: &mut Demo, dir: &std::path::Path) -> anyhow::Result<()> {
    use custody_crypto::chunked::{self, FileAt, RandomAccess};
    use custody_crypto::{Header, KeyProvider, LocalKeyring, Unlocker};
    demo.note("Envelope encryption");
    let secret = zeroize_key()?;
    let keyring = LocalKeyring::create(&dir.join("keyring.json"), &Unlocker::Key(secret))?;
    let kek = "fraud-detection/restricted/eu-west-1";
    keyring.ensure_key(kek).await?;
    let plain: Vec<u8> =
        (0..200_000u32).flat_map(|i| format!("{i},card-{},{}\n", i * 7, i % 97).into_bytes()).collect();
    let context: custody_crypto::EncryptionContext = [
        ("project", "fraud-detection"),
        ("dataset", "transactions"),
        ("version", "v1"),
        ("classification", "restricted"),
        ("region", "eu-west-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let sealing = custody_crypto::seal_header(&keyring, kek, context).await?;
    let object = dir.join("transactions-v1.custody");
    let mut bytes = sealing.header.to_bytes();
    let header_len = bytes.len() as u64;
    chunked::encrypt(&sealing.data_key, &sealing.header.payload_context(), &mut plain.as_slice(), &mut bytes, |_| {})?;
    std::fs::write(&object, &bytes)?;
    demo.step(
        &format!(
            "encrypted dataset transactions v1 ({} bytes) under a fresh data key wrapped by `{kek}` v{}",
            plain.len(),
            sealing.header.kek.version
        ),
        "one data key per object, bound to project, dataset, version, classification and region (C2SP chunked encryption, Cobblestone-256)",
    );
    let file = std::fs::File::open(&object)?;
    let (header, _) = Header::read(&mut &bytes[..])?;
    let key = custody_crypto::open_header(&keyring, &header).await?;
    let payload = FileAt { file: &file, offset: header_len };
    let mut ra = RandomAccess::open(&key, &header.payload_context(), &payload)?;
    let middle = ra.read_range(1_000_000..1_000_040)?;
    anyhow::ensure!(middle == plain[1_000_000..1_000_040], "the range read differs");
    demo.step(
        "read 40 bytes from the middle of the object, opening only the chunks that hold them",
        "authenticated random access: no whole-object decryption to serve a range",
    );
    let mut relabelled = header.clone();
    relabelled.context.insert("classification".into(), "public".into());
    let refused = custody_crypto::open_header(&keyring, &relabelled).await;
    anyhow::ensure!(refused.is_err(), "a relabelled header unwrapped");
    demo.step(
        "relabelling the object `public` in its header: the data key no longer unwraps",
        "the encryption context is authenticated; a wrapped key cannot be moved to another object or label",
    );
    let v2 = keyring.rotate(kek).await?;
    let rewrapped = custody_crypto::rewrap_header(&keyring, &header).await?;
    keyring.set_min_decryption_version(kek, v2).await?;
    anyhow::ensure!(custody_crypto::open_header(&keyring, &header).await.is_err(), "a retired version unwrapped");
    custody_crypto::open_header(&keyring, &rewrapped).await?;
    demo.step(
        &format!("rotated `{kek}` to v{v2}, rewrapped the object's data key (header only), retired v1"),
        "rotation without re-encrypting data; min_decryption_version retires old versions",
    );
    let receipt = keyring.destroy(kek, None).await?;
    let gone = custody_crypto::open_header(&keyring, &rewrapped).await;
    let reason = match gone {
        Err(e) => e.to_string(),
        Ok(_) => bail!("a shredded key still unwrapped"),
    };
    demo.step(
        &format!("shredded `{kek}` (versions {:?}): \"{reason}\"", receipt.versions),
        "crypto-shredding: destroying the key makes every copy of the data unrecoverable",
    );
    Ok(())
}

/// Scanning: a memo-confusion payload caught, a benign pickle clean, an unknown format never
/// clean.
fn scanning(demo: &mut Demo) -> anyhow::Result<()> {
    use custody_scan::{ScanOptions, Verdict, scan_bytes};
    demo.note("Scanning model files");
    let opts = ScanOptions::default();
    // protocol 2: memo slot 0 first holds collections.OrderedDict, then posix.system; BINGET 0
    // fetches the dangerous one and REDUCE calls it with ("id",).
    let evil = b"\x80\x02ccollections\nOrderedDict\nq\x00cposix\nsystem\nq\x00h\x00X\x02\x00\x00\x00id\x85R.";
    let benign = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01.";
    let (e, b, u) = (
        scan_bytes("evil.pkl", evil, &opts),
        scan_bytes("ok.pkl", benign, &opts),
        scan_bytes("weights.bin", b"\x89PNG\r\n\x1a\n", &opts),
    );
    if (e.verdict, b.verdict, u.verdict) != (Verdict::Malicious, Verdict::Clean, Verdict::Inconclusive) {
        bail!("the scanner misjudged: {:?} {:?} {:?}", e.verdict, b.verdict, u.verdict);
    }
    let why = e.findings.first().map(|f| f.message.clone()).unwrap_or_default();
    demo.step(
        &format!("`custody scan`: a pickle that hides posix.system behind a memo slot that first held an allowed global is malicious (\"{why}\"); an OrderedDict pickle is clean; an unknown format is inconclusive"),
        "the scanner models the unpickler's memo and stack, and fails closed: what it cannot analyse is never clean",
    );
    Ok(())
}

/// A random keyring key for the demo's throw-away keyring.
fn zeroize_key() -> anyhow::Result<zeroize::Zeroizing<[u8; 32]>> {
    let mut k = zeroize::Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(k.as_mut_slice()).map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    Ok(k)
}

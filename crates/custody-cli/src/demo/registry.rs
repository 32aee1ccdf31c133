//! The demo's model-provenance part: a model signed offline, registered against a trusted key
//! with signed SLSA provenance traced to a registered dataset version, promoted through the
//! approvals the policies require, checked where it is served, and shipped to the edge as a
//! bundle that verifies with nothing but the log's key.

use super::{Demo, issue, refused};
use crate::cli::{ApprovedStage, ServedArgs};
use crate::client::Client;
use crate::edge::{NotVerified, check_bundle, create_bundle};
use crate::registry::{hash_served, signed_version};
use anyhow::{Context, bail};
use custody_core::{DatasetVersion, ModelVersion, Promotion};
use custody_provenance::slsa::{TrainingRun, sign_provenance};
use custody_provenance::{
    HashAlgorithm, KeyAlgorithm, Serialization, SigningKey, Silent, StatementSigner as _, Subject,
};
use serde_json::{Value, json};
use std::path::Path;

const PROJECT: &str = "fraud-detection";

/// Writes a small model directory: weights (a real safetensors file: one F32 tensor of
/// 500,000 values), config and a tokenizer.
fn write_model(dir: &Path) -> anyhow::Result<()> {
    let header = br#"{"dense.weight":{"dtype":"F32","shape":[500000],"data_offsets":[0,2000000]}}"#;
    let mut weights = (header.len() as u64).to_le_bytes().to_vec();
    weights.extend_from_slice(header);
    weights.extend((0..2_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    for (path, bytes) in [
        ("weights/model.safetensors", &weights[..]),
        ("config.json", br#"{"architecture":"gbdt","features":42}"#),
        ("tokenizer/vocab.txt", b"amount merchant country mcc hour"),
    ] {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, bytes)?;
    }
    Ok(())
}

fn sign(dir: &Path, key: &SigningKey) -> anyhow::Result<(String, Value)> {
    let (manifest, bundle) =
        custody_provenance::sign_model(dir, &Serialization::files(HashAlgorithm::Sha256), key, &Silent)?;
    Ok((hex::encode(manifest.root_digest()), serde_json::from_str(&bundle.to_json())?))
}

/// The training data: the first version of `card-transactions` registered earlier.
async fn training_data(mia: &Client) -> anyhow::Result<(String, DatasetVersion)> {
    let datasets: Vec<Value> = mia.get(&format!("/api/v1/projects/{PROJECT}/datasets")).await?;
    let tx = datasets
        .iter()
        .find(|d| d["name"] == "card-transactions")
        .and_then(|d| d["id"].as_str())
        .context("card-transactions is registered")?
        .to_owned();
    let versions: Vec<DatasetVersion> = mia.get(&format!("/api/v1/datasets/{tx}/versions")).await?;
    let first = versions.into_iter().next().context("card-transactions has a version")?;
    Ok((tx, first))
}

async fn promote(
    mia: &Client,
    id: &str,
    to: &str,
    ticket: Option<&str>,
) -> Result<reqwest::Response, crate::client::ClientError> {
    let headers: Vec<(&str, &str)> = ticket.map(|t| ("custody-ticket", t)).into_iter().collect();
    let body = json!({ "to": to, "reason": "offline evaluation passed (AUC 0.94 on the holdout)" });
    mia.send_with(reqwest::Method::POST, &format!("/api/v1/models/{id}/versions/v1/promotions"), &headers, Some(&body))
        .await
}

async fn approve(who: &Client, promotion: &str) -> anyhow::Result<Promotion> {
    Ok(who
        .post(&format!("/api/v1/promotions/{promotion}/approvals"), &json!({ "comment": "reviewed the model card" }))
        .await?)
}

/// Registers, signs and promotes; returns the model id and the model's directory.
async fn register_and_promote(
    demo: &mut Demo,
    admin: &Client,
    mia: &Client,
    dir: &Path,
) -> anyhow::Result<(String, std::path::PathBuf)> {
    demo.note("Model provenance: signing, the registry, promotion");
    let bob = issue(admin, "bob", "user", PROJECT, "approver", None).await?;
    let carol = issue(admin, "carol", "user", PROJECT, "approver", None).await?;
    let model_dir = dir.join("fraud-scorer");
    write_model(&model_dir)?;
    let (key, _) = SigningKey::generate(KeyAlgorithm::EcdsaP256)?;
    let (root, bundle) = sign(&model_dir, &key)?;
    demo.step(
        &format!("signed the model directory fraud-scorer (3 files) offline: root sha256:{}…", &root[..16]),
        "an OpenSSF Model Signing v1.0 bundle (Sigstore bundle, DSSE, in-toto) that `model_signing verify key` accepts",
    );
    let _: Value = admin
        .post(
            &format!("/api/v1/projects/{PROJECT}/signers"),
            &json!({ "name": "training-ci", "public_key": key.public_key().to_pem() }),
        )
        .await?;
    let model: Value = mia
        .post(&format!("/api/v1/projects/{PROJECT}/models"), &json!({ "name": "fraud-scorer", "risk_tier": "high" }))
        .await?;
    let id = model["id"].as_str().context("the model has an id")?.to_owned();
    let (stranger, _) = SigningKey::generate(KeyAlgorithm::EcdsaP256)?;
    let (_, forged) = sign(&model_dir, &stranger)?;
    let why = refused(
        mia.post::<_, Value>(
            &format!("/api/v1/models/{id}/versions"),
            &json!({ "version": "v1", "signature": forged }),
        )
        .await,
        400,
    )?;
    demo.step(
        &format!("the admin trusts key `training-ci`; a version signed by another key is refused: \"{why}\""),
        "only keys a project administrator trusts can put models in the registry",
    );

    let (_, data) = training_data(mia).await?;
    let run = TrainingRun {
        job: "train-fraud-scorer".into(),
        run_id: "train-run-42".into(),
        datasets: vec![(
            format!("custody://{PROJECT}/datasets/card-transactions/versions/{}", data.label),
            hex::encode(data.digest.as_bytes()),
        )],
        code: Some(("git+https://git.example.com/fraud/models".into(), "4f2a9c1e".repeat(5))),
        image: Some(("registry.example.com/train@sha256".into(), "ab".repeat(32))),
        builder_id: "https://ci.example.com/runners/gpu-7".into(),
        ..TrainingRun::default()
    };
    let subject = Subject { name: "fraud-scorer".into(), digest: [("sha256".to_owned(), root.clone())].into() };
    let provenance: Value = serde_json::from_str(&sign_provenance(vec![subject], &run.provenance(), &key)?.to_json())?;
    let v: ModelVersion = mia
        .post(
            &format!("/api/v1/models/{id}/versions"),
            &json!({ "version": "v1", "signature": bundle, "provenance": provenance }),
        )
        .await?;
    let traced = v.provenance.as_ref().is_some_and(|p| p.fully_traced());
    if !traced || hex::encode(v.root_digest.as_bytes()) != root {
        bail!("version v1 is not bound to its digest and traced provenance: {v:?}");
    }
    demo.step(
        &format!("mia registered high-risk fraud-scorer v1, bound to its root digest, with signed SLSA provenance tracing it to card-transactions {}", data.label),
        "a version's artifacts can never be overwritten; the training run's datasets resolve to registered, digested versions",
    );

    scan_gate(demo, mia, &id, &model_dir, dir).await?;
    let why = refused(promote(mia, &id, "staging", None).await, 403)?;
    let p: Promotion = promote(mia, &id, "staging", Some("CHG-7731")).await?.json().await?;
    refused(
        mia.post::<_, Value>(&format!("/api/v1/promotions/{}/approvals", p.id), &json!({ "comment": "mine" })).await,
        403,
    )?;
    let p = approve(&bob, &p.id.to_string()).await?;
    demo.step(
        &format!("staging: refused without a change ticket (\"{why}\"); with ticket CHG-7731, mia could not approve her own request; bob's approval completed it ({})", p.status.as_str()),
        "Cedar decides promotions from the risk tier, the ticket and who approves",
    );
    let p: Promotion = promote(mia, &id, "production", Some("CHG-7740")).await?.json().await?;
    let after_one = approve(&bob, &p.id.to_string()).await?;
    let after_two = approve(&carol, &p.id.to_string()).await?;
    if after_one.status.as_str() != "pending" || after_two.status.as_str() != "completed" {
        bail!("production at high risk should need two approvers: {after_one:?} {after_two:?}");
    }
    demo.step(
        "production: still pending after bob's approval, completed by carol's — two distinct approvers for a high-risk model",
        "each stage change is an immutable history row with its approvers, written with its audit record",
    );
    Ok((id, model_dir))
}

/// The scan gate: no promotion before a clean scan of the signed files; a scan of other files
/// (a pickle slipped in beside them) cannot be attached to the version.
async fn scan_gate(demo: &mut Demo, mia: &Client, id: &str, model_dir: &Path, dir: &Path) -> anyhow::Result<()> {
    let why = refused(promote(mia, id, "staging", Some("CHG-7731")).await, 409)?;
    let planted = dir.join("fraud-scorer-planted");
    copy_tree(model_dir, &planted)?;
    // `posix.system('id')`, protocol 2.
    std::fs::write(planted.join("weights/extra.pkl"), b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.")?;
    let diff = match crate::scan_attach::attach_model(mia, id, "v1", &planted, None, true).await? {
        Err(diff) if diff.extra == ["weights/extra.pkl"] => diff,
        other => bail!("a directory with an extra pickle was scanned as v1: {other:?}"),
    };
    let scan = match crate::scan_attach::attach_model(mia, id, "v1", model_dir, None, true).await? {
        Ok(scan) if scan.verdict == custody_core::ScanVerdict::Clean => scan,
        other => bail!("the signed files did not scan clean: {other:?}"),
    };
    demo.step(
        &format!(
            "promotion refused before any scan (\"{why}\"); `custody model scan` refused a copy with {} beside the signed files; the signed files scanned clean ({} files: safetensors, JSON, text) and scan {} is attached under rules {}",
            diff.extra[0], scan.files.len(), scan.id, scan.rules_version
        ),
        "a scan attaches only to the bytes the version's signature covers, and staging/production need the latest one clean",
    );
    Ok(())
}

/// What is served, checked against the registry; a deployment recorded only for the approved
/// digest.
async fn deployments(demo: &mut Demo, mia: &Client, id: &str, model_dir: &Path, dir: &Path) -> anyhow::Result<()> {
    let sv = signed_version(mia, id, "v1").await?;
    let served = |d: &Path| ServedArgs { dir: Some(d.to_path_buf()), url: None };
    let good = hash_served(&served(model_dir), &sv.signed, true).await?;
    let tampered_dir = dir.join("served-tampered");
    copy_tree(model_dir, &tampered_dir)?;
    std::fs::write(tampered_dir.join("tokenizer/vocab.txt"), b"amount merchant country mcc hour refund")?;
    let bad = hash_served(&served(&tampered_dir), &sv.signed, true).await?;
    let diff = sv.signed.manifest.diff(&bad.manifest);
    if !sv.signed.manifest.diff(&good.manifest).is_empty() || diff.changed.len() != 1 {
        bail!("deploy verify did not tell the served copies apart");
    }
    demo.step(
        &format!("`custody deploy verify`: the served directory re-hashes to the approved digest; a copy with an edited tokenizer is caught ({} changed)", diff.changed[0].name),
        "what is actually served is compared file by file with what was signed and approved",
    );
    let deployment = |digest: String| {
        json!({ "environment": "prod-eu", "endpoint": "https://infer.example.com/fraud-scorer", "region": "eu-west-1",
                "running_digest": digest,
                "attestation": { "image_digest": format!("sha256:{}", "cd".repeat(32)), "accelerator": "nvidia-l4",
                                 "runtime_libraries": { "onnxruntime": "1.20.1" } } })
    };
    let bad_digest = format!("sha256:{}", hex::encode(bad.manifest.root_digest()));
    let path = format!("/api/v1/models/{id}/versions/v1/deployments");
    refused(mia.post::<_, Value>(&path, &deployment(bad_digest)).await, 409)?;
    let _: Value = mia.post(&path, &deployment(format!("sha256:{}", hex::encode(good.manifest.root_digest())))).await?;
    demo.step(
        "recorded the deployment prod-eu → fraud-scorer v1 with its runtime attestation; the tampered digest was refused (409)",
        "a deployment record names the approved digest, image, runtime libraries and accelerator",
    );
    Ok(())
}

/// An edge bundle: written, verified offline, a tampered copy caught.
async fn edge(
    demo: &mut Demo,
    admin: &Client,
    mia: &Client,
    id: &str,
    model_dir: &Path,
    dir: &Path,
) -> anyhow::Result<()> {
    let out = dir.join("fraud-scorer.edge");
    if let Err(NotVerified(r)) = create_bundle(mia, id, "v1", model_dir, &out, ApprovedStage::Production, true).await? {
        bail!("the edge bundle was not written: {r}");
    }
    let key: Value = admin.get("/api/v1/audit/key").await?;
    let verifier = custody_audit::Verifier::parse(key["verifier_key"].as_str().context("the log has a key")?)?;
    let checked = match check_bundle(&out, &verifier, ApprovedStage::Production, true).await? {
        Ok(c) => c,
        Err(NotVerified(r)) => bail!("the fresh edge bundle does not verify: {r}"),
    };
    demo.step(
        &format!(
            "wrote edge bundle {}: the files, the signature, the signer's key, audit record {} of the approval (by {}) with its inclusion proof and the signed checkpoint; `custody verify --offline` accepts it",
            out.display(), checked.approval_seq(), checked.approvers().join(" and ")
        ),
        "an edge site proves this is the approved model with no network, from the log's published key alone",
    );
    let weights = out.join("model/weights/model.safetensors");
    let mut bytes = std::fs::read(&weights)?;
    bytes[1_000_000] ^= 1;
    std::fs::write(&weights, &bytes)?;
    let reason = match check_bundle(&out, &verifier, ApprovedStage::Production, true).await? {
        Err(NotVerified(r)) => r,
        Ok(_) => bail!("a tampered edge bundle verified"),
    };
    demo.step(
        &format!("flipped one bit of the bundled weights: \"{reason}\""),
        "`custody verify --offline` exits 9 and names the file",
    );
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The whole provenance walk.
pub async fn run(demo: &mut Demo, admin: &Client, dir: &Path) -> anyhow::Result<()> {
    let mia = issue(admin, "mia", "user", PROJECT, "ml-engineer", None).await?;
    let (id, model_dir) = register_and_promote(demo, admin, &mia, dir).await?;
    deployments(demo, &mia, &id, &model_dir, dir).await?;
    edge(demo, admin, &mia, &id, &model_dir, dir).await
}

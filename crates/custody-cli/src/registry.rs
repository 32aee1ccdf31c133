//! `custody model` and `custody deploy`: the model registry from the command line, and the
//! check that what is served is what was signed and approved.

use crate::auditlog::TAMPERED;
use crate::cli::{DeployCmd, ModelCmd, ServedArgs};
use crate::client::Client;
use crate::commands::{Exit, path_segment as segment, show};
use crate::output;
use crate::provenance::{BarProgress, read};
use anyhow::{Context, bail};
use custody_core::{Deployment, Model, ModelVersion, Promotion, StageChange, TrustedSigner};
use custody_provenance::{
    Bundle, Manifest, ManifestDiff, Method, PublicKey, Resource, ResourceHasher, ResourceName, SignedManifest,
    compute_manifest, manifest_from_statement,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn version_path(id: &str, label: &str) -> String {
    format!("/api/v1/models/{}/versions/{}", segment(id), segment(label))
}

/// `custody model …`.
pub async fn model(cmd: ModelCmd, c: &Client, json: bool) -> anyhow::Result<()> {
    match cmd {
        ModelCmd::Register { project, name, risk_tier, owner, description } => {
            let body = json!({ "name": name, "risk_tier": risk_tier, "owner": owner, "description": description });
            let m: Model = c.post(&format!("/api/v1/projects/{}/models", segment(&project)), &body).await?;
            show(json, &m, || {
                output::fields(&[
                    ("id", m.id.to_string()),
                    ("model", format!("{}/{}", m.project, m.name)),
                    ("risk tier", m.risk_tier.to_string()),
                    ("owner", m.owner.clone()),
                ])
            })
        }
        ModelCmd::Get { id } => {
            let view: Value = c.get(&format!("/api/v1/models/{}", segment(&id))).await?;
            show(json, &view, || {
                let m = &view["model"];
                output::fields(&[
                    ("id", text(&m["id"])),
                    ("model", format!("{}/{}", text(&m["project"]), text(&m["name"]))),
                    ("risk tier", text(&m["risk_tier"])),
                    ("owner", text(&m["owner"])),
                ]);
                let rows: Vec<Vec<String>> = view["versions"]
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .map(|v| vec![text(&v["version"]), text(&v["stage"]), text(&v["root_digest"])])
                            .collect()
                    })
                    .unwrap_or_default();
                output::table(&["VERSION", "STAGE", "ROOT DIGEST"], &rows);
            })
        }
        ModelCmd::TrustSigner { project, name, public_key } => {
            let pem = String::from_utf8(read(&public_key, "public key")?)
                .with_context(|| format!("`{}` is not a PEM text file", public_key.display()))?;
            let body = json!({ "name": name, "public_key": pem });
            let s: TrustedSigner = c.post(&format!("/api/v1/projects/{}/signers", segment(&project)), &body).await?;
            show(json, &s, || println!("project `{}` now trusts `{}` (key {})", s.project, s.name, s.hint))
        }
        ModelCmd::Signers { project } => {
            let list: Vec<TrustedSigner> = c.get(&format!("/api/v1/projects/{}/signers", segment(&project))).await?;
            show(json, &list, || {
                let rows: Vec<Vec<String>> =
                    list.iter().map(|s| vec![s.name.to_string(), s.hint.clone(), s.added_by.clone()]).collect();
                output::table(&["NAME", "KEY HINT", "ADDED BY"], &rows);
            })
        }
        ModelCmd::Scan { id, label, dir, osv } => crate::scan_attach::model(c, &id, &label, &dir, osv, json).await,
        ModelCmd::AddVersion { id, label, signature, provenance, components } => {
            let signature: Value = serde_json::from_slice(&read(&signature, "signature")?)
                .with_context(|| format!("`{}` is not a JSON signature bundle", signature.display()))?;
            let provenance = match provenance {
                Some(p) => Some(
                    serde_json::from_slice::<Value>(&read(&p, "provenance")?)
                        .with_context(|| format!("`{}` is not a JSON bundle", p.display()))?,
                ),
                None => None,
            };
            let components = components.iter().map(|c| component(c)).collect::<anyhow::Result<Vec<_>>>()?;
            let body =
                json!({ "version": label, "signature": signature, "provenance": provenance, "components": components });
            let v: ModelVersion = c.post(&format!("/api/v1/models/{}/versions", segment(&id)), &body).await?;
            show(json, &v, || version_fields(&v))
        }
        ModelCmd::Version { id, label } => {
            let v: ModelVersion = c.get(&version_path(&id, &label)).await?;
            show(json, &v, || version_fields(&v))
        }
        ModelCmd::History { id, label } => {
            let h: Vec<StageChange> = c.get(&format!("{}/history", version_path(&id, &label))).await?;
            show(json, &h, || {
                let rows: Vec<Vec<String>> = h
                    .iter()
                    .map(|s| {
                        vec![
                            s.changed_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                            format!("{} → {}", s.from, s.to),
                            s.approvers.join(", "),
                            s.promotion.to_string(),
                        ]
                    })
                    .collect();
                output::table(&["WHEN", "MOVE", "APPROVED BY", "PROMOTION"], &rows);
            })
        }
        ModelCmd::Promote { id, label, to, reason, ticket } => {
            let headers: Vec<(&str, &str)> = ticket.as_deref().map(|t| ("custody-ticket", t)).into_iter().collect();
            let body = json!({ "to": to, "reason": reason });
            let resp = c
                .send_with(
                    reqwest::Method::POST,
                    &format!("{}/promotions", version_path(&id, &label)),
                    &headers,
                    Some(&body),
                )
                .await?;
            let p: Promotion = resp.json().await.context("reading the server's answer")?;
            show(json, &p, || promotion_fields(&p))
        }
        ModelCmd::Approve { promotion, comment } => {
            let p: Promotion = c
                .post(&format!("/api/v1/promotions/{}/approvals", segment(&promotion)), &json!({ "comment": comment }))
                .await?;
            show(json, &p, || promotion_fields(&p))
        }
        ModelCmd::Promotion { id } => {
            let p: Promotion = c.get(&format!("/api/v1/promotions/{}", segment(&id))).await?;
            show(json, &p, || promotion_fields(&p))
        }
    }
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// Parses `KIND/NAME=sha256:HEX`.
fn component(spec: &str) -> anyhow::Result<Value> {
    let (kind_name, digest) =
        spec.split_once('=').with_context(|| format!("--component `{spec}` is not KIND/NAME=DIGEST"))?;
    let (kind, name) =
        kind_name.split_once('/').with_context(|| format!("--component `{spec}` is not KIND/NAME=DIGEST"))?;
    Ok(json!({ "kind": kind, "name": name, "digest": digest }))
}

fn version_fields(v: &ModelVersion) {
    let mut fields = vec![
        ("model", format!("{}/{} ({})", v.project, v.model, v.model_id)),
        ("version", v.version.to_string()),
        ("stage", v.stage.to_string()),
        ("root digest", v.root_digest.to_string()),
        ("signed by key", v.signer_hint.clone()),
        ("resources", v.resources.to_string()),
    ];
    for c in &v.components {
        fields.push(("component", format!("{:?} {} {}", c.kind, c.name, c.digest)));
    }
    if let Some(p) = &v.provenance {
        fields.push(("training run", format!("{} by {}", p.run_id, p.builder)));
        fields.push(("datasets traced", format!("{}", p.fully_traced())));
    }
    output::fields(&fields);
}

fn promotion_fields(p: &Promotion) {
    let approvals: Vec<String> = p.approvals.iter().map(|a| a.approver.clone()).collect();
    output::fields(&[
        ("promotion", p.id.to_string()),
        ("version", format!("{}/{} {}", p.project, p.model, p.version)),
        ("move", format!("{} → {}", p.from, p.to)),
        ("status", p.status.as_str().to_owned()),
        ("approved by", approvals.join(", ")),
    ]);
}

/// A registered version with its signed manifest, opened under the trusted key it names.
pub struct SignedVersion {
    /// The version.
    pub version: ModelVersion,
    /// The manifest its signature covers.
    pub signed: SignedManifest,
    /// The signature bundle exactly as the registry holds it.
    pub bundle_text: String,
    /// The trusted signer whose key verified it.
    pub signer: TrustedSigner,
    /// That key.
    pub key: PublicKey,
}

/// Reads a version, its signature and the project's trusted keys from the registry, and
/// checks the signature here rather than taking the server's word for the digest.
pub async fn signed_version(c: &Client, id: &str, label: &str) -> anyhow::Result<SignedVersion> {
    let version: ModelVersion = c.get(&version_path(id, label)).await?;
    let bundle_value: Value = c.get(&format!("{}/signature", version_path(id, label))).await?;
    let signers: Vec<TrustedSigner> =
        c.get(&format!("/api/v1/projects/{}/signers", segment(version.project.as_str()))).await?;
    let bundle_text = serde_json::to_string(&bundle_value)?;
    let bundle = Bundle::from_json(bundle_text.as_bytes()).context("the registry's signature bundle")?;
    let signer = signers
        .into_iter()
        .find(|s| s.hint == version.signer_hint)
        .with_context(|| format!("project `{}` no longer trusts key {}", version.project, version.signer_hint))?;
    let key = PublicKey::from_pem(signer.public_key.as_bytes(), "the trusted signer's key")?;
    let statement = bundle.open(&key).context("the registry's signature does not verify under its signer's key")?;
    let signed = manifest_from_statement(&statement)?;
    if format!("sha256:{}", signed.root_digest) != version.root_digest.to_string() {
        bail!(
            "the registry's signature covers sha256:{}, not the version's {}",
            signed.root_digest,
            version.root_digest
        );
    }
    Ok(SignedVersion { version, signed, bundle_text, signer, key })
}

/// What is served, hashed the way the version was signed.
pub struct Served {
    /// Its manifest.
    pub manifest: Manifest,
    /// Whether files beyond the signed ones could be seen (not over HTTP).
    pub lists_files: bool,
}

/// Hashes what `served` points at with the signed serialization.
pub async fn hash_served(served: &ServedArgs, signed: &SignedManifest, quiet: bool) -> anyhow::Result<Served> {
    let serialization = signed.manifest.serialization.clone();
    if let Some(dir) = &served.dir {
        let progress = BarProgress::new(quiet, "hashing");
        let bar = progress.bar.clone();
        let dir = dir.clone();
        let manifest = tokio::task::spawn_blocking(move || compute_manifest(&dir, &serialization, &progress))
            .await
            .context("the hashing task failed")??;
        bar.finish_and_clear();
        return Ok(Served { manifest, lists_files: true });
    }
    let Some(url) = &served.url else { bail!("give --dir or --url") };
    let manifest = fetch_manifest(url, signed).await?;
    Ok(Served { manifest, lists_files: false })
}

/// Fetches every file the signed manifest names from under `base` and hashes it as it
/// streams. The API token is never sent: the files are on another server.
async fn fetch_manifest(base: &str, signed: &SignedManifest) -> anyhow::Result<Manifest> {
    let http = reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(10)).build()?;
    let serialization = signed.manifest.serialization.clone();
    let mut paths: Vec<&str> = signed.manifest.resources.iter().map(|r| r.name.path.as_str()).collect();
    paths.dedup();
    let mut resources = Vec::new();
    for path in paths {
        let url = if path == "." {
            base.to_owned()
        } else {
            let encoded: Vec<String> = path.split('/').map(segment).collect();
            format!("{}/{}", base.trim_end_matches('/'), encoded.join("/"))
        };
        let mut resp = http.get(&url).send().await.with_context(|| format!("fetching {url}"))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            continue; // reported as missing
        }
        if !resp.status().is_success() {
            bail!("fetching {url}: {}", resp.status());
        }
        let mut file = StreamedFile::new(path, &serialization);
        while let Some(chunk) = resp.chunk().await.with_context(|| format!("reading {url}"))? {
            file.update(&chunk);
        }
        resources.extend(file.finish());
    }
    Ok(Manifest::new(signed.manifest.model_name.clone(), serialization, resources))
}

/// One file's resources computed from its bytes as they arrive: the whole file, or its shards.
struct StreamedFile {
    path: String,
    algorithm: custody_provenance::HashAlgorithm,
    shard_size: Option<u64>,
    hasher: ResourceHasher,
    shard_start: u64,
    offset: u64,
    done: Vec<Resource>,
}

impl StreamedFile {
    fn new(path: &str, s: &custody_provenance::Serialization) -> Self {
        let shard_size = match s.method {
            Method::Files => None,
            Method::Shards { shard_size } => Some(shard_size.max(1)),
        };
        Self {
            path: path.to_owned(),
            algorithm: s.hash,
            shard_size,
            hasher: ResourceHasher::new(s.hash),
            shard_start: 0,
            offset: 0,
            done: Vec::new(),
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = match self.shard_size {
                None => data.len(),
                Some(size) => {
                    let left = self.shard_start + size - self.offset;
                    usize::try_from(left).map_or(data.len(), |l| l.min(data.len()))
                }
            };
            let (now, rest) = data.split_at(take);
            self.hasher.update(now);
            self.offset += take as u64;
            data = rest;
            if self.shard_size.is_some_and(|size| self.offset == self.shard_start + size) {
                self.close_shard();
            }
        }
    }

    fn close_shard(&mut self) {
        let hasher = std::mem::replace(&mut self.hasher, ResourceHasher::new(self.algorithm));
        let name = ResourceName { path: self.path.clone(), range: Some((self.shard_start, self.offset)) };
        self.done.push(Resource { name, algorithm: self.algorithm, digest: hasher.finish() });
        self.shard_start = self.offset;
    }

    fn finish(mut self) -> Vec<Resource> {
        match self.shard_size {
            None => {
                let name = ResourceName { path: self.path.clone(), range: None };
                self.done.push(Resource { name, algorithm: self.algorithm, digest: self.hasher.finish() });
            }
            // An empty file has no shards; a partial last shard ends where the file does.
            Some(_) if self.offset > self.shard_start => self.close_shard(),
            Some(_) => {}
        }
        self.done
    }
}

pub(crate) fn print_diff(diff: &ManifestDiff, lists_files: bool) {
    for c in &diff.changed {
        eprintln!("  changed  {}  (signed {}, served {})", c.name, c.expected, c.actual);
    }
    for m in &diff.missing {
        eprintln!("  missing  {m}");
    }
    for e in &diff.extra {
        eprintln!("  extra    {e}");
    }
    if !lists_files {
        eprintln!("  (over HTTP only the signed files are fetched: extra files cannot be seen)");
    }
}

/// `custody deploy …`.
pub async fn deploy(cmd: DeployCmd, c: &Client, json: bool) -> anyhow::Result<()> {
    match cmd {
        DeployCmd::Verify { id, label, served } => {
            let sv = signed_version(c, &id, &label).await?;
            let actual = hash_served(&served, &sv.signed, json).await?;
            let diff = sv.signed.manifest.diff(&actual.manifest);
            let running = format!("sha256:{}", hex::encode(actual.manifest.root_digest()));
            let matches = diff.is_empty() && running == sv.version.root_digest.to_string();
            let value = json!({
                "verified": matches, "model": sv.version.model, "version": sv.version.version,
                "stage": sv.version.stage, "registered_digest": sv.version.root_digest, "served_digest": running,
                "signer": sv.signer.name, "differences": diff, "extra_files_checked": actual.lists_files,
            });
            if matches {
                return show(json, &value, || {
                    println!(
                        "served model is {}/{} {} ({}): {} signed by `{}`",
                        sv.version.project,
                        sv.version.model,
                        sv.version.version,
                        sv.version.stage,
                        running,
                        sv.signer.name
                    )
                });
            }
            show(json, &value, || {
                eprintln!(
                    "NOT VERIFIED: what is served hashes to {running}, not to {} {}'s {}",
                    sv.version.model, sv.version.version, sv.version.root_digest
                );
                print_diff(&diff, actual.lists_files);
            })?;
            Err(Exit(TAMPERED).into())
        }
        DeployCmd::Record {
            id,
            label,
            served,
            environment,
            endpoint,
            region,
            image_digest,
            runtime_libraries,
            accelerator,
            policy_set_hash,
        } => {
            let sv = signed_version(c, &id, &label).await?;
            let actual = hash_served(&served, &sv.signed, json).await?;
            let running = format!("sha256:{}", hex::encode(actual.manifest.root_digest()));
            let diff = sv.signed.manifest.diff(&actual.manifest);
            if !diff.is_empty() && !json {
                eprintln!("what is served differs from the signed version (the server will refuse it):");
                print_diff(&diff, actual.lists_files);
            }
            let mut libraries = BTreeMap::new();
            for l in &runtime_libraries {
                let (name, version) =
                    l.split_once('=').with_context(|| format!("--runtime-library `{l}` is not NAME=VERSION"))?;
                libraries.insert(name.to_owned(), version.to_owned());
            }
            let body = json!({
                "environment": environment, "endpoint": endpoint, "region": region, "running_digest": running,
                "attestation": {
                    "image_digest": image_digest, "runtime_libraries": libraries,
                    "accelerator": accelerator, "policy_set_hash": policy_set_hash,
                },
            });
            let d: Deployment = c.post(&format!("{}/deployments", version_path(&id, &label)), &body).await?;
            show(json, &d, || deployment_fields(&d))
        }
        DeployCmd::List { id } => {
            let list: Vec<Deployment> = c.get(&format!("/api/v1/models/{}/deployments", segment(&id))).await?;
            show(json, &list, || {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|d| {
                        vec![
                            d.environment.to_string(),
                            d.endpoint.clone(),
                            d.version.to_string(),
                            d.running_digest.to_string(),
                            d.deployed_by.clone(),
                        ]
                    })
                    .collect();
                output::table(&["ENVIRONMENT", "ENDPOINT", "VERSION", "DIGEST", "BY"], &rows);
            })
        }
    }
}

fn deployment_fields(d: &Deployment) {
    output::fields(&[
        ("deployment", d.id.to_string()),
        ("version", format!("{}/{} {}", d.project, d.model, d.version)),
        ("environment", format!("{} ({}) at {}", d.environment, d.region, d.endpoint)),
        ("serving digest", d.running_digest.to_string()),
    ]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use custody_provenance::{HashAlgorithm, Serialization, Silent};

    /// Streaming in odd chunk sizes gives the same resources as hashing the file on disk.
    #[test]
    fn streamed_shards_match_the_files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("w.bin"), &data).unwrap();
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        for method in [Method::Files, Method::Shards { shard_size: 4096 }, Method::Shards { shard_size: 1000 }] {
            for hash in [HashAlgorithm::Sha256, HashAlgorithm::Blake3] {
                let mut s = Serialization::files(hash);
                s.method = method;
                let on_disk = compute_manifest(dir.path(), &s, &Silent).unwrap();
                let mut streamed = Vec::new();
                for (path, bytes) in [("w.bin", &data[..]), ("empty", &[][..])] {
                    let mut f = StreamedFile::new(path, &s);
                    for chunk in bytes.chunks(777) {
                        f.update(chunk);
                    }
                    streamed.extend(f.finish());
                }
                let streamed = Manifest::new(on_disk.model_name.clone(), s.clone(), streamed);
                assert!(on_disk.diff(&streamed).is_empty(), "{method:?} {hash:?}");
                assert_eq!(on_disk.root_digest(), streamed.root_digest());
            }
        }
    }

    #[test]
    fn components_parse() {
        let c = component("tokenizer/bpe=sha256:00").unwrap();
        assert_eq!(c["kind"], "tokenizer");
        assert_eq!(c["name"], "bpe");
        assert!(component("tokenizer=sha256:00").is_err());
    }
}

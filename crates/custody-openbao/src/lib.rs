//! The OpenBao (or HashiCorp Vault) transit engine as a Custody [`KeyProvider`].
//!
//! Data keys never rest outside the engine unwrapped: `wrap` sends a fresh data key to
//! `transit/encrypt`, `unwrap` asks `transit/decrypt`, and `rewrap` asks `transit/rewrap`, which
//! moves a wrapped key to the latest KEK version without the data key leaving the server.
//!
//! The encryption context is bound by key derivation: Custody's KEKs are transit keys of type
//! `aes256-gcm96` created with `derived=true`, and every call passes the wrap AAD as the
//! derivation `context`, so a wrapped key opens only for the object it was made for. (Transit's
//! `associated_data` would bind it too, but `rewrap` does not accept it.)
//!
//! Key life maps onto transit as follows: rotation is `keys/:name/rotate`; retirement sets
//! `min_decryption_version`; destroying a version trims it (`keys/:name/trim`), which transit
//! only does from the oldest version up and never to the latest; destroying a whole KEK allows
//! deletion and deletes it.
//!
//! The token comes from the environment (`BAO_TOKEN` or `VAULT_TOKEN`), never from an argument,
//! and appears in no error or log.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custody_crypto::provider::BoxFuture;
use custody_crypto::{InputKey, KekInfo, KekRef, KeyError, KeyProvider, ShredReceipt};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use zeroize::Zeroizing;

mod signing;
pub use signing::TransitSigningKey;

/// The provider name recorded in object headers.
pub const PROVIDER: &str = "openbao";

/// Where the transit engine is and how to authenticate to it.
pub struct OpenBaoConfig {
    /// Base address, e.g. `https://bao.internal:8200`.
    pub addr: String,
    /// The token (sent as `X-Vault-Token`).
    pub token: Zeroizing<String>,
    /// The transit engine's mount path.
    pub mount: String,
    /// The namespace, if any (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    /// PEM of a CA to trust besides the system's.
    pub ca_cert_pem: Option<Vec<u8>>,
}

fn env_either(a: &str, b: &str) -> Option<String> {
    std::env::var(a).or_else(|_| std::env::var(b)).ok().filter(|v| !v.is_empty())
}

impl OpenBaoConfig {
    /// From the environment OpenBao's own CLI reads: `BAO_ADDR`, `BAO_TOKEN`,
    /// `BAO_NAMESPACE`, `BAO_CACERT` (or their `VAULT_` names), and `CUSTODY_OPENBAO_MOUNT`
    /// (default `transit`).
    pub fn from_env() -> Result<Self, KeyError> {
        let addr = env_either("BAO_ADDR", "VAULT_ADDR").ok_or_else(|| {
            KeyError::Unavailable("OpenBao: set BAO_ADDR (or VAULT_ADDR) to the server's address".into())
        })?;
        let token = Zeroizing::new(
            env_either("BAO_TOKEN", "VAULT_TOKEN")
                .ok_or_else(|| KeyError::Unavailable("OpenBao: set BAO_TOKEN (or VAULT_TOKEN)".into()))?,
        );
        let ca_cert_pem = match env_either("BAO_CACERT", "VAULT_CACERT") {
            Some(path) => Some(
                std::fs::read(&path)
                    .map_err(|e| KeyError::Unavailable(format!("OpenBao: cannot read BAO_CACERT {path}: {e}")))?,
            ),
            None => None,
        };
        Ok(OpenBaoConfig {
            addr,
            token,
            mount: std::env::var("CUSTODY_OPENBAO_MOUNT").unwrap_or_else(|_| "transit".into()),
            namespace: env_either("BAO_NAMESPACE", "VAULT_NAMESPACE"),
            ca_cert_pem,
        })
    }
}

/// A transit engine reached over HTTP(S).
pub struct OpenBaoTransit {
    http: reqwest::Client,
    addr: String,
    mount: String,
    token: Zeroizing<String>,
    namespace: Option<String>,
    /// KEKs seen to exist and to be derived (so `wrap` never lets transit upsert a key).
    checked: Mutex<BTreeSet<String>>,
}

/// Why a call to the engine did not succeed.
enum Failure {
    Transport(String),
    Status(StatusCode, String),
}

#[derive(Deserialize)]
struct KeyData {
    latest_version: u32,
    min_decryption_version: u32,
    #[serde(default)]
    min_available_version: u32,
    #[serde(default)]
    min_encryption_version: u32,
    #[serde(default)]
    derived: bool,
    #[serde(rename = "type")]
    kind: String,
}

impl KeyData {
    /// Versions whose material exists. (`keys` lists only the working set, from
    /// `min_decryption_version` up; retired versions are archived, not gone.)
    fn live_versions(&self) -> Vec<u32> {
        (self.min_available_version.max(1)..=self.latest_version).collect()
    }

    /// Versions trimmed away: every version below the oldest still present.
    fn destroyed_versions(&self) -> Vec<u32> {
        (1..self.min_available_version).collect()
    }
}

fn valid_name(what: &str, name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(KeyError::Invalid(format!(
            "OpenBao {what} `{name}` may hold only letters, digits, '.', '_' and '-' (not first), at most 128"
        )))
    }
}

/// The version a transit ciphertext (`vault:vN:...`) names.
fn ciphertext_version(ciphertext: &str) -> Option<u32> {
    let rest = ciphertext.strip_prefix("vault:v")?;
    let (n, body) = rest.split_once(':')?;
    (!body.is_empty()).then_some(())?;
    n.parse().ok()
}

impl OpenBaoTransit {
    /// A client for `config` (no request is made yet).
    pub fn new(config: OpenBaoConfig) -> Result<Self, KeyError> {
        valid_name("mount", &config.mount)?;
        let mut builder =
            reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(30));
        if let Some(pem) = &config.ca_cert_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| KeyError::Unavailable(format!("OpenBao: the CA certificate is not PEM: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| KeyError::Unavailable(format!("OpenBao: HTTP client: {e}")))?;
        Ok(OpenBaoTransit {
            http,
            addr: config.addr.trim_end_matches('/').to_string(),
            mount: config.mount,
            token: config.token,
            namespace: config.namespace,
            checked: Mutex::new(BTreeSet::new()),
        })
    }

    /// Mounts the transit engine at the configured path if nothing is mounted there (needs a
    /// token allowed to manage mounts).
    pub async fn enable_transit(&self) -> Result<(), KeyError> {
        let url = format!("{}/v1/sys/mounts/{}", self.addr, self.mount);
        match self.send(Method::POST, url, Some(json!({"type": "transit"}))).await {
            Ok(_) => Ok(()),
            Err(Failure::Status(StatusCode::BAD_REQUEST, msg)) if msg.contains("already in use") => Ok(()),
            Err(f) => Err(self.failure("", None, f)),
        }
    }

    async fn send(&self, method: Method, url: String, body: Option<Value>) -> Result<Option<Value>, Failure> {
        let mut req = self.http.request(method, url).header("X-Vault-Token", self.token.as_str());
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| Failure::Transport(e.without_url().to_string()))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| Failure::Transport(e.without_url().to_string()))?;
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        if !status.is_success() {
            let errors = parsed
                .as_ref()
                .and_then(|v| v.get("errors"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
                .unwrap_or_default();
            return Err(Failure::Status(status, errors));
        }
        Ok(parsed.and_then(|mut v| v.get_mut("data").map(Value::take)))
    }

    async fn transit(&self, method: Method, path: &str, body: Option<Value>) -> Result<Option<Value>, Failure> {
        self.send(method, format!("{}/v1/{}/{}", self.addr, self.mount, path), body).await
    }

    /// What a failed call means for KEK `key` (at `version`, when one was named).
    fn failure(&self, key: &str, version: Option<u32>, f: Failure) -> KeyError {
        match f {
            Failure::Transport(e) => KeyError::Unavailable(format!("OpenBao at {} is unreachable: {e}", self.addr)),
            Failure::Status(StatusCode::FORBIDDEN, _) => KeyError::Unavailable(format!(
                "OpenBao at {} refused the request (permission denied): check the token and its policy",
                self.addr
            )),
            Failure::Status(_, m) if m.contains("key not found") => KeyError::UnknownKey(key.into()),
            Failure::Status(StatusCode::NOT_FOUND, _) => KeyError::UnknownKey(key.into()),
            Failure::Status(StatusCode::BAD_REQUEST, m) if m.contains("authentication failed") => {
                KeyError::Unwrap { key: key.into(), version: version.unwrap_or(0) }
            }
            Failure::Status(StatusCode::BAD_REQUEST, m) if m.contains("too new") => {
                KeyError::UnknownVersion { key: key.into(), version: version.unwrap_or(0) }
            }
            Failure::Status(StatusCode::BAD_REQUEST, m) => KeyError::Invalid(format!("OpenBao: {m}")),
            Failure::Status(s, m) => KeyError::Unavailable(format!("OpenBao at {} answered {s}: {m}", self.addr)),
        }
    }

    async fn read_key(&self, key_id: &str) -> Result<KeyData, KeyError> {
        valid_name("key", key_id)?;
        let data = self
            .transit(Method::GET, &format!("keys/{key_id}"), None)
            .await
            .map_err(|f| self.failure(key_id, None, f))?
            .ok_or_else(|| KeyError::UnknownKey(key_id.into()))?;
        serde_json::from_value(data)
            .map_err(|e| KeyError::Unavailable(format!("OpenBao: unexpected key description for `{key_id}`: {e}")))
    }

    /// Fails unless `key_id` exists as a derived AES-256-GCM key (checked once per process).
    async fn check_key(&self, key_id: &str) -> Result<(), KeyError> {
        valid_name("key", key_id)?;
        if self.checked.lock().map(|c| c.contains(key_id)).unwrap_or(false) {
            return Ok(());
        }
        let key = self.read_key(key_id).await?;
        self.accept(key_id, &key)
    }

    /// Remembers `key` as usable, if it is a derived AES-256-GCM key.
    fn accept(&self, key_id: &str, key: &KeyData) -> Result<(), KeyError> {
        if !key.derived || key.kind != "aes256-gcm96" {
            return Err(KeyError::Invalid(format!(
                "OpenBao key `{key_id}` is a {} key{}: Custody binds each object's context by key derivation and needs a derived aes256-gcm96 key",
                key.kind,
                if key.derived { "" } else { " without derivation" }
            )));
        }
        if let Ok(mut c) = self.checked.lock() {
            c.insert(key_id.into());
        }
        Ok(())
    }

    /// Why a version the engine called "too old" no longer unwraps.
    async fn too_old(&self, key_id: &str, version: u32) -> KeyError {
        match self.read_key(key_id).await {
            Ok(k) if version < k.min_available_version => KeyError::Destroyed { key: key_id.into(), version },
            Ok(k) => KeyError::Retired { key: key_id.into(), version, min: k.min_decryption_version },
            Err(e) => e,
        }
    }

    /// A transit call on a wrapped key; "too old" is resolved into retired or destroyed.
    async fn wrapped_call(&self, op: &str, kek: &KekRef, body: Value) -> Result<Value, KeyError> {
        match self.transit(Method::POST, &format!("{op}/{}", kek.key_id), Some(body)).await {
            Ok(Some(data)) => Ok(data),
            Ok(None) => Err(KeyError::Unavailable(format!("OpenBao: empty answer to {op}"))),
            Err(Failure::Status(StatusCode::BAD_REQUEST, m)) if m.contains("too old") => {
                Err(self.too_old(&kek.key_id, kek.version).await)
            }
            Err(f) => Err(self.failure(&kek.key_id, Some(kek.version), f)),
        }
    }

    /// The ciphertext a header carries, checked to name the version the header claims.
    fn stored_ciphertext<'w>(kek: &KekRef, wrapped: &'w [u8]) -> Result<&'w str, KeyError> {
        if kek.provider != PROVIDER {
            return Err(KeyError::WrongProvider(kek.provider.clone()));
        }
        valid_name("key", &kek.key_id)?;
        let text = std::str::from_utf8(wrapped).ok();
        match text.filter(|t| ciphertext_version(t) == Some(kek.version)) {
            Some(t) => Ok(t),
            None => Err(KeyError::Unwrap { key: kek.key_id.clone(), version: kek.version }),
        }
    }

    fn wrapped_result(&self, key_id: &str, data: &Value) -> Result<(KekRef, Vec<u8>), KeyError> {
        let ciphertext = data.get("ciphertext").and_then(Value::as_str).unwrap_or_default();
        let version = ciphertext_version(ciphertext)
            .ok_or_else(|| KeyError::Unavailable("OpenBao returned a ciphertext of unknown form".into()))?;
        Ok((KekRef { provider: PROVIDER.into(), key_id: key_id.into(), version }, ciphertext.as_bytes().to_vec()))
    }

    async fn config(&self, key_id: &str, body: Value) -> Result<(), KeyError> {
        self.transit(Method::POST, &format!("keys/{key_id}/config"), Some(body))
            .await
            .map(drop)
            .map_err(|f| self.failure(key_id, None, f))
    }

    async fn destroy_version(&self, key_id: &str, version: u32) -> Result<ShredReceipt, KeyError> {
        let key = self.read_key(key_id).await?;
        let live = key.live_versions();
        if !live.contains(&version) {
            return Err(if key.destroyed_versions().contains(&version) {
                KeyError::Destroyed { key: key_id.into(), version }
            } else {
                KeyError::UnknownVersion { key: key_id.into(), version }
            });
        }
        if live.first() != Some(&version) {
            return Err(KeyError::Invalid(format!(
                "OpenBao destroys versions from the oldest up: destroy versions {:?} of `{key_id}` first",
                live.iter().filter(|v| **v < version).collect::<Vec<_>>()
            )));
        }
        if version >= key.latest_version {
            return Err(KeyError::Invalid(format!(
                "version {version} of `{key_id}` is the current one: rotate first, or destroy the whole key"
            )));
        }
        let floor = version + 1;
        self.config(
            key_id,
            json!({
                "min_decryption_version": key.min_decryption_version.max(floor),
                "min_encryption_version": key.min_encryption_version.max(floor),
            }),
        )
        .await?;
        self.transit(Method::POST, &format!("keys/{key_id}/trim"), Some(json!({"min_available_version": floor})))
            .await
            .map_err(|f| self.failure(key_id, Some(version), f))?;
        Ok(ShredReceipt::now(PROVIDER, key_id, vec![version]))
    }

    async fn destroy_key(&self, key_id: &str) -> Result<ShredReceipt, KeyError> {
        let key = self.read_key(key_id).await?;
        self.config(key_id, json!({"deletion_allowed": true})).await?;
        self.transit(Method::DELETE, &format!("keys/{key_id}"), None)
            .await
            .map_err(|f| self.failure(key_id, None, f))?;
        if let Ok(mut c) = self.checked.lock() {
            c.remove(key_id);
        }
        Ok(ShredReceipt::now(PROVIDER, key_id, key.live_versions()))
    }
}

impl KeyProvider for OpenBaoTransit {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn wrap<'a>(
        &'a self,
        key_id: &'a str,
        data_key: &'a InputKey,
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<(KekRef, Vec<u8>), KeyError>> {
        Box::pin(async move {
            self.check_key(key_id).await?;
            let plaintext = Zeroizing::new(B64.encode(data_key.bytes()));
            let body = json!({"plaintext": plaintext.as_str(), "context": B64.encode(aad)});
            let data = self
                .transit(Method::POST, &format!("encrypt/{key_id}"), Some(body))
                .await
                .map_err(|f| self.failure(key_id, None, f))?
                .unwrap_or_default();
            self.wrapped_result(key_id, &data)
        })
    }

    fn unwrap<'a>(
        &'a self,
        kek: &'a KekRef,
        wrapped: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<InputKey, KeyError>> {
        Box::pin(async move {
            let ciphertext = Self::stored_ciphertext(kek, wrapped)?;
            let data = self
                .wrapped_call("decrypt", kek, json!({"ciphertext": ciphertext, "context": B64.encode(aad)}))
                .await?;
            let bad = || KeyError::Unwrap { key: kek.key_id.clone(), version: kek.version };
            let plaintext = Zeroizing::new(
                data.get("plaintext").and_then(Value::as_str).and_then(|p| B64.decode(p).ok()).ok_or_else(bad)?,
            );
            let bytes: [u8; 32] = plaintext.as_slice().try_into().map_err(|_| bad())?;
            Ok(InputKey::new(bytes))
        })
    }

    fn rewrap<'a>(
        &'a self,
        kek: &'a KekRef,
        wrapped: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<(KekRef, Vec<u8>), KeyError>> {
        Box::pin(async move {
            let ciphertext = Self::stored_ciphertext(kek, wrapped)?;
            let data =
                self.wrapped_call("rewrap", kek, json!({"ciphertext": ciphertext, "context": B64.encode(aad)})).await?;
            self.wrapped_result(&kek.key_id, &data)
        })
    }

    fn ensure_key<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<u32, KeyError>> {
        Box::pin(async move {
            match self.read_key(key_id).await {
                Ok(key) => {
                    self.accept(key_id, &key)?;
                    Ok(key.latest_version)
                }
                Err(KeyError::UnknownKey(_)) => {
                    let body = json!({"type": "aes256-gcm96", "derived": true});
                    self.transit(Method::POST, &format!("keys/{key_id}"), Some(body))
                        .await
                        .map_err(|f| self.failure(key_id, None, f))?;
                    Ok(self.read_key(key_id).await?.latest_version)
                }
                Err(e) => Err(e),
            }
        })
    }

    fn rotate<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<u32, KeyError>> {
        Box::pin(async move {
            self.check_key(key_id).await?;
            self.transit(Method::POST, &format!("keys/{key_id}/rotate"), None)
                .await
                .map_err(|f| self.failure(key_id, None, f))?;
            Ok(self.read_key(key_id).await?.latest_version)
        })
    }

    fn set_min_decryption_version<'a>(&'a self, key_id: &'a str, version: u32) -> BoxFuture<'a, Result<(), KeyError>> {
        Box::pin(async move {
            let key = self.read_key(key_id).await?;
            if version == 0 || version > key.latest_version {
                return Err(KeyError::UnknownVersion { key: key_id.into(), version });
            }
            if version < key.min_available_version {
                return Err(KeyError::Destroyed { key: key_id.into(), version });
            }
            self.config(key_id, json!({"min_decryption_version": version})).await
        })
    }

    fn destroy<'a>(&'a self, key_id: &'a str, version: Option<u32>) -> BoxFuture<'a, Result<ShredReceipt, KeyError>> {
        Box::pin(async move {
            match version {
                Some(v) => self.destroy_version(key_id, v).await,
                None => self.destroy_key(key_id).await,
            }
        })
    }

    fn keys(&self) -> BoxFuture<'_, Result<Vec<KekInfo>, KeyError>> {
        Box::pin(async move {
            let names: Vec<String> = match self.transit(Method::GET, "keys?list=true", None).await {
                Ok(data) => data
                    .and_then(|d| d.get("keys").cloned())
                    .and_then(|k| serde_json::from_value(k).ok())
                    .unwrap_or_default(),
                Err(Failure::Status(StatusCode::NOT_FOUND, _)) => Vec::new(),
                Err(f) => return Err(self.failure("", None, f)),
            };
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                let key = self.read_key(&name).await?;
                out.push(KekInfo {
                    current: key.latest_version,
                    min_decryption_version: key.min_decryption_version,
                    live_versions: key.live_versions(),
                    destroyed_versions: key.destroyed_versions(),
                    key_id: name,
                });
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ciphertext_versions() {
        assert_eq!(ciphertext_version("vault:v1:abc"), Some(1));
        assert_eq!(ciphertext_version("vault:v12:abc"), Some(12));
        assert_eq!(ciphertext_version("vault:v1:"), None);
        assert_eq!(ciphertext_version("vault:vx:abc"), None);
        assert_eq!(ciphertext_version("v1:abc"), None);
    }

    #[test]
    fn names_cannot_leave_the_mount() {
        for bad in ["", "../sys/mounts", "a/b", ".hidden", "a?list=true", "a b"] {
            assert!(valid_name("key", bad).is_err(), "{bad}");
        }
        assert!(valid_name("key", "custody.acme-ml.restricted_eu").is_ok());
    }
}

//! Server configuration: defaults that need no file, a TOML file, then `CUSTODY_*` variables.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything the server can be told. Every field has a default, so an empty file (or none)
/// gives a working embedded server on loopback.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded database and other local state live (created 0700).
    pub data_dir: PathBuf,
    /// `postgres://…` for scale-out; default SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// The address to listen on.
    pub bind: SocketAddr,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsConfig>,
    /// A directory of `*.cedar` policies to use instead of the built-in ones.
    pub policy_dir: Option<PathBuf>,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Accept OIDC bearer JWTs from this issuer.
    pub oidc: Option<OidcConfig>,
    /// The audit log's signing key (created 0600 on first start); default
    /// `<data_dir>/audit-log.key`. Replicas on one database must share it.
    pub audit_key_file: Option<PathBuf>,
    /// The origin (key name) of a newly created log key; default
    /// `custody.local/audit/<random>`. An existing key keeps its own.
    pub audit_origin: Option<String>,
    /// Sign a checkpoint at most this often (milliseconds); 0: after every batch.
    pub checkpoint_interval_ms: u64,
    /// The key provider and which KEK protects which data (`[keys]`).
    pub keys: crate::keys::KeysConfig,
    /// Where dataset versions' data is stored, encrypted (`[blobs]`).
    pub blobs: crate::keys::BlobsConfig,
    /// What the model registry requires beyond the policies (`[registry]`).
    pub registry: RegistryConfig,
}

/// The registry's admission gates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// A version moves into staging or production only if its latest attached scan is clean
    /// (default on; turning it off is recorded nowhere else, so keep it on).
    pub require_clean_scan: bool,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self { require_clean_scan: true }
    }
}

/// A certificate chain and private key, PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// An OpenID Connect issuer whose JWTs are accepted as bearer tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The `iss` the tokens must carry.
    pub issuer: String,
    /// The `aud` the tokens must carry.
    pub audience: String,
    /// Where the issuer's JWKS is; default: discovered from
    /// `<issuer>/.well-known/openid-configuration`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The claim that lists roles as `"<project>:<role>"` (`"*:<role>"` for every project).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

fn default_roles_claim() -> String {
    "custody_roles".into()
}

fn default_leeway() -> u64 {
    30
}

/// The default port.
pub const DEFAULT_PORT: u16 = 7070;

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("custody-data"),
            database_url: None,
            bind: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            tls: None,
            policy_dir: None,
            max_body_bytes: 1024 * 1024,
            oidc: None,
            audit_key_file: None,
            audit_origin: None,
            checkpoint_interval_ms: 0,
            keys: crate::keys::KeysConfig::default(),
            blobs: crate::keys::BlobsConfig::default(),
            registry: RegistryConfig::default(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    /// The file or variable at fault.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

impl Config {
    /// Reads `file` (if given) over the defaults, then applies `CUSTODY_DATA_DIR`,
    /// `CUSTODY_DATABASE_URL`, `CUSTODY_BIND`, `CUSTODY_TLS_CERT` + `CUSTODY_TLS_KEY`,
    /// `CUSTODY_POLICY_DIR`, `CUSTODY_MAX_BODY_BYTES`, `CUSTODY_OIDC_ISSUER` +
    /// `CUSTODY_OIDC_AUDIENCE` (+ `CUSTODY_OIDC_JWKS_URL`).
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError { source_name: path.display().to_string(), message: e.to_string() })?;
                toml::from_str(&text)
                    .map_err(|e| ConfigError { source_name: path.display().to_string(), message: e.to_string() })?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    /// Applies `CUSTODY_*` overrides read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let bad = |name: &str, message: String| ConfigError { source_name: name.into(), message };
        if let Some(v) = var("CUSTODY_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = var("CUSTODY_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = var("CUSTODY_BIND") {
            self.bind = v.parse().map_err(|e| bad("CUSTODY_BIND", format!("`{v}` is not host:port: {e}")))?;
        }
        match (var("CUSTODY_TLS_CERT"), var("CUSTODY_TLS_KEY")) {
            (Some(cert), Some(key)) => self.tls = Some(TlsConfig { cert: cert.into(), key: key.into() }),
            (None, None) => {}
            _ => return Err(bad("CUSTODY_TLS_CERT", "CUSTODY_TLS_CERT and CUSTODY_TLS_KEY go together".into())),
        }
        if let Some(v) = var("CUSTODY_POLICY_DIR") {
            self.policy_dir = Some(v.into());
        }
        if let Some(v) = var("CUSTODY_MAX_BODY_BYTES") {
            self.max_body_bytes =
                v.parse().map_err(|_| bad("CUSTODY_MAX_BODY_BYTES", format!("`{v}` is not a number of bytes")))?;
        }
        if let Some(issuer) = var("CUSTODY_OIDC_ISSUER") {
            let audience = var("CUSTODY_OIDC_AUDIENCE")
                .ok_or_else(|| bad("CUSTODY_OIDC_AUDIENCE", "is required with CUSTODY_OIDC_ISSUER".into()))?;
            self.oidc = Some(OidcConfig {
                issuer,
                audience,
                jwks_url: var("CUSTODY_OIDC_JWKS_URL"),
                roles_claim: default_roles_claim(),
                leeway_secs: default_leeway(),
            });
        }
        if let Some(v) = var("CUSTODY_AUDIT_KEY_FILE") {
            self.audit_key_file = Some(v.into());
        }
        if let Some(v) = var("CUSTODY_AUDIT_ORIGIN") {
            self.audit_origin = Some(v);
        }
        if let Some(v) = var("CUSTODY_CHECKPOINT_INTERVAL_MS") {
            self.checkpoint_interval_ms = v
                .parse()
                .map_err(|_| bad("CUSTODY_CHECKPOINT_INTERVAL_MS", format!("`{v}` is not a number of milliseconds")))?;
        }
        if self.max_body_bytes < 1024 {
            return Err(bad("max_body_bytes", format!("{} is below the minimum of 1024", self.max_body_bytes)));
        }
        Ok(())
    }

    /// Where the audit log's signing key is.
    pub fn audit_key_path(&self) -> PathBuf {
        self.audit_key_file.clone().unwrap_or_else(|| self.data_dir.join("audit-log.key"))
    }

    /// The database URL: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("custody.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_loopback_and_sqlite() {
        let c = Config::default();
        assert!(c.bind.ip().is_loopback());
        assert!(c.database_url().starts_with("sqlite://"));
    }

    #[test]
    fn toml_and_env() {
        let mut c: Config = toml::from_str("bind = \"127.0.0.1:9000\"\nmax_body_bytes = 4096\n").unwrap();
        assert_eq!(c.bind.port(), 9000);
        c.apply_env(|k| (k == "CUSTODY_DATABASE_URL").then(|| "postgres://x/y".to_owned())).unwrap();
        assert_eq!(c.database_url(), "postgres://x/y");
        assert!(toml::from_str::<Config>("bnd = 1").is_err(), "unknown keys are refused");
        let err = c.apply_env(|k| (k == "CUSTODY_TLS_CERT").then(|| "c.pem".to_owned())).unwrap_err();
        assert!(err.to_string().contains("CUSTODY_TLS_KEY"));
    }
}

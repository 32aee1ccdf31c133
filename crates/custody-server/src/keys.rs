//! Where the server keeps data and which keys protect it: the key provider, the KEK policy
//! (which key-encryption key wraps a dataset version's data keys), and the blob store.

use custody_blobs::BlobStore;
use custody_core::{Classification, Dataset};
use custody_crypto::{KeyProvider, LocalKeyring, Unlocker};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// The key provider that holds KEKs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderChoice {
    /// A local keyring file (the embedded default).
    #[default]
    Local,
    /// OpenBao or Vault transit (`BAO_ADDR`, `BAO_TOKEN`, ...).
    Openbao,
    /// AWS KMS (the AWS SDK's configuration).
    AwsKms,
}

/// Keys: the provider and the KEK policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// The provider.
    pub provider: ProviderChoice,
    /// The local keyring; default `<data_dir>/keyring.json`. It is unlocked by
    /// `CUSTODY_KEYRING_KEY` or `CUSTODY_KEYRING_PASSPHRASE`, else by a key file beside it
    /// (`keyring.key`, 0600, created on first start: zero setup, but then the keys sit with the
    /// data; set one of the variables, or use OpenBao or KMS, to hold them apart).
    pub keyring: Option<PathBuf>,
    /// The KEK for data no rule matches. `{project}`, `{dataset}`, `{version}`,
    /// `{classification}` and `{region}` are replaced (characters other than letters, digits,
    /// `_` and `-` become `_`). With `{dataset}` and `{version}` each dataset version has its
    /// own KEK, so it can be crypto-shredded alone.
    pub kek: String,
    /// Rules tried in order; the first whose every given field matches names the KEK.
    pub rules: Vec<KekRule>,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            provider: ProviderChoice::Local,
            keyring: None,
            kek: "custody-{project}-{dataset}-{version}".into(),
            rules: Vec::new(),
        }
    }
}

/// A KEK policy rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KekRule {
    /// Only data of this project.
    #[serde(default)]
    pub project: Option<String>,
    /// Only data of this classification.
    #[serde(default)]
    pub classification: Option<Classification>,
    /// Only data in this region.
    #[serde(default)]
    pub region: Option<String>,
    /// The KEK (a template, as [`KeysConfig::kek`]).
    pub kek: String,
}

/// Where blobs are stored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobsConfig {
    /// `s3://bucket[/prefix]` (configured from the `AWS_*` variables: region, credentials,
    /// `AWS_ENDPOINT_URL` for an S3-compatible store), or a local directory; default
    /// `<data_dir>/blobs`.
    pub url: Option<String>,
    /// The largest blob accepted, in bytes.
    pub max_bytes: u64,
}

impl Default for BlobsConfig {
    fn default() -> Self {
        BlobsConfig { url: None, max_bytes: 64 * 1024 * 1024 * 1024 }
    }
}

/// What a KEK is chosen by: where a dataset version's data belongs.
#[derive(Debug, Clone, Copy)]
pub struct DataFacts<'a> {
    /// The project.
    pub project: &'a str,
    /// The dataset id.
    pub dataset: &'a str,
    /// The version label.
    pub version: &'a str,
    /// The dataset's classification.
    pub classification: Classification,
    /// The dataset's region.
    pub region: &'a str,
}

impl DataFacts<'_> {
    /// The facts of `dataset`'s version `version`.
    pub fn of<'a>(dataset: &'a Dataset, dataset_id: &'a str, version: &'a str) -> DataFacts<'a> {
        DataFacts {
            project: dataset.project.as_str(),
            dataset: dataset_id,
            version,
            classification: dataset.classification,
            region: dataset.region.as_str(),
        }
    }

    fn fill(&self, template: &str) -> String {
        let clean = |v: &str| -> String {
            v.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
        };
        template
            .replace("{project}", &clean(self.project))
            .replace("{dataset}", &clean(self.dataset))
            .replace("{version}", &clean(self.version))
            .replace("{classification}", &clean(self.classification.as_str()))
            .replace("{region}", &clean(self.region))
    }
}

impl KeysConfig {
    /// The KEK that wraps the data keys of the data `facts` describe.
    pub fn kek_for(&self, facts: &DataFacts<'_>) -> String {
        let rule = self.rules.iter().find(|r| {
            r.project.as_deref().is_none_or(|p| p == facts.project)
                && r.classification.is_none_or(|c| c == facts.classification)
                && r.region.as_deref().is_none_or(|g| g == facts.region)
        });
        facts.fill(rule.map_or(self.kek.as_str(), |r| r.kek.as_str()))
    }
}

/// Why keys or blobs could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The provider.
    #[error("key provider: {0}")]
    Provider(#[from] custody_crypto::KeyError),
    /// The keyring's key file.
    #[error("keyring key file `{path}`: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The blob store.
    #[error("blob store: {0}")]
    Blobs(String),
}

/// The local keyring's unlocker: from the environment, else a key file beside the keyring.
fn local_unlocker(keyring: &Path) -> Result<Unlocker, KeysError> {
    let from_env = std::env::var_os("CUSTODY_KEYRING_KEY").is_some()
        || std::env::var("CUSTODY_KEYRING_PASSPHRASE").is_ok_and(|p| !p.is_empty());
    if from_env {
        return Ok(Unlocker::from_env()?);
    }
    let path = keyring.with_extension("key");
    let err = |source| KeysError::KeyFile { path: path.display().to_string(), source };
    match std::fs::read(&path) {
        Ok(bytes) => {
            crate::log_key::check_owner_only(&path).map_err(err)?;
            let key: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| err(std::io::Error::other(format!("holds {} bytes, not 32", bytes.len()))))?;
            Ok(Unlocker::Key(Zeroizing::new(key)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = Zeroizing::new([0u8; 32]);
            aws_lc_rs::rand::fill(key.as_mut()).map_err(|_| err(std::io::Error::other("no randomness")))?;
            crate::log_key::write_private_bytes(&path, key.as_ref()).map_err(err)?;
            tracing::warn!(
                path = %path.display(),
                "created a key file for the local keyring beside the data; set CUSTODY_KEYRING_KEY or use OpenBao or KMS to hold keys apart"
            );
            Ok(Unlocker::Key(key))
        }
        Err(e) => Err(err(e)),
    }
}

/// The configured key provider.
pub async fn open_provider(config: &KeysConfig, data_dir: &Path) -> Result<Arc<dyn KeyProvider>, KeysError> {
    Ok(match config.provider {
        ProviderChoice::Local => {
            let path = config.keyring.clone().unwrap_or_else(|| data_dir.join("keyring.json"));
            let unlocker = local_unlocker(&path)?;
            let keyring = if path.exists() {
                LocalKeyring::open(&path, &unlocker)?
            } else {
                LocalKeyring::create(&path, &unlocker)?
            };
            Arc::new(keyring)
        }
        ProviderChoice::Openbao => {
            Arc::new(custody_openbao::OpenBaoTransit::new(custody_openbao::OpenBaoConfig::from_env()?)?)
        }
        ProviderChoice::AwsKms => Arc::new(custody_aws_kms::AwsKms::from_env().await?),
    })
}

/// The configured blob store.
pub fn open_blobs(
    config: &BlobsConfig,
    data_dir: &Path,
    provider: Arc<dyn KeyProvider>,
) -> Result<BlobStore, KeysError> {
    match config.url.as_deref() {
        Some(url) if url.starts_with("s3://") => {
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| KeysError::Blobs(format!("`{url}`: {e}")))?;
            Ok(BlobStore::new(Arc::new(s3), provider))
        }
        Some(url) if url.contains("://") && !url.starts_with("file://") => {
            Err(KeysError::Blobs(format!("`{url}`: use s3://bucket[/prefix] or a local directory")))
        }
        Some(dir) => BlobStore::local(Path::new(dir.trim_start_matches("file://")), provider)
            .map_err(|e| KeysError::Blobs(e.to_string())),
        None => BlobStore::local(&data_dir.join("blobs"), provider).map_err(|e| KeysError::Blobs(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(project: &'a str, classification: Classification, version: &'a str) -> DataFacts<'a> {
        DataFacts { project, dataset: "0190-ds", version, classification, region: "eu-west-1" }
    }

    #[test]
    fn the_first_matching_rule_names_the_kek() {
        let config = KeysConfig {
            rules: vec![
                KekRule {
                    project: None,
                    classification: Some(Classification::Restricted),
                    region: None,
                    kek: "restricted-{region}".into(),
                },
                KekRule {
                    project: Some("fraud".into()),
                    classification: None,
                    region: None,
                    kek: "fraud/{version}".into(),
                },
            ],
            ..KeysConfig::default()
        };
        assert_eq!(config.kek_for(&facts("fraud", Classification::Restricted, "v1")), "restricted-eu-west-1");
        assert_eq!(config.kek_for(&facts("fraud", Classification::Internal, "v1")), "fraud/v1");
        assert_eq!(config.kek_for(&facts("churn", Classification::Internal, "v 2")), "custody-churn-0190-ds-v_2");
    }

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
            [keys]
            provider = "openbao"
            kek = "custody-{project}-{dataset}-{version}"

            [[keys.rules]]
            classification = "restricted"
            kek = "restricted-{region}-{dataset}-{version}"

            [blobs]
            url = "s3://acme-custody-data/blobs"
        "#;
        let config: crate::Config = toml::from_str(text).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(config.keys.provider, ProviderChoice::Openbao);
        assert_eq!(config.keys.rules[0].classification, Some(Classification::Restricted));
        assert_eq!(config.blobs.url.as_deref(), Some("s3://acme-custody-data/blobs"));
        assert!(toml::from_str::<crate::Config>("[keys]\nprovider = \"hsm\"").is_err());
    }
}

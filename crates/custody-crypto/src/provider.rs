//! Key-encryption keys held by a provider, apart from the data they protect.
//!
//! A [`KeyProvider`] wraps and unwraps data keys under named, versioned KEKs and manages their
//! life: rotation (a new version wraps from then on; old versions still unwrap),
//! retirement (`min_decryption_version`: versions below it no longer unwrap) and destruction
//! (crypto-shredding: the material is gone, and every data key it wrapped with it).
//! The methods return boxed futures so that network providers (OpenBao, AWS KMS) and the
//! local keyring share one object-safe interface.

use crate::chunked::InputKey;
use crate::container::KekRef;
use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a provider refused or could not do.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No KEK of that name.
    #[error("no key-encryption key `{0}`")]
    UnknownKey(String),
    /// The version does not exist.
    #[error("key `{key}` has no version {version}")]
    UnknownVersion {
        /// The KEK.
        key: String,
        /// The version asked.
        version: u32,
    },
    /// The version is below the key's minimum decryption version.
    #[error("key `{key}` version {version} is retired (minimum decryption version {min})")]
    Retired {
        /// The KEK.
        key: String,
        /// The version asked.
        version: u32,
        /// The minimum decryption version.
        min: u32,
    },
    /// The version's material was destroyed.
    #[error("key `{key}` version {version} was destroyed (crypto-shredded): what it protected is unrecoverable")]
    Destroyed {
        /// The KEK.
        key: String,
        /// The version.
        version: u32,
    },
    /// The wrapped key does not open under this KEK and context.
    #[error(
        "the data key does not unwrap under `{key}` version {version}: it was wrapped for another object or context, or altered"
    )]
    Unwrap {
        /// The KEK.
        key: String,
        /// The version.
        version: u32,
    },
    /// The object names another provider.
    #[error("the object's key is held by provider `{0}`, not this one")]
    WrongProvider(String),
    /// The keyring or provider cannot be used.
    #[error("{0}")]
    Unavailable(String),
    /// A request the provider refused.
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// A KEK as listed (no secret material).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KekInfo {
    /// Its name.
    pub key_id: String,
    /// The version that wraps new data keys.
    pub current: u32,
    /// Versions below this no longer unwrap.
    pub min_decryption_version: u32,
    /// Versions whose material exists.
    pub live_versions: Vec<u32>,
    /// Versions destroyed.
    pub destroyed_versions: Vec<u32>,
}

/// A record that key material was destroyed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ShredReceipt {
    /// The provider.
    pub provider: String,
    /// The KEK.
    pub key_id: String,
    /// The versions destroyed.
    pub versions: Vec<u32>,
    /// RFC 3339 time the destruction was done (or, for a provider that waits, requested).
    pub destroyed_at: String,
    /// For a provider that destroys material only after a waiting period (AWS KMS: 7 to 30
    /// days), when that period ends. Until then every use of the key is refused, and the
    /// deletion can still be cancelled in the provider; `None`: the material is gone now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_until: Option<String>,
}

/// Now, as RFC 3339 (receipts and keyring versions).
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

impl ShredReceipt {
    /// A receipt for material destroyed now (`pending_until`: `None`).
    pub fn now(provider: &str, key_id: &str, versions: Vec<u32>) -> Self {
        ShredReceipt {
            provider: provider.into(),
            key_id: key_id.into(),
            versions,
            destroyed_at: now_rfc3339(),
            pending_until: None,
        }
    }
}

/// A fresh data key with its wrap.
pub struct NewDataKey {
    /// The data key.
    pub data_key: InputKey,
    /// The KEK (and version) that wrapped it.
    pub kek: KekRef,
    /// The wrapped data key.
    pub wrapped: Vec<u8>,
}

/// Wraps and unwraps data keys under versioned KEKs.
pub trait KeyProvider: Send + Sync {
    /// The provider's name, as recorded in object headers.
    fn name(&self) -> &'static str;

    /// Wraps `data_key` under the current version of KEK `key_id`, binding `aad`.
    fn wrap<'a>(
        &'a self,
        key_id: &'a str,
        data_key: &'a InputKey,
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<(KekRef, Vec<u8>), KeyError>>;

    /// Unwraps a data key wrapped under `kek` with `aad`.
    fn unwrap<'a>(
        &'a self,
        kek: &'a KekRef,
        wrapped: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<InputKey, KeyError>>;

    /// A fresh 256-bit data key and its wrap under the current version of `key_id`, binding
    /// `aad`. The default draws the key from aws-lc-rs's generator and wraps it; a key service
    /// with its own generator (KMS `GenerateDataKey`) makes both in one call.
    fn generate_data_key<'a>(&'a self, key_id: &'a str, aad: &'a [u8]) -> BoxFuture<'a, Result<NewDataKey, KeyError>> {
        Box::pin(async move {
            let data_key =
                InputKey::generate().map_err(|_| KeyError::Unavailable("the random generator failed".into()))?;
            let (kek, wrapped) = self.wrap(key_id, &data_key, aad).await?;
            Ok(NewDataKey { data_key, kek, wrapped })
        })
    }

    /// Rewraps a data key wrapped under `kek` onto the current version of the same KEK,
    /// binding the same `aad`. The default unwraps and wraps again; a provider that can rewrap
    /// without releasing the data key (OpenBao's `rewrap`, KMS `ReEncrypt`) does that instead.
    fn rewrap<'a>(
        &'a self,
        kek: &'a KekRef,
        wrapped: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<(KekRef, Vec<u8>), KeyError>> {
        Box::pin(async move {
            let data_key = self.unwrap(kek, wrapped, aad).await?;
            self.wrap(&kek.key_id, &data_key, aad).await
        })
    }

    /// Creates KEK `key_id` (version 1) if it does not exist; returns its current version.
    fn ensure_key<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<u32, KeyError>>;

    /// Adds a version to KEK `key_id`; returns it.
    fn rotate<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<u32, KeyError>>;

    /// Sets the minimum version that still unwraps.
    fn set_min_decryption_version<'a>(&'a self, key_id: &'a str, version: u32) -> BoxFuture<'a, Result<(), KeyError>>;

    /// Destroys the material of `version` (or of every version), irreversibly.
    fn destroy<'a>(&'a self, key_id: &'a str, version: Option<u32>) -> BoxFuture<'a, Result<ShredReceipt, KeyError>>;

    /// The KEKs.
    fn keys(&self) -> BoxFuture<'_, Result<Vec<KekInfo>, KeyError>>;
}

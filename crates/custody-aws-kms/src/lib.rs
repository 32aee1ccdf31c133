//! AWS KMS as a Custody [`KeyProvider`], through the official AWS SDK.
//!
//! A KEK is a symmetric KMS key, named by ARN, key id or alias (`alias/...`; a bare name is
//! taken as an alias). Data keys come from `GenerateDataKey`; `Encrypt` wraps a given one,
//! `Decrypt` unwraps and `ReEncrypt` rewraps without the data key leaving KMS. Every call carries
//! the object's encryption context as KMS's own encryption context (project, dataset, version,
//! classification, region, object id), so CloudTrail shows which object each use was for and a
//! wrapped key opens only for its object. Headers record the key's ARN, not the alias, since an
//! alias can be repointed.
//!
//! KMS has no visible key versions: it keeps every generation of a key's material and picks the
//! right one from the ciphertext. The version Custody records is the generation (1 + the
//! rotations `ListKeyRotations` reports, counted once per process and after each rotation), so
//! `keys rewrap` can tell which objects predate a rotation. KMS cannot retire or destroy one
//! generation; destroying a KEK schedules its deletion (7 days, the shortest wait KMS allows),
//! after which KMS refuses every use of it.
//!
//! Configuration is the SDK's own: `AWS_REGION`, credentials from the usual chain, and
//! `AWS_ENDPOINT_URL_KMS` (or `AWS_ENDPOINT_URL`) for a non-AWS endpoint.

use aws_sdk_kms::Client;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::{Blob, DateTimeFormat};
use aws_sdk_kms::types::{DataKeySpec, KeyManagerType, KeyMetadata, KeySpec, KeyState, KeyUsageType};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use custody_crypto::provider::BoxFuture;
use custody_crypto::{Header, InputKey, KekInfo, KekRef, KeyError, KeyProvider, NewDataKey, ShredReceipt};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// The provider name recorded in object headers.
pub const PROVIDER: &str = "aws-kms";

/// The shortest pending window KMS allows before deleting a key.
const DELETION_WINDOW_DAYS: i32 = 7;

/// A KMS client and what it learned about key generations.
pub struct AwsKms {
    client: Client,
    /// Where requests go, for error messages.
    endpoint: String,
    /// Key ARN to its material generation (1 + rotations).
    generations: Mutex<HashMap<String, u32>>,
}

/// Why a KMS call did not succeed.
enum Failure {
    /// The request never got an answer.
    Transport(String),
    /// KMS answered with an error code.
    Service { code: String, message: String },
}

fn failure<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> Failure {
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ConstructionFailure(_) => {
            Failure::Transport(DisplayErrorContext(&e).to_string())
        }
        _ => Failure::Service {
            code: e.code().unwrap_or("an unrecognised error").to_string(),
            message: e.message().map(str::to_string).unwrap_or_else(|| DisplayErrorContext(&e).to_string()),
        },
    }
}

/// The KMS encryption context for a wrap AAD: the object's context when the AAD is Custody's
/// (see [`Header::wrap_aad`]), else the raw bytes under one attribute.
fn kms_context(aad: &[u8]) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = match Header::wrap_context(aad) {
        Some(context) => context.into_iter().collect(),
        None => HashMap::from([("custody-aad".to_string(), B64.encode(aad))]),
    };
    map.insert("custody-wrap".into(), "1".into());
    map
}

/// A 256-bit data key from a KMS plaintext, or `bad` if it is not one.
fn data_key(plaintext: Option<Blob>, bad: impl FnOnce() -> KeyError) -> Result<InputKey, KeyError> {
    let plain = Zeroizing::new(plaintext.map(Blob::into_inner).unwrap_or_default());
    let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| bad())?;
    Ok(InputKey::new(bytes))
}

/// A KEK name as KMS takes it: ARNs, key ids and aliases as given, a bare name as an alias.
fn kms_key_id(key_id: &str) -> Result<String, KeyError> {
    let is_key_id = key_id.len() == 36 && key_id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if key_id.starts_with("arn:") || key_id.starts_with("alias/") || key_id.starts_with("mrk-") || is_key_id {
        return Ok(key_id.to_string());
    }
    let ok = !key_id.is_empty()
        && key_id.len() <= 250
        && key_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
        && !key_id.starts_with("aws/");
    if ok {
        Ok(format!("alias/{key_id}"))
    } else {
        Err(KeyError::Invalid(format!(
            "`{key_id}` is not a KMS key: name an ARN, a key id, or an alias of letters, digits, '/', '_' and '-'"
        )))
    }
}

impl AwsKms {
    /// A provider over the SDK configuration `config`.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        let endpoint = match (config.endpoint_url(), config.region()) {
            (Some(url), _) => url.to_string(),
            (None, Some(region)) => format!("kms.{region}.amazonaws.com"),
            (None, None) => "AWS KMS (no region)".into(),
        };
        AwsKms { client: Client::new(config), endpoint, generations: Mutex::new(HashMap::new()) }
    }

    /// A provider configured as the AWS SDK configures itself (environment, profile, instance
    /// role); refuses to start without a region.
    pub async fn from_env() -> Result<Self, KeyError> {
        let config = aws_config::load_from_env().await;
        if config.region().is_none() {
            return Err(KeyError::Unavailable("AWS KMS: no region; set AWS_REGION".into()));
        }
        Ok(Self::new(&config))
    }

    /// What a failed call means for KEK `key` at `version`.
    async fn resolve(&self, key: &str, version: u32, f: Failure) -> KeyError {
        let (code, message) = match f {
            Failure::Service { code, message } => (code, message),
            Failure::Transport(e) => {
                return KeyError::Unavailable(format!("AWS KMS at {} is unreachable: {e}", self.endpoint));
            }
        };
        match code.as_str() {
            "NotFoundException" => KeyError::UnknownKey(key.into()),
            "InvalidCiphertextException" | "IncorrectKeyException" => KeyError::Unwrap { key: key.into(), version },
            "KMSInvalidStateException" => match self.describe(key).await {
                Ok(meta) if meta.key_state() == Some(&KeyState::PendingDeletion) => {
                    KeyError::Destroyed { key: key.into(), version }
                }
                Ok(meta) => KeyError::Unavailable(format!(
                    "AWS KMS key `{key}` is {}: {message}",
                    meta.key_state().map(KeyState::as_str).unwrap_or("in an unusable state")
                )),
                Err(e) => e,
            },
            "DisabledException" => KeyError::Unavailable(format!("AWS KMS key `{key}` is disabled")),
            "AccessDeniedException" | "UnrecognizedClientException" | "InvalidSignatureException" => {
                KeyError::Unavailable(format!(
                    "AWS KMS at {} refused the request ({code}): check the credentials and the key policy",
                    self.endpoint
                ))
            }
            _ => KeyError::Unavailable(format!("AWS KMS at {} answered {code}: {message}", self.endpoint)),
        }
    }

    async fn describe(&self, key_id: &str) -> Result<KeyMetadata, KeyError> {
        let id = kms_key_id(key_id)?;
        match self.client.describe_key().key_id(&id).send().await {
            Ok(out) => out.key_metadata.ok_or_else(|| KeyError::UnknownKey(key_id.into())),
            Err(e) => Err(Box::pin(self.resolve(key_id, 0, failure(e))).await),
        }
    }

    fn known_generation(&self, arn: &str) -> Option<u32> {
        self.generations.lock().ok().and_then(|g| g.get(arn).copied())
    }

    /// The material generation of key `arn` (1 + its rotations), counted once per process.
    async fn generation(&self, arn: &str) -> Result<u32, KeyError> {
        if let Some(g) = self.known_generation(arn) {
            return Ok(g);
        }
        let mut rotations = 0u32;
        let mut marker: Option<String> = None;
        loop {
            let out = match self.client.list_key_rotations().key_id(arn).set_marker(marker.take()).send().await {
                Ok(out) => out,
                Err(e) => return Err(self.resolve(arn, 0, failure(e)).await),
            };
            rotations += out.rotations().len() as u32;
            match out.next_marker() {
                Some(m) if out.truncated() => marker = Some(m.to_string()),
                _ => break,
            }
        }
        let g = rotations + 1;
        if let Ok(mut map) = self.generations.lock() {
            map.insert(arn.to_string(), g);
        }
        Ok(g)
    }

    async fn kek_ref(&self, arn: Option<&str>) -> Result<KekRef, KeyError> {
        let arn = arn.ok_or_else(|| KeyError::Unavailable("AWS KMS answered without a key id".into()))?;
        Ok(KekRef { provider: PROVIDER.into(), key_id: arn.into(), version: self.generation(arn).await? })
    }

    /// A wrapped data key as KMS answered it: the key (ARN) that wrapped it and the blob.
    async fn wrapped(&self, arn: Option<&str>, blob: Option<Blob>) -> Result<(KekRef, Vec<u8>), KeyError> {
        Ok((self.kek_ref(arn).await?, blob.map(Blob::into_inner).unwrap_or_default()))
    }

    fn check_provider(kek: &KekRef) -> Result<(), KeyError> {
        if kek.provider == PROVIDER { Ok(()) } else { Err(KeyError::WrongProvider(kek.provider.clone())) }
    }

    async fn create(&self, key_id: &str) -> Result<u32, KeyError> {
        let alias = kms_key_id(key_id)?;
        if !alias.starts_with("alias/") {
            return Err(KeyError::UnknownKey(key_id.into()));
        }
        let created = self
            .client
            .create_key()
            .description(format!("Custody key-encryption key {alias}"))
            .key_usage(KeyUsageType::EncryptDecrypt)
            .key_spec(KeySpec::SymmetricDefault)
            .send()
            .await;
        let meta = match created {
            Ok(out) => {
                out.key_metadata.ok_or_else(|| KeyError::Unavailable("AWS KMS: CreateKey said nothing".into()))?
            }
            Err(e) => return Err(self.resolve(key_id, 0, failure(e)).await),
        };
        if let Err(e) = self.client.create_alias().alias_name(&alias).target_key_id(meta.key_id()).send().await {
            return Err(self.resolve(key_id, 0, failure(e)).await);
        }
        Ok(1)
    }

    fn info(&self, arn: String, generation: u32, state: Option<&KeyState>) -> KekInfo {
        let all: Vec<u32> = (1..=generation).collect();
        let gone = state == Some(&KeyState::PendingDeletion);
        KekInfo {
            key_id: arn,
            current: generation,
            min_decryption_version: 1,
            live_versions: if gone { Vec::new() } else { all.clone() },
            destroyed_versions: if gone { all } else { Vec::new() },
        }
    }
}

impl KeyProvider for AwsKms {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn generate_data_key<'a>(&'a self, key_id: &'a str, aad: &'a [u8]) -> BoxFuture<'a, Result<NewDataKey, KeyError>> {
        Box::pin(async move {
            let sent = self
                .client
                .generate_data_key()
                .key_id(kms_key_id(key_id)?)
                .key_spec(DataKeySpec::Aes256)
                .set_encryption_context(Some(kms_context(aad)))
                .send()
                .await;
            let out = match sent {
                Ok(out) => out,
                Err(e) => return Err(self.resolve(key_id, 0, failure(e)).await),
            };
            let data_key = data_key(out.plaintext, || {
                KeyError::Unavailable("AWS KMS returned a data key that is not 256 bits".into())
            })?;
            let (kek, wrapped) = self.wrapped(out.key_id.as_deref(), out.ciphertext_blob).await?;
            Ok(NewDataKey { data_key, kek, wrapped })
        })
    }

    fn wrap<'a>(
        &'a self,
        key_id: &'a str,
        data_key: &'a InputKey,
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<(KekRef, Vec<u8>), KeyError>> {
        Box::pin(async move {
            let sent = self
                .client
                .encrypt()
                .key_id(kms_key_id(key_id)?)
                .plaintext(Blob::new(data_key.bytes().to_vec()))
                .set_encryption_context(Some(kms_context(aad)))
                .send()
                .await;
            match sent {
                Ok(out) => self.wrapped(out.key_id.as_deref(), out.ciphertext_blob).await,
                Err(e) => Err(self.resolve(key_id, 0, failure(e)).await),
            }
        })
    }

    fn unwrap<'a>(
        &'a self,
        kek: &'a KekRef,
        wrapped: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<InputKey, KeyError>> {
        Box::pin(async move {
            Self::check_provider(kek)?;
            let sent = self
                .client
                .decrypt()
                .key_id(kms_key_id(&kek.key_id)?)
                .ciphertext_blob(Blob::new(wrapped.to_vec()))
                .set_encryption_context(Some(kms_context(aad)))
                .send()
                .await;
            let out = match sent {
                Ok(out) => out,
                Err(e) => return Err(self.resolve(&kek.key_id, kek.version, failure(e)).await),
            };
            data_key(out.plaintext, || KeyError::Unwrap { key: kek.key_id.clone(), version: kek.version })
        })
    }

    fn rewrap<'a>(
        &'a self,
        kek: &'a KekRef,
        wrapped: &'a [u8],
        aad: &'a [u8],
    ) -> BoxFuture<'a, Result<(KekRef, Vec<u8>), KeyError>> {
        Box::pin(async move {
            Self::check_provider(kek)?;
            let id = kms_key_id(&kek.key_id)?;
            let context = kms_context(aad);
            let sent = self
                .client
                .re_encrypt()
                .ciphertext_blob(Blob::new(wrapped.to_vec()))
                .source_key_id(&id)
                .set_source_encryption_context(Some(context.clone()))
                .destination_key_id(&id)
                .set_destination_encryption_context(Some(context))
                .send()
                .await;
            match sent {
                Ok(out) => self.wrapped(out.key_id.as_deref(), out.ciphertext_blob).await,
                Err(e) => Err(self.resolve(&kek.key_id, kek.version, failure(e)).await),
            }
        })
    }

    fn ensure_key<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<u32, KeyError>> {
        Box::pin(async move {
            match self.describe(key_id).await {
                Ok(meta) => self.generation(meta.arn().unwrap_or(meta.key_id())).await,
                Err(KeyError::UnknownKey(_)) => self.create(key_id).await,
                Err(e) => Err(e),
            }
        })
    }

    fn rotate<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<u32, KeyError>> {
        Box::pin(async move {
            let meta = self.describe(key_id).await?;
            let arn = meta.arn().unwrap_or(meta.key_id()).to_string();
            if let Err(e) = self.client.rotate_key_on_demand().key_id(&arn).send().await {
                return Err(self.resolve(key_id, 0, failure(e)).await);
            }
            if let Ok(mut map) = self.generations.lock() {
                map.remove(&arn);
            }
            self.generation(&arn).await
        })
    }

    fn set_min_decryption_version<'a>(&'a self, key_id: &'a str, _version: u32) -> BoxFuture<'a, Result<(), KeyError>> {
        Box::pin(async move {
            Err(KeyError::Invalid(format!(
                "AWS KMS keeps every generation of `{key_id}` and cannot retire one: rewrap the objects \
                 (`keys rewrap`), and to stop old ones decrypting, shred the key"
            )))
        })
    }

    fn destroy<'a>(&'a self, key_id: &'a str, version: Option<u32>) -> BoxFuture<'a, Result<ShredReceipt, KeyError>> {
        Box::pin(async move {
            if version.is_some() {
                return Err(KeyError::Invalid(format!(
                    "AWS KMS cannot destroy one generation of `{key_id}`: shred the whole key"
                )));
            }
            let meta = self.describe(key_id).await?;
            let arn = meta.arn().unwrap_or(meta.key_id()).to_string();
            let generation = self.generation(&arn).await?;
            // The bare key id: KMS takes an ARN here too, moto only the id.
            let sent = self
                .client
                .schedule_key_deletion()
                .key_id(meta.key_id())
                .pending_window_in_days(DELETION_WINDOW_DAYS)
                .send()
                .await;
            let out = match sent {
                Ok(out) => out,
                Err(e) => return Err(self.resolve(key_id, 0, failure(e)).await),
            };
            Ok(ShredReceipt {
                pending_until: out.deletion_date.and_then(|d| d.fmt(DateTimeFormat::DateTime).ok()),
                ..ShredReceipt::now(PROVIDER, &arn, (1..=generation).collect())
            })
        })
    }

    fn keys(&self) -> BoxFuture<'_, Result<Vec<KekInfo>, KeyError>> {
        Box::pin(async move {
            let mut out = BTreeMap::new();
            let mut marker: Option<String> = None;
            loop {
                let page = match self.client.list_keys().set_marker(marker.take()).send().await {
                    Ok(page) => page,
                    Err(e) => return Err(self.resolve("", 0, failure(e)).await),
                };
                for entry in page.keys() {
                    let Some(id) = entry.key_arn().or(entry.key_id()) else { continue };
                    let meta = self.describe(id).await?;
                    let customer = meta.key_manager() == Some(&KeyManagerType::Customer);
                    let symmetric = meta.key_spec() == Some(&KeySpec::SymmetricDefault);
                    if !customer || !symmetric {
                        continue;
                    }
                    let arn = meta.arn().unwrap_or(meta.key_id()).to_string();
                    // A key pending deletion answers no rotation listing; what is known stands.
                    let generation = match meta.key_state() {
                        Some(KeyState::PendingDeletion) => self.known_generation(&arn).unwrap_or(1),
                        _ => self.generation(&arn).await?,
                    };
                    out.insert(arn.clone(), self.info(arn, generation, meta.key_state()));
                }
                match page.next_marker() {
                    Some(m) if page.truncated() => marker = Some(m.to_string()),
                    _ => break,
                }
            }
            Ok(out.into_values().collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_onto_kms_key_ids() {
        assert_eq!(kms_key_id("custody-acme").unwrap(), "alias/custody-acme");
        assert_eq!(kms_key_id("alias/x").unwrap(), "alias/x");
        let arn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert_eq!(kms_key_id(arn).unwrap(), arn);
        assert_eq!(kms_key_id("1234abcd-12ab-34cd-56ef-1234567890ab").unwrap(), "1234abcd-12ab-34cd-56ef-1234567890ab");
        for bad in ["", "a.b", "aws/ebs", "a b"] {
            assert!(kms_key_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_object_context_becomes_the_kms_context() {
        let context = [("project".to_string(), "acme".to_string())].into_iter().collect();
        let map = kms_context(&Header::wrap_aad(&context));
        assert_eq!(map.get("project").map(String::as_str), Some("acme"));
        assert_eq!(map.get("custody-wrap").map(String::as_str), Some("1"));
        let raw = kms_context(b"\xff raw");
        assert_eq!(raw.get("custody-aad").map(String::as_str), Some("/yByYXc="));
    }
}

//! The encrypted object container, version 1:
//!
//! ```text
//! object  = magic header_len:u32 header payload
//! magic   = "custody-encrypted/1\n"                       ; the format version is in the magic
//! header  = JSON {"scheme", "context", "kek": {"provider", "key_id", "version"}, "wrapped_key"}
//! payload = C2SP chunked encryption (Cobblestone-256) under the data key,
//!           with context = "custody-encrypted/1\n" || canonical JSON {"context", "scheme"}
//! ```
//!
//! The encryption context (project, dataset, version, classification, region, and a random
//! object id) is authenticated twice: it is the chunked encryption's context (a changed
//! context derives other keys and fails the commitment) and the additional data of the data
//! key's wrap (a wrapped key copied into another object's header does not unwrap there). The
//! KEK reference and wrapped key stay outside the payload's context so that rewrapping under
//! a new KEK version rewrites the header only.

use crate::chunked::{self, ChunkedError, InputKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;

/// The first bytes of every object.
pub const MAGIC: &[u8; 20] = b"custody-encrypted/1\n";
/// The payload scheme this version writes.
pub const SCHEME: &str = "cobblestone-256";
/// The largest header accepted (the context is small; this bounds what a reader allocates).
pub const MAX_HEADER: u32 = 64 * 1024;

/// Attributes bound to an object's data key: project, dataset, version, classification,
/// region, object id, and any others the caller adds.
pub type EncryptionContext = BTreeMap<String, String>;

/// Which key-encryption key wrapped a data key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KekRef {
    /// The provider (`local`, `openbao`, `aws-kms`).
    pub provider: String,
    /// The KEK's name in the provider.
    pub key_id: String,
    /// The KEK version that wrapped the data key.
    pub version: u32,
}

/// An object's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The payload scheme.
    pub scheme: String,
    /// The encryption context.
    pub context: EncryptionContext,
    /// The KEK that wrapped the data key.
    pub kek: KekRef,
    /// The wrapped data key, base64.
    pub wrapped_key: String,
}

/// What is wrong with an object's container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The first bytes are not the magic.
    #[error("not a custody encrypted object (its first bytes are not `custody-encrypted/`)")]
    NotAnObject,
    /// Another format version.
    #[error("unknown format version `{0}` (this build reads version 1)")]
    Version(String),
    /// The header is cut short, too long or not the expected JSON.
    #[error("the header is malformed: {0}")]
    Header(String),
    /// The payload.
    #[error(transparent)]
    Payload(#[from] ChunkedError),
}

impl Header {
    /// The bytes bound into the payload's key derivation.
    pub fn payload_context(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Bound<'a> {
            context: &'a EncryptionContext,
            scheme: &'a str,
        }
        let mut out = MAGIC.to_vec();
        // Serializing a map of strings cannot fail.
        out.extend(serde_json::to_vec(&Bound { context: &self.context, scheme: &self.scheme }).unwrap_or_default());
        out
    }

    /// The additional data of the data key's wrap: the context, canonically.
    pub fn wrap_aad(context: &EncryptionContext) -> Vec<u8> {
        let mut out = b"custody-wrap/1\n".to_vec();
        out.extend(serde_json::to_vec(context).unwrap_or_default());
        out
    }

    /// The context a wrap AAD made by [`Header::wrap_aad`] carries (for providers that take
    /// the context as attributes, like AWS KMS's encryption context); `None` for other bytes.
    pub fn wrap_context(aad: &[u8]) -> Option<EncryptionContext> {
        serde_json::from_slice(aad.strip_prefix(b"custody-wrap/1\n")?).ok()
    }

    /// The object's leading bytes: magic, length, header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend(json);
        out
    }

    /// Reads the magic and header from the front of `reader`, leaving it at the payload.
    /// Returns the header and the number of bytes it took.
    pub fn read(reader: &mut impl Read) -> Result<(Header, u64), ContainerError> {
        let front = chunked::read_at_most(reader, MAGIC.len() + 4).map_err(ChunkedError::Read)?;
        let (magic, len) = front.split_at(front.len().min(MAGIC.len()));
        if magic.len() < MAGIC.len() || !magic.starts_with(b"custody-encrypted/") {
            return Err(ContainerError::NotAnObject);
        }
        if magic != MAGIC {
            let version = String::from_utf8_lossy(&magic[18..]).trim_end().to_owned();
            return Err(ContainerError::Version(version));
        }
        let len: [u8; 4] =
            len.try_into().map_err(|_| ContainerError::Header("the object ends inside the header's length".into()))?;
        let len = u32::from_be_bytes(len);
        if len > MAX_HEADER {
            return Err(ContainerError::Header(format!("{len} bytes is longer than the {MAX_HEADER} allowed")));
        }
        let json = chunked::read_at_most(reader, len as usize).map_err(ChunkedError::Read)?;
        if json.len() < len as usize {
            return Err(ContainerError::Header("the object ends inside the header".into()));
        }
        let header: Header = serde_json::from_slice(&json).map_err(|e| ContainerError::Header(e.to_string()))?;
        if header.scheme != SCHEME {
            return Err(ContainerError::Header(format!("unknown payload scheme `{}`", header.scheme)));
        }
        Ok((header, (MAGIC.len() + 4) as u64 + u64::from(len)))
    }
}

/// A fresh random object id for the encryption context.
pub fn object_id() -> Result<String, ChunkedError> {
    let mut id = [0u8; 16];
    aws_lc_rs::rand::fill(&mut id).map_err(|_| ChunkedError::Library("random"))?;
    Ok(hex::encode(id))
}

/// A data key and the header that carries it wrapped.
pub struct Sealing {
    /// The header to write before the payload.
    pub header: Header,
    /// The data key (the payload's input key).
    pub data_key: InputKey,
}

/// An envelope operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The key provider.
    #[error(transparent)]
    Key(#[from] crate::provider::KeyError),
    /// The container or payload.
    #[error(transparent)]
    Container(#[from] ContainerError),
}

impl From<ChunkedError> for EnvelopeError {
    fn from(e: ChunkedError) -> Self {
        EnvelopeError::Container(ContainerError::Payload(e))
    }
}

/// A fresh data key wrapped under KEK `key_id` for `context` (to which a random object id is
/// added unless it names one).
pub async fn seal_header(
    provider: &dyn crate::provider::KeyProvider,
    key_id: &str,
    mut context: EncryptionContext,
) -> Result<Sealing, EnvelopeError> {
    if !context.contains_key("object") {
        context.insert("object".into(), object_id()?);
    }
    let crate::provider::NewDataKey { data_key, kek, wrapped } =
        provider.generate_data_key(key_id, &Header::wrap_aad(&context)).await?;
    let header = Header { scheme: SCHEME.into(), context, kek, wrapped_key: B64.encode(wrapped) };
    Ok(Sealing { header, data_key })
}

/// The data key of an object, unwrapped by the provider that holds its KEK.
pub async fn open_header(
    provider: &dyn crate::provider::KeyProvider,
    header: &Header,
) -> Result<InputKey, EnvelopeError> {
    let wrapped =
        B64.decode(&header.wrapped_key).map_err(|_| ContainerError::Header("`wrapped_key` is not base64".into()))?;
    Ok(provider.unwrap(&header.kek, &wrapped, &Header::wrap_aad(&header.context)).await?)
}

/// The header with its data key rewrapped under the current version of its KEK (the payload
/// is untouched: its keys derive from the data key and context, which do not change).
pub async fn rewrap_header(
    provider: &dyn crate::provider::KeyProvider,
    header: &Header,
) -> Result<Header, EnvelopeError> {
    let wrapped =
        B64.decode(&header.wrapped_key).map_err(|_| ContainerError::Header("`wrapped_key` is not base64".into()))?;
    let (kek, wrapped) = provider.rewrap(&header.kek, &wrapped, &Header::wrap_aad(&header.context)).await?;
    Ok(Header { kek, wrapped_key: B64.encode(wrapped), ..header.clone() })
}

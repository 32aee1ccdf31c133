//! Envelope encryption for Custody.
//!
//! - [`chunked`]: the payload format, [C2SP chunked encryption](https://c2sp.org/chunked-encryption)
//!   as Cobblestone-256 (HKDF-SHA-512, AES-256-GCM, key commitment): streaming on every core,
//!   authenticated random access.
//!
//! - [`container`]: the encrypted object: a versioned header (scheme, encryption context, KEK
//!   reference, wrapped data key) authenticated by the payload's key derivation and by the
//!   wrap; [`seal_header`], [`open_header`], [`rewrap_header`].
//! - [`provider`]: the [`KeyProvider`] interface: wrap, unwrap, rotate, retire, destroy.
//! - [`keyring`]: the local keyring file (mode 0600, sealed under Argon2id or an environment
//!   key), the embedded default provider.
//!
//! Primitives come from aws-lc-rs; this crate composes them and never prints.

pub mod chunked;
pub mod container;
pub mod keyring;
pub mod provider;

pub use chunked::{ChunkedError, InputKey, MessageKeys, RandomAccess, decrypt, encrypt};
pub use container::{
    ContainerError, EncryptionContext, EnvelopeError, Header, KekRef, open_header, rewrap_header, seal_header,
};
pub use keyring::{LocalKeyring, Unlocker};
pub use provider::{KekInfo, KeyError, KeyProvider, NewDataKey, ShredReceipt};

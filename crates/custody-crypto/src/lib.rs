//! Envelope encryption for Custody.
//!
//! - [`chunked`]: the payload format, [C2SP chunked encryption](https://c2sp.org/chunked-encryption)
//!   as Cobblestone-256 (HKDF-SHA-512, AES-256-GCM, key commitment): streaming on every core,
//!   authenticated random access.
//!
//! Primitives come from aws-lc-rs; this crate composes them and never prints.

pub mod chunked;

pub use chunked::{ChunkedError, InputKey, MessageKeys, RandomAccess, decrypt, encrypt};

//! Signed notes ([C2SP signed-note](https://c2sp.org/signed-note)) with Ed25519 keys.
//!
//! A signed note is a text ending in a newline, a blank line, then one or more signature lines
//! `— <key name> <base64(key id || signature)>`. A key is identified by its name and a 32-bit key
//! id; for Ed25519 the id is the first four bytes (big-endian) of
//! `SHA-256(name || 0x0A || 0x01 || public key)`.
//!
//! - [`Signer`]: an Ed25519 private key with its name; [`Signer::verifier_key`] gives the
//!   verifier key (vkey) string to publish.
//! - [`Verifier`]: an Ed25519 public key with its name, parsed from a vkey by [`Verifier::parse`].
//! - [`Note`]: a parsed note ([`Note::parse`], strict) that formats back byte for byte
//!   ([`Display`](std::fmt::Display)).
//! - [`sign`] and [`verify`]: sign a text with one or more signers; check a note against a set of
//!   trusted verifiers, with the semantics of the specification (signatures by unknown keys are
//!   ignored, a signature by a known key that does not verify rejects the note, and at least one
//!   signature by a known key must verify).
//!
//! No function of this module panics; malformed input is reported as a [`NoteError`].

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The signature type identifier byte of Ed25519 signatures.
pub const ED25519_ALGORITHM: u8 = 0x01;

/// Length in bytes of an Ed25519 public key.
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;

/// Length in bytes of an Ed25519 seed (the private key of RFC 8032).
pub const ED25519_SEED_LEN: usize = 32;

/// The most signatures a note may carry. The specification requires accepting at least 16; this
/// is the limit of the reference implementation (golang.org/x/mod/sumdb/note).
pub const MAX_SIGNATURES: usize = 100;

/// The prefix of a signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Why a note, a key or a signature was rejected.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    /// The note is not valid UTF-8.
    #[error("note is not valid utf-8 (line {line})")]
    NotUtf8 {
        /// The 1-based line of the first invalid byte.
        line: usize,
    },
    /// The note or text holds an ASCII control character other than newline.
    #[error("control character U+{code:04X} on line {line}")]
    ControlCharacter {
        /// The 1-based line of the character.
        line: usize,
        /// The code point of the character.
        code: u32,
    },
    /// The note or text does not end with a newline.
    #[error("note does not end with a newline")]
    MissingFinalNewline,
    /// No blank line separates the text from the signatures.
    #[error("no blank line separates the text from the signatures")]
    MissingBlankLine,
    /// Nothing follows the blank line that ends the text.
    #[error("no signature lines after the blank line (line {line})")]
    NoSignatures {
        /// The 1-based line of the blank line.
        line: usize,
    },
    /// The note has more signatures than [`MAX_SIGNATURES`], or more signers were given.
    #[error("more than {max} signatures")]
    TooManySignatures {
        /// The limit, [`MAX_SIGNATURES`].
        max: usize,
    },
    /// A signature line does not start with an em dash (U+2014) and a space.
    #[error("signature line {line} does not start with an em dash (U+2014) and a space")]
    MissingEmDash {
        /// The 1-based line number.
        line: usize,
    },
    /// A signature line has no space between the key name and the signature.
    #[error("signature line {line} has no space between key name and signature")]
    MissingSignature {
        /// The 1-based line number.
        line: usize,
    },
    /// The key name of a signature line breaks the rules of the specification.
    #[error("signature line {line}: {reason}")]
    SignatureKeyName {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the name.
        reason: &'static str,
    },
    /// The signature of a signature line is not canonical standard base64 with padding.
    #[error("signature line {line}: signature is not valid base64")]
    SignatureBase64 {
        /// The 1-based line number.
        line: usize,
    },
    /// The decoded signature of a signature line is too short to hold a key id and a signature.
    #[error("signature line {line}: signature is {len} bytes, at least 5 required (4-byte key id and signature)")]
    SignatureTooShort {
        /// The 1-based line number.
        line: usize,
        /// The decoded length.
        len: usize,
    },
    /// A key name breaks the rules of the specification.
    #[error("invalid key name {name:?}: {reason}")]
    InvalidKeyName {
        /// The rejected name.
        name: String,
        /// What is wrong with the name.
        reason: &'static str,
    },
    /// A private key string (`PRIVATE+KEY+<name>+<hex id>+<base64 key>`) is malformed.
    #[error("malformed private key: {reason}")]
    MalformedSignerKey {
        /// What is wrong with it (never the key material).
        reason: &'static str,
    },
    /// A verifier key string is malformed.
    #[error("malformed verifier key: {reason}")]
    MalformedVerifierKey {
        /// What is wrong with the verifier key.
        reason: &'static str,
    },
    /// A verifier key names a signature type other than Ed25519 (0x01).
    #[error("unsupported signature type 0x{algorithm:02x} in verifier key (only ed25519, 0x01, is supported)")]
    UnsupportedAlgorithm {
        /// The signature type byte.
        algorithm: u8,
    },
    /// A public key does not have 32 bytes.
    #[error("ed25519 public key is {got} bytes, expected 32")]
    WrongPublicKeyLength {
        /// The length of the key.
        got: usize,
    },
    /// The key id of a verifier key is not the one computed from its name and public key.
    #[error("key id {stated:08x} of the verifier key does not match the computed key id {computed:08x}")]
    KeyIdMismatch {
        /// The key id written in the verifier key.
        stated: u32,
        /// The key id computed from the name and public key.
        computed: u32,
    },
    /// A private key was rejected by the cryptographic library.
    #[error("ed25519 private key rejected: {reason}")]
    KeyRejected {
        /// The library's reason.
        reason: &'static str,
    },
    /// A seed does not have 32 bytes.
    #[error("ed25519 seed is {got} bytes, expected 32")]
    WrongSeedLength {
        /// The length of the seed.
        got: usize,
    },
    /// The cryptographic library failed to generate, export or use a key.
    #[error("ed25519 {operation} failed")]
    Crypto {
        /// What failed: "key generation", "signing" or "pkcs#8 export".
        operation: &'static str,
    },
    /// [`sign`] was given no signer.
    #[error("no signer given")]
    NoSigners,
    /// A signature by a known key (name and key id) does not verify.
    #[error("signature by {name}+{key_id:08x} does not verify")]
    InvalidSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// Two different verifiers share a key name and key id, so a signature cannot be attributed.
    #[error("several verifiers for {name}+{key_id:08x}")]
    AmbiguousVerifier {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// No signature of the note is by a known key.
    #[error("no signature by a known key")]
    UnverifiedNote,
}

/// Checks a key name: non-empty, without Unicode spaces, plus signs or control characters.
fn check_key_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("key name is empty");
    }
    if name.contains('+') {
        return Err("key name contains a plus sign");
    }
    if name.chars().any(char::is_whitespace) {
        return Err("key name contains a space");
    }
    if name.chars().any(char::is_control) {
        return Err("key name contains a control character");
    }
    Ok(())
}

fn validated_name(name: String) -> Result<String, NoteError> {
    match check_key_name(&name) {
        Ok(()) => Ok(name),
        Err(reason) => Err(NoteError::InvalidKeyName { name, reason }),
    }
}

/// Rejects ASCII control characters other than newline, reporting the 1-based line.
fn check_control_characters(s: &str) -> Result<(), NoteError> {
    let mut line = 1;
    for b in s.bytes() {
        if b == b'\n' {
            line += 1;
        } else if b < 0x20 {
            return Err(NoteError::ControlCharacter { line, code: u32::from(b) });
        }
    }
    Ok(())
}

fn count_newlines(s: &str) -> usize {
    s.bytes().filter(|b| *b == b'\n').count()
}

/// The key id of an Ed25519 key: the first four bytes, big-endian, of
/// `SHA-256(name || 0x0A || 0x01 || public key)`.
pub fn ed25519_key_id(name: &str, public_key: &[u8; ED25519_PUBLIC_KEY_LEN]) -> u32 {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(&[ED25519_ALGORITHM]);
    ctx.update(public_key);
    let digest = ctx.finish();
    match digest.as_ref().first_chunk::<4>() {
        Some(id) => u32::from_be_bytes(*id),
        // SHA-256 digests always have 32 bytes.
        None => 0,
    }
}

/// Formats a verifier key: `<name>+<hex key id>+<base64(0x01 || public key)>`.
fn format_verifier_key(name: &str, key_id: u32, public_key: &[u8; ED25519_PUBLIC_KEY_LEN]) -> String {
    let mut material = Vec::with_capacity(1 + ED25519_PUBLIC_KEY_LEN);
    material.push(ED25519_ALGORITHM);
    material.extend_from_slice(public_key);
    format!("{name}+{key_id:08x}+{}", STANDARD.encode(material))
}

/// An Ed25519 signing key with its key name.
///
/// Its [`Debug`](fmt::Debug) output shows the name and key id, never the private key.
pub struct Signer {
    /// The public half, with the name and key id.
    verifier: Verifier,
    key_pair: Ed25519KeyPair,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.verifier.name)
            .field("key_id", &format_args!("{:08x}", self.verifier.key_id))
            .finish()
    }
}

impl Signer {
    /// `name` was validated by the caller.
    fn from_key_pair(name: String, key_pair: Ed25519KeyPair) -> Result<Self, NoteError> {
        let public_key: [u8; ED25519_PUBLIC_KEY_LEN] = key_pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| NoteError::WrongPublicKeyLength { got: key_pair.public_key().as_ref().len() })?;
        let key_id = ed25519_key_id(&name, &public_key);
        Ok(Self { verifier: Verifier { name, key_id, public_key }, key_pair })
    }

    /// Generates a new random key named `name`.
    pub fn generate(name: impl Into<String>) -> Result<Self, NoteError> {
        let name = validated_name(name.into())?;
        let key_pair = Ed25519KeyPair::generate().map_err(|_| NoteError::Crypto { operation: "key generation" })?;
        Self::from_key_pair(name, key_pair)
    }

    /// Loads the key named `name` from a PKCS#8 (v1 or v2) DER document.
    pub fn from_pkcs8(name: impl Into<String>, pkcs8: &[u8]) -> Result<Self, NoteError> {
        let name = validated_name(name.into())?;
        let key_pair =
            Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| NoteError::KeyRejected { reason: e.description_() })?;
        Self::from_key_pair(name, key_pair)
    }

    /// Loads the key named `name` from its 32-byte RFC 8032 seed.
    pub fn from_seed(name: impl Into<String>, seed: &[u8]) -> Result<Self, NoteError> {
        let name = validated_name(name.into())?;
        if seed.len() != ED25519_SEED_LEN {
            return Err(NoteError::WrongSeedLength { got: seed.len() });
        }
        let key_pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| NoteError::KeyRejected { reason: e.description_() })?;
        Self::from_key_pair(name, key_pair)
    }

    /// Loads a private key string, `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`
    /// (the form of Go's `golang.org/x/mod/sumdb/note` signer keys). Errors never echo the key.
    pub fn parse_private_key(key: &str) -> Result<Self, NoteError> {
        let malformed = |reason| NoteError::MalformedSignerKey { reason };
        let rest = key.trim_end().strip_prefix("PRIVATE+KEY+").ok_or(malformed("missing `PRIVATE+KEY+` prefix"))?;
        let (name, rest) = rest.split_once('+').ok_or(malformed("missing '+' after the key name"))?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or(malformed("missing '+' after the key id"))?;
        let stated = u32::from_str_radix(id_hex, 16).map_err(|_| malformed("key id is not 8 hex digits"))?;
        if id_hex.len() != 8 {
            return Err(malformed("key id is not 8 hex digits"));
        }
        let material = STANDARD.decode(key_b64).map_err(|_| malformed("key material is not valid base64"))?;
        let (&algorithm, seed) = material.split_first().ok_or(malformed("key material is empty"))?;
        if algorithm != ED25519_ALGORITHM {
            return Err(NoteError::UnsupportedAlgorithm { algorithm });
        }
        let signer = Self::from_seed(name, seed)?;
        if signer.key_id() != stated {
            return Err(NoteError::KeyIdMismatch { stated, computed: signer.key_id() });
        }
        Ok(signer)
    }

    /// The private key string (see [`Signer::parse_private_key`]): secret material, to be
    /// stored as such and never logged.
    pub fn private_key(&self) -> Result<String, NoteError> {
        use aws_lc_rs::encoding::AsBigEndian as _;
        let seed = self
            .key_pair
            .seed()
            .and_then(|s| s.as_be_bytes())
            .map_err(|_| NoteError::Crypto { operation: "seed export" })?;
        let mut material = vec![ED25519_ALGORITHM];
        material.extend_from_slice(seed.as_ref());
        Ok(format!("PRIVATE+KEY+{}+{:08x}+{}", self.name(), self.key_id(), STANDARD.encode(material)))
    }

    /// Exports the private key as a PKCS#8 v2 DER document (secret material: store it as such).
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, NoteError> {
        self.key_pair
            .to_pkcs8()
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| NoteError::Crypto { operation: "pkcs#8 export" })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        self.verifier.name()
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.verifier.key_id()
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; ED25519_PUBLIC_KEY_LEN] {
        self.verifier.public_key()
    }

    /// The verifier of this key.
    pub fn verifier(&self) -> Verifier {
        self.verifier.clone()
    }

    /// The verifier key (vkey) string of this key: `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        self.verifier.verifier_key()
    }

    /// Signs `text` (the note text), giving the signature with this key's name and id.
    pub fn sign_text(&self, text: &str) -> Result<NoteSignature, NoteError> {
        let signature =
            self.key_pair.try_sign(text.as_bytes()).map_err(|_| NoteError::Crypto { operation: "signing" })?;
        Ok(NoteSignature {
            name: self.verifier.name.clone(),
            key_id: self.verifier.key_id,
            signature: signature.as_ref().to_vec(),
        })
    }
}

/// An Ed25519 public key with its key name and key id, trusted to verify notes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Verifier {
    name: String,
    key_id: u32,
    public_key: [u8; ED25519_PUBLIC_KEY_LEN],
}

impl Verifier {
    /// The verifier of the Ed25519 `public_key` named `name`; the key id is computed.
    pub fn new(name: impl Into<String>, public_key: [u8; ED25519_PUBLIC_KEY_LEN]) -> Result<Self, NoteError> {
        let name = validated_name(name.into())?;
        let key_id = ed25519_key_id(&name, &public_key);
        Ok(Self { name, key_id, public_key })
    }

    /// Parses a verifier key `<name>+<8 lower-case hex digits key id>+<base64(0x01 || public key)>`,
    /// checking the name rules, the signature type, the key length and that the key id is the one
    /// computed from the name and key.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let (name, rest) =
            vkey.split_once('+').ok_or(NoteError::MalformedVerifierKey { reason: "missing '+' after the key name" })?;
        let (id_hex, key_b64) =
            rest.split_once('+').ok_or(NoteError::MalformedVerifierKey { reason: "missing '+' after the key id" })?;
        let name = validated_name(name.to_owned())?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(NoteError::MalformedVerifierKey { reason: "key id is not 8 lower-case hex digits" });
        }
        let stated = u32::from_str_radix(id_hex, 16)
            .map_err(|_| NoteError::MalformedVerifierKey { reason: "key id is not 8 lower-case hex digits" })?;
        let material = STANDARD
            .decode(key_b64)
            .map_err(|_| NoteError::MalformedVerifierKey { reason: "key material is not valid base64" })?;
        let (&algorithm, key) =
            material.split_first().ok_or(NoteError::MalformedVerifierKey { reason: "key material is empty" })?;
        if algorithm != ED25519_ALGORITHM {
            return Err(NoteError::UnsupportedAlgorithm { algorithm });
        }
        let public_key: [u8; ED25519_PUBLIC_KEY_LEN] =
            key.try_into().map_err(|_| NoteError::WrongPublicKeyLength { got: key.len() })?;
        let computed = ed25519_key_id(&name, &public_key);
        if computed != stated {
            return Err(NoteError::KeyIdMismatch { stated, computed });
        }
        Ok(Self { name, key_id: computed, public_key })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; ED25519_PUBLIC_KEY_LEN] {
        &self.public_key
    }

    /// The verifier key (vkey) string: `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        format_verifier_key(&self.name, self.key_id, &self.public_key)
    }

    /// Whether `signature` is a valid Ed25519 signature of `message` by this key.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public_key).verify(message, signature).is_ok()
    }
}

impl fmt::Display for Verifier {
    /// Writes the verifier key string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.verifier_key())
    }
}

impl FromStr for Verifier {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id.
    pub key_id: u32,
    /// The signature bytes (without the key id), 64 bytes for Ed25519.
    pub signature: Vec<u8>,
}

impl fmt::Display for NoteSignature {
    /// Writes the signature line `— <name> <base64(key id || signature)>`, without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut blob = Vec::with_capacity(4 + self.signature.len());
        blob.extend_from_slice(&self.key_id.to_be_bytes());
        blob.extend_from_slice(&self.signature);
        write!(f, "{SIGNATURE_PREFIX}{} {}", self.name, STANDARD.encode(blob))
    }
}

/// A signed note: a text and its signatures.
///
/// [`Note::parse`] accepts exactly the notes of the specification, and formatting a parsed note
/// ([`Display`](fmt::Display), `to_string()`) gives back the same string. A note built by hand
/// formats to a valid note only if its text ends with a newline and has no other control
/// character, it has 1 to [`MAX_SIGNATURES`] signatures, and their names follow the key name
/// rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Note {
    /// The signed text, ending with a newline (the separating blank line is not part of it).
    pub text: String,
    /// The signatures, in the order of the note.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parses a signed note strictly per the specification, without verifying it.
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        check_control_characters(note)?;
        if !note.ends_with('\n') {
            return Err(NoteError::MissingFinalNewline);
        }
        let split = note.rfind("\n\n").ok_or(NoteError::MissingBlankLine)?;
        let (text, rest) = note.split_at(split + 1);
        let blank_line = count_newlines(text) + 1;
        let sigs = rest.strip_prefix('\n').unwrap_or(rest);
        let Some(sigs) = sigs.strip_suffix('\n') else {
            return Err(NoteError::NoSignatures { line: blank_line });
        };
        let mut signatures = Vec::new();
        for (index, line) in sigs.split('\n').enumerate() {
            if index >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures { max: MAX_SIGNATURES });
            }
            let line_number = blank_line + 1 + index;
            signatures.push(parse_signature_line(line, line_number)?);
        }
        Ok(Self { text: text.to_owned(), signatures })
    }

    /// Parses a signed note from bytes, which must be UTF-8.
    pub fn parse_bytes(note: &[u8]) -> Result<Self, NoteError> {
        match std::str::from_utf8(note) {
            Ok(s) => Self::parse(s),
            Err(e) => {
                let valid = note.get(..e.valid_up_to()).unwrap_or_default();
                Err(NoteError::NotUtf8 { line: valid.iter().filter(|b| **b == b'\n').count() + 1 })
            }
        }
    }

    /// Verifies this note against trusted `verifiers`; see [`verify`].
    pub fn verify<'v>(&self, verifiers: &'v [Verifier]) -> Result<Vec<&'v str>, NoteError> {
        verify(self, verifiers)
    }

    /// Adds a signature of the text by `signer` (for example a witness cosigning).
    pub fn add_signature(&mut self, signer: &Signer) -> Result<(), NoteError> {
        check_text(&self.text)?;
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures { max: MAX_SIGNATURES });
        }
        self.signatures.push(signer.sign_text(&self.text)?);
        Ok(())
    }
}

fn parse_signature_line(line: &str, line_number: usize) -> Result<NoteSignature, NoteError> {
    let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or(NoteError::MissingEmDash { line: line_number })?;
    let (name, b64) = rest.split_once(' ').ok_or(NoteError::MissingSignature { line: line_number })?;
    check_key_name(name).map_err(|reason| NoteError::SignatureKeyName { line: line_number, reason })?;
    let blob = STANDARD.decode(b64).map_err(|_| NoteError::SignatureBase64 { line: line_number })?;
    let too_short = NoteError::SignatureTooShort { line: line_number, len: blob.len() };
    let (key_id, signature) = blob.split_first_chunk::<4>().ok_or_else(|| too_short.clone())?;
    if signature.is_empty() {
        return Err(too_short);
    }
    Ok(NoteSignature { name: name.to_owned(), key_id: u32::from_be_bytes(*key_id), signature: signature.to_vec() })
}

impl fmt::Display for Note {
    /// Writes the note: text, blank line, one signature line per signature.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for signature in &self.signatures {
            writeln!(f, "{signature}")?;
        }
        Ok(())
    }
}

impl FromStr for Note {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Checks a note text: ends with a newline, no control character other than newline.
fn check_text(text: &str) -> Result<(), NoteError> {
    check_control_characters(text)?;
    if !text.ends_with('\n') {
        return Err(NoteError::MissingFinalNewline);
    }
    Ok(())
}

/// Signs `text` with every signer, in order. The text must end with a newline and hold no other
/// control character; between 1 and [`MAX_SIGNATURES`] signers are needed.
pub fn sign(text: &str, signers: &[&Signer]) -> Result<Note, NoteError> {
    check_text(text)?;
    if signers.is_empty() {
        return Err(NoteError::NoSigners);
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures { max: MAX_SIGNATURES });
    }
    let signatures = signers.iter().map(|signer| signer.sign_text(text)).collect::<Result<Vec<_>, _>>()?;
    Ok(Note { text: text.to_owned(), signatures })
}

/// Verifies `note` against the trusted `verifiers`, returning the names of the verifiers whose
/// signature verified (each once, in the order of the note).
///
/// Per the specification: a signature whose key name and key id (both) match no verifier is
/// ignored; a signature that matches a verifier must verify, or the whole note is rejected
/// ([`NoteError::InvalidSignature`]); and if no signature is by a known key, the note is rejected
/// ([`NoteError::UnverifiedNote`]). Two verifiers with the same name and id but different keys
/// are refused ([`NoteError::AmbiguousVerifier`]) when a signature matches them.
pub fn verify<'v>(note: &Note, verifiers: &'v [Verifier]) -> Result<Vec<&'v str>, NoteError> {
    if note.signatures.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures { max: MAX_SIGNATURES });
    }
    let mut verified: Vec<&'v str> = Vec::new();
    for signature in &note.signatures {
        let mut matching = verifiers.iter().filter(|v| v.name == signature.name && v.key_id == signature.key_id);
        let Some(verifier) = matching.next() else {
            continue;
        };
        if matching.any(|other| other.public_key != verifier.public_key) {
            return Err(NoteError::AmbiguousVerifier { name: signature.name.clone(), key_id: signature.key_id });
        }
        if !verifier.verify_signature(note.text.as_bytes(), &signature.signature) {
            return Err(NoteError::InvalidSignature { name: signature.name.clone(), key_id: signature.key_id });
        }
        if !verified.contains(&verifier.name.as_str()) {
            verified.push(&verifier.name);
        }
    }
    if verified.is_empty() {
        return Err(NoteError::UnverifiedNote);
    }
    Ok(verified)
}

/// Parses the signed note `note` and verifies it against `verifiers` (see [`verify`]).
pub fn open(note: &str, verifiers: &[Verifier]) -> Result<Note, NoteError> {
    let note = Note::parse(note)?;
    verify(&note, verifiers)?;
    Ok(note)
}

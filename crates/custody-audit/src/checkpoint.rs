//! Transparency log checkpoints ([C2SP tlog-checkpoint](https://c2sp.org/tlog-checkpoint)).
//!
//! A checkpoint is the text of a [signed note](crate::note) giving a log's Merkle tree head:
//!
//! ```text
//! <origin>
//! <tree size, decimal, no leading zeros>
//! <base64 root hash>
//! [extension lines]
//! ```
//!
//! [`Checkpoint::to_note_text`] and [`Checkpoint::parse_note_text`] convert between the two;
//! [`Checkpoint::sign`] and [`Checkpoint::open`] add the signed-note layer.
//!
//! No function of this module panics; malformed input is reported as a [`CheckpointError`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::merkle::{HASH_LEN, Hash};
use crate::note::{self, Note, NoteError, Signer, Verifier};

/// Why a checkpoint was rejected.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    /// The text does not end with a newline.
    #[error("checkpoint text does not end with a newline")]
    MissingFinalNewline,
    /// The text holds an ASCII control character other than newline (or a field holds a newline).
    #[error("control character U+{code:04X} on line {line} of the checkpoint")]
    ControlCharacter {
        /// The 1-based line of the character.
        line: usize,
        /// The code point of the character.
        code: u32,
    },
    /// The text has fewer than the three mandatory lines.
    #[error("checkpoint has {got} lines, at least 3 required (origin, tree size, root hash)")]
    TooFewLines {
        /// The number of lines.
        got: usize,
    },
    /// The origin (line 1) is empty.
    #[error("origin (line 1) is empty")]
    EmptyOrigin,
    /// The tree size (line 2) is not a canonical decimal `u64`.
    #[error("tree size (line 2) {reason}")]
    InvalidSize {
        /// What is wrong with the size.
        reason: &'static str,
    },
    /// The root hash (line 3) is not canonical standard base64 with padding.
    #[error("root hash (line 3) is not valid base64")]
    RootBase64,
    /// The root hash (line 3) does not decode to 32 bytes.
    #[error("root hash (line 3) is {got} bytes, expected {HASH_LEN}")]
    WrongRootLength {
        /// The decoded length.
        got: usize,
    },
    /// An extension line is empty.
    #[error("extension line {line} is empty")]
    EmptyExtension {
        /// The 1-based line number.
        line: usize,
    },
    /// The signed note around the checkpoint is malformed or does not verify.
    #[error("signed note: {0}")]
    Note(#[from] NoteError),
}

/// A checkpoint: a log's tree head (origin, tree size, root hash) and optional extension lines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The log's origin (identity), for example `example.com/log42`: non-empty, one line.
    pub origin: String,
    /// The number of leaves of the tree.
    pub size: u64,
    /// The RFC 6962 root hash of the tree at `size`.
    pub root: Hash,
    /// Opaque extension lines, each non-empty (their use is not recommended by the specification).
    pub extensions: Vec<String>,
}

/// Rejects ASCII control characters (newline included) in a single-line field.
fn check_field(field: &str, line: usize) -> Result<(), CheckpointError> {
    match field.bytes().find(|b| *b < 0x20) {
        Some(b) => Err(CheckpointError::ControlCharacter { line, code: u32::from(b) }),
        None => Ok(()),
    }
}

fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    if line.is_empty() {
        return Err(CheckpointError::InvalidSize { reason: "is empty" });
    }
    if !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CheckpointError::InvalidSize { reason: "is not a decimal number" });
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(CheckpointError::InvalidSize { reason: "has a leading zero" });
    }
    line.parse().map_err(|_| CheckpointError::InvalidSize { reason: "does not fit in 64 bits" })
}

fn parse_root(line: &str) -> Result<Hash, CheckpointError> {
    let bytes = STANDARD.decode(line).map_err(|_| CheckpointError::RootBase64)?;
    Hash::try_from(bytes.as_slice()).map_err(|_| CheckpointError::WrongRootLength { got: bytes.len() })
}

impl Checkpoint {
    /// A checkpoint without extension lines; the origin must be non-empty and one line.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash) -> Result<Self, CheckpointError> {
        let checkpoint = Self { origin: origin.into(), size, root, extensions: Vec::new() };
        checkpoint.validate()?;
        Ok(checkpoint)
    }

    /// Checks that [`to_note_text`](Self::to_note_text) gives a valid checkpoint text: the origin
    /// and every extension line non-empty and free of control characters (newline included).
    pub fn validate(&self) -> Result<(), CheckpointError> {
        if self.origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        check_field(&self.origin, 1)?;
        for (index, extension) in self.extensions.iter().enumerate() {
            let line = index + 4;
            if extension.is_empty() {
                return Err(CheckpointError::EmptyExtension { line });
            }
            check_field(extension, line)?;
        }
        Ok(())
    }

    /// The note text: origin, decimal size, base64 root, then the extension lines, each ending
    /// with a newline. It is a valid checkpoint text if [`validate`](Self::validate) passes.
    pub fn to_note_text(&self) -> String {
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for extension in &self.extensions {
            text.push_str(extension);
            text.push('\n');
        }
        text
    }

    /// Parses a checkpoint note text strictly: at least three lines, each ending with a newline;
    /// a non-empty origin; a decimal tree size without leading zeros (except `0`) that fits in a
    /// `u64`; a root hash of exactly 32 bytes in standard base64 with padding; non-empty extension
    /// lines; no control characters other than newline.
    pub fn parse_note_text(text: &str) -> Result<Self, CheckpointError> {
        let body = text.strip_suffix('\n').ok_or(CheckpointError::MissingFinalNewline)?;
        let lines: Vec<&str> = body.split('\n').collect();
        for (index, line) in lines.iter().enumerate() {
            check_field(line, index + 1)?;
        }
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines { got: lines.len() });
        };
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        if let Some(index) = extensions.iter().position(|line| line.is_empty()) {
            return Err(CheckpointError::EmptyExtension { line: index + 4 });
        }
        Ok(Self {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|line| (*line).to_owned()).collect(),
        })
    }

    /// Parses the checkpoint in the text of `note` (which is not verified here).
    pub fn from_note(note: &Note) -> Result<Self, CheckpointError> {
        Self::parse_note_text(&note.text)
    }

    /// Validates this checkpoint and signs its note text with `signers` (the log's key name should
    /// be the origin).
    pub fn sign(&self, signers: &[&Signer]) -> Result<Note, CheckpointError> {
        self.validate()?;
        Ok(note::sign(&self.to_note_text(), signers)?)
    }

    /// Parses a signed checkpoint note, verifies it against `verifiers` (see [`note::verify`]) and
    /// parses its checkpoint.
    pub fn open(signed_note: &str, verifiers: &[Verifier]) -> Result<Self, CheckpointError> {
        let note = note::open(signed_note, verifiers)?;
        Self::from_note(&note)
    }
}

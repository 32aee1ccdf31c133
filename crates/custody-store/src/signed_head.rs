//! What this server last signed, kept outside the database, so that a database that went
//! back in time (restored from an old backup, a replica promoted from behind) is not signed
//! into a fork of the log that auditors already hold checkpoints of.

use crate::StoreError;
use custody_audit::{Hash, Signer};
use std::path::PathBuf;
use std::sync::Mutex;

/// The log key with the newest tree size and root it signed.
#[derive(Debug)]
pub struct LogSigner {
    signer: std::sync::Arc<Signer>,
    last: Mutex<Option<(u64, Hash)>>,
    /// Where `last` is kept between runs (`<size> <hex root>`), if anywhere.
    file: Option<PathBuf>,
}

impl LogSigner {
    /// A signer that remembers its last signature in `file` (read now if it exists).
    pub fn new(signer: std::sync::Arc<Signer>, file: Option<PathBuf>) -> Self {
        let last = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok()).and_then(|text| {
            let (size, root) = text.trim().split_once(' ')?;
            let root = custody_audit::hash_from_slice(&hex::decode(root).ok()?).ok()?;
            Some((size.parse().ok()?, root))
        });
        Self { signer, last: Mutex::new(last), file }
    }

    pub(crate) fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The newest (size, root) signed, if known.
    pub fn last_signed(&self) -> Option<(u64, Hash)> {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses to extend a tree of `size` records with root `root` that is behind, or beside,
    /// what this signer already signed.
    pub(crate) fn check(&self, size: u64, root: &Hash) -> Result<(), StoreError> {
        let refused = |reason: String| StoreError::Corrupt { what: "audit log", reason };
        match self.last_signed() {
            Some((signed, _)) if signed > size => Err(refused(format!(
                "the database's log has {size} records but this server signed a checkpoint of {signed}: \
                 it went back in time (an old backup?); refusing to sign a fork"
            ))),
            Some((signed, signed_root)) if signed == size && signed_root != *root => Err(refused(format!(
                "the database's log of {size} records has another root than the checkpoint this server signed: \
                 refusing to sign a fork"
            ))),
            _ => Ok(()),
        }
    }

    /// Notes a signature that has been committed.
    pub(crate) fn committed(&self, size: u64, root: Hash) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|(s, _)| s >= size) {
            return;
        }
        *last = Some((size, root));
        if let Some(file) = &self.file {
            let tmp = file.with_extension("tmp");
            let written = std::fs::write(&tmp, format!("{size} {}\n", hex::encode(root)))
                .and_then(|()| std::fs::rename(&tmp, file));
            if let Err(e) = written {
                tracing::warn!(error = %e, file = %file.display(), "cannot record the last signed checkpoint");
            }
        }
    }
}

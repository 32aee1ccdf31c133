//! The audit log's signing key: an Ed25519 key in a file only its owner can read, created on
//! first start. Its name is the origin line of every checkpoint the log signs.

use custody_audit::Signer;
use std::io::Write as _;
use std::path::Path;

/// Why the log key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogKeyError {
    /// The file could not be read or written.
    #[error("audit log key `{path}`: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Others than its owner may read it.
    #[error("audit log key `{path}` is readable by others (mode {mode:o}); run `chmod 600` on it")]
    Exposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// It does not hold a key.
    #[error("audit log key `{path}`: {source}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong (never the key).
        source: custody_audit::NoteError,
    },
}

/// Loads the key at `path`, or creates one named `origin` there (mode 0600) if there is none.
pub fn load_or_create(path: &Path, origin: &str) -> Result<Signer, LogKeyError> {
    let shown = path.display().to_string();
    let io = |source| LogKeyError::Io { path: shown.clone(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private(path)?;
            Signer::parse_private_key(text.trim()).map_err(|source| LogKeyError::Malformed { path: shown, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer =
                Signer::generate(origin).map_err(|source| LogKeyError::Malformed { path: shown.clone(), source })?;
            let text = signer.private_key().map_err(|source| LogKeyError::Malformed { path: shown.clone(), source })?;
            write_private(path, &format!("{text}\n")).map_err(io)?;
            Ok(signer)
        }
        Err(e) => Err(io(e)),
    }
}

/// Writes a new file readable by its owner only: to a temporary name, synced, then renamed,
/// so a crash leaves either no key or the whole key. Refuses to replace an existing one.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    write_private_bytes(path, text.as_bytes())
}

/// [`write_private`] for bytes (the local keyring's key file).
pub(crate) fn write_private_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let _ = std::fs::remove_file(&tmp);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    if path.exists() {
        let _ = std::fs::remove_file(&tmp);
        return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a key appeared meanwhile"));
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Fails unless only the owner may read or write `path`.
pub(crate) fn check_owner_only(path: &Path) -> std::io::Result<()> {
    check_private(path).map_err(|e| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e.to_string()))
}

fn check_private(path: &Path) -> Result<(), LogKeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta =
            std::fs::metadata(path).map_err(|source| LogKeyError::Io { path: path.display().to_string(), source })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(LogKeyError::Exposed { path: path.display().to_string(), mode });
        }
    }
    Ok(())
}

/// A fresh origin for a new log: unique, so two logs' checkpoints are never confused.
pub fn default_origin() -> String {
    let mut id = [0u8; 4];
    let _ = aws_lc_rs::rand::fill(&mut id);
    format!("custody.local/audit/{}", hex::encode(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_then_reloaded_and_exposure_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit-log.key");
        let made = load_or_create(&path, "custody.test/audit").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let again = load_or_create(&path, "ignored/when/present").unwrap();
        assert_eq!(again.verifier_key(), made.verifier_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(load_or_create(&path, "x"), Err(LogKeyError::Exposed { .. })));
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::write(&path, "PRIVATE+KEY+broken").unwrap();
        let err = load_or_create(&path, "x").unwrap_err().to_string();
        assert!(err.contains("malformed private key"), "{err}");
    }
}

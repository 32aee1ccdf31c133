//! What this server last signed, kept outside the database, so that a database that went
//! back in time (restored from an old backup, a replica promoted from behind) is not signed
//! into a fork of the log that auditors already hold checkpoints of.
//!
//! The file holds two fixed-width slots, `<size> <hex root> <check>` each, overwritten in
//! place in turn: one `pwrite` per batch instead of a new file renamed over the old (whose
//! create, rename and inode eviction were a seventh of the writer's own time). A write that a
//! crash tears can spoil only the slot it was writing, whose check then fails, and the other
//! slot still holds the signature before it. The file is not synced: after a power loss it
//! may lag the database by the last moments, which the check below allows (a database ahead
//! of the file is the normal case; only one behind it or beside it is refused).

use crate::StoreError;
use custody_audit::{Hash, Signer};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The log key with the newest tree size and root it signed.
#[derive(Debug)]
pub struct LogSigner {
    signer: std::sync::Arc<Signer>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    last: Option<(u64, Hash)>,
    /// Where `last` is kept between runs, if anywhere.
    file: Option<HeadFile>,
}

#[derive(Debug)]
struct HeadFile {
    path: PathBuf,
    /// Open while writes to it succeed; opened again on the next signature after a failure.
    open: Option<File>,
    /// The slot the next signature goes to.
    slot: u64,
}

/// A slot's width: 20 digits of size, a space, 64 hex digits of root, a space, 16 hex digits
/// of check, a newline.
const SLOT: usize = 20 + 1 + 64 + 1 + 16 + 1;

impl LogSigner {
    /// A signer that remembers its last signature in `file` (read now if it exists).
    pub fn new(signer: std::sync::Arc<Signer>, file: Option<PathBuf>) -> Self {
        let text = file.as_deref().and_then(|f| std::fs::read_to_string(f).ok()).unwrap_or_default();
        let newest = newest_in(&text);
        let last = newest.map(|(_, signed)| signed);
        // The next write goes to the slot that does not hold the newest signature, so a torn
        // write falls back to it (a file of the one-line format is overwritten from the start).
        let slot = match newest {
            Some((0, _)) if text.len() >= SLOT && text.as_bytes()[SLOT - 1] == b'\n' => 1,
            _ => 0,
        };
        let file = file.map(|path| HeadFile { path, open: None, slot });
        Self { signer, state: Mutex::new(State { last, file }) }
    }

    pub(crate) fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The newest (size, root) signed, if known.
    pub fn last_signed(&self) -> Option<(u64, Hash)> {
        self.state().last
    }

    /// The state is whole at every moment, so a panic elsewhere leaves it usable.
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
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
        let mut state = self.state();
        if state.last.is_some_and(|(s, _)| s >= size) {
            return;
        }
        state.last = Some((size, root));
        if let Some(file) = &mut state.file
            && let Err(e) = file.write(size, &root)
        {
            file.open = None;
            tracing::warn!(error = %e, file = %file.path.display(), "cannot record the last signed checkpoint");
        }
    }
}

impl HeadFile {
    fn write(&mut self, size: u64, root: &Hash) -> std::io::Result<()> {
        let file = match &mut self.open {
            Some(f) => f,
            None => self.open.insert(open_head(&self.path)?),
        };
        file.write_all_at(slot_line(size, root).as_bytes(), self.slot * SLOT as u64)?;
        self.slot = (self.slot + 1) % 2;
        Ok(())
    }
}

fn open_head(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

fn slot_line(size: u64, root: &Hash) -> String {
    let fields = format!("{size:020} {}", hex::encode(root));
    format!("{fields} {}\n", check_of(&fields))
}

/// The first 8 bytes of the SHA-256 of a slot's fields, in hex.
fn check_of(fields: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, fields.as_bytes());
    hex::encode(&digest.as_ref()[..8])
}

/// The newest signature a head file holds: of its slots whose check holds (or, from a
/// file written before there were slots, its one `<size> <hex root>` line), the largest size.
/// Returns the slot it is in with it.
fn newest_in(text: &str) -> Option<(usize, (u64, Hash))> {
    let slots = text.lines().enumerate().filter_map(|(i, line)| Some((i, parse_line(line)?)));
    slots.max_by_key(|(_, (size, _))| *size)
}

fn parse_line(line: &str) -> Option<(u64, Hash)> {
    let mut fields = line.split(' ');
    let (size, root, check) = (fields.next()?, fields.next()?, fields.next());
    if fields.next().is_some() {
        return None;
    }
    if let Some(check) = check
        && (size.len() != 20 || check != check_of(&format!("{size} {root}")))
    {
        return None;
    }
    let root = custody_audit::hash_from_slice(&hex::decode(root).ok()?).ok()?;
    Some((size.parse().ok()?, root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> std::sync::Arc<Signer> {
        std::sync::Arc::new(Signer::generate("custody.test/head").unwrap())
    }

    #[test]
    fn the_newest_signature_reaches_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.head");
        let signer = LogSigner::new(key(), Some(path.clone()));
        for size in 1..=51u64 {
            signer.committed(size, [size as u8; 32]);
        }
        signer.committed(7, [0; 32]);
        drop(signer);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 2 * SLOT, "two slots, overwritten in place: {text:?}");
        let again = LogSigner::new(key(), Some(path));
        assert_eq!(again.last_signed(), Some((51, [51; 32])));
        assert!(again.check(50, &[50; 32]).is_err(), "a log behind it is refused");
        assert!(again.check(51, &[9; 32]).is_err(), "a log beside it is refused");
        assert!(again.check(51, &[51; 32]).is_ok());
        assert!(again.check(60, &[1; 32]).is_ok(), "a log ahead of it is extended");
    }

    #[test]
    fn a_torn_slot_falls_back_to_the_signature_before() {
        let (older, newer) = (slot_line(41, &[41; 32]), slot_line(42, &[42; 32]));
        for cut in 1..SLOT - 1 {
            // The newer slot as a crash may leave it: its start written, the rest as before.
            let torn = format!("{}{}", &newer[..cut], &older[cut..]);
            let file = format!("{older}{torn}");
            let (_, newest) = newest_in(&file).unwrap();
            assert!(newest == (41, [41; 32]) || newest == (42, [42; 32]), "cut at {cut}: {newest:?}");
            if cut < 20 + 1 + 64 + 1 {
                assert_eq!(newest, (41, [41; 32]), "cut at {cut} leaves a check that does not hold");
            }
        }
    }

    #[test]
    fn a_new_run_writes_first_beside_the_newest_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.head");
        for (run, sizes) in [(1u64, 1..=3u64), (2, 4..=4), (3, 5..=6), (4, 7..=7)] {
            let signer = LogSigner::new(key(), Some(path.clone()));
            assert_eq!(signer.last_signed().map(|(s, _)| s), (run > 1).then(|| sizes.start() - 1));
            for size in sizes {
                signer.committed(size, [size as u8; 32]);
                let text = std::fs::read_to_string(&path).unwrap();
                let slots: Vec<_> = text.lines().filter_map(parse_line).map(|(s, _)| s).collect();
                assert_eq!(slots.len(), 2.min(size as usize), "{text:?}");
                assert!(slots.contains(&size) && (size == 1 || slots.contains(&(size - 1))), "{slots:?}");
            }
        }
    }

    #[test]
    fn a_file_of_the_one_line_format_is_read_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.head");
        std::fs::write(&path, format!("9 {}\n", hex::encode([9u8; 32]))).unwrap();
        let signer = LogSigner::new(key(), Some(path.clone()));
        assert_eq!(signer.last_signed(), Some((9, [9; 32])));
        signer.committed(10, [10; 32]);
        signer.committed(11, [11; 32]);
        assert_eq!(newest_in(&std::fs::read_to_string(&path).unwrap()), Some((1, (11, [11; 32]))));
    }

    #[test]
    fn a_file_of_the_one_line_format_is_read() {
        let line = format!("17 {}\n", hex::encode([3u8; 32]));
        assert_eq!(newest_in(&line), Some((0, (17, [3; 32]))));
        assert_eq!(newest_in("17 zz\n"), None);
        assert_eq!(newest_in(""), None);
    }

    #[test]
    fn a_head_that_cannot_be_written_does_not_stop_signing() {
        let dir = tempfile::tempdir().unwrap();
        let signer = LogSigner::new(key(), Some(dir.path().join("missing").join("log.head")));
        signer.committed(3, [3; 32]);
        assert_eq!(signer.last_signed(), Some((3, [3; 32])));
        assert!(signer.check(2, &[2; 32]).is_err(), "memory still knows what was signed");
    }
}

//! Computing a model's manifest from the files on disk: walk, then hash every file or shard
//! on every core.

use crate::ProvenanceError;
use crate::manifest::{HashAlgorithm, Manifest, Method, Resource, ResourceName, Serialization};
use aws_lc_rs::digest::{Context, SHA256};
use rayon::prelude::*;
use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Read size for SHA-256: small enough that a read's copy stays in the core's L2 cache for the
/// hash that follows (measured: larger buffers are slower, see BENCHMARKS.md).
const SHA256_READ: usize = 256 * 1024;
/// Read size for BLAKE3: large enough for its SIMD tree hashing to fan out across cores.
const BLAKE3_READ: usize = 4 * 1024 * 1024;

/// Receives progress while a manifest is computed, and may cancel it. Called from several
/// threads.
pub trait Progress: Sync {
    /// The work ahead, once the walk is done.
    fn planned(&self, _files: u64, _bytes: u64) {}
    /// `bytes` more have been hashed.
    fn advanced(&self, _bytes: u64) {}
    /// Whether to stop (checked between reads).
    fn cancelled(&self) -> bool {
        false
    }
}

/// No progress reporting, never cancelled.
pub struct Silent;
impl Progress for Silent {}

/// Cancels when the flag is set (e.g. by a Ctrl-C handler); no reporting.
impl Progress for AtomicBool {
    fn cancelled(&self) -> bool {
        self.load(Ordering::Relaxed)
    }
}

/// One unit of hashing: a whole file or one shard of it.
struct Work {
    name: ResourceName,
    file: PathBuf,
    range: Option<(u64, u64)>,
    len: u64,
}

/// Computes the manifest of `model` (a directory or a single file) as `serialization` says.
///
/// Files are hashed in parallel; symbolic links are refused unless allowed; anything that is
/// neither a file nor a directory is refused; ignored paths are never opened.
pub fn compute_manifest(
    model: &Path,
    serialization: &Serialization,
    progress: &dyn Progress,
) -> Result<Manifest, ProvenanceError> {
    let files = list_files(model, serialization)?;
    let work = plan(files, serialization.method)?;
    progress.planned(work.len() as u64, work.iter().map(|w| w.len).sum());
    let resources = work
        .par_iter()
        .map(|w| {
            let digest = hash_work(w, serialization.hash, progress)?;
            Ok(Resource { name: w.name.clone(), algorithm: serialization.hash, digest })
        })
        .collect::<Result<Vec<_>, ProvenanceError>>()?;
    Ok(Manifest::new(model_name(model), serialization.clone(), resources))
}

/// The informative model name: the last component of its path (resolved when it has none).
pub fn model_name(model: &Path) -> String {
    if let Some(name) = model.file_name() {
        return name.to_string_lossy().into_owned();
    }
    let resolved = model.canonicalize().ok();
    resolved.as_deref().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A file of the model: its manifest path and where it is, with its size.
struct ModelFile {
    relative: String,
    path: PathBuf,
    size: u64,
}

fn list_files(model: &Path, serialization: &Serialization) -> Result<Vec<ModelFile>, ProvenanceError> {
    let meta = entry_metadata(model, serialization.allow_symlinks)?;
    if meta.is_file() {
        return Ok(vec![ModelFile { relative: ".".to_owned(), path: model.to_owned(), size: meta.len() }]);
    }
    let mut files = Vec::new();
    let mut seen_dirs = HashSet::new();
    walk(model, "", serialization, &mut seen_dirs, &mut files)?;
    Ok(files)
}

/// Metadata of a path inside the model, following a symlink only when allowed.
fn entry_metadata(path: &Path, allow_symlinks: bool) -> Result<std::fs::Metadata, ProvenanceError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| ProvenanceError::io(path, e))?;
    let meta = if meta.file_type().is_symlink() {
        if !allow_symlinks {
            return Err(ProvenanceError::Symlink(path.to_owned()));
        }
        std::fs::metadata(path).map_err(|_| ProvenanceError::NotFileOrDirectory(path.to_owned()))?
    } else {
        meta
    };
    if meta.is_file() || meta.is_dir() { Ok(meta) } else { Err(ProvenanceError::NotFileOrDirectory(path.to_owned())) }
}

fn walk(
    dir: &Path,
    prefix: &str,
    serialization: &Serialization,
    seen_dirs: &mut HashSet<PathBuf>,
    files: &mut Vec<ModelFile>,
) -> Result<(), ProvenanceError> {
    // A followed symlink may lead back up the tree; each real directory is entered once.
    let real = dir.canonicalize().map_err(|e| ProvenanceError::io(dir, e))?;
    if !seen_dirs.insert(real) {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| ProvenanceError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| ProvenanceError::io(dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            return Err(ProvenanceError::UnnameablePath { path, reason: "the name is not UTF-8" });
        };
        let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        if serialization.is_ignored(&relative) {
            continue;
        }
        let meta = entry_metadata(&path, serialization.allow_symlinks)?;
        if meta.is_dir() {
            walk(&path, &relative, serialization, seen_dirs, files)?;
        } else {
            files.push(ModelFile { relative, path, size: meta.len() });
        }
    }
    Ok(())
}

fn plan(files: Vec<ModelFile>, method: Method) -> Result<Vec<Work>, ProvenanceError> {
    let mut work = Vec::with_capacity(files.len());
    for f in files {
        match method {
            Method::Files => {
                let name = ResourceName { path: f.relative, range: None };
                work.push(Work { name, file: f.path, range: None, len: f.size });
            }
            Method::Shards { shard_size } => {
                if f.relative.contains(':') {
                    return Err(ProvenanceError::UnnameablePath {
                        path: f.path,
                        reason: "a name with `:` cannot be told apart from a shard range",
                    });
                }
                let mut start = 0;
                while start < f.size {
                    let end = start.saturating_add(shard_size).min(f.size);
                    let name = ResourceName { path: f.relative.clone(), range: Some((start, end)) };
                    work.push(Work { name, file: f.path.clone(), range: Some((start, end)), len: end - start });
                    start = end;
                }
            }
        }
    }
    // Largest first, so the last thread to finish is not left with a big file alone.
    work.sort_by_key(|w| std::cmp::Reverse(w.len));
    Ok(work)
}

/// The running digest of one resource, for resources that arrive as a stream (a model served
/// over HTTP) rather than as files on disk.
pub struct ResourceHasher(Running);

enum Running {
    Sha256(Context),
    Blake3(Box<blake3::Hasher>),
}

impl ResourceHasher {
    /// A fresh digest.
    pub fn new(algorithm: HashAlgorithm) -> Self {
        Self(match algorithm {
            HashAlgorithm::Sha256 => Running::Sha256(Context::new(&SHA256)),
            HashAlgorithm::Blake3 => Running::Blake3(Box::new(blake3::Hasher::new())),
        })
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            Running::Sha256(ctx) => ctx.update(data),
            Running::Blake3(h) => {
                h.update_rayon(data);
            }
        }
    }

    /// The 32-byte digest.
    pub fn finish(self) -> [u8; 32] {
        match self.0 {
            Running::Sha256(ctx) => {
                let mut out = [0u8; 32];
                out.copy_from_slice(ctx.finish().as_ref());
                out
            }
            Running::Blake3(h) => *h.finalize().as_bytes(),
        }
    }
}

fn hash_work(w: &Work, algorithm: HashAlgorithm, progress: &dyn Progress) -> Result<[u8; 32], ProvenanceError> {
    let file = File::open(&w.file).map_err(|e| ProvenanceError::io(&w.file, e))?;
    let (mut offset, end) = w.range.unwrap_or((0, u64::MAX));
    let size = if algorithm == HashAlgorithm::Sha256 { SHA256_READ } else { BLAKE3_READ };
    let mut buf = vec![0u8; size.min(usize::try_from(w.len).unwrap_or(size)).max(1)];
    let mut hasher = ResourceHasher::new(algorithm);
    while offset < end {
        if progress.cancelled() {
            return Err(ProvenanceError::Cancelled);
        }
        let want = usize::try_from(end - offset).map_or(buf.len(), |left| left.min(buf.len()));
        let n = file.read_at(&mut buf[..want], offset).map_err(|e| ProvenanceError::io(&w.file, e))?;
        if n == 0 {
            if w.range.is_some() {
                let changed = std::io::Error::other("the file shrank while it was being hashed");
                return Err(ProvenanceError::io(&w.file, changed));
            }
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
        progress.advanced(n as u64);
    }
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sha(data: &[u8]) -> String {
        hex::encode(aws_lc_rs::digest::digest(&SHA256, data))
    }

    #[test]
    fn single_file_is_named_dot() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w.bin");
        std::fs::write(&f, b"weights").unwrap();
        let m = compute_manifest(&f, &Serialization::files(HashAlgorithm::Sha256), &Silent).unwrap();
        assert_eq!(m.model_name, "w.bin");
        assert_eq!(m.resources.len(), 1);
        assert_eq!(m.resources[0].name.to_string(), ".");
        assert_eq!(hex::encode(m.resources[0].digest), sha(b"weights"));
    }

    #[test]
    fn shards_cover_the_file_and_skip_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big"), b"0123456789").unwrap();
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        let mut s = Serialization::files(HashAlgorithm::Sha256);
        s.method = Method::Shards { shard_size: 4 };
        let m = compute_manifest(dir.path(), &s, &Silent).unwrap();
        let names: Vec<String> = m.resources.iter().map(|r| r.name.to_string()).collect();
        assert_eq!(names, ["big:0:4", "big:4:8", "big:8:10"]);
        assert_eq!(hex::encode(m.resources[2].digest), sha(b"89"));
    }

    #[test]
    fn blake3_matches_the_reference() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..9_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("f"), &data).unwrap();
        let m = compute_manifest(dir.path(), &Serialization::files(HashAlgorithm::Blake3), &Silent).unwrap();
        assert_eq!(m.resources[0].digest, *blake3::hash(&data).as_bytes());
    }

    #[test]
    fn symlinks_are_refused_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        let mut s = Serialization::files(HashAlgorithm::Sha256);
        let err = compute_manifest(dir.path(), &s, &Silent).unwrap_err();
        assert!(matches!(err, ProvenanceError::Symlink(ref p) if p.ends_with("link")), "{err}");
        s.allow_symlinks = true;
        let m = compute_manifest(dir.path(), &s, &Silent).unwrap();
        assert_eq!(m.resources.len(), 2);
        assert_eq!(m.resources[0].digest, m.resources[1].digest);
    }

    #[test]
    fn ignored_paths_are_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", dir.path().join(".git/dangling")).unwrap();
        std::fs::write(dir.path().join("model"), b"m").unwrap();
        let m = compute_manifest(dir.path(), &Serialization::files(HashAlgorithm::Sha256), &Silent).unwrap();
        assert_eq!(m.resources.len(), 1);
    }

    #[test]
    fn missing_model_names_the_path() {
        let err =
            compute_manifest(Path::new("/nonexistent/model"), &Serialization::files(HashAlgorithm::Sha256), &Silent)
                .unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/model: "), "{err}");
    }

    #[test]
    fn cancellation_stops_hashing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"data").unwrap();
        let cancel = AtomicBool::new(true);
        let err = compute_manifest(dir.path(), &Serialization::files(HashAlgorithm::Sha256), &cancel).unwrap_err();
        assert!(matches!(err, ProvenanceError::Cancelled));
    }
}

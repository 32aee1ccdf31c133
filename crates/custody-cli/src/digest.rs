//! Streaming SHA-256 of a file, with a progress bar on a terminal.

use anyhow::Context;
use aws_lc_rs::digest::{Context as Sha, SHA256};
use custody_core::Sha256Digest;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Read;
use std::path::Path;

/// Hashes `path` in 1 MiB reads. Shows progress on stderr when it is a terminal and the file
/// is larger than 64 MiB. Returns the digest and the number of bytes read.
pub fn sha256_file(path: &Path, quiet: bool) -> anyhow::Result<(Sha256Digest, u64)> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if quiet || len < 64 * 1024 * 1024 {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar.set_message(format!("sha256 {}", path.display()));
        bar
    };
    let mut sha = Sha::new(&SHA256);
    let mut buf = vec![0u8; 1024 * 1024];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading `{}`", path.display())),
        };
        sha.update(&buf[..n]);
        total += n as u64;
        bar.set_position(total);
    }
    bar.finish_and_clear();
    let digest = sha.finish();
    let bytes: [u8; 32] = digest.as_ref().try_into().context("SHA-256 has 32 bytes")?;
    Ok((Sha256Digest::from_bytes(bytes), total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn known_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::File::create(&p).unwrap().write_all(b"abc").unwrap();
        let (d, n) = sha256_file(&p, true).unwrap();
        assert_eq!(n, 3);
        assert_eq!(d.to_string(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let e = dir.path().join("empty");
        std::fs::File::create(&e).unwrap();
        assert_eq!(
            sha256_file(&e, true).unwrap().0.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(sha256_file(&dir.path().join("missing"), true).is_err());
    }
}

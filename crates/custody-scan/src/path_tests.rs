//! `scan_file` (what [`crate::scan_path`] runs) against [`crate::scan_bytes`] on generated
//! files, read through windows of a few bytes so that every boundary case comes up: a line,
//! an opcode's argument, a `str` being validated or a nested pickle split across reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/scan/gen.rs"]
mod generated;

use std::io::Write;
use std::path::PathBuf;

use generated::Rng;

use crate::source::{FileSrc, SurrogatepassUtf8};
use crate::{ScanOptions, scan_bytes, scan_file};

fn opts() -> ScanOptions {
    ScanOptions { max_stack: 10_000, max_memo: 10_000, ..ScanOptions::default() }
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, data: &[u8]) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("custody-scan-{}-{tag}-{n}", std::process::id()));
        std::fs::File::create(&path).unwrap().write_all(data).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Scan `data` from a file with `window`-byte reads; panics if the report differs from
/// `scan_bytes`'s.
fn assert_same(data: &[u8], window: usize, what: &str) {
    let file = TempFile::new("same", data);
    let src = FileSrc::new(std::fs::File::open(&file.0).unwrap(), data.len() as u64, window);
    let by_path = scan_file("f", &src, &opts());
    assert!(src.take_error().is_none(), "{what}: read error");
    let by_bytes = scan_bytes("f", data, &opts());
    let (a, b) = (serde_json::to_string_pretty(&by_path).unwrap(), serde_json::to_string_pretty(&by_bytes).unwrap());
    assert!(a == b, "{what} (window {window}, {} bytes): scan_file\n{a}\n!= scan_bytes\n{b}", data.len());
}

const WINDOWS: &[usize] = &[1, 2, 3, 5, 8, 13, 64, 300];

#[test]
fn generated_pickles_match_scan_bytes() {
    for seed in 0..3000u64 {
        let mut r = Rng::new(seed);
        let window = WINDOWS[r.below(WINDOWS.len())];
        let t = [window, 2 * window, 64, 70];
        let data = generated::pickle_stream(&mut r, &t);
        assert_same(&data, window, &format!("pickle seed {seed}"));
    }
}

#[test]
fn generated_zips_match_scan_bytes() {
    for seed in 0..1500u64 {
        let mut r = Rng::new(seed);
        let window = WINDOWS[r.below(WINDOWS.len())];
        let t = [window, 2 * window, 64, 70];
        let data = generated::zip_file(&mut r, &t);
        assert_same(&data, window, &format!("zip seed {seed}"));
    }
}

#[test]
fn chunked_utf8_check_matches_the_whole_check() {
    for seed in 0..20_000u64 {
        let mut r = Rng::new(seed);
        let n = r.below(24);
        let alphabet = [0x41u8, 0xed, 0xa0, 0xbf, 0x80, 0xc3, 0xa9, 0xe4, 0xb8, 0xad, 0xf0, 0x9f, 0x98, 0xff, 0x9f];
        let data: Vec<u8> = (0..n).map(|_| alphabet[r.below(alphabet.len())]).collect();
        let whole = std::str::from_utf8(&data).is_ok() || crate::pickle::utf8_surrogatepass_ok(&data);
        let piece = 1 + r.below(5);
        let mut check = SurrogatepassUtf8::default();
        let fed = data.chunks(piece).all(|c| check.feed(c));
        let chunked = fed && check.finish();
        assert_eq!(whole, chunked, "{data:02x?} in pieces of {piece}");
    }
}

#[test]
fn a_file_that_shrinks_while_scanned_is_an_error_not_a_panic() {
    for seed in 0..200u64 {
        let mut r = Rng::new(seed);
        let t = [8, 64];
        let data = if seed % 2 == 0 { generated::pickle_stream(&mut r, &t) } else { generated::zip_file(&mut r, &t) };
        let file = TempFile::new("shrink", &data);
        let src = FileSrc::new(std::fs::File::open(&file.0).unwrap(), data.len() as u64, 8);
        let cut = r.below(data.len());
        std::fs::OpenOptions::new().write(true).open(&file.0).unwrap().set_len(cut as u64).unwrap();
        let _ = scan_file("f", &src, &opts());
        if cut < data.len() && cut > 0 {
            // Whether the scan read past the cut depends on the input; it must not panic.
            let _ = src.take_error();
        }
    }
}

#[test]
fn a_read_short_of_the_opened_length_is_reported() {
    let mut data = b"\x80\x04](".to_vec();
    for _ in 0..200 {
        data.extend_from_slice(b"K\x01");
    }
    data.extend_from_slice(b"e.");
    let file = TempFile::new("short", &data);
    let src = FileSrc::new(std::fs::File::open(&file.0).unwrap(), data.len() as u64, 16);
    std::fs::OpenOptions::new().write(true).open(&file.0).unwrap().set_len(100).unwrap();
    let _ = scan_file("f", &src, &opts());
    let err = src.take_error().expect("the short read is kept");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

/// Every file of the picklescan corpus (in `$CUSTODY_SHARED`, when set), through small windows.
#[test]
fn the_picklescan_corpus_matches_scan_bytes() {
    if let Some(root) = std::env::var_os("CUSTODY_SHARED") {
        all_files_match(PathBuf::from(root).join("corpus/picklescan"));
    }
}

/// The real scikit-learn, NumPy and joblib files of `scripts/with-real-models.sh`, when set.
#[test]
fn real_model_files_match_scan_bytes() {
    for var in ["CUSTODY_TEST_REAL_MODELS", "CUSTODY_TEST_REAL_FORMATS"] {
        if let Some(root) = std::env::var_os(var) {
            all_files_match(PathBuf::from(root));
        }
    }
}

fn all_files_match(root: PathBuf) {
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            for window in [1, 7, 64, 4096] {
                assert_same(&data, window, &path.display().to_string());
            }
        }
    }
}

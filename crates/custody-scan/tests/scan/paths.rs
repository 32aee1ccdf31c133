//! `scan_path` reads files by position (skipping payloads, reading only the zip members that
//! need it): its report must be the one `scan_bytes` gives on the file's bytes, whatever the
//! file. Inputs are sized around the 256 KiB read window; `src/path_tests.rs` covers windows
//! of a few bytes.

// Tests may panic and print; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

#[path = "gen.rs"]
mod generated;

use std::io::Write;
use std::path::{Path, PathBuf};

use custody_scan::{FileReport, RuleId, ScanOptions, Verdict, scan_bytes, scan_path};
use generated::{EVIL, Rng, trick};
use proptest::prelude::*;

/// `scan_path`'s read window (`source::WINDOW`).
const WINDOW: usize = 256 << 10;

struct TempFile(PathBuf);

impl TempFile {
    fn new(data: &[u8]) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!("scan-path-{}-{n}", std::process::id()));
        std::fs::File::create(&path).unwrap().write_all(data).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn json(r: &FileReport) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

/// Scan `data` through a file; assert the report is `scan_bytes`'s, and return it.
fn via_path(data: &[u8]) -> FileReport {
    let file = TempFile::new(data);
    let opts = ScanOptions::default();
    let by_path = scan_path(&file.0, &opts).expect("readable");
    let name = file.0.display().to_string();
    let by_bytes = scan_bytes(&name, data, &opts);
    let (a, b) = (json(&by_path), json(&by_bytes));
    assert!(a == b, "scan_path\n{a}\n!= scan_bytes\n{b}");
    by_path
}

fn len_prefixed(op: u8, width: usize, data: &[u8]) -> Vec<u8> {
    let mut v = vec![op];
    v.extend_from_slice(&(data.len() as u64).to_le_bytes()[..width]);
    v.extend_from_slice(data);
    v
}

/// protocol 4: `[payload]` where the payload is pushed by `op` with a `width`-byte length.
fn list_of(op: u8, width: usize, payload: &[u8]) -> Vec<u8> {
    [b"\x80\x04](".to_vec(), len_prefixed(op, width, payload), b"e.".to_vec()].concat()
}

fn rules(r: &FileReport) -> Vec<&'static str> {
    r.findings.iter().map(|f| f.rule.0).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn scan_path_matches_scan_bytes_on_generated_files(seed in any::<u64>(), zip in any::<bool>()) {
        let mut r = Rng::new(seed);
        let t = [WINDOW, 2 * WINDOW, 64];
        let data = if zip { generated::zip_file(&mut r, &t) } else { generated::pickle_stream(&mut r, &t) };
        via_path(&data);
    }
}

#[test]
fn a_nested_pickle_deep_in_a_large_payload_is_found() {
    let mut payload = EVIL.to_vec();
    payload.resize(3 * WINDOW + 17, 0);
    let r = via_path(&list_of(0x8e, 8, &payload));
    assert_eq!(r.verdict, Verdict::Malicious, "{:?}", r.findings);
    assert!(r.pickles.len() >= 2);

    // Also as a loader's argument: pickle.loads(<bytes>).
    let mut call = b"\x80\x04\x8c\x06pickle\x8c\x05loads\x93".to_vec();
    call.extend(len_prefixed(0x8e, 8, &payload));
    call.extend_from_slice(b"\x85R.");
    assert_eq!(via_path(&call).verdict, Verdict::Malicious);
}

#[test]
fn invalid_utf8_far_into_a_large_str_is_malformed() {
    let mut text = "é".repeat(WINDOW).into_bytes();
    let bad = text.len() - 3;
    text[bad] = 0xff;
    let r = via_path(&list_of(0x8d, 8, &text));
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(rules(&r).contains(&RuleId::MALFORMED.0), "{:?}", r.findings);
    // Encoded surrogates are accepted (surrogatepass), wherever reads split them.
    let mut ok = "a".repeat(WINDOW - 1).into_bytes();
    ok.extend_from_slice(b"\xed\xa0\x80");
    ok.extend("中".repeat(WINDOW).into_bytes());
    assert_eq!(via_path(&list_of(0x8d, 8, &ok)).verdict, Verdict::Clean);
}

#[test]
fn a_file_cut_inside_a_payload_is_truncated() {
    let mut data = list_of(0x8e, 8, &vec![7; 2 * WINDOW]);
    data.truncate(WINDOW + 100);
    let r = via_path(&data);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert!(r.pickles[0].errors.iter().any(|e| e.message.contains("truncated")), "{:?}", r.pickles);
}

fn zip_of(members: Vec<(&str, Vec<u8>)>, mask: u32, seed: u64) -> Vec<u8> {
    let members = members.into_iter().map(|(n, d)| (n.to_string(), d)).collect();
    generated::zip_with(&mut Rng::new(seed), members, mask)
}

/// What `torch.save` writes, with `pkl` as `archive/data.pkl` and a storage of `storage` bytes.
fn torch_zip(pkl: &[u8], storage: usize, mask: u32) -> Vec<u8> {
    let mut weights = vec![0x3f; storage];
    weights[0] = 0x12;
    zip_of(
        vec![
            ("archive/data.pkl", pkl.to_vec()),
            ("archive/byteorder", b"little".to_vec()),
            ("archive/data/0", weights),
            ("archive/version", b"3\n".to_vec()),
        ],
        mask,
        // A seed whose choices store every member (no deflate).
        3,
    )
}

#[test]
fn a_torch_zip_with_a_malicious_pickle_and_a_big_storage_is_detected() {
    let r = via_path(&torch_zip(EVIL, 8 << 20, 0));
    assert_eq!(r.verdict, Verdict::Malicious, "{:?}", r.findings);
    // The storage is never read as a member (`archive/byteorder`'s "little" starts like a pickle).
    assert!(!r.members.iter().any(|m| m.contains("data/0")), "{:?}", r.members);
    assert!(r.members.contains(&"archive/data.pkl".to_string()));
}

#[test]
fn zips_of_unusual_layout_are_read_whole_and_judged_alike() {
    for mask in [
        trick::PREPEND,
        trick::HIDDEN_GAP,
        trick::NAME_MISMATCH,
        trick::ENCRYPTED_FLAG,
        trick::DESCRIPTOR,
        trick::ODD_METHOD,
        trick::COMMENT,
        trick::TRAILING,
        trick::TRUNCATE,
        trick::DUPLICATE,
        trick::WRONG_COUNT,
        trick::WRONG_OFFSET,
        trick::ODD_FLAGS,
    ] {
        via_path(&torch_zip(b"\x80\x02}q\x00.", WINDOW + 5, mask));
    }
}

/// The central directory names `archive/data.pkl` at the offset of a hidden local header (a
/// different local name, which torch ignores) while the benign member it shadows sits in what
/// is now a gap: the layout check sends this to the whole-file path, which scans what torch
/// would load.
#[test]
fn a_central_directory_pointing_at_a_hidden_member_is_followed() {
    let storage = vec![0x3f; 2 * WINDOW];
    let benign = zip_of(vec![("archive/data/0", storage), ("archive/data.pkl", b"\x80\x02}q\x00.".to_vec())], 0, 3);
    let hidden = zip_of(vec![("innocent.txt", EVIL.to_vec())], 0, 3);
    let cd = |z: &[u8]| z.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    let eocd = |z: &[u8]| z.len() - 22;
    // Everything before the central directory: the storage, the benign pickle, the hidden one.
    let first_cd = benign.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    let mut data = benign[..first_cd].to_vec();
    let hidden_local = &hidden[..cd(&hidden)];
    let hidden_at = data.len() as u32;
    data.extend_from_slice(hidden_local);
    let cd_at = data.len() as u32;
    let mut directory = benign[first_cd..eocd(&benign)].to_vec();
    // The second entry (`archive/data.pkl`) now points at the hidden header, with its sizes and CRC.
    let second = cd(&directory);
    directory[second + 42..second + 46].copy_from_slice(&hidden_at.to_le_bytes());
    directory[second + 16..second + 28].copy_from_slice(&hidden_local[14..26]);
    data.extend_from_slice(&directory);
    let mut end = benign[eocd(&benign)..].to_vec();
    end[16..20].copy_from_slice(&cd_at.to_le_bytes());
    data.extend_from_slice(&end);
    let r = via_path(&data);
    assert_eq!(r.verdict, Verdict::Malicious, "{:?}", r.findings);
    assert!(r.members.contains(&"archive/data.pkl".to_string()), "{:?}", r.members);
}

#[test]
fn a_file_that_changes_while_scanned_never_panics() {
    let data = list_of(0x8e, 8, &vec![1; 8 * WINDOW]);
    let file = TempFile::new(&data);
    let path = file.0.clone();
    let writer = std::thread::spawn(move || {
        for i in 0..200u64 {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(if i % 2 == 0 { 100 } else { data.len() as u64 }).unwrap();
        }
    });
    for _ in 0..200 {
        // A report (on whatever bytes were there) or an error, never a panic.
        let _ = scan_path(Path::new(&file.0), &ScanOptions::default());
    }
    writer.join().unwrap();
}

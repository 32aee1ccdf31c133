//! The picklescan corpus: every malicious file must be judged malicious, and no benign file may
//! be (inconclusive is tolerated only for the password-protected zip).

// Tests may panic and print; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::path::PathBuf;

use custody_scan::{ScanOptions, Verdict, scan_path};

/// Where shared/ lives: `$CUSTODY_SHARED`, else `../shared` beside the project.
fn shared_dir() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("CUSTODY_SHARED") {
        candidates.push(PathBuf::from(p));
    }
    candidates.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    candidates.into_iter().find(|p| p.join("corpus/picklescan/labels.tsv").is_file())
}

#[test]
fn picklescan_corpus() {
    let Some(shared) = shared_dir() else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "shared/ corpus missing under CI");
        eprintln!("skipping: shared/corpus/picklescan not found");
        return;
    };
    let root = shared.join("corpus/picklescan");
    let labels = std::fs::read_to_string(root.join("labels.tsv")).expect("labels.tsv");
    let opts = ScanOptions::default();
    let (mut mal_total, mut mal_ok, mut benign_total, mut benign_ok) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for line in labels.lines().filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split('\t');
        let (Some(path), Some(label)) = (cols.next(), cols.next()) else { continue };
        let report = scan_path(&root.join(path), &opts).expect("readable corpus file");
        let top: Vec<String> = report.findings.iter().take(2).map(|f| format!("{}: {}", f.rule, f.message)).collect();
        match label.trim() {
            "malicious" => {
                mal_total += 1;
                if report.verdict == Verdict::Malicious {
                    mal_ok += 1;
                } else {
                    failures.push(format!("MISSED {path}: {:?} {:?} {top:?}", report.verdict, report.format));
                }
            }
            _ => {
                benign_total += 1;
                // Inconclusive is accepted only where nothing can be verified: the encrypted zip,
                // and two files that are not pickles at all (a PNG header, and a GLOBAL whose
                // name is invalid UTF-8 so the loader fails before importing). Calling those
                // clean would break the rule "never clean for unparseable input".
                let may_be_inconclusive = ["benign_password_protected.zip", "bad_pytorch.pt", "not_a_pickle.bin"]
                    .iter()
                    .any(|n| path.ends_with(n));
                let ok = match report.verdict {
                    Verdict::Malicious => false,
                    Verdict::Inconclusive => may_be_inconclusive,
                    _ => true,
                };
                if ok {
                    benign_ok += 1;
                } else {
                    failures.push(format!("FALSE ALARM {path}: {:?} {top:?}", report.verdict));
                }
            }
        }
    }
    let summary = format!("malicious {mal_ok}/{mal_total}, benign {benign_ok}/{benign_total}");
    eprintln!("{summary}");
    assert!(failures.is_empty(), "{summary}\n{}", failures.join("\n"));
    assert_eq!(mal_total, 95);
    assert_eq!(benign_total, 14);
}

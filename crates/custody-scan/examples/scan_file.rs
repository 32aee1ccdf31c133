//! Scans files and prints the verdict and time taken, to measure `scan_path`:
//!
//!     cargo run --release --example scan_file -- [--whole | --compare] FILE...
//!
//! `--whole` reads each file into memory and calls `scan_bytes` instead (what `scan_path` did
//! before it read by position), for comparison in the same build; `--compare` runs both and
//! says whether their reports are the same (they must be).
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use custody_scan::{ScanOptions, scan_bytes, scan_path};

fn main() -> ExitCode {
    let mut whole = false;
    let mut compare = false;
    let mut status = ExitCode::SUCCESS;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--whole" => whole = true,
            "--compare" => compare = true,
            _ if compare => {
                if !same_report(&arg) {
                    status = ExitCode::FAILURE;
                }
            }
            _ => {
                if !scan_one(&arg, whole) {
                    status = ExitCode::FAILURE;
                }
            }
        }
    }
    status
}

/// Whether `scan_path` and `scan_bytes` agree on the file (printing the verdict or the diff).
fn same_report(arg: &str) -> bool {
    let opts = ScanOptions::default();
    let by_path = match scan_path(Path::new(arg), &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{arg}: {e}");
            return false;
        }
    };
    let by_bytes = match std::fs::read(arg) {
        Ok(data) => scan_bytes(arg, &data, &opts),
        Err(e) => {
            eprintln!("{arg}: {e}");
            return false;
        }
    };
    let (a, b) = (serde_json::to_string_pretty(&by_path), serde_json::to_string_pretty(&by_bytes));
    let same = matches!((&a, &b), (Ok(a), Ok(b)) if a == b);
    if same {
        println!("{arg}: same report ({:?})", by_path.verdict);
    } else {
        println!("{arg}: DIFFERENT\nscan_path: {a:?}\nscan_bytes: {b:?}");
    }
    same
}

/// Scan one file and print what was found and how fast. False if it could not be read.
fn scan_one(arg: &str, whole: bool) -> bool {
    {
        let path = Path::new(arg);
        let opts = ScanOptions::default();
        let start = Instant::now();
        let report = if whole {
            std::fs::read(path).map(|data| scan_bytes(arg, &data, &opts)).map_err(|e| e.to_string())
        } else {
            scan_path(path, &opts).map_err(|e| e.to_string())
        };
        let secs = start.elapsed().as_secs_f64();
        match report {
            Ok(r) => {
                let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                println!(
                    "{arg}: {:?} {:?}, {} findings, {} pickles, {} members, {:.3} s, {:.2} GB/s",
                    r.verdict,
                    r.format,
                    r.findings.len(),
                    r.pickles.len(),
                    r.members.len(),
                    secs,
                    size as f64 / secs / 1e9
                );
            }
            Err(e) => {
                eprintln!("{arg}: {e}");
                return false;
            }
        }
    }
    true
}

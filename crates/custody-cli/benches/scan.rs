//! Scanning, side by side in one run: `custody scan` beside picklescan (PyPI) on the same
//! inputs: a 200 MB pickle of one bytes object, a 200 MB float32 NumPy array pickle, a 104 MB
//! pickled dict of 5,200,000 small entries, a 200 MB PyTorch zip checkpoint, and a directory of
//! 1,000 small scikit-learn models. Wall time and peak resident memory of each process come from
//! GNU time (`/usr/bin/time -f '%e %M'`); best of three, median too.
//!
//!     CUSTODY_BENCH_PICKLESCAN=/path/to/venv/bin/picklescan \
//!     CUSTODY_BENCH_PYTHON=~/.cache/custody/real-models-venv/bin/python \
//!         cargo bench -p custody-cli --bench scan
//!
//! `CUSTODY_BENCH_SCAN_DIR`: where the inputs are (default /tmp/custody-bench-scan); they are
//! generated once with `scripts/bench-scan-inputs.py` (numpy, scikit-learn) when missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use std::path::{Path, PathBuf};
use std::process::Command;

const CUSTODY: &str = env!("CARGO_BIN_EXE_custody");

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Seconds and peak RSS (MB) of one run, and its exit status.
fn timed(program: &str, args: &[&str]) -> (f64, f64, i32) {
    let out = Command::new("/usr/bin/time").arg("-f").arg("%e %M").arg(program).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    let mut parts = last.split_whitespace();
    let secs: f64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no timing: {stderr}"));
    let kb: f64 = parts.next().and_then(|s| s.parse().ok()).unwrap();
    (secs, kb / 1024.0, out.status.code().unwrap_or(-1))
}

struct Figure {
    best: f64,
    median: f64,
    peak_mb: f64,
}

fn measure(program: &str, args: &[&str], ok: &[i32]) -> Figure {
    let mut runs: Vec<(f64, f64)> = (0..3)
        .map(|_| {
            let (s, mb, code) = timed(program, args);
            assert!(ok.contains(&code), "{program} {args:?} exited {code}");
            (s, mb)
        })
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    Figure { best: runs[0].0, median: runs[1].0, peak_mb: runs.iter().map(|r| r.1).fold(0.0, f64::max) }
}

/// Reads every byte once so both tools start with the page cache warm.
fn warm(path: &Path) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            warm(&e.unwrap().path());
        }
    } else {
        let mut f = std::fs::File::open(path).unwrap();
        std::io::copy(&mut f, &mut std::io::sink()).unwrap();
    }
}

fn ensure_inputs(dir: &Path) {
    let want = ["bytes.pkl", "float32.pkl", "dict.pkl", "torch.pt"];
    let small = dir.join("small");
    if want.iter().all(|f| dir.join(f).is_file()) && std::fs::read_dir(&small).is_ok_and(|d| d.count() == 1000) {
        return;
    }
    let python = env_or(
        "CUSTODY_BENCH_PYTHON",
        &format!("{}/.cache/custody/real-models-venv/bin/python", std::env::var("HOME").unwrap_or_default()),
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-scan-inputs.py");
    eprintln!("generating the inputs in {} with {python}", dir.display());
    let status = Command::new(&python).arg(script).arg(dir).status().unwrap();
    assert!(status.success(), "generating the inputs failed");
}

fn main() {
    let dir = PathBuf::from(env_or("CUSTODY_BENCH_SCAN_DIR", "/tmp/custody-bench-scan"));
    let picklescan = env_or("CUSTODY_BENCH_PICKLESCAN", "picklescan");
    ensure_inputs(&dir);
    let inputs = [
        ("200 MB pickle of one bytes object", "bytes.pkl"),
        ("200 MB float32 array pickle", "float32.pkl"),
        ("104 MB dict of 5,200,000 entries", "dict.pkl"),
        ("200 MB PyTorch zip", "torch.pt"),
        ("1,000 small models (directory)", "small"),
    ];
    println!("| input | custody scan best (median) | peak RSS | picklescan best (median) | peak RSS | speed-up |");
    println!("|---|---|---|---|---|---|");
    for (label, name) in inputs {
        let path = dir.join(name);
        let p = path.to_str().unwrap();
        warm(&path);
        let ours = measure(CUSTODY, &["scan", "--json", p], &[0]);
        let theirs = measure(&picklescan, &["--path", p], &[0]);
        let bytes = if path.is_dir() {
            std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum::<u64>()
        } else {
            std::fs::metadata(&path).unwrap().len()
        };
        println!(
            "| {label} | {:.3} s ({:.3} s), {:.2} GB/s | {:.0} MB | {:.3} s ({:.3} s) | {:.0} MB | {:.1}× |",
            ours.best,
            ours.median,
            bytes as f64 / ours.best / 1e9,
            ours.peak_mb,
            theirs.best,
            theirs.median,
            theirs.peak_mb,
            theirs.best / ours.best
        );
    }
}

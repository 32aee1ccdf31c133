//! Model signing, side by side in one run: `custody sign` / `custody verify` (SHA-256 and
//! BLAKE3) beside the OpenSSF `model_signing` CLI (`sign key` / `verify key`, SHA-256) and the
//! physical limit, `openssl dgst -sha256` over the same files in two parallel processes (one per
//! core, each given half of the files). Two inputs: (a) a 4 GiB model of 8 files of 512 MiB of
//! pseudo-random bytes, (b) 1,000 files of 4 KiB. The page cache is warmed before each input;
//! best of three each, median shown too.
//!
//!     CUSTODY_BENCH_MODEL_SIGNING=/work/msvenv/bin/model_signing \
//!         cargo bench -p custody-cli --bench signing
//!
//! `CUSTODY_BENCH_MODEL_SIGNING`: the peer's CLI (default `model_signing` on the PATH).
//! `CUSTODY_BENCH_DIR`: where the inputs, keys and bundles go (default /tmp/custody-bench-sign);
//! the inputs are generated once and reused while their sizes are right.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const CUSTODY: &str = env!("CARGO_BIN_EXE_custody");

/// One input: a directory of `files` files of `size` bytes each.
struct Input {
    label: &'static str,
    /// A short name for the files written about this input (bundles).
    slug: &'static str,
    dir: PathBuf,
    files: usize,
    size: u64,
}

impl Input {
    fn paths(&self) -> Vec<PathBuf> {
        (0..self.files).map(|i| self.dir.join(format!("part-{i:05}.bin"))).collect()
    }

    fn bytes(&self) -> u64 {
        self.files as u64 * self.size
    }

    /// Whether the directory holds exactly the expected files with the expected sizes.
    fn present(&self) -> bool {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return false };
        if entries.count() != self.files {
            return false;
        }
        self.paths().iter().all(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() == self.size))
    }

    /// Pseudo-random content (SplitMix64, a different stream per file), written on both cores.
    fn generate(&self) {
        if self.present() {
            eprintln!("{}: reusing {}", self.label, self.dir.display());
            return;
        }
        eprintln!("{}: generating {} files of {} bytes in {}", self.label, self.files, self.size, self.dir.display());
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir).unwrap();
        let paths = self.paths();
        let half = paths.len().div_ceil(2);
        std::thread::scope(|s| {
            for chunk in paths.chunks(half) {
                s.spawn(move || {
                    for p in chunk {
                        write_random(p, self.size, seed_of(p));
                    }
                });
            }
        });
        assert!(self.present(), "{}: generation left the wrong files", self.label);
    }

    /// Reads every file once so that every tool starts from the page cache.
    fn warm(&self) {
        let mut buf = vec![0u8; 4 << 20];
        for p in self.paths() {
            let mut f = std::fs::File::open(&p).unwrap();
            while f.read(&mut buf).unwrap() > 0 {}
        }
    }
}

fn seed_of(p: &Path) -> u64 {
    p.to_string_lossy().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

fn write_random(path: &Path, size: u64, seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut buf = vec![0u8; (4 << 20).min(usize::try_from(size).unwrap())];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            word.copy_from_slice(&next().to_le_bytes());
        }
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap();
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.into_inner().unwrap().sync_all().unwrap();
}

/// Runs a command to completion, aborting the bench with its stderr if it fails.
fn run(cmd: &mut Command) {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The physical limit: `openssl dgst -sha256` over the files, half of them in each of two
/// processes running at once.
fn openssl_parallel(files: &[PathBuf]) {
    let half = files.len().div_ceil(2);
    let children: Vec<_> = files
        .chunks(half)
        .map(|chunk| {
            Command::new("openssl")
                .args(["dgst", "-sha256"])
                .args(chunk)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "openssl dgst failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Best and median of three timed runs, in seconds.
#[derive(Clone, Copy)]
struct Timing {
    best: f64,
    median: f64,
}

fn time3(what: &str, mut f: impl FnMut()) -> Timing {
    let mut t: Vec<f64> = (0..3)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    eprintln!("  {what:<40} {:.3} / {:.3} / {:.3} s", t[0], t[1], t[2]);
    Timing { best: t[0], median: t[1] }
}

fn bench(input: &Input, peer: &str, key: &Path, public: &Path, sigs: &Path) {
    input.warm();
    let model = input.dir.to_str().unwrap();
    let sig = |name: &str| sigs.join(format!("{}-{name}.sig", input.slug));
    let (sha_sig, b3_sig, peer_sig) = (sig("custody-sha256"), sig("custody-blake3"), sig("model_signing"));
    let custody_sign = |hash: &'static str, out: PathBuf| {
        move || {
            run(Command::new(CUSTODY)
                .args(["sign", model, "--private-key"])
                .arg(key)
                .arg("--signature")
                .arg(&out)
                .args(["--hash", hash]))
        }
    };
    let custody_verify = |bundle: PathBuf| {
        move || {
            run(Command::new(CUSTODY)
                .args(["verify", model, "--signature"])
                .arg(&bundle)
                .arg("--public-key")
                .arg(public))
        }
    };
    eprintln!("{}: {} files, {} bytes (best / median / worst)", input.label, input.files, input.bytes());
    let rows = [
        ("custody sign (sha256)", time3("custody sign (sha256)", custody_sign("sha256", sha_sig.clone()))),
        ("custody verify (sha256)", time3("custody verify (sha256)", custody_verify(sha_sig.clone()))),
        ("custody sign --hash blake3", time3("custody sign --hash blake3", custody_sign("blake3", b3_sig.clone()))),
        ("custody verify (blake3)", time3("custody verify (blake3)", custody_verify(b3_sig))),
        (
            "model_signing sign key",
            time3("model_signing sign key", || {
                run(Command::new(peer)
                    .args(["sign", "key", model, "--private_key"])
                    .arg(key)
                    .arg("--signature")
                    .arg(&peer_sig))
            }),
        ),
        (
            "model_signing verify key",
            time3("model_signing verify key", || {
                run(Command::new(peer)
                    .args(["verify", "key", model, "--signature"])
                    .arg(&peer_sig)
                    .arg("--public_key")
                    .arg(public))
            }),
        ),
        (
            "openssl dgst -sha256, 2 processes",
            time3("openssl dgst -sha256, 2 processes", || openssl_parallel(&input.paths())),
        ),
    ];
    // Untimed: the two tools hashed the same thing (each verifies the other's SHA-256 bundle).
    run(Command::new(peer).args(["verify", "key", model, "--signature"]).arg(&sha_sig).arg("--public_key").arg(public));
    custody_verify(peer_sig)();

    let gb = input.bytes() as f64 / 1e9;
    println!();
    println!(
        "### {}: {} files × {} bytes = {:.3} GB, page cache warm, best of 3",
        input.label, input.files, input.size, gb
    );
    println!();
    println!("| command | best | median | GB/s (best) |");
    println!("|---|---|---|---|");
    for (name, t) in &rows {
        println!("| {name} | {:.3} s | {:.3} s | {:.2} |", t.best, t.median, gb / t.best);
    }
    let [sha_sign, sha_verify, b3_sign, b3_verify, peer_sign, peer_verify, openssl] = rows.map(|(_, t)| t);
    let ratio =
        |num: Timing, den: Timing| format!("{:.2}× (median {:.2}×)", num.best / den.best, num.median / den.median);
    let pct = |num: Timing, den: Timing| {
        format!("{:.1}% (median {:.1}%)", 100.0 * num.best / den.best, 100.0 * num.median / den.median)
    };
    println!();
    println!("- custody sign (sha256) as % of the physical limit (openssl ÷ custody): {}", pct(openssl, sha_sign));
    println!("- custody verify (sha256) as % of the physical limit: {}", pct(openssl, sha_verify));
    println!("- model_signing sign ÷ custody sign --hash blake3: {}", ratio(peer_sign, b3_sign));
    println!("- model_signing sign ÷ custody sign (sha256): {}", ratio(peer_sign, sha_sign));
    println!("- model_signing verify ÷ custody verify (sha256): {}", ratio(peer_verify, sha_verify));
    println!("- model_signing verify ÷ custody verify (blake3): {}", ratio(peer_verify, b3_verify));
}

fn main() {
    let peer = std::env::var("CUSTODY_BENCH_MODEL_SIGNING").unwrap_or_else(|_| "model_signing".to_owned());
    let root =
        PathBuf::from(std::env::var("CUSTODY_BENCH_DIR").unwrap_or_else(|_| "/tmp/custody-bench-sign".to_owned()));
    let inputs = [
        Input { label: "(a) 4 GiB model", slug: "model-4g", dir: root.join("model-4g"), files: 8, size: 512 << 20 },
        Input {
            label: "(b) 1,000 small files",
            slug: "small-1000",
            dir: root.join("small-1000"),
            files: 1000,
            size: 4 << 10,
        },
    ];
    for input in &inputs {
        input.generate();
    }
    let keys = root.join("keys");
    let sigs = root.join("sigs");
    std::fs::create_dir_all(&sigs).unwrap();
    let key = keys.join("p256.pem");
    let public = keys.join("p256.pem.pub");
    if !(key.exists() && public.exists()) {
        let _ = std::fs::remove_dir_all(&keys);
        std::fs::create_dir_all(&keys).unwrap();
        run(Command::new(CUSTODY).args(["signing-key", "generate", "--algorithm", "p256", "--out"]).arg(&key));
    }
    println!(
        "signing: custody {CUSTODY}; peer {peer}; {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    for input in &inputs {
        bench(input, &peer, &key, &public, &sigs);
    }
}

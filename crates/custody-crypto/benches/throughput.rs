//! Encryption and decryption throughput of a large file, side by side in one run with `age`
//! (X25519 recipient, ChaCha20-Poly1305 STREAM) on the same file: output to /dev/null, and
//! output to a file (which adds writing into the page cache). Also the cost of reading the
//! file alone (`cat > /dev/null`). Best of three each.
//!
//!     cargo bench -p custody-crypto --bench throughput -- [--size-mib 2048] [--dir /tmp]
//!
//! Needs `age` and `age-keygen` on the PATH (Debian package `age`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, missing_docs)]

use custody_crypto::InputKey;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn arg(name: &str, default: &str) -> String {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter().position(|a| a == name).map_or(default.to_owned(), |i| argv[i + 1].clone())
}

fn best_of_3(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn sh(cmd: &str) {
    let ok = Command::new("sh").args(["-c", cmd]).status().unwrap().success();
    assert!(ok, "`{cmd}` failed");
}

fn custody_encrypt(key: &InputKey, input: &Path, output: &Path) {
    let mut r = std::fs::File::open(input).unwrap();
    let mut w = std::fs::File::create(output).unwrap();
    custody_crypto::encrypt(key, b"bench", &mut r, &mut w, |_| {}).unwrap();
}

fn custody_decrypt(key: &InputKey, input: &Path, output: &Path) {
    let mut r = std::fs::File::open(input).unwrap();
    let mut w = std::fs::File::create(output).unwrap();
    custody_crypto::decrypt(key, b"bench", &mut r, &mut w, |_| {}).unwrap();
}

fn main() {
    let mib: u64 = arg("--size-mib", "2048").parse().unwrap();
    let dir = std::path::PathBuf::from(arg("--dir", "/tmp"));
    let plain = dir.join(format!("custody-bench-{mib}m.bin"));
    if std::fs::metadata(&plain).map(|m| m.len()).ok() != Some(mib << 20) {
        sh(&format!("head -c {}M /dev/urandom > {}", mib, plain.display()));
    }
    let (sealed, aged, out) =
        (dir.join("custody-bench.custody"), dir.join("custody-bench.age"), dir.join("custody-bench.out"));
    let age_key = dir.join("custody-bench.agekey");
    if !age_key.exists() {
        sh(&format!("age-keygen -o {} 2>/dev/null", age_key.display()));
    }
    let recipient =
        String::from_utf8(Command::new("age-keygen").arg("-y").arg(&age_key).output().unwrap().stdout).unwrap();
    let recipient = recipient.trim();
    let key = InputKey::new([7; 32]);
    let null = Path::new("/dev/null");
    custody_encrypt(&key, &plain, &sealed);
    sh(&format!("age -r {recipient} -o {} {}", aged.display(), plain.display()));
    let (p, s, a, k, o) = (plain.display(), sealed.display(), aged.display(), age_key.display(), out.display());

    let read = best_of_3(|| sh(&format!("cat {p} > /dev/null")));
    let enc = best_of_3(|| custody_encrypt(&key, &plain, null));
    let age_enc = best_of_3(|| sh(&format!("age -r {recipient} -o /dev/null {p}")));
    let dec = best_of_3(|| custody_decrypt(&key, &sealed, null));
    let age_dec = best_of_3(|| sh(&format!("age -d -i {k} -o /dev/null {a}")));
    let enc_file = best_of_3(|| custody_encrypt(&key, &plain, &out));
    let age_enc_file = best_of_3(|| sh(&format!("age -r {recipient} -o {o} {p}")));
    let dec_file = best_of_3(|| custody_decrypt(&key, &sealed, &out));
    let age_dec_file = best_of_3(|| sh(&format!("age -d -i {k} -o {o} {a}")));
    let _ = std::fs::remove_file(&out);

    let gb = (mib << 20) as f64 / 1e9;
    println!("throughput: {mib} MiB file, best of 3; reading it alone (cat > /dev/null): {read:.3} s");
    let row = |what: &str, ours: f64, peer: f64| {
        println!(
            "{what:<34} custody {ours:6.3} s ({:5.2} GB/s) | age {peer:6.3} s ({:5.2} GB/s) | custody is {:4.2}x age",
            gb / ours,
            gb / peer,
            peer / ours
        );
    };
    row("encrypt, output to /dev/null", enc, age_enc);
    row("decrypt, output to /dev/null", dec, age_dec);
    row("encrypt, output to a file", enc_file, age_enc_file);
    row("decrypt, output to a file", dec_file, age_dec_file);
    let _ = (s, p);
}

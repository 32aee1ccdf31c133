//! `custody encrypt`, `decrypt` and `keys` end to end with a local keyring: round trips at the
//! sizes where chunking changes, tampering (exit 9, nothing written), rotation, rewrap,
//! retirement and crypto-shredding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CHUNK: usize = 16 * 1024;
const KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";

struct Env {
    dir: tempfile::TempDir,
    keyring: PathBuf,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let keyring = dir.path().join("keyring.json");
        let env = Env { dir, keyring };
        assert_eq!(env.run(&["keys", "init"]).0, 0);
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_custody"));
        c.args(args)
            .env("CUSTODY_KEYRING", &self.keyring)
            .env("CUSTODY_KEYRING_KEY", KEY)
            .env_remove("CUSTODY_KEYRING_PASSPHRASE");
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let Output { status, stdout, stderr } = self.cmd(args).output().unwrap();
        (status.code().unwrap_or(-1), String::from_utf8_lossy(&stdout).into(), String::from_utf8_lossy(&stderr).into())
    }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(131) ^ (i >> 9)) as u8).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn files_round_trip_at_every_boundary_and_through_pipes() {
    let env = Env::new();
    let mode = std::fs::metadata(&env.keyring).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the keyring is created 0600");
    for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 64 * CHUNK, 64 * CHUNK + 1, 3 * 1024 * 1024 + 5] {
        let plain = env.path(&format!("p{n}"));
        std::fs::write(&plain, data(n)).unwrap();
        let sealed = env.path(&format!("p{n}.custody"));
        let (code, out, err) = env.run(&["encrypt", s(&plain), "--context", "project=fraud"]);
        assert_eq!(code, 0, "{out}{err}");
        let back = env.path(&format!("back{n}"));
        let (code, _, err) = env.run(&["decrypt", s(&sealed), "-o", s(&back)]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(std::fs::read(&back).unwrap(), data(n), "size {n}");
    }
    // stdin to stdout both ways.
    let plain = data(200_000);
    let mut enc = env.cmd(&["encrypt", "-", "-o", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = enc.stdin.take().unwrap();
    let feed = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data(200_000)).unwrap());
    let sealed = enc.wait_with_output().unwrap();
    feed.join().unwrap();
    assert!(sealed.status.success());
    let piped = env.path("piped.custody");
    std::fs::write(&piped, &sealed.stdout).unwrap();
    let out = env.cmd(&["decrypt", s(&piped), "-o", "-"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, plain);
    // A byte range.
    let (code, _, err) = env.run(&["decrypt", s(&piped), "-o", s(&env.path("range")), "--range", "16000..40000"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(env.path("range")).unwrap(), plain[16000..40000]);
}

#[test]
fn tampering_exits_9_and_leaves_no_output() {
    let env = Env::new();
    let plain = env.path("model.bin");
    std::fs::write(&plain, data(5 * CHUNK + 7)).unwrap();
    assert_eq!(env.run(&["encrypt", s(&plain), "--context", "classification=restricted"]).0, 0);
    let sealed = std::fs::read(env.path("model.bin.custody")).unwrap();
    let header_end = 24 + u32::from_be_bytes(sealed[20..24].try_into().unwrap()) as usize;
    let cases: Vec<(&str, Vec<u8>, i32)> = vec![
        (
            "a payload byte",
            {
                let mut t = sealed.clone();
                t[header_end + 56 + 3 * (CHUNK + 16) + 9] ^= 1;
                t
            },
            9,
        ),
        ("truncated at a chunk boundary", sealed[..header_end + 56 + 5 * (CHUNK + 16)].to_vec(), 9),
        ("truncated inside a chunk", sealed[..sealed.len() - 3].to_vec(), 9),
        (
            "chunks swapped",
            {
                let mut t = sealed.clone();
                let a = header_end + 56;
                let first = t[a..a + CHUNK + 16].to_vec();
                t.copy_within(a + CHUNK + 16..a + 2 * (CHUNK + 16), a);
                t[a + CHUNK + 16..a + 2 * (CHUNK + 16)].copy_from_slice(&first);
                t
            },
            9,
        ),
        (
            "the context relabelled",
            {
                let text = String::from_utf8_lossy(&sealed[..header_end]).replace("restricted", "public____");
                [text.as_bytes(), &sealed[header_end..]].concat()
            },
            1,
        ),
        (
            "an unknown format version",
            {
                let mut t = sealed.clone();
                t[18] = b'9';
                t
            },
            1,
        ),
        ("not an object", b"hello".to_vec(), 1),
    ];
    for (what, bytes, expect) in cases {
        let bad = env.path("bad.custody");
        std::fs::write(&bad, &bytes).unwrap();
        let out = env.path("bad");
        let (code, _, err) = env.run(&["decrypt", s(&bad), "-o", s(&out)]);
        assert_eq!(code, expect, "{what}: {err}");
        assert!(err.contains("bad.custody"), "{what}: the error names the object: {err}");
        assert!(!out.exists(), "{what}: no output");
        let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: no temporary file left");
    }
    // A header taken from another object: its data key opens nothing here.
    std::fs::write(env.path("other"), data(100)).unwrap();
    assert_eq!(env.run(&["encrypt", s(&env.path("other"))]).0, 0);
    let other = std::fs::read(env.path("other.custody")).unwrap();
    let other_end = 24 + u32::from_be_bytes(other[20..24].try_into().unwrap()) as usize;
    std::fs::write(env.path("mixed.custody"), [&other[..other_end], &sealed[header_end..]].concat()).unwrap();
    let (code, _, err) = env.run(&["decrypt", s(&env.path("mixed.custody")), "-o", s(&env.path("mixed"))]);
    assert_eq!(code, 9, "{err}");
    // A wrong keyring key.
    let (code, _, err) = env
        .cmd(&["decrypt", s(&env.path("model.bin.custody")), "-o", s(&env.path("x"))])
        .env("CUSTODY_KEYRING_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .output()
        .map(|o| (o.status.code().unwrap(), (), String::from_utf8_lossy(&o.stderr).into_owned()))
        .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("does not open"), "{err}");
}

#[test]
fn rotation_rewrap_retirement_and_shredding() {
    let env = Env::new();
    let plain = env.path("d");
    std::fs::write(&plain, data(70_000)).unwrap();
    let sealed = env.path("d.custody");
    assert_eq!(env.run(&["encrypt", s(&plain), "--key", "fraud/restricted/eu"]).0, 0);
    let (code, out, _) = env.run(&["keys", "rotate", "fraud/restricted/eu"]);
    assert_eq!((code, out.trim()), (0, "fraud/restricted/eu is now at version 2"));
    // Old versions still decrypt until retired.
    assert_eq!(env.run(&["decrypt", s(&sealed), "-o", s(&env.path("a"))]).0, 0);
    let old = env.path("old.custody");
    std::fs::copy(&sealed, &old).unwrap();
    let (code, out, err) = env.run(&["keys", "rewrap", s(&sealed), "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"rewrapped\": 1"), "{out}");
    let (_, out, _) = env.run(&["keys", "rewrap", s(&sealed), "--json"]);
    assert!(out.contains("\"already_current\": 1"), "a second run skips it: {out}");
    assert_eq!(env.run(&["keys", "retire", "fraud/restricted/eu", "--min-version", "2"]).0, 0);
    assert_eq!(env.run(&["decrypt", s(&sealed), "-o", s(&env.path("b"))]).0, 0);
    assert_eq!(std::fs::read(env.path("b")).unwrap(), data(70_000));
    // An object still under version 1 no longer decrypts once retired.
    let (code, _, err) = env.run(&["decrypt", s(&old), "-o", s(&env.path("o"))]);
    assert_eq!(code, 1);
    assert!(err.contains("retired"), "{err}");
    // Shredding version 2 makes the rewrapped object unrecoverable.
    let (code, out, _) = env.run(&["keys", "shred", "fraud/restricted/eu", "--key-version", "2", "--json"]);
    assert_eq!(code, 0);
    let receipt: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(receipt["versions"], serde_json::json!([2]));
    let (code, _, err) = env.run(&["decrypt", s(&sealed), "-o", s(&env.path("c"))]);
    assert_eq!(code, 1);
    assert!(err.contains("destroyed"), "{err}");
    assert!(!env.path("c").exists());
    let keyring = std::fs::read_to_string(&env.keyring).unwrap();
    assert!(!keyring.contains("material"), "the keyring file is sealed, no key material in clear");
    // A keyring others can read is refused.
    std::fs::set_permissions(&env.keyring, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = env.run(&["keys", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn a_passphrase_keyring_opens_only_with_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("k.json");
    let cmd = |pass: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_custody"))
            .args(args)
            .env("CUSTODY_KEYRING", &keyring)
            .env_remove("CUSTODY_KEYRING_KEY")
            .env("CUSTODY_KEYRING_PASSPHRASE", pass)
            .output()
            .unwrap();
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(cmd("correct horse", &["keys", "init"]).0, 0);
    assert_eq!(cmd("correct horse", &["keys", "list"]).0, 0);
    let (code, err) = cmd("wrong horse", &["keys", "list"]);
    assert_eq!(code, 1);
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(!err.contains("correct horse") && !err.contains("wrong horse"), "secrets are never echoed: {err}");
}

/// The same commands against a real OpenBao transit engine (`scripts/with-openbao.sh`).
#[test]
fn openbao_transit_end_to_end() {
    let (Ok(addr), Ok(token)) = (std::env::var("CUSTODY_TEST_BAO_ADDR"), std::env::var("CUSTODY_TEST_BAO_TOKEN"))
    else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: run under scripts/with-openbao.sh");
        return;
    };
    let env = Env::new();
    let bao = |args: &[&str]| {
        let Output { status, stdout, stderr } = env
            .cmd(args)
            .env("BAO_ADDR", &addr)
            .env("BAO_TOKEN", &token)
            .env("CUSTODY_KEY_PROVIDER", "openbao")
            .env_remove("VAULT_ADDR")
            .output()
            .unwrap();
        (
            status.code().unwrap_or(-1),
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        )
    };
    let kek = format!("cli-{}", std::process::id());
    let plain = env.path("model.bin");
    std::fs::write(&plain, data(CHUNK * 3 + 7)).unwrap();
    let sealed = env.path("model.bin.custody");
    let (code, out, err) = bao(&["--json", "encrypt", s(&plain), "--key", &kek, "--context", "project=acme"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["kek"]["provider"], "openbao");
    assert!(!err.contains(&token) && !out.contains(&token));

    // Decryption follows the provider the object names, whatever --provider says.
    let back = env.path("back.bin");
    let (code, _, err) = bao(&["decrypt", s(&sealed), "-o", s(&back), "--provider", "local"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&back).unwrap(), data(CHUNK * 3 + 7));

    assert_eq!(bao(&["keys", "rotate", &kek]).0, 0);
    let (code, out, err) = bao(&["--json", "keys", "rewrap", s(&sealed)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["rewrapped"], 1, "{out}");
    assert_eq!(bao(&["keys", "retire", &kek, "--min-version", "2"]).0, 0);
    let (code, _, err) = bao(&["decrypt", s(&sealed), "-o", s(&back)]);
    assert_eq!(code, 0, "rewrapped to v2, still decrypts: {err}");

    let (code, out, err) = bao(&["--json", "keys", "shred", &kek]);
    assert_eq!(code, 0, "{err}");
    let receipt: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (receipt["provider"].as_str(), receipt["versions"].as_array().map(Vec::len)),
        (Some("openbao"), Some(2))
    );
    std::fs::remove_file(&back).unwrap();
    let (code, _, err) = bao(&["decrypt", s(&sealed), "-o", s(&back)]);
    assert_ne!(code, 0);
    assert!(err.contains(&kek) && err.contains("model.bin.custody"), "{err}");
    assert!(!back.exists(), "nothing is written when the key is gone");

    // OpenBao down: a clear error naming the address, non-zero exit.
    let Output { status, stderr, .. } = env
        .cmd(&["encrypt", s(&plain), "--key", &kek, "--provider", "openbao", "-o", s(&env.path("x"))])
        .env("BAO_ADDR", "http://127.0.0.1:9")
        .env("BAO_TOKEN", &token)
        .output()
        .unwrap();
    assert_ne!(status.code(), Some(0));
    assert!(String::from_utf8_lossy(&stderr).contains("unreachable"), "{}", String::from_utf8_lossy(&stderr));
    assert!(!env.path("x").exists());
}

/// The same commands against a local AWS KMS endpoint (`scripts/with-moto.sh`), configured the
/// way the AWS SDK reads its environment.
#[test]
fn aws_kms_end_to_end() {
    let Ok(endpoint) = std::env::var("CUSTODY_TEST_KMS_ENDPOINT") else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: run under scripts/with-moto.sh");
        return;
    };
    let env = Env::new();
    let kms = |args: &[&str]| {
        let Output { status, stdout, stderr } = env
            .cmd(args)
            .env("AWS_ENDPOINT_URL_KMS", &endpoint)
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDCLITEST")
            .env("AWS_SECRET_ACCESS_KEY", "cli-test-secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("CUSTODY_KEY_PROVIDER", "aws-kms")
            .output()
            .unwrap();
        (
            status.code().unwrap_or(-1),
            String::from_utf8_lossy(&stdout).into_owned(),
            String::from_utf8_lossy(&stderr).into_owned(),
        )
    };
    let kek = format!("custody-cli-{}", std::process::id());
    let plain = env.path("features.parquet");
    std::fs::write(&plain, data(CHUNK * 2 + 1)).unwrap();
    let sealed = env.path("features.parquet.custody");
    let (code, out, err) = kms(&["--json", "encrypt", s(&plain), "--key", &kek, "--context", "region=eu-west-1"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["kek"]["provider"], "aws-kms");
    assert!(report["kek"]["key_id"].as_str().unwrap().starts_with("arn:aws:kms:eu-west-1:"));

    let back = env.path("back.parquet");
    let (code, _, err) = kms(&["decrypt", s(&sealed), "-o", s(&back)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&back).unwrap(), data(CHUNK * 2 + 1));

    let arn = report["kek"]["key_id"].as_str().unwrap().to_string();
    assert_eq!(kms(&["keys", "rotate", &arn]).0, 0);
    let (code, out, err) = kms(&["--json", "keys", "rewrap", s(&sealed)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["rewrapped"], 1, "{out}");
    let (code, _, err) = kms(&["decrypt", s(&sealed), "-o", s(&env.path("again"))]);
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = kms(&["keys", "retire", &arn, "--min-version", "2"]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot retire"), "{err}");
    let (code, out, err) = kms(&["--json", "keys", "shred", &arn]);
    assert_eq!(code, 0, "{err}");
    let receipt: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(receipt["pending_until"].is_string(), "{out}");
    assert!(!out.contains("cli-test-secret") && !err.contains("cli-test-secret"));
}

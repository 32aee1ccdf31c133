//! `custody sign` / `custody verify` against the real peer, the OpenSSF `model-signing`
//! package (1.1.x, installed by `scripts/with-model-signing.sh`): bundles each signs verify
//! with the other, on trees whose component order differs from byte order, with an empty
//! file, a single-file model, shards and BLAKE3; a tamper matrix both sides must catch; and
//! bad input that must never come out "verified".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr, missing_docs)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The peer's CLI and interpreter, or `None` (a failure when CI=true).
fn peer() -> Option<(PathBuf, PathBuf)> {
    match (std::env::var_os("CUSTODY_TEST_MODEL_SIGNING"), std::env::var_os("CUSTODY_TEST_MODEL_SIGNING_PYTHON")) {
        (Some(cli), Some(python)) => Some((cli.into(), python.into())),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but model-signing is not installed: run through scripts/with-model-signing.sh")
        }
        _ => {
            eprintln!("skipped: set CUSTODY_TEST_MODEL_SIGNING (scripts/with-model-signing.sh)");
            None
        }
    }
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn custody(args: &[&str]) -> (i32, String) {
    run(Command::new(env!("CARGO_BIN_EXE_custody")).args(args))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Keys {
    private: PathBuf,
    public: PathBuf,
}

fn keys(dir: &Path, algorithm: &str) -> Keys {
    let private = dir.join(format!("{algorithm}.pem"));
    let (code, out) = custody(&["signing-key", "generate", "--algorithm", algorithm, "--out", s(&private)]);
    assert_eq!(code, 0, "{out}");
    Keys { public: dir.join(format!("{algorithm}.pem.pub")), private }
}

/// A model whose names sort differently by component than by bytes, with an empty file.
fn model(root: &Path) -> PathBuf {
    let m = root.join("model");
    for (p, c) in [
        ("a/b", &b"weights-b"[..]),
        ("a-c/f", b"weights-f"),
        ("a.txt", b"card"),
        ("a/deep/er/x.bin", &[7u8; 70_000][..]),
        ("empty", b""),
        (".git/HEAD", b"ref: refs/heads/main"),
    ] {
        let path = m.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
    m
}

fn peer_sign(cli: &Path, model: &Path, key: &Keys, sig: &Path) {
    let (code, out) =
        run(Command::new(cli).args(["sign", "key", s(model), "--private_key", s(&key.private), "--signature", s(sig)]));
    assert_eq!(code, 0, "model_signing sign: {out}");
}

fn peer_verify(cli: &Path, model: &Path, key: &Keys, sig: &Path) -> (i32, String) {
    run(Command::new(cli).args(["verify", "key", s(model), "--signature", s(sig), "--public_key", s(&key.public)]))
}

fn custody_sign(model: &Path, key: &Keys, sig: &Path, extra: &[&str]) {
    let mut args = vec!["sign", s(model), "--private-key", s(&key.private), "--signature", s(sig)];
    args.extend_from_slice(extra);
    let (code, out) = custody(&args);
    assert_eq!(code, 0, "custody sign: {out}");
}

fn custody_verify(model: &Path, key: &Keys, sig: &Path) -> (i32, String) {
    custody(&["verify", s(model), "--signature", s(sig), "--public-key", s(&key.public)])
}

#[test]
fn bundles_cross_verify_in_both_directions() {
    let Some((cli, _)) = peer() else { return };
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    for algorithm in ["p256", "p384"] {
        let key = keys(dir.path(), algorithm);
        let theirs = dir.path().join(format!("theirs-{algorithm}.sig"));
        peer_sign(&cli, &m, &key, &theirs);
        let (code, out) = custody_verify(&m, &key, &theirs);
        assert_eq!(code, 0, "custody verifies model_signing's {algorithm} bundle: {out}");

        let ours = dir.path().join(format!("ours-{algorithm}.sig"));
        custody_sign(&m, &key, &ours, &[]);
        let (code, out) = peer_verify(&cli, &m, &key, &ours);
        assert_eq!(code, 0, "model_signing verifies custody's {algorithm} bundle: {out}");

        // Same files, same resources: both statements carry the same root digest.
        assert_eq!(root_of(&theirs), root_of(&ours));
    }
}

#[test]
fn single_file_models_cross_verify() {
    let Some((cli, _)) = peer() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = keys(dir.path(), "p256");
    let file = dir.path().join("model.safetensors");
    std::fs::write(&file, b"one file model").unwrap();
    let (theirs, ours) = (dir.path().join("t.sig"), dir.path().join("o.sig"));
    peer_sign(&cli, &file, &key, &theirs);
    assert_eq!(custody_verify(&file, &key, &theirs).0, 0);
    custody_sign(&file, &key, &ours, &[]);
    assert_eq!(peer_verify(&cli, &file, &key, &ours).0, 0);
    assert!(String::from_utf8(statement(&ours)).unwrap().contains(r#""name":".""#));
}

#[test]
fn shards_and_blake3_cross_verify() {
    let Some((cli, python)) = peer() else { return };
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let key = keys(dir.path(), "p256");

    // Theirs, through the Python API: shards of 1000 bytes, and BLAKE3 files.
    for (name, hashing) in [
        ("shards", "hashing.Config().use_shard_serialization(shard_size=1000)"),
        ("blake3", "hashing.Config().use_file_serialization(hashing_algorithm='blake3')"),
    ] {
        let sig = dir.path().join(format!("theirs-{name}.sig"));
        let script = format!(
            "import sys\nfrom model_signing import signing, hashing\n\
             signing.Config().use_elliptic_key_signer(private_key=sys.argv[1]).set_hashing_config({hashing}).sign(sys.argv[2], sys.argv[3])\n"
        );
        let (code, out) = run(Command::new(&python).args(["-c", &script, s(&key.private), s(&m), s(&sig)]));
        assert_eq!(code, 0, "python {name}: {out}");
        let (code, out) = custody_verify(&m, &key, &sig);
        assert_eq!(code, 0, "custody verifies model_signing's {name} bundle: {out}");
    }

    // Ours, BLAKE3 files: the peer's API verifies them (its CLI re-hashes everything with
    // SHA-256, so it refuses BLAKE3 bundles, its own included).
    let sig = dir.path().join("ours-blake3.sig");
    custody_sign(&m, &key, &sig, &["--hash", "blake3"]);
    let script = "import sys\nfrom model_signing import verifying\n\
                  verifying.Config().use_elliptic_key_verifier(public_key=sys.argv[1]).verify(sys.argv[2], sys.argv[3])\n";
    for sig in [&sig, &dir.path().join("theirs-blake3.sig")] {
        let (code, out) = run(Command::new(&python).args(["-c", script, s(&key.public), s(&m), s(sig)]));
        assert_eq!(code, 0, "model_signing's API verifies {}: {out}", sig.display());
    }

    // Ours, shards. model_signing 1.1's verifier re-hashes every model as whole files (its CLI)
    // or fails on its own `shard_size` (the API reads it back as a float), so it cannot
    // verify shard bundles at all, its own included. What it can show is that it accepts our
    // signature and statement and then fails exactly as on its own shard bundle.
    let theirs_error = peer_verify(&cli, &m, &key, &dir.path().join("theirs-shards.sig")).1;
    assert!(theirs_error.contains("Signature mismatch: [\"Extra files found"), "{theirs_error}");
    for (name, extra) in [
        ("shards", &["--shard-size", "1000"][..]),
        ("shards-blake3", &["--hash", "blake3", "--shard-size", "4096"][..]),
    ] {
        let sig = dir.path().join(format!("ours-{name}.sig"));
        custody_sign(&m, &key, &sig, extra);
        assert_eq!(custody_verify(&m, &key, &sig).0, 0, "{name}");
        let (code, out) = peer_verify(&cli, &m, &key, &sig);
        assert_ne!(code, 0);
        assert!(
            out.contains("Signature mismatch: [\"Extra files found"),
            "{name}: the peer checked our signature: {out}"
        );
    }
    // Same shards, same digests: our statement and theirs name the same resources and root.
    let ours = dir.path().join("ours-shards.sig");
    assert_eq!(root_of(&ours), root_of(&dir.path().join("theirs-shards.sig")));
}

fn bundle_json(sig: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(sig).unwrap()).unwrap()
}

fn statement(sig: &Path) -> Vec<u8> {
    let b = bundle_json(sig);
    STANDARD.decode(b["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap()
}

fn root_of(sig: &Path) -> String {
    let st: serde_json::Value = serde_json::from_slice(&statement(sig)).unwrap();
    st["subject"][0]["digest"]["sha256"].as_str().unwrap().to_owned()
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Each tamper is applied to a fresh copy of the model (and bundle); both verifiers must
/// refuse, and custody must say what it found.
#[test]
fn the_tamper_matrix_is_caught_by_both_sides() {
    let Some((cli, _)) = peer() else { return };
    let dir = tempfile::tempdir().unwrap();
    let original = model(dir.path());
    let key = keys(dir.path(), "p256");
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("w"), b"another model").unwrap();
    let other_sig = dir.path().join("other.sig");
    custody_sign(&other, &key, &other_sig, &[]);

    type Tamper = fn(&Path, &Path, &Path);
    let cases: [(&str, Tamper, &str); 7] = [
        ("change a byte", |m, _, _| flip_byte(&m.join("a/deep/er/x.bin"), 69_999), "changed  a/deep/er/x.bin"),
        ("add a file", |m, _, _| std::fs::write(m.join("a/extra.py"), b"import os").unwrap(), "extra    a/extra.py"),
        ("remove a file", |m, _, _| std::fs::remove_file(m.join("a-c/f")).unwrap(), "missing  a-c/f"),
        ("rename a file", |m, _, _| std::fs::rename(m.join("a.txt"), m.join("b.txt")).unwrap(), "missing  a.txt"),
        ("edit the statement", |_, sig, _| edit_statement(sig), "does not verify"),
        ("swap the signature", |_, sig, other| swap_signature(sig, other), "does not verify"),
        ("use another model's bundle", |_, sig, other| std::fs::copy(other, sig).map(drop).unwrap(), "missing  w"),
    ];
    for (signer, sign) in [("custody", true), ("model_signing", false)] {
        for (what, tamper, expect) in cases {
            let case = tempfile::tempdir().unwrap();
            let m = case.path().join("model");
            std::fs::create_dir(&m).unwrap();
            copy_tree(&original, &m);
            let sig = case.path().join("model.sig");
            if sign {
                custody_sign(&m, &key, &sig, &[]);
            } else {
                peer_sign(&cli, &m, &key, &sig);
            }
            assert_eq!(custody_verify(&m, &key, &sig).0, 0, "{signer}: untampered verifies");
            tamper(&m, &sig, &other_sig);
            let (code, out) = custody_verify(&m, &key, &sig);
            assert_eq!(code, 9, "{signer} bundle, {what}: custody must refuse: {out}");
            assert!(out.contains(expect), "{signer} bundle, {what}: expected `{expect}` in: {out}");
            let (code, out) = peer_verify(&cli, &m, &key, &sig);
            assert_ne!(code, 0, "{signer} bundle, {what}: model_signing must refuse: {out}");
        }
    }
}

fn flip_byte(path: &Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at] ^= 1;
    std::fs::write(path, data).unwrap();
}

fn rewrite_bundle(sig: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut b = bundle_json(sig);
    f(&mut b);
    std::fs::write(sig, serde_json::to_vec_pretty(&b).unwrap()).unwrap();
}

/// Replaces a resource digest and the root consistently, keeping the old signature.
fn edit_statement(sig: &Path) {
    let mut st: serde_json::Value = serde_json::from_slice(&statement(sig)).unwrap();
    let resources = st["predicate"]["resources"].as_array_mut().unwrap();
    resources[0]["digest"] = "00".repeat(32).into();
    let mut all = Vec::new();
    for r in resources.iter() {
        all.extend(hex::decode(r["digest"].as_str().unwrap()).unwrap());
    }
    st["subject"][0]["digest"]["sha256"] =
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &all)).into();
    let payload = STANDARD.encode(serde_json::to_vec(&st).unwrap());
    rewrite_bundle(sig, |b| b["dsseEnvelope"]["payload"] = payload.into());
}

fn swap_signature(sig: &Path, other: &Path) {
    let theirs = bundle_json(other)["dsseEnvelope"]["signatures"].clone();
    rewrite_bundle(sig, |b| b["dsseEnvelope"]["signatures"] = theirs);
}

#[test]
fn bad_input_is_never_verified() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let key = keys(dir.path(), "p256");
    let wrong = keys(dir.path(), "p384");
    let sig = dir.path().join("m.sig");
    custody_sign(&m, &key, &sig, &[]);

    // A wrong key: the hint names both keys.
    let (code, out) = custody_verify(&m, &wrong, &sig);
    assert_eq!(code, 9, "{out}");
    assert!(out.contains("not with the given key"), "{out}");

    // Bad media type / payload type.
    for (field, value, expect) in [
        ("mediaType", "application/vnd.dev.sigstore.bundle.v0.2+json", "mediaType"),
        ("payloadType", "application/json", "payloadType"),
    ] {
        let bad = dir.path().join(format!("bad-{field}.sig"));
        std::fs::copy(&sig, &bad).unwrap();
        rewrite_bundle(&bad, |b| {
            if field == "mediaType" {
                b["mediaType"] = value.into();
            } else {
                b["dsseEnvelope"]["payloadType"] = value.into();
            }
        });
        let (code, out) = custody_verify(&m, &key, &bad);
        assert_eq!(code, 9, "{out}");
        assert!(out.contains(expect), "{out}");
    }

    // Not JSON at all.
    let junk = dir.path().join("junk.sig");
    std::fs::write(&junk, b"{not json").unwrap();
    let (code, out) = custody_verify(&m, &key, &junk);
    assert_eq!(code, 9, "{out}");

    // A missing model, a missing signature, a missing key file: cannot check (exit 1).
    let (code, out) = custody_verify(&dir.path().join("nope"), &key, &sig);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("nope"), "{out}");
    let (code, out) = custody(&["verify", s(&m), "--signature", "/nonexistent.sig", "--public-key", s(&key.public)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("/nonexistent.sig"), "{out}");

    // Symlinks are refused when signing and verifying unless allowed.
    std::os::unix::fs::symlink(m.join("a.txt"), m.join("link")).unwrap();
    let (code, out) =
        custody(&["sign", s(&m), "--private-key", s(&key.private), "--signature", s(&dir.path().join("l.sig"))]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("symbolic link"), "{out}");
    assert!(!dir.path().join("l.sig").exists(), "nothing written on failure");
    let (code, out) = custody_verify(&m, &key, &sig);
    assert_eq!(code, 1, "{out}");
    custody_sign(&m, &key, &dir.path().join("l.sig"), &["--allow-symlinks"]);

    // An unreadable file.
    std::fs::remove_file(m.join("link")).unwrap();
    let locked = m.join("a/locked");
    std::fs::write(&locked, b"x").unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    if std::fs::read(&locked).is_err() {
        let (code, out) = custody(&["sign", s(&m), "--private-key", s(&key.private), "--signature", s(&sig)]);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("a/locked"), "{out}");
    }
}

#[test]
fn a_signature_inside_the_model_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    let key = keys(dir.path(), "ed25519");
    let sig = m.join("model.sig");
    custody_sign(&m, &key, &sig, &[]);
    let (code, out) = custody_verify(&m, &key, &sig);
    assert_eq!(code, 0, "{out}");
    let st = String::from_utf8(statement(&sig)).unwrap();
    assert!(st.contains(r#""model.sig""#) && !st.contains(r#""name":"model.sig""#), "{st}");
    if let Some((cli, _)) = peer() {
        // The peer takes only ECDSA keys.
        let (code, _) = peer_verify(&cli, &m, &key, &sig);
        assert_ne!(code, 0);
    }
}

#[test]
fn generated_private_keys_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = keys(dir.path(), "p256");
    assert_eq!(std::fs::metadata(&key.private).unwrap().permissions().mode() & 0o777, 0o600);
    let (code, out) = custody(&["signing-key", "generate", "--out", s(&key.private)]);
    assert_eq!(code, 1, "an existing key is never replaced: {out}");
}

/// A real OpenBao server's address and root token (`scripts/with-openbao.sh`), or `None`
/// (a failure when CI=true).
fn bao() -> Option<(String, String)> {
    match (std::env::var("CUSTODY_TEST_BAO_ADDR"), std::env::var("CUSTODY_TEST_BAO_TOKEN")) {
        (Ok(addr), Ok(token)) => Some((addr, token)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but no OpenBao server: run through scripts/with-openbao.sh")
        }
        _ => {
            eprintln!("skipped: set CUSTODY_TEST_BAO_ADDR (scripts/with-openbao.sh)");
            None
        }
    }
}

fn custody_bao(addr: &str, token: &str, args: &[&str]) -> (i32, String) {
    run(Command::new(env!("CARGO_BIN_EXE_custody"))
        .env("BAO_ADDR", addr)
        .env("BAO_TOKEN", token)
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .args(args))
}

/// Keys held in OpenBao transit sign bundles that model_signing verifies with the exported
/// public key; the private key never leaves the server.
#[test]
fn openbao_transit_keys_sign_bundles_the_peer_verifies() {
    let Some((cli, _)) = peer() else { return };
    let Some((addr, token)) = bao() else { return };
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path());
    for algorithm in ["p256", "p384", "ed25519"] {
        let name = format!("model-signer-{algorithm}-{}", std::process::id());
        let public = dir.path().join(format!("{name}.pub"));
        let (code, out) = custody_bao(
            &addr,
            &token,
            &["signing-key", "openbao", &name, "--algorithm", algorithm, "--out", s(&public)],
        );
        assert_eq!(code, 0, "{out}");
        // Asking again is idempotent and gives the same key.
        let again = dir.path().join(format!("{name}.again"));
        let (code, out) = custody_bao(
            &addr,
            &token,
            &["signing-key", "openbao", &name, "--algorithm", algorithm, "--out", s(&again)],
        );
        assert_eq!(code, 0, "{out}");
        assert_eq!(std::fs::read(&public).unwrap(), std::fs::read(&again).unwrap());

        let sig = dir.path().join(format!("{name}.sig"));
        let (code, out) = custody_bao(&addr, &token, &["sign", s(&m), "--openbao-key", &name, "--signature", s(&sig)]);
        assert_eq!(code, 0, "{out}");
        let key = Keys { private: PathBuf::new(), public: public.clone() };
        let (code, out) = custody_verify(&m, &key, &sig);
        assert_eq!(code, 0, "custody verifies the transit-signed bundle: {out}");
        if algorithm != "ed25519" {
            let (code, out) = peer_verify(&cli, &m, &key, &sig);
            assert_eq!(code, 0, "model_signing verifies the transit-signed {algorithm} bundle: {out}");
        }
        flip_byte(&m.join("a/b"), 0);
        assert_eq!(custody_verify(&m, &key, &sig).0, 9);
        flip_byte(&m.join("a/b"), 0);
    }

    // Another algorithm under an existing name is refused, never replaced.
    let name = format!("model-signer-p256-{}", std::process::id());
    let (code, out) =
        custody_bao(&addr, &token, &["signing-key", "openbao", &name, "--algorithm", "p384", "--out", "/dev/null"]);
    assert_ne!(code, 0);
    assert!(out.contains("already exists as a p256"), "{out}");
    // A bad token and an unknown key: named, nothing written.
    let sig = dir.path().join("never.sig");
    let (code, out) =
        custody_bao(&addr, "not-a-token", &["sign", s(&m), "--openbao-key", &name, "--signature", s(&sig)]);
    assert_ne!(code, 0);
    assert!(out.contains("permission denied"), "{out}");
    assert!(!out.contains(&token), "the token is never printed");
    let (code, out) =
        custody_bao(&addr, &token, &["sign", s(&m), "--openbao-key", "no-such-key", "--signature", s(&sig)]);
    assert_ne!(code, 0);
    assert!(out.contains("no-such-key"), "{out}");
    assert!(!sig.exists());
}

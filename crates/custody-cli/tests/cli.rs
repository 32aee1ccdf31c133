//! The `custody` binary end to end: exit codes, offline commands, a real `custody serve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

fn custody() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custody"));
    c.env_remove("CUSTODY_TOKEN")
        .env_remove("CUSTODY_SERVER")
        .env_remove("CUSTODY_TOKEN_FILE")
        .env("XDG_CONFIG_HOME", "/nonexistent");
    c
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = cmd.output().unwrap();
    (status.code().unwrap_or(-1), String::from_utf8(stdout).unwrap(), String::from_utf8(stderr).unwrap())
}

#[test]
fn policy_check_reports_the_location() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    let (code, out, _) = run(custody().args(["policy", "export"]).arg(&policies));
    assert_eq!(code, 0, "{out}");
    let (code, out, err) = run(custody().args(["policy", "check"]).arg(&policies));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("policies valid"), "{out}");
    std::fs::write(
        policies.join("zz-broken.cedar"),
        "permit(principal, action, resource)\nwhen { resource.nonsense };\n",
    )
    .unwrap();
    let (code, _, err) = run(custody().args(["policy", "check"]).arg(&policies));
    assert_eq!(code, 1);
    assert!(err.contains("zz-broken.cedar:2:"), "{err}");
    std::fs::write(policies.join("zz-broken.cedar"), "permitt(principal, action, resource);").unwrap();
    let (code, _, err) = run(custody().args(["policy", "check"]).arg(&policies));
    assert_eq!(code, 1);
    assert!(err.contains("zz-broken.cedar:1:1"), "{err}");
    let (code, _, _) = run(custody().args(["policy", "check", "/nonexistent"]));
    assert_eq!(code, 1);
}

#[test]
fn digest_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("abc");
    std::fs::write(&f, "abc").unwrap();
    let (code, out, _) = run(custody().arg("--json").arg("digest").arg(&f));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["digest"], "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(v["size_bytes"], 3);
    let (code, _, err) = run(custody().arg("digest").arg(dir.path().join("missing")));
    assert_eq!(code, 1);
    assert!(err.contains("missing"), "{err}");
    let (code, out, _) = run(custody().args(["completions", "bash"]));
    assert_eq!(code, 0);
    assert!(out.contains("custody"));
    let (code, _, _) = run(custody().arg("no-such-command"));
    assert_eq!(code, 2);
}

#[test]
fn demo_runs() {
    let (code, out, err) = run(custody().args(["--json", "demo"]));
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["steps"].as_array().unwrap().len() >= 10);
}

struct Served {
    child: Child,
    url: String,
    token: String,
}

fn serve(data: &Path, log: &Path) -> Served {
    let mut child = custody()
        .arg("serve")
        .env("CUSTODY_DATA_DIR", data)
        .env("CUSTODY_BIND", "127.0.0.1:0")
        .env("CUSTODY_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let export = lines
        .find_map(|l| l.ok().filter(|l| l.contains("export CUSTODY_SERVER=")))
        .expect("serve prints the URL and token");
    let mut url = String::new();
    let mut token = String::new();
    for part in export.split_whitespace() {
        if let Some(u) = part.strip_prefix("CUSTODY_SERVER=") {
            url = u.to_owned();
        }
        if let Some(t) = part.strip_prefix("CUSTODY_TOKEN=") {
            token = t.to_owned();
        }
    }
    Served { child, url, token }
}

#[test]
fn exit_codes_against_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("server.log");
    let mut s = serve(&data, &log);
    let with = |token: &str| {
        let mut c = custody();
        c.env("CUSTODY_SERVER", &s.url).env("CUSTODY_TOKEN", token);
        c
    };
    let mode = std::fs::metadata(&data).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o700, "the data directory is private");
    }
    let (code, out, err) = run(with(&s.token).args(["project", "create", "demo"]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(run(with(&s.token).args(["project", "create", "demo"])).0, 6, "conflict");
    assert_eq!(run(with(&s.token).args(["project", "get", "nope"])).0, 5, "not found");
    let register = [
        "dataset",
        "register",
        "demo",
        "Bad",
        "--licence",
        "x",
        "--source",
        "s3://x",
        "--classification",
        "public",
        "--region",
        "eu-west-1",
        "--retention",
        "30d",
    ];
    let (code, _, err) = run(with(&s.token).args(register));
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("name"), "{err}");
    assert_eq!(run(with("cust_nope").args(["whoami"])).0, 3, "unauthenticated");
    let (code, out, _) = run(with(&s.token).args([
        "--json",
        "token",
        "create",
        "--name",
        "v",
        "--principal",
        "vic",
        "--project",
        "demo",
        "--role",
        "viewer",
    ]));
    assert_eq!(code, 0);
    let viewer = serde_json::from_str::<serde_json::Value>(&out).unwrap()["secret"].as_str().unwrap().to_owned();
    let mut ok = register;
    ok[3] = "ok";
    assert_eq!(run(with(&viewer).args(ok)).0, 4, "forbidden");
    assert_eq!(run(with(&s.token).args(ok)).0, 0);
    let (code, out, _) = run(with(&viewer).args(["dataset", "list", "demo"]));
    assert_eq!(code, 0);
    assert!(out.contains("ok") && out.contains("public"), "{out}");

    // A dataset version's scan: only of the version's own bytes; a leaked key is reported redacted.
    let (code, out, _) = run(with(&s.token).args(["--json", "dataset", "list", "demo"]));
    assert_eq!(code, 0);
    let ds = serde_json::from_str::<serde_json::Value>(&out).unwrap()[0]["id"].as_str().unwrap().to_owned();
    let notes = dir.path().join("notes.txt");
    let aws = format!("AKIA{}", "QWERTYUIOPASDFGH");
    std::fs::write(&notes, format!("aws_access_key_id = {aws}\n")).unwrap();
    let (code, _, err) = run(with(&s.token).args(["dataset", "add-version", &ds, "--label", "v1"]).arg(&notes));
    assert_eq!(code, 0, "{err}");
    let other = dir.path().join("other.txt");
    std::fs::write(&other, "nothing to see\n").unwrap();
    let (code, _, err) = run(with(&s.token).args(["dataset", "scan", &ds, "--label", "v1"]).arg(&other));
    assert_eq!(code, 9, "another file is not the version: {err}");
    let (code, out, err) = run(with(&s.token).args(["dataset", "scan", &ds, "--label", "v1"]).arg(&notes));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("attached scan") && out.contains("secret."), "{out}");
    assert!(!out.contains(&aws), "the key is redacted: {out}");
    let (code, _, err) = run(with(&viewer).args(["dataset", "scan", &ds, "--label", "v1"]).arg(&notes));
    assert_eq!(code, 4, "viewers cannot attach: {err}");
    assert_eq!(run(custody().args(["whoami"])).0, 1, "no credentials");
    let (code, out, err) = run(with(&s.token).args(["audit", "prove", "0"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("proof verified"), "{out}");
    let (code, out, err) = run(with(&s.token).args(["audit", "consistency", "1"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("prefix"), "{out}");
    assert_eq!(run(with(&s.token).args(["audit", "prove", "999999"])).0, 7, "no such record");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{}\n", s.token)).unwrap();
    assert_eq!(run(custody().env("CUSTODY_SERVER", &s.url).arg("--token-file").arg(&token_file).arg("whoami")).0, 0);
    let cli_config = dir.path().join("cli.toml");
    std::fs::write(&cli_config, format!("server = \"{}\"\ntoken_file = \"{}\"\n", s.url, token_file.display()))
        .unwrap();
    assert_eq!(
        run(custody().arg("--cli-config").arg(&cli_config).arg("whoami")).0,
        0,
        "settings from the CLI config file"
    );
    std::fs::write(&cli_config, "colour = 1\n").unwrap();
    assert_eq!(run(custody().arg("--cli-config").arg(&cli_config).arg("whoami")).0, 1, "unknown keys are refused");

    // A graceful stop, then nothing answers: exit 8.
    Command::new("kill").arg("-TERM").arg(s.child.id().to_string()).status().unwrap();
    assert!(s.child.wait().unwrap().success(), "SIGTERM stops the server cleanly");
    assert_eq!(run(with(&s.token).args(["whoami"])).0, 8, "unreachable");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("request") && logged.contains("/api/v1/projects"), "requests are logged: {logged}");
    for secret in [&s.token, &viewer] {
        let tail = &secret[secret.len() - 20..];
        assert!(!logged.contains(tail), "a token secret reached the log");
    }
    assert!(!logged.contains("authorization"), "headers are not logged");

    // Restart on the same data directory: no new admin token, data kept.
    let mut again = custody()
        .arg("serve")
        .env("CUSTODY_DATA_DIR", &data)
        .env("CUSTODY_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err_lines = BufReader::new(again.stderr.take().unwrap()).lines();
    let listening = err_lines.find_map(|l| l.ok().filter(|l| l.contains("custody listening"))).unwrap();
    assert!(!listening.contains("cust_"), "logs never contain tokens: {listening}");
    again.kill().unwrap();
    again.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut again.stdout.take().unwrap(), &mut out).unwrap();
    assert!(!out.contains("cust_"), "the admin token is printed only on the first start");
}

#[test]
fn audit_export_resumes_and_verifies_offline_and_tampering_exits_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = serve(&data, &dir.path().join("server.log"));
    let with = || {
        let mut c = custody();
        c.env("CUSTODY_SERVER", &s.url).env("CUSTODY_TOKEN", &s.token);
        c
    };
    for i in 0..30 {
        assert_eq!(run(with().args(["project", "create", &format!("p{i}")])).0, 0);
    }
    let (code, vkey, err) = run(with().args(["audit", "key"]));
    assert_eq!(code, 0, "{err}");
    let key_file = data.join("audit-log.key");
    let (code, offline, _) = run(custody().args(["audit", "key", "--key-file"]).arg(&key_file));
    assert_eq!((code, offline.trim()), (0, vkey.trim()), "the key file and the server agree");
    let (code, cp, _) = run(with().args(["audit", "checkpoint"]));
    assert_eq!(code, 0);
    assert!(cp.contains(vkey.split('+').next().unwrap()), "the checkpoint names the log: {cp}");

    let export = dir.path().join("export");
    let (code, out, err) = run(with().arg("audit").arg("export").arg(&export));
    assert_eq!(code, 0, "{out}{err}");
    let verify = |d: &Path| run(custody().args(["audit", "verify", "--key", vkey.trim()]).arg(d));
    let (code, out, err) = verify(&export);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("verified records 0.."), "{out}");

    // An interrupted export (a partial last frame) resumes where it stopped.
    let records = export.join("records.archive");
    let full = std::fs::read(&records).unwrap();
    let (total, _) = custody_audit::archive::whole_frames(&full[custody_audit::archive::ARCHIVE_MAGIC.len()..]);
    let cut = full.len() * 2 / 3;
    std::fs::write(&records, &full[..cut]).unwrap();
    let (code, out, err) = run(with().arg("audit").arg("export").arg(&export).args(["--to", &total.to_string()]));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(std::fs::read(&records).unwrap(), full, "the resumed export is the same bytes");
    assert_eq!(verify(&export).0, 0);

    // The verified archive read as JSON lines is what the server exports for SIEMs, and an
    // export of JSON lines verifies too.
    let (code, rendered, err) =
        run(custody().args(["audit", "verify", "--key", vkey.trim(), "--jsonl", "-"]).arg(&export));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("verified records 0.."), "the summary goes to stderr: {err}");
    let (code, served, _) = run(with().args(["audit", "export", "-", "--to", &total.to_string()]));
    assert_eq!(code, 0);
    assert_eq!(rendered, served, "the archive's JSON view equals the server's JSON lines");
    let as_lines = dir.path().join("as-lines");
    std::fs::create_dir(&as_lines).unwrap();
    for f in ["segment.json", "checkpoints.jsonl"] {
        std::fs::copy(export.join(f), as_lines.join(f)).unwrap();
    }
    std::fs::write(as_lines.join("records.jsonl"), &served).unwrap();
    let (code, out, err) = verify(&as_lines);
    assert_eq!(code, 0, "{out}{err}");
    let forged_line = served.replacen("\"actor\":\"admin\"", "\"actor\":\"admix\"", 1);
    std::fs::write(as_lines.join("records.jsonl"), forged_line).unwrap();
    let (code, _, err) = verify(&as_lines);
    assert_eq!(code, 9, "{err}");
    assert!(err.contains("record 1 was modified"), "{err}");

    // A segment that starts at a signed size verifies on its own.
    let second: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(export.join("checkpoints.jsonl")).unwrap().lines().nth(5).unwrap(),
    )
    .unwrap();
    let segment = dir.path().join("segment");
    let from = second["size"].as_u64().unwrap().to_string();
    let (code, out, err) = run(with().arg("audit").arg("export").arg(&segment).args(["--from", &from]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = verify(&segment);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("verified records {from}..")), "{out}");

    // One changed byte of an actor: exit 9 and the record named.
    let actor = b"\x01\x00\x00\x00\x05admin";
    let at = full.windows(actor.len()).position(|w| w == actor).unwrap();
    let mut tampered = full.clone();
    tampered[at + actor.len() - 1] = b'x';
    std::fs::write(&records, &tampered).unwrap();
    let (code, _, err) = verify(&export);
    assert_eq!(code, 9, "{err}");
    assert!(err.contains("record 1 was modified"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line names what is wrong: {err}");
    let (code, _, err) = run(custody().args(["audit", "verify", "--key", "not+a+key"]).arg(&export));
    assert_eq!(code, 1, "{err}");

    // JSON lines for a SIEM, from a sequence number.
    let (code, out, _) = run(with().args(["audit", "export", "-", "--from", "3", "--to", "5"]));
    assert_eq!(code, 0);
    let seqs: Vec<u64> =
        out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![3, 4]);
    s.child.kill().unwrap();
    let _ = s.child.wait();
}

/// Serves `dir`'s files over HTTP on loopback (Python's http.server); returns the child and
/// its base URL.
fn http_files(dir: &Path) -> (Child, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &port.to_string(), "--directory"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 serves the files");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (child, url);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("python3 -m http.server did not start");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The registry from the command line: a signed version promoted through approvals, what is
/// served checked against it (directory and HTTP), deployments only of the approved digest,
/// and an edge bundle that verifies offline and fails on every kind of tampering.
#[test]
fn registry_deployments_and_edge_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = serve(&dir.path().join("data"), &dir.path().join("server.log"));
    let with = |token: &str| {
        let mut c = custody();
        c.env("CUSTODY_SERVER", &s.url).env("CUSTODY_TOKEN", token);
        c
    };
    let admin = s.token.clone();
    assert_eq!(run(with(&admin).args(["project", "create", "p"])).0, 0);
    let token = |name: &str, role: &str| {
        let (code, out, err) = run(with(&admin).args([
            "--json",
            "token",
            "create",
            "--name",
            name,
            "--principal",
            name,
            "--project",
            "p",
            "--role",
            role,
        ]));
        assert_eq!(code, 0, "{err}");
        json_of(&out)["secret"].as_str().unwrap().to_owned()
    };
    let (eng, ap1, ap2) = (token("eve", "ml-engineer"), token("al", "approver"), token("bo", "approver"));

    // A model with nested files, signed offline.
    let model = dir.path().join("model");
    // The weights are a real safetensors file (one U8 tensor), so the scan can call them clean.
    let header = br#"{"w":{"dtype":"U8","shape":[50000],"data_offsets":[0,50000]}}"#;
    let mut weights = (header.len() as u64).to_le_bytes().to_vec();
    weights.extend_from_slice(header);
    weights.extend_from_slice(&[1u8; 50_000]);
    for (p, c) in [("weights/a.bin", &weights[..]), ("config.json", b"{}"), ("tok/vocab.txt", b"a b c")] {
        std::fs::create_dir_all(model.join(p).parent().unwrap()).unwrap();
        std::fs::write(model.join(p), c).unwrap();
    }
    let key = dir.path().join("ci.pem");
    assert_eq!(run(custody().args(["signing-key", "generate", "--out"]).arg(&key)).0, 0);
    let sig = dir.path().join("model.sig");
    let (code, _, err) =
        run(custody().arg("sign").arg(&model).arg("--private-key").arg(&key).arg("--signature").arg(&sig));
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = run(with(&eng)
        .args(["model", "trust-signer", "p", "--name", "ci", "--public-key"])
        .arg(dir.path().join("ci.pem.pub")));
    assert_eq!(code, 4, "only administrators choose signers: {err}");
    let (code, _, err) = run(with(&admin)
        .args(["model", "trust-signer", "p", "--name", "ci", "--public-key"])
        .arg(dir.path().join("ci.pem.pub")));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(with(&eng).args(["--json", "model", "register", "p", "fraud", "--risk-tier", "low"]));
    assert_eq!(code, 0, "{err}");
    let id = json_of(&out)["id"].as_str().unwrap().to_owned();
    let component = format!("tokenizer/bpe=sha256:{}", "cd".repeat(32));
    let (code, out, err) = run(with(&eng)
        .args(["model", "add-version", &id, "--label", "v1", "--signature"])
        .arg(&sig)
        .args(["--component", &component]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("development") && out.contains("sha256:"), "{out}");
    assert_eq!(
        run(with(&eng).args(["model", "add-version", &id, "--label", "v1", "--signature"]).arg(&sig)).0,
        6,
        "never overwritten"
    );

    // Not yet approved: no edge bundle.
    let bundle = dir.path().join("edge");
    let (code, _, err) =
        run(with(&eng).args(["bundle", "create", &id, "v1", "--model-dir"]).arg(&model).arg("--out").arg(&bundle));
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("never approved into production"), "{err}");

    // No promotion before a clean scan; a scan only of the signed files.
    let (code, _, err) = run(with(&eng).args(["model", "promote", &id, "v1", "--to", "staging", "--reason", "eval"]));
    assert_eq!(code, 6, "no scan yet: {err}");
    assert!(err.contains("no scan"), "{err}");
    let planted = dir.path().join("planted");
    copy_dir(&model, &planted);
    std::fs::write(planted.join("weights/b.pkl"), b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00id\x85R.").unwrap();
    let (code, _, err) = run(with(&eng).args(["model", "scan", &id, "--label", "v1"]).arg(&planted));
    assert_eq!(code, 9, "{err}");
    assert!(err.contains("extra    weights/b.pkl") && err.contains("nothing was scanned"), "{err}");
    let (code, out, err) = run(with(&eng).args(["--json", "model", "scan", &id, "--label", "v1"]).arg(&model));
    assert_eq!(code, 0, "{err}");
    let scan = json_of(&out);
    assert_eq!((scan["verdict"].as_str(), scan["files"].as_array().unwrap().len()), (Some("clean"), 3), "{scan}");
    assert_eq!(scan["rules_version"], custody_scan::RULES_VERSION);

    for (to, approver) in [("staging", &ap1), ("production", &ap2)] {
        let (code, out, err) =
            run(with(&eng).args(["--json", "model", "promote", &id, "v1", "--to", to, "--reason", "eval passed"]));
        assert_eq!(code, 0, "{err}");
        let pid = json_of(&out)["id"].as_str().unwrap().to_owned();
        assert_eq!(run(with(&eng).args(["model", "approve", &pid, "--comment", "mine"])).0, 4, "no self-approval");
        let (code, out, err) = run(with(approver).args(["--json", "model", "approve", &pid, "--comment", "reviewed"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(json_of(&out)["status"], "completed", "{out}");
    }
    let (code, out, _) = run(with(&eng).args(["model", "history", &id, "v1"]));
    assert_eq!(code, 0);
    assert!(out.contains("development → staging") && out.contains("staging → production"), "{out}");

    // What is served, checked against the registry: a directory, then over HTTP.
    let (code, out, err) = run(with(&eng).args(["deploy", "verify", &id, "v1", "--dir"]).arg(&model));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("signed by `ci`"), "{out}");
    let served = dir.path().join("served");
    copy_dir(&model, &served);
    std::fs::write(served.join("tok/vocab.txt"), b"a b X").unwrap();
    std::fs::write(served.join("extra.py"), b"import os").unwrap();
    let (code, out, err) = run(with(&eng).args(["--json", "deploy", "verify", &id, "v1", "--dir"]).arg(&served));
    assert_eq!(code, 9, "{err}");
    let v = json_of(&out);
    assert_eq!(v["verified"], false);
    assert_eq!(v["differences"]["changed"][0]["name"], "tok/vocab.txt", "{v}");
    assert_eq!(v["differences"]["extra"][0], "extra.py", "{v}");
    let (mut http, url) = http_files(&model);
    let (code, out, err) = run(with(&eng).args(["deploy", "verify", &id, "v1", "--url", &url]));
    assert_eq!(code, 0, "{out}{err}");
    http.kill().unwrap();
    let _ = http.wait();
    let (mut http, url) = http_files(&served);
    let (code, _, err) = run(with(&eng).args(["deploy", "verify", &id, "v1", "--url", &url]));
    assert_eq!(code, 9, "{err}");
    assert!(err.contains("changed  tok/vocab.txt"), "{err}");
    http.kill().unwrap();
    let _ = http.wait();

    // Deployments record only the approved digest, with the runtime attestation.
    let deploy = |d: &Path| {
        run(with(&eng).args(["deploy", "record", &id, "v1", "--dir"]).arg(d).args([
            "--environment",
            "prod-eu",
            "--endpoint",
            "https://infer.example.com/fraud",
            "--region",
            "eu-west-1",
            "--image-digest",
            &format!("sha256:{}", "ab".repeat(32)),
            "--runtime-library",
            "torch=2.5.1",
            "--accelerator",
            "nvidia-l4",
        ]))
    };
    assert_eq!(deploy(&served).0, 6, "a tampered model is not recorded as deployed");
    let (code, out, err) = deploy(&model);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("prod-eu"), "{out}");
    let (code, out, _) = run(with(&eng).args(["deploy", "list", &id]));
    assert_eq!(code, 0);
    assert_eq!(out.lines().filter(|l| l.contains("prod-eu")).count(), 1, "{out}");

    // The edge bundle: written whole, verified with nothing but the log's key.
    let (code, out, err) =
        run(with(&eng).args(["bundle", "create", &id, "v1", "--model-dir"]).arg(&served).arg("--out").arg(&bundle));
    assert_eq!(code, 9, "a model that differs from its signature is not bundled: {out}{err}");
    assert!(!bundle.exists());
    let (code, out, err) =
        run(with(&eng).args(["bundle", "create", &id, "v1", "--model-dir"]).arg(&model).arg("--out").arg(&bundle));
    assert_eq!(code, 0, "{out}{err}");
    assert!(!bundle.join("model/extra.py").exists());
    let (code, vkey, _) = run(with(&admin).args(["audit", "key"]));
    assert_eq!(code, 0);
    let vkey = vkey.trim().to_owned();
    // Lineage from the command line: JSON lines sent (twice: nothing new), then asked.
    let event = |kind: &str, time: &str, inputs: &str, outputs: &str| {
        format!(
            r#"{{"eventType":"{kind}","eventTime":"{time}","producer":"https://example.com/p","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json","run":{{"runId":"0190c3a4-1b2c-7d3e-8f40-0000000000aa"}},"job":{{"namespace":"etl","name":"clean"}},"inputs":[{inputs}],"outputs":[{outputs}]}}"#
        )
    };
    let raw = r#"{"namespace":"s3://raw","name":"users","facets":{"version":{"_producer":"x","_schemaURL":"y","datasetVersion":"7"}}}"#;
    let clean = r#"{"namespace":"s3://clean","name":"users"}"#;
    let lines = format!(
        "{}\n{}\n",
        event("START", "2024-05-01T10:00:00Z", raw, ""),
        event("COMPLETE", "2024-05-01T10:05:00Z", raw, clean)
    );
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, lines).unwrap();
    let (code, out, err) = run(with(&eng).args(["lineage", "send", "p"]).arg(&events));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 new"), "{out}");
    let (code, out, _) = run(with(&eng).args(["--json", "lineage", "send", "p"]).arg(&events));
    assert_eq!((code, json_of(&out)["duplicates"].as_u64()), (0, Some(2)), "{out}");
    let node = ["--namespace", "s3://raw", "--name", "users", "--dataset-version", "7"];
    let (code, out, err) = run(with(&eng).args(["lineage", "impact", "p"]).args(node));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("s3://clean"), "{out}");
    let (code, _, err) = run(with(&eng).args(["lineage", "impact", "p", "--namespace", "s3://raw", "--name", "nope"]));
    assert_eq!(code, 5, "unknown node: {err}");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, event("START", "yesterday", raw, "")).unwrap();
    let (code, _, err) = run(with(&eng).args(["lineage", "send", "p"]).arg(&bad));
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("eventTime"), "{err}");
    // A run from a system without OpenLineage, and a transform approved by someone else.
    let native = dir.path().join("run.json");
    let run_json = r#"{"run_id":"0190c3a4-1b2c-7d3e-8f40-0000000000bb","job":{"namespace":"etl","name":"stats"},"event_time":"2024-05-02T00:00:00Z",
        "inputs":[{"namespace":"s3://clean","name":"users"}],"outputs":[{"namespace":"s3://stats","name":"users"}],
        "code_commit":"abc123","parameters":{"window":"7d"}}"#;
    std::fs::write(&native, run_json).unwrap();
    let (code, out, err) = run(with(&eng).args(["lineage", "record-run", "p"]).arg(&native));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("recorded: event "), "{out}");
    let (code, out, _) = run(with(&eng).args(["lineage", "record-run", "p"]).arg(&native));
    assert!(code == 0 && out.starts_with("already recorded"), "{out}");
    let declare = ["lineage", "transform", "declare", "p", "--job", "etl/stats", "--kind", "aggregating"];
    let (code, _, err) = run(with(&eng).args(declare).args(["--justification", "weekly counts"]));
    assert_eq!(code, 0, "{err}");
    let approve = ["lineage", "transform", "approve", "p", "--job", "etl/stats"];
    assert_eq!(run(with(&eng).args(approve)).0, 4, "engineers do not approve");
    let (code, out, err) = run(with(&ap1).args(["--json"]).args(approve));
    assert_eq!((code, json_of(&out)["approved"].as_bool()), (0, Some(true)), "{err}");
    assert_eq!(run(with(&ap1).args(approve)).0, 6, "approved already");
    let stats = ["--namespace", "s3://stats", "--name", "users", "--run", "0190c3a4-1b2c-7d3e-8f40-0000000000bb"];
    let (code, out, _) = run(with(&eng).args(["--json", "lineage", "classification", "p"]).args(stats));
    assert_eq!((code, json_of(&out)["blocked_by"][0]["name"].as_str()), (0, Some("stats")), "{out}");

    s.child.kill().unwrap();
    let _ = s.child.wait();

    let offline = |b: &Path, extra: &[&str]| {
        run(custody().args(["--json", "verify", "--offline"]).arg(b).args(["--log-key", &vkey]).args(extra))
    };
    let (code, out, err) = offline(&bundle, &[]);
    assert_eq!(code, 0, "the server is gone, the bundle still verifies: {out}{err}");
    let v = json_of(&out);
    assert_eq!(v["verified"], true);
    assert_eq!(v["approval"]["approvers"], serde_json::json!(["bo"]));
    let (code, out, _) = offline(&bundle, &["--stage", "staging"]);
    assert_eq!(code, 9, "the bundle proves production, not staging: {out}");

    // Every tampering is caught, and says where.
    let tamper = |name: &str, f: &dyn Fn(&Path)| {
        let copy = dir.path().join(format!("edge-{name}"));
        copy_dir(&bundle, &copy);
        f(&copy);
        let (code, out, err) = offline(&copy, &[]);
        assert_eq!(code, 9, "{name}: {out}{err}");
        let v = json_of(&out);
        assert_eq!(v["verified"], false, "{name}");
        v["reason"].as_str().unwrap().to_owned()
    };
    let edit_manifest = |b: &Path, f: &dyn Fn(&mut serde_json::Value)| {
        let p = b.join("custody-bundle.json");
        let mut m = json_of(&std::fs::read_to_string(&p).unwrap());
        f(&mut m);
        std::fs::write(p, m.to_string()).unwrap();
    };
    let r = tamper("weights", &|b| std::fs::write(b.join("model/weights/a.bin"), [2u8; 50_000]).unwrap());
    assert!(r.contains("changed weights/a.bin"), "{r}");
    let r = tamper("extra", &|b| std::fs::write(b.join("model/run.py"), b"x").unwrap());
    assert!(r.contains("extra run.py"), "{r}");
    let r = tamper("missing", &|b| std::fs::remove_file(b.join("model/config.json")).unwrap());
    assert!(r.contains("missing config.json"), "{r}");
    let r = tamper("record", &|b| {
        edit_manifest(b, &|m| {
            let rec = m["approval"]["record"].as_str().unwrap().replace("\"bo\"", "\"mallory\"");
            m["approval"]["record"] = rec.into();
        })
    });
    assert!(r.contains("is not in the log"), "{r}");
    let r = tamper("digest", &|b| {
        edit_manifest(b, &|m| m["model"]["root_digest"] = format!("sha256:{}", "00".repeat(32)).into())
    });
    assert!(r.contains("root digest"), "{r}");
    let r = tamper("checkpoint", &|b| {
        edit_manifest(b, &|m| {
            let cp = m["approval"]["checkpoint"].as_str().unwrap().to_owned();
            let mut lines: Vec<String> = cp.lines().map(str::to_owned).collect();
            lines[1] = (lines[1].parse::<u64>().unwrap() + 1).to_string();
            m["approval"]["checkpoint"] = (lines.join("\n") + "\n").into();
        })
    });
    assert!(r.contains("checkpoint"), "{r}");
    let other_key = dir.path().join("other.pem");
    assert_eq!(run(custody().args(["signing-key", "generate", "--out"]).arg(&other_key)).0, 0);
    let r = tamper("signer", &|b| {
        std::fs::copy(dir.path().join("other.pem.pub"), b.join("signer.pem")).map(|_| ()).unwrap()
    });
    assert!(r.contains("not the approved signer"), "{r}");
    let resigned = dir.path().join("resigned.sig");
    let (code, _, err) = run(custody()
        .arg("sign")
        .arg(bundle.join("model"))
        .arg("--private-key")
        .arg(&other_key)
        .arg("--signature")
        .arg(&resigned));
    assert_eq!(code, 0, "{err}");
    let r = tamper("signature", &|b| std::fs::copy(&resigned, b.join("model.sig")).map(|_| ()).unwrap());
    assert!(r.contains("signature"), "{r}");

    // The wrong log key is not "verified" either.
    let mut forged = vkey.clone();
    forged.pop();
    forged.push(if vkey.ends_with('A') { 'B' } else { 'A' });
    let (code, out, err) = run(custody().args(["verify", "--offline"]).arg(&bundle).args(["--log-key", &forged]));
    assert_ne!(code, 0, "{out}{err}");
}

/// `custody scan`: fails closed, with the documented exit codes.
#[test]
fn scan_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(models.join("nested")).unwrap();
    // protocol 4: builtins.eval("print('hi')"), and a plain dict.
    let evil = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x0bprint('hi')\x85R.";
    let benign = b"\x80\x04}\x94\x8c\x01a\x94K\x01s.";
    // protocol 4: an import that is neither known safe nor known dangerous.
    let unknown = b"\x80\x04\x8c\x0bacme.models\x8c\x06Scorer\x93)R.";
    std::fs::write(models.join("nested/evil.pkl"), evil).unwrap();
    std::fs::write(models.join("ok.pkl"), benign).unwrap();
    std::fs::write(dir.path().join("unknown.pkl"), unknown).unwrap();
    std::fs::write(dir.path().join("garbage.bin"), b"\x89PNG\r\n\x1a\n not a model").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join("unknown.pkl"), models.join("link.pkl")).unwrap();

    let (code, out, err) = run(custody().args(["--json", "scan"]).arg(&models));
    assert_eq!(code, 1, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["files"], 2, "links met while walking are not followed: {v}");
    assert_eq!(v["summary"]["malicious"], 1);
    assert_eq!(v["summary"]["exit"], 1);
    let (code, out, _) = run(custody().arg("scan").arg(models.join("nested/evil.pkl")));
    assert_eq!(code, 1);
    assert!(out.contains("MALICIOUS") && out.contains("builtins.eval"), "{out}");
    assert_eq!(run(custody().arg("scan").arg(models.join("ok.pkl"))).0, 0);
    let (code, out, _) = run(custody().arg("scan").arg(dir.path().join("unknown.pkl")));
    assert_eq!(code, 1, "unknown imports fail closed: {out}");
    assert!(out.contains("SUSPICIOUS"), "{out}");
    assert_eq!(run(custody().args(["scan", "--fail-level", "high"]).arg(dir.path().join("unknown.pkl"))).0, 0);
    let (code, out, _) = run(custody().arg("scan").arg(dir.path().join("garbage.bin")));
    assert_eq!(code, 2, "an unknown format is inconclusive, never clean: {out}");
    assert!(out.contains("INCONCLUSIVE"), "{out}");
    let (code, _, err) = run(custody().arg("scan").arg(dir.path().join("missing.pkl")));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("missing.pkl"), "{err}");
    assert_eq!(run(custody().arg("scan")).0, 3, "usage errors are 3 for scan");

    // A notebook whose output leaks a token (built at run time: no token-shaped literal in the
    // repository), plain text that does not, and a lockfile checked against an OSV directory.
    let token: String = "ghp_".chars().chain((0..36).map(|i| char::from(b'a' + (i * 7 % 26) as u8))).collect();
    let notebook = serde_json::json!({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{ "cell_type": "code", "source": ["import os\n"], "metadata": {}, "execution_count": 1,
                    "outputs": [{ "output_type": "stream", "name": "stdout", "text": [format!("token={token}\n")] }] }],
    });
    let notes = dir.path().join("notes");
    std::fs::create_dir(&notes).unwrap();
    std::fs::write(notes.join("explore.ipynb"), notebook.to_string()).unwrap();
    std::fs::write(notes.join("README.md"), "# Fraud model\nTrained weekly.\n").unwrap();
    std::fs::write(notes.join("requirements.txt"), "requests==2.28.0\nnumpy==2.1.0\n").unwrap();
    let (code, out, _) = run(custody().args(["--json", "scan"]).arg(&notes));
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains(&token) && out.contains("secret.github-token"), "found and redacted: {out}");
    let osv = dir.path().join("osv/PyPI");
    std::fs::create_dir_all(&osv).unwrap();
    let record = serde_json::json!({
        "id": "GHSA-j8r2-6x86-q33q", "aliases": ["CVE-2023-32681"], "modified": "2023-05-26T00:00:00Z",
        "summary": "Unintended leak of Proxy-Authorization header in requests",
        "database_specific": { "severity": "MODERATE" },
        "affected": [{ "package": { "ecosystem": "PyPI", "name": "requests" },
                       "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "2.3.0" }, { "fixed": "2.31.0" }] }] }],
    });
    std::fs::write(osv.join("GHSA-j8r2-6x86-q33q.json"), record.to_string()).unwrap();
    std::fs::remove_file(notes.join("explore.ipynb")).unwrap();
    let (code, out, _) = run(custody().arg("scan").arg(&notes).arg("--osv").arg(dir.path().join("osv")));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("requests 2.28.0 is affected by GHSA-j8r2-6x86-q33q"), "{out}");
    let (code, out, _) = run(custody().arg("scan").arg(&notes));
    assert_eq!(code, 0, "without --osv the lockfile is text, and clean: {out}");
    std::fs::write(notes.join("explore.ipynb"), notebook.to_string()).unwrap();

    // SARIF 2.1.0, valid against the official schema: one rule per detection type, the byte
    // offset of each finding.
    let sarif = dir.path().join("scan.sarif");
    let (code, _, err) = run(custody().arg("scan").arg(dir.path()).arg("--sarif").arg(&sarif));
    assert_eq!(code, 1, "{err}");
    let log: serde_json::Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    let run0 = &log["runs"][0];
    let ids: Vec<&str> =
        run0["tool"]["driver"]["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "{ids:?}");
    assert!(ids.contains(&"pickle.dangerous-global") && ids.contains(&"pickle.unknown-global"), "{ids:?}");
    let evil_result =
        run0["results"].as_array().unwrap().iter().find(|r| r["ruleId"] == "pickle.dangerous-global").unwrap();
    assert_eq!(evil_result["level"], "error");
    assert!(
        evil_result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("evil.pkl")
    );
    assert!(evil_result["locations"][0]["physicalLocation"]["region"]["byteOffset"].is_u64(), "{evil_result}");
    match std::env::var_os("CUSTODY_TEST_SARIF_SCHEMA") {
        Some(schema) => {
            let check = "import json, sys, jsonschema\n\
                         jsonschema.Draft4Validator(json.load(open(sys.argv[1]))).validate(json.load(open(sys.argv[2])))";
            let out = Command::new("python3").arg("-c").arg(check).arg(schema).arg(&sarif).output().unwrap();
            assert!(out.status.success(), "the SARIF log is not valid: {}", String::from_utf8_lossy(&out.stderr));
        }
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true but CUSTODY_TEST_SARIF_SCHEMA is unset: run through scripts/with-sarif-schema.sh")
        }
        None => eprintln!("SARIF schema validation skipped: set CUSTODY_TEST_SARIF_SCHEMA"),
    }
    assert_eq!(run(custody().args(["scan", "--fail-level", "nope", "x"])).0, 3);
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr, missing_docs)]
//! Crash test: a `custody serve` child under sustained writes is killed with SIGKILL again and
//! again. After every restart no acknowledged write is missing, and at the end the exported log
//! verifies offline and agrees with every checkpoint published before any of the crashes.
//!
//! `CUSTODY_CRASH_ROUNDS` sets the number of kills (default 20); `scripts/soak-crash.sh` runs
//! many more.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn custody() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_custody"));
    c.env_remove("CUSTODY_TOKEN").env_remove("CUSTODY_SERVER").env("XDG_CONFIG_HOME", "/nonexistent");
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the server on `port`; on a new data directory returns the administrator token.
fn start(data: &Path, port: u16, new: bool) -> (Child, Option<String>) {
    let mut child = custody()
        .arg("serve")
        .env("CUSTODY_DATA_DIR", data)
        .env("CUSTODY_BIND", format!("127.0.0.1:{port}"))
        .env("CUSTODY_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(t) = line.split_whitespace().find_map(|p| p.strip_prefix("CUSTODY_TOKEN=")) {
                let _ = tx.send(t.to_owned());
            }
        }
    });
    let token = if new { rx.recv_timeout(Duration::from_secs(60)).ok() } else { None };
    (child, token)
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "the server did not come back after a crash");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn kill(child: &mut Child) {
    Command::new("kill").arg("-KILL").arg(child.id().to_string()).status().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the server was killed, not stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_the_log_stays_verifiable() {
    let rounds: usize = std::env::var("CUSTODY_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let (mut child, token) = start(&data, port, true);
    let token = token.expect("a new server prints its administrator token");
    wait_ready(&http, &base).await;
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut published: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
    for round in 0..rounds {
        // Sustained writes from 8 clients until the kill.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..8 {
            let (http, base, token, acknowledged, stop) =
                (http.clone(), base.clone(), token.clone(), acknowledged.clone(), stop.clone());
            writers.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let name = format!("r{round}-w{w}-{i}");
                    i += 1;
                    let sent = http
                        .post(format!("{base}/api/v1/projects"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({ "name": name }))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 201 => acknowledged.lock().unwrap().push(name),
                        Ok(r) => panic!("unexpected answer {} for {name}", r.status()),
                        Err(_) => break, // the server died mid-request: not acknowledged
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(150 + (round as u64 * 37) % 250)).await;
        // Publish the newest checkpoint, as a monitor would, just before the crash.
        if let Ok(r) = http.get(format!("{base}/api/v1/audit/checkpoint")).bearer_auth(&token).send().await
            && r.status().is_success()
        {
            let cp: serde_json::Value = r.json().await.unwrap();
            published.insert(cp["size"].as_u64().unwrap(), cp);
        }
        kill(&mut child);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        (child, _) = start(&data, port, false);
        wait_ready(&http, &base).await;
        let acked = acknowledged.lock().unwrap().clone();
        for name in acked.iter().rev().take(64) {
            let r = http.get(format!("{base}/api/v1/projects/{name}")).bearer_auth(&token).send().await.unwrap();
            assert_eq!(r.status(), 200, "round {round}: acknowledged project {name} is missing after the crash");
        }
    }
    // Every acknowledged write of every round is there.
    let acked = acknowledged.lock().unwrap().clone();
    assert!(acked.len() > rounds * 8, "the writers made progress: {}", acked.len());
    let listed: serde_json::Value =
        http.get(format!("{base}/api/v1/projects")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let present: std::collections::HashSet<&str> =
        listed.as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    for name in &acked {
        assert!(present.contains(name.as_str()), "acknowledged project {name} is missing");
    }
    // The log verifies offline, and agrees with every checkpoint published along the way.
    let export = dir.path().join("export");
    let cli = |args: &[&str]| {
        let out = custody().env("CUSTODY_SERVER", &base).env("CUSTODY_TOKEN", &token).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, err) = cli(&["audit", "export", export.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let mut lines: BTreeMap<u64, String> = BTreeMap::new();
    let exported = std::fs::read_to_string(export.join("checkpoints.jsonl")).unwrap();
    for line in exported.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        lines.insert(v["size"].as_u64().unwrap(), line.to_owned());
    }
    assert!(!published.is_empty());
    for (size, cp) in &published {
        let stored = lines.get(size).unwrap_or_else(|| panic!("published checkpoint {size} is not in the log"));
        let stored: serde_json::Value = serde_json::from_str(stored).unwrap();
        assert_eq!(stored["root"], cp["root"], "the log forked at size {size}");
    }
    let (code, vkey, _) = cli(&["audit", "key"]);
    assert_eq!(code, Some(0));
    let (code, out, err) = cli(&["audit", "verify", export.to_str().unwrap(), "--key", vkey.trim()]);
    assert_eq!(code, Some(0), "{out}{err}");
    kill(&mut child);
}

//! `custody lineage`: OpenLineage events sent to a project, and the graph's answers.

use crate::cli::{LineageCmd, LineageNode, TransformCmd};
use crate::client::Client;
use crate::commands::{path_segment as segment, query, show};
use anyhow::Context;
use serde_json::{Value, json};
use std::io::Read as _;

/// `custody lineage …`.
pub async fn run(cmd: LineageCmd, c: &Client, json: bool) -> anyhow::Result<()> {
    let (what, node) = match cmd {
        LineageCmd::Send { project, file } => return send(c, &project, &file, json).await,
        LineageCmd::RecordRun { project, file } => return record_runs(c, &project, &file, json).await,
        LineageCmd::Transform(t) => return transform(c, t, json).await,
        LineageCmd::Erase { project, file, ticket } => return erase(c, &project, &file, &ticket, json).await,
        LineageCmd::Erasures { project } => {
            let v: Value = c.get(&format!("/api/v1/projects/{}/lineage/erasures", segment(&project))).await?;
            return show(json, &v, || print_pretty(&v));
        }
        LineageCmd::Completeness { project, as_of } => {
            let pairs: Vec<(&str, String)> = as_of.into_iter().map(|t| ("as_of", t)).collect();
            let path = format!("/api/v1/projects/{}/lineage/completeness?{}", segment(&project), query(&pairs));
            let v: Value = c.get(&path).await?;
            return show(json, &v, || print_pretty(&v));
        }
        LineageCmd::Downstream(n) => ("downstream", n),
        LineageCmd::Upstream(n) => ("upstream", n),
        LineageCmd::Impact(n) => ("impact", n),
        LineageCmd::Training(n) => ("training", n),
        LineageCmd::Erasure(n) => ("erasure", n),
        LineageCmd::Classification(n) => ("classification", n),
    };
    let path = format!("/api/v1/projects/{}/lineage/{what}?{}", segment(&node.project), query(&node_pairs(&node)));
    let v: Value = c.get(&path).await?;
    show(json, &v, || print_pretty(&v))
}

fn node_pairs(n: &LineageNode) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    for (k, v) in [
        ("namespace", &n.namespace),
        ("name", &n.name),
        ("version", &n.dataset_version),
        ("digest", &n.digest),
        ("run", &n.run),
        ("job", &n.job),
        ("as_of", &n.as_of),
    ] {
        if let Some(v) = v {
            pairs.push((k, v.clone()));
        }
    }
    if let Some(d) = n.depth {
        pairs.push(("depth", d.to_string()));
    }
    pairs
}

/// The graph's answers are nested documents; people read them indented.
fn print_pretty(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// The events in `file`: one JSON event, a JSON array of them, or JSON lines.
fn read_events(file: &std::path::Path) -> anyhow::Result<Vec<Value>> {
    let mut text = String::new();
    if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
    } else {
        text = std::fs::read_to_string(file).with_context(|| format!("reading `{}`", file.display()))?;
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed).with_context(|| format!("`{}` is not a JSON array", file.display()));
    }
    if let Ok(one) = serde_json::from_str::<Value>(trimmed) {
        return Ok(vec![one]);
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("`{}` line {}: not JSON", file.display(), i + 1)))
        .collect()
}

async fn send(c: &Client, project: &str, file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let events = read_events(file)?;
    let path = format!("/api/v1/projects/{}/lineage", segment(project));
    let (mut new, mut duplicate) = (0usize, 0usize);
    for (i, e) in events.iter().enumerate() {
        let answer: Value =
            c.post(&path, e).await.with_context(|| format!("event {} of `{}`", i + 1, file.display()))?;
        if answer["duplicate"] == json!(true) {
            duplicate += 1;
        } else {
            new += 1;
        }
    }
    let summary = json!({ "events": events.len(), "new": new, "duplicates": duplicate });
    show(json, &summary, || println!("sent {} events: {new} new, {duplicate} already received", events.len()))
}

async fn record_runs(c: &Client, project: &str, file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let runs = read_events(file)?;
    let path = format!("/api/v1/projects/{}/lineage/runs", segment(project));
    let mut ids = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        let answer: Value = c.post(&path, r).await.with_context(|| format!("run {} of `{}`", i + 1, file.display()))?;
        ids.push(answer);
    }
    let summary = json!({ "runs": ids });
    show(json, &summary, || {
        for a in &ids {
            let how = if a["duplicate"] == json!(true) { "already recorded" } else { "recorded" };
            println!("{how}: event {}", a["event_id"].as_str().unwrap_or_default());
        }
    })
}

async fn transform(c: &Client, cmd: TransformCmd, json: bool) -> anyhow::Result<()> {
    let base = |p: &str| format!("/api/v1/projects/{}/lineage/transforms", segment(p));
    let v: Value = match cmd {
        TransformCmd::Declare { project, job, kind, justification } => {
            let body = json!({ "job": job, "kind": kind, "justification": justification });
            let resp = c.send_with(reqwest::Method::PUT, &base(&project), &[], Some(&body)).await?;
            resp.json().await.context("unreadable answer from the server")?
        }
        TransformCmd::Approve { project, job } => {
            c.post(&format!("{}/approve", base(&project)), &json!({ "job": job })).await?
        }
        TransformCmd::Withdraw { project, job } => {
            c.post(&format!("{}/withdraw", base(&project)), &json!({ "job": job })).await?
        }
        TransformCmd::List { project } => c.get(&base(&project)).await?,
    };
    show(json, &v, || print_pretty(&v))
}

async fn erase(c: &Client, project: &str, file: &std::path::Path, ticket: &str, json: bool) -> anyhow::Result<()> {
    let mut request = read_events(file)?;
    if request.len() != 1 {
        anyhow::bail!("`{}` must hold one erasure request (a JSON object)", file.display());
    }
    let body = request.remove(0);
    let path = format!("/api/v1/projects/{}/lineage/erasures", segment(project));
    let resp = c.send_with(reqwest::Method::POST, &path, &[("custody-ticket", ticket)], Some(&body)).await?;
    let receipt: Value = resp.json().await.context("unreadable answer from the server")?;
    show(json, &receipt, || {
        println!(
            "erasure receipt {} (audit record {})",
            receipt["id"].as_str().unwrap_or_default(),
            receipt["audit_seq"]
        );
        for d in receipt["deleted"].as_array().into_iter().flatten() {
            println!(
                "  deleted the data of `{}` version `{}`",
                d["dataset"].as_str().unwrap_or_default(),
                d["version"].as_str().unwrap_or_default()
            );
        }
        if let Some(salt) = receipt["record_key_salt"].as_str() {
            println!("  record key salt (keep it: it opens the receipt's key commitment): {salt}");
        }
    })
}

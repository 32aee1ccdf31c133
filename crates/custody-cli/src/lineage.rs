//! `custody lineage`: OpenLineage events sent to a project, and the graph's answers.

use crate::cli::{LineageCmd, LineageNode};
use crate::client::Client;
use crate::commands::{path_segment as segment, query, show};
use anyhow::Context;
use serde_json::{Value, json};
use std::io::Read as _;

/// `custody lineage …`.
pub async fn run(cmd: LineageCmd, c: &Client, json: bool) -> anyhow::Result<()> {
    let (what, node) = match cmd {
        LineageCmd::Send { project, file } => return send(c, &project, &file, json).await,
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

//! Scan reports as SARIF 2.1.0, for code-scanning dashboards: one rule per detection type, a
//! result per finding with the file, the archive member (a logical location) and the byte
//! offset (a region).

use custody_scan::{FileReport, Finding, Severity};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The schema SARIF 2.1.0 logs name.
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// What each rule detects (SARIF `shortDescription`); rules not listed are described by id.
fn description(rule: &str) -> &'static str {
    match rule {
        "pickle.dangerous-global" => {
            "A pickle imports a known-dangerous callable (code execution, file or network access)"
        }
        "pickle.unknown-global" => "A pickle imports something neither known safe nor known dangerous",
        "pickle.dynamic-global" => "A pickle imports a global whose name is computed at load time",
        "pickle.attribute-rewrite" => "A pickle rewrites attributes of an imported object (BUILD/SETITEM on a global)",
        "pickle.ext-opcode" => "A pickle uses the copyreg extension registry (EXT1/EXT2/EXT4)",
        "pickle.code-argument" => "A pickle passes code-like text to a call",
        "pickle.nested" => "A pickle carries another pickle (as bytes, or base64)",
        "pickle.malformed" => "A pickle could not be parsed to its end",
        "pickle.trailing-data" => "Data follows a pickle's STOP",
        "pickle.frame-divergence" => "FRAME boundaries that loaders read differently",
        "pickle.budget" => "A pickle reached a memo, stack or time limit",
        "archive.budget" => "An archive reached a decompression, size or depth limit",
        "archive.encrypted" => "An archive member is encrypted and could not be read",
        "archive.malformed" => "An archive or member is damaged or uses an unsupported method",
        "archive.anomaly" => "A structural oddity in an archive that loaders tolerate",
        "format.unknown" => "The file's format is not recognised, so nothing was scanned",
        "format.unsupported" => "The format is recognised but cannot be decoded",
        "npy.malformed" => "A NumPy header is invalid",
        "deps.vulnerable" => "A pinned dependency is affected by a known vulnerability (OSV)",
        "deps.unpinned" => "A requirement names no single version, so it cannot be checked",
        "deps.malformed" => "A dependency file does not parse",
        "onnx.external-data-escape" => "ONNX external data points outside the model's directory",
        "keras.lambda-layer" => "A Keras Lambda layer: Python bytecode run when the model loads or runs",
        "gguf.chat-template" => "A GGUF chat template (Jinja run at inference), for review",
        r if r.starts_with("secret.") => "A credential or private key in text, a notebook cell or output",
        r if r.starts_with("deps.") => "A dependency file could not be checked in full",
        r if r.ends_with(".malformed") => "A model file is invalid past the point where it was recognised",
        _ => "A custody-scan detection",
    }
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// A URI reference for `path`: relative paths stay relative, absolute ones become `file://`
/// URIs; anything outside RFC 3986's unreserved characters and `/` is percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    if Path::new(path).is_absolute() {
        out.push_str("file://");
    }
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn result(f: &Finding, rule_index: usize, artifact: usize, uri: &str) -> Value {
    let mut physical = json!({ "artifactLocation": { "uri": uri, "index": artifact } });
    let l = &f.location;
    match (l.line, l.offset) {
        // In a notebook the line is within the cell's text, not the file: a logical location.
        (Some(line), _) if l.cell.is_none() => {
            physical["region"] = json!({ "startLine": line, "startColumn": l.column.unwrap_or(1) });
        }
        (_, Some(offset)) if l.cell.is_none() => physical["region"] = json!({ "byteOffset": offset, "byteLength": 1 }),
        _ => {}
    }
    let mut location = json!({ "physicalLocation": physical });
    let mut logical = Vec::new();
    if !l.member.is_empty() {
        logical.push(json!({ "fullyQualifiedName": l.member, "name": l.member, "kind": "member" }));
    }
    if let Some(cell) = l.cell {
        let name = match (l.output, l.line) {
            (Some(o), Some(line)) => format!("cell {cell} output {o} line {line}"),
            (Some(o), None) => format!("cell {cell} output {o}"),
            (None, Some(line)) => format!("cell {cell} line {line}"),
            (None, None) => format!("cell {cell}"),
        };
        logical.push(json!({ "fullyQualifiedName": name, "name": name, "kind": "element" }));
    }
    if !logical.is_empty() {
        location["logicalLocations"] = json!(logical);
    }
    json!({
        "ruleId": f.rule.to_string(),
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "message": { "text": f.message },
        "locations": [location],
        "properties": { "severity": f.severity },
    })
}

/// The SARIF log of a scan: `reports` scanned, `errors` paths that could not be read.
pub fn log(reports: &[FileReport], errors: &[(std::path::PathBuf, String)]) -> Value {
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    for f in reports.iter().flat_map(|r| &r.findings) {
        let next = rules.len();
        rules.entry(f.rule.to_string()).or_insert(next);
    }
    let mut results = Vec::new();
    let mut artifacts = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let u = uri(&r.name);
        artifacts.push(json!({ "location": { "uri": u }, "length": r.bytes_scanned, "properties": { "verdict": r.verdict, "format": r.format } }));
        for f in &r.findings {
            results.push(result(f, rules.get(f.rule.0).copied().unwrap_or(0), i, &u));
        }
    }
    let mut by_index: Vec<(&String, &usize)> = rules.iter().collect();
    by_index.sort_by_key(|(_, i)| **i);
    let rules: Vec<Value> = by_index
        .into_iter()
        .map(|(id, _)| {
            json!({
                "id": id,
                "shortDescription": { "text": description(id) },
                "helpUri": "https://github.com/custody-dev/custody/blob/main/docs/cli.md#scanning-model-files-offline",
            })
        })
        .collect();
    let notifications: Vec<Value> = errors
        .iter()
        .map(|(p, e)| {
            json!({
                "level": "error",
                "message": { "text": format!("cannot scan: {e}") },
                "locations": [{ "physicalLocation": { "artifactLocation": { "uri": uri(&p.display().to_string()) } } }],
            })
        })
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "custody-scan",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/custody-dev/custody",
                "rules": rules,
            }},
            "artifacts": artifacts,
            "results": results,
            "invocations": [{ "executionSuccessful": errors.is_empty(), "toolExecutionNotifications": notifications }],
            "columnKind": "unicodeCodePoints",
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded() {
        assert_eq!(uri("models/a b.pkl"), "models/a%20b.pkl");
        assert_eq!(uri("/tmp/x#1.pt"), "file:///tmp/x%231.pt");
    }
}

//! Jupyter notebooks (`.ipynb`: nbformat 4, and nbformat 3 `worksheets`) and plain text,
//! scanned for secrets with the rules of [`crate::secrets`].
//!
//! A notebook is scanned as its decoded JSON strings, not as raw bytes: a key split across
//! `source` lines or a PEM body written with `\n` escapes reads as it would in Jupyter. Every
//! cell's `source` (or nbformat 3 `input`) is scanned, and every output's text: `stream` text,
//! `execute_result`/`display_data` data of any text MIME type, `error` name, value and
//! traceback. Binary payloads (`image/png`, `image/jpeg`, `image/gif`, `application/pdf`...)
//! are base64 and skipped: random base64 would otherwise spell token prefixes sooner or later.

use std::borrow::Cow;

use serde_json::Value;

use crate::report::{Finding, Location, RuleId, Severity};
use crate::secrets;

/// At most this many secret findings per file; the rest are counted in one info finding, so a
/// file full of keys cannot blow up the report.
const MAX_SECRET_FINDINGS: usize = 1000;

/// Whether `data` looks like a notebook: a JSON object (after an optional BOM and whitespace)
/// that mentions `"cells"`, `"nbformat"` or `"worksheets"`.
pub(crate) fn looks_like_notebook(data: &[u8]) -> bool {
    let body = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data).trim_ascii_start();
    body.first() == Some(&b'{')
        && [&b"\"cells\""[..], b"\"nbformat\"", b"\"worksheets\""]
            .iter()
            .any(|key| body.windows(key.len()).any(|w| w == *key))
}

/// Findings for a plain text file: locations are byte offsets, lines and columns in `data`.
pub(crate) fn scan_text(data: &[u8]) -> Vec<Finding> {
    let mut c = Collector::default();
    c.scan(data, &Place::default());
    c.finish()
}

/// Findings for a notebook. Invalid JSON, or JSON without cells, yields an inconclusive
/// `notebook.malformed` finding, and the raw bytes are scanned as text instead.
pub(crate) fn scan_notebook(data: &[u8]) -> Vec<Finding> {
    let mut c = Collector::default();
    let body = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let bom = data.len() - body.len();
    match serde_json::from_slice::<Value>(body) {
        Err(e) => {
            let offset = bom + offset_of(body, e.line(), e.column());
            let location = Location {
                offset: Some(offset as u64),
                line: Some(e.line() as u64),
                column: Some(e.column() as u64),
                ..Location::default()
            };
            c.malformed(format!("notebook is not valid JSON: {e}"), location);
            c.scan_raw(data);
        }
        Ok(v) => walk(&mut c, &v, data),
    }
    c.finish()
}

fn walk(c: &mut Collector, v: &Value, raw: &[u8]) {
    let Some(nb) = v.as_object() else {
        c.malformed("notebook JSON is not an object".into(), Location::default());
        c.scan_raw(raw);
        return;
    };
    // (path for messages, cell) in order; nbformat 3 cells are numbered across worksheets.
    let mut cells: Vec<(String, &Value)> = Vec::new();
    if let Some(Value::Array(cs)) = nb.get("cells") {
        cells.extend(cs.iter().enumerate().map(|(i, cell)| (format!("cells[{i}]"), cell)));
    } else if let Some(Value::Array(ws)) = nb.get("worksheets") {
        for (w, sheet) in ws.iter().enumerate() {
            match sheet.get("cells") {
                Some(Value::Array(cs)) => {
                    cells.extend(cs.iter().enumerate().map(|(i, cell)| (format!("worksheets[{w}].cells[{i}]"), cell)));
                }
                // Not a worksheet we understand: scan all of it rather than skip it.
                _ => c.scan_value(sheet, "", &Place::new(None, None, format!("worksheets[{w}]")), false),
            }
        }
    } else {
        c.malformed("notebook has no `cells` or `worksheets` array".into(), Location::default());
        c.scan_raw(raw);
        return;
    }
    for (k, (path, cell)) in cells.into_iter().enumerate() {
        let k = Some(k as u64);
        let Some(obj) = cell.as_object() else {
            c.scan_value(cell, "", &Place::new(k, None, path), false);
            continue;
        };
        // nbformat 3 code cells keep their code in `input`.
        for field in ["source", "input"] {
            if let Some(src) = obj.get(field) {
                c.scan_value(src, "", &Place::new(k, None, format!("{path}.{field}")), false);
            }
        }
        match obj.get("outputs") {
            Some(Value::Array(outs)) => {
                for (j, out) in outs.iter().enumerate() {
                    scan_output(c, out, k, j, &path);
                }
            }
            Some(other) => c.scan_value(other, "", &Place::new(k, None, format!("{path}.outputs")), true),
            None => {}
        }
        // Markdown attachments: {name: {mime: data}}, mostly images.
        if let Some(Value::Object(atts)) = obj.get("attachments") {
            for (name, bundle) in atts {
                scan_bundle(c, bundle, &Place::new(k, None, format!("{path}.attachments[{}]", safe_key(name))));
            }
        }
    }
}

fn scan_output(c: &mut Collector, out: &Value, k: Option<u64>, j: usize, path: &str) {
    let o = Some(j as u64);
    let base = format!("{path}.outputs[{j}]");
    let Some(obj) = out.as_object() else {
        c.scan_value(out, "", &Place::new(k, o, base), true);
        return;
    };
    for (key, val) in obj {
        match key.as_str() {
            // Bookkeeping, not content.
            "output_type" | "metadata" | "execution_count" | "prompt_number" | "name" => {}
            "data" => scan_bundle(c, val, &Place::new(k, o, format!("{base}.data"))),
            // Traceback entries are lines without their newlines.
            "traceback" => c.scan_value(val, "\n", &Place::new(k, o, format!("{base}.traceback")), true),
            // nbformat 3 keeps MIME data flat on the output (`text`, `html`, `png`...).
            _ if is_binary_mime(key) => {}
            _ => c.scan_value(val, "", &Place::new(k, o, format!("{base}.{}", safe_key(key))), true),
        }
    }
}

/// A MIME bundle (`data` of an output, or an attachment): every text type, no binary ones.
fn scan_bundle(c: &mut Collector, bundle: &Value, place: &Place) {
    let Some(obj) = bundle.as_object() else {
        c.scan_value(bundle, "", place, true);
        return;
    };
    for (mime, val) in obj {
        if !is_binary_mime(mime) {
            let p = Place::new(place.cell, place.output, format!("{}[{}]", place.path, safe_key(mime)));
            c.scan_value(val, "", &p, true);
        }
    }
}

/// MIME types (and nbformat 3 short keys) whose payload is base64 of binary data.
fn is_binary_mime(mime: &str) -> bool {
    let m = mime.to_ascii_lowercase();
    matches!(m.as_str(), "png" | "jpeg" | "jpg" | "gif" | "pdf" | "bmp" | "webp" | "tiff")
        || (m.starts_with("image/") && !m.contains("svg"))
        || m.starts_with("audio/")
        || m.starts_with("video/")
        || matches!(m.as_str(), "application/pdf" | "application/octet-stream" | "application/zip" | "application/gzip")
}

/// A JSON key as it may appear in a message: keys are user-controlled, so anything unusual
/// (long, odd characters, or itself secret-shaped) is elided rather than echoed.
fn safe_key(key: &str) -> &str {
    let plain = !key.is_empty()
        && key.len() <= 48
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+/-".contains(&b))
        && secrets::find_secrets(key.as_bytes()).is_some_and(|hits| hits.is_empty());
    if plain { key } else { "…" }
}

/// Where in the notebook a text comes from.
#[derive(Default)]
struct Place {
    cell: Option<u64>,
    output: Option<u64>,
    /// JSON-style path for messages (`cells[3].outputs[0].data[text/plain]`); empty for text.
    path: String,
}

impl Place {
    fn new(cell: Option<u64>, output: Option<u64>, path: String) -> Self {
        Place { cell, output, path }
    }
}

#[derive(Default)]
struct Collector {
    findings: Vec<Finding>,
    incomplete: bool,
}

impl Collector {
    fn malformed(&mut self, message: String, location: Location) {
        self.findings.push(Finding { rule: RuleId::NOTEBOOK_MALFORMED, severity: Severity::Low, message, location });
    }

    /// A notebook that could not be parsed: its raw bytes, so no secret in it goes unreported.
    fn scan_raw(&mut self, data: &[u8]) {
        self.scan(data, &Place::new(None, None, "the raw file".into()));
    }

    /// Scan a JSON value's text: a string, a list of strings joined by `sep`, anything else as
    /// pretty-printed JSON (e.g. `application/json` output, or a field of an unexpected type).
    /// Output text has ANSI colour codes removed first (tracebacks are full of them, and the
    /// `m` that ends one would glue onto a following token).
    fn scan_value(&mut self, v: &Value, sep: &str, place: &Place, output: bool) {
        let text: Cow<'_, str> = match v {
            Value::String(s) => Cow::Borrowed(s),
            Value::Array(items) => {
                let parts: Vec<Cow<'_, str>> = items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Cow::Borrowed(s.as_str()),
                        other => Cow::Owned(serde_json::to_string_pretty(other).unwrap_or_default()),
                    })
                    .collect();
                Cow::Owned(parts.join(sep))
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => return,
            Value::Object(_) => Cow::Owned(serde_json::to_string_pretty(v).unwrap_or_default()),
        };
        if output {
            let stripped = strip_ansi(text.as_bytes());
            self.scan(&stripped, place);
        } else {
            self.scan(text.as_bytes(), place);
        }
    }

    fn scan(&mut self, text: &[u8], place: &Place) {
        let Some(hits) = secrets::find_secrets(text) else {
            self.incomplete = true;
            return;
        };
        for h in hits {
            let note = h.note.unwrap_or("");
            let within = if place.path.is_empty() { String::new() } else { format!(" in {}", place.path) };
            self.findings.push(Finding {
                rule: h.rule,
                severity: h.severity,
                message: format!("{} `{}`{note}{within} at line {}, column {}", h.kind, h.redacted, h.line, h.column),
                location: Location {
                    member: String::new(),
                    offset: Some(h.offset as u64),
                    line: Some(h.line),
                    column: Some(h.column),
                    cell: place.cell,
                    output: place.output,
                },
            });
        }
    }

    fn finish(mut self) -> Vec<Finding> {
        if self.incomplete {
            self.findings.push(Finding {
                rule: RuleId::SECRET_INCOMPLETE,
                severity: Severity::Low,
                message: "secret scanner unavailable; text not scanned".into(),
                location: Location::default(),
            });
        }
        let (mut secrets, mut rest): (Vec<Finding>, Vec<Finding>) = self
            .findings
            .into_iter()
            .partition(|f| f.rule.0.starts_with("secret.") && f.rule != RuleId::SECRET_INCOMPLETE);
        if secrets.len() > MAX_SECRET_FINDINGS {
            // Keep the most severe; stable, so equal ones stay in file order.
            secrets.sort_by_key(|f| std::cmp::Reverse(f.severity));
            let omitted = secrets.len() - MAX_SECRET_FINDINGS;
            secrets.truncate(MAX_SECRET_FINDINGS);
            rest.push(Finding {
                rule: RuleId::SECRET_LIMIT,
                severity: Severity::Info,
                message: format!("{omitted} more secret findings not listed (limit {MAX_SECRET_FINDINGS} per file)"),
                location: Location::default(),
            });
        }
        rest.extend(secrets);
        rest
    }
}

/// Remove ANSI escape sequences: CSI (`ESC [ params final`), OSC (`ESC ] ... BEL` or
/// `ESC ] ... ESC \`), and two-byte escapes.
fn strip_ansi(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.contains(&0x1b) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b != 0x1b {
            out.push(b);
            i += 1;
            continue;
        }
        match s.get(i + 1) {
            Some(b'[') => {
                i += 2;
                while s.get(i).is_some_and(|c| (0x20..=0x3f).contains(c)) {
                    i += 1;
                }
                if s.get(i).is_some_and(|c| (0x40..=0x7e).contains(c)) {
                    i += 1;
                }
            }
            Some(b']') => {
                i += 2;
                while let Some(&c) = s.get(i) {
                    if c == 0x07 {
                        i += 1;
                        break;
                    }
                    if c == 0x1b && s.get(i + 1) == Some(&b'\\') {
                        i += 2;
                        break;
                    }
                    i += 1;
                }
            }
            Some(_) => i += 2,
            None => i += 1,
        }
    }
    Cow::Owned(out)
}

/// Byte offset of serde_json's 1-based (line, column), clamped to the input.
fn offset_of(body: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    if line > 1 {
        let mut seen = 1;
        for (i, &b) in body.iter().enumerate() {
            if b == b'\n' {
                seen += 1;
                if seen == line {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    (start + column.saturating_sub(1)).min(body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(&*strip_ansi(b"\x1b[0;31mred\x1b[0m plain"), b"red plain");
        assert_eq!(&*strip_ansi(b"\x1b]0;title\x07x"), b"x");
        assert_eq!(&*strip_ansi(b"end\x1b"), b"end");
    }

    #[test]
    fn json_error_offsets() {
        assert_eq!(offset_of(b"{\n  \"a\": x", 2, 8), 9);
        assert_eq!(offset_of(b"", 1, 0), 0);
    }

    #[test]
    fn detection() {
        assert!(looks_like_notebook(b"\xef\xbb\xbf \n{\"cells\": []}"));
        assert!(!looks_like_notebook(b"[\"cells\"]"));
        assert!(!looks_like_notebook(b"{\"a\": 1}"));
    }
}

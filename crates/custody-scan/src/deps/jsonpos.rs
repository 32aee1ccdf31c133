//! Where things are in a JSON lockfile.
//!
//! `serde_json` does not report positions of values, so after parsing we lex the text once more
//! and note every object key whose value is an object (the shape of a package entry in
//! `package-lock.json` and `Pipfile.lock`). Lexing strings properly means quotes, colons and
//! braces inside string values cannot be mistaken for keys.

use std::collections::HashMap;

/// Byte offsets of `"key": {` occurrences, by raw (still escaped) key text, in text order.
pub(crate) struct KeyIndex<'a> {
    text: &'a str,
    keys: HashMap<&'a str, Vec<usize>>,
}

impl<'a> KeyIndex<'a> {
    /// Lex `text` (already known to be valid JSON) once.
    pub(crate) fn new(text: &'a str) -> KeyIndex<'a> {
        let bytes = text.as_bytes();
        let mut keys: HashMap<&'a str, Vec<usize>> = HashMap::new();
        let mut at = 0;
        while let Some(&b) = bytes.get(at) {
            if b != b'"' {
                at += 1;
                continue;
            }
            let start = at;
            let Some(end) = string_end(bytes, at + 1) else { break };
            at = end + 1;
            let after_colon = skip_ws(bytes, at);
            if bytes.get(after_colon) == Some(&b':')
                && bytes.get(skip_ws(bytes, after_colon + 1)) == Some(&b'{')
                && let Some(key) = text.get(start + 1..end)
            {
                keys.entry(key).or_default().push(start);
            }
        }
        KeyIndex { text, keys }
    }

    /// The offset of the first `"name": {` at or after `from` whose object starts with
    /// `"version": "<version>"` among its plain fields (when `version` is given), else the first
    /// at or after `from` at all.
    pub(crate) fn find(&self, name: &str, from: usize, version: Option<&str>) -> Option<usize> {
        let raw = raw_json_string(name)?;
        let candidates = self.keys.get(raw.as_str())?;
        let mut after = candidates.iter().copied().filter(|&c| c >= from);
        let first = after.clone().next();
        if let Some(version) = version
            && let Some(raw_version) = raw_json_string(version)
        {
            let wanted = format!("\"{raw_version}\"");
            if let Some(hit) = after.find(|&c| self.object_has_version(c, &wanted)) {
                return Some(hit);
            }
        }
        first
    }

    /// Whether the object after the key at `key_at` has `"version": <wanted>` before its first
    /// nested object or its end.
    fn object_has_version(&self, key_at: usize, wanted: &str) -> bool {
        let Some(rest) = self.text.get(key_at..) else { return false };
        let Some(open) = rest.find('{') else { return false };
        let body = rest.get(open + 1..).unwrap_or("");
        let body = body.get(..body.find(['{', '}']).unwrap_or(body.len())).unwrap_or("");
        let Some(v) = body.find("\"version\"") else { return false };
        let after = body.get(v + "\"version\"".len()..).unwrap_or("").trim_start();
        after.strip_prefix(':').is_some_and(|a| a.trim_start().starts_with(wanted))
    }
}

/// JSON text of a string without its quotes (how it appears in a lockfile written by a
/// standard serialiser).
fn raw_json_string(s: &str) -> Option<String> {
    let quoted = serde_json::to_string(s).ok()?;
    quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')).map(str::to_string)
}

/// Index of the closing quote of a string whose body starts at `at`.
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match bytes.get(at)? {
            b'"' => return Some(at),
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // Error positions may fall inside a multi-byte character; count up to its start.
    let end = (0..=offset.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    let before = text.get(..end).unwrap_or("");
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Byte offset of a 1-based line and column (in characters), as `serde_json` reports errors.
pub(crate) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let rest = text.get(line_start..).unwrap_or("");
    let in_line = rest.char_indices().nth(column.saturating_sub(1)).map_or(rest.len(), |(i, _)| i);
    line_start + in_line
}

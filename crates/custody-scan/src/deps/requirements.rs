//! pip requirements files (`requirements*.txt`).
//!
//! Only `name==version` (or `===version`) pins name a version that can be checked; everything
//! else a requirements file can say is noted so that nothing unchecked passes as checked:
//! ranges and bare names are "not pinned", `-r`/`-c` includes are "not followed", editable,
//! URL and path requirements are "not from the registry". Environment markers are not
//! evaluated (the pin is checked whatever the marker says), and `--hash` options are ignored.

use super::{Dep, Note, Parsed, pep503};

/// Parse a requirements file. Lines pip would reject become `deps.malformed` notes; the rest
/// of the file is still read.
pub(crate) fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    for (offset, line) in logical_lines(text) {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let offset = offset + (line.len() - line.trim_start().len());
        parse_line(trimmed, offset, &mut out);
    }
    out
}

/// Joins `\`-continued lines and strips comments. Yields the byte offset of the first physical
/// line and the logical line (continuations joined with nothing, as pip does).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut offset = 0;
    for physical in text.split_inclusive('\n') {
        let start = offset;
        offset += physical.len();
        let body = physical.trim_end_matches(['\n', '\r']);
        // A comment ends the logical line, even after a continuation (pip drops it the same way).
        let (body, had_comment) = match comment_start(body) {
            Some(at) => (body.get(..at).unwrap_or(""), true),
            None => (body, false),
        };
        let (body, continues) = match body.strip_suffix('\\') {
            Some(b) if !had_comment => (b, true),
            _ => (body, false),
        };
        let entry = current.get_or_insert_with(|| (start, String::new()));
        entry.1.push_str(body);
        if !continues && let Some(done) = current.take() {
            out.push(done);
        }
    }
    out.extend(current);
    out
}

/// Where a comment starts: `#` at the start of the line or after whitespace (so URL fragments
/// such as `#egg=name` are not comments).
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    bytes
        .iter()
        .enumerate()
        .find(|&(i, &b)| b == b'#' && (i == 0 || bytes.get(i - 1).is_some_and(|p| p.is_ascii_whitespace())))
        .map(|(i, _)| i)
}

fn parse_line(line: &str, offset: usize, out: &mut Parsed) {
    let (option, value) = split_option(line);
    match option {
        Some("-r" | "--requirement" | "-c" | "--constraint") => {
            out.notes.push(Note::not_followed(
                format!("`{line}` includes another file, which is not followed here: scan it separately"),
                offset,
            ));
            return;
        }
        Some("-e" | "--editable") => {
            out.notes.push(Note::unpinned(
                format!("`{value}` is an editable requirement, not a registry release; it cannot be checked"),
                offset,
            ));
            return;
        }
        // Index, hash-mode and build options do not name packages.
        Some(_) => return,
        None => {}
    }
    // Options after the requirement (`--hash=...`, `--config-settings`) are pip's, not PEP 508's.
    let requirement = cut_options(line);
    let (spec, _marker) = match requirement.split_once(';') {
        Some((s, m)) => (s.trim(), Some(m.trim())),
        None => (requirement.trim(), None),
    };
    if spec.contains("://") || spec.starts_with(['.', '/', '~']) || spec.contains('@') {
        out.notes.push(Note::unpinned(
            format!("`{spec}` is a URL or path requirement, not a registry release; it cannot be checked"),
            offset,
        ));
        return;
    }
    let name_len = spec.bytes().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')).count();
    let (name, mut rest) = spec.split_at(name_len);
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        out.notes.push(Note::malformed(format!("`{line}` is not a requirement"), offset));
        return;
    }
    rest = rest.trim_start();
    if let Some(after) = rest.strip_prefix('[') {
        let Some((_extras, after)) = after.split_once(']') else {
            out.notes.push(Note::malformed(format!("`{line}`: unclosed extras"), offset));
            return;
        };
        rest = after.trim_start();
    }
    let rest = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')).unwrap_or(rest).trim();
    let key = pep503(name);
    if rest.is_empty() {
        out.notes.push(Note::unpinned(format!("{name} has no version: not pinned, cannot be checked"), offset));
        return;
    }
    let mut pinned = None;
    for clause in rest.split(',') {
        let clause = clause.trim();
        let Some((op, version)) = operator(clause) else {
            out.notes.push(Note::malformed(format!("`{line}`: `{clause}` is not a version specifier"), offset));
            return;
        };
        let version = version.trim();
        if version.is_empty() {
            out.notes.push(Note::malformed(format!("`{line}`: `{clause}` has no version"), offset));
            return;
        }
        let exact = op == "===" || (op == "==" && !version.ends_with(".*"));
        if exact && pinned.is_none() {
            pinned = Some(version.to_string());
        }
    }
    match pinned {
        Some(version) => out.deps.push(Dep { name: name.to_string(), key, version, offset: Some(offset) }),
        None => out.notes.push(Note::unpinned(format!("{name} {rest}: not pinned, cannot be checked"), offset)),
    }
}

/// A leading pip option and its value: `-r file`, `--requirement=file`, `-rfile`.
fn split_option(line: &str) -> (Option<&str>, &str) {
    if !line.starts_with('-') {
        return (None, line);
    }
    let end = line.find(|c: char| c.is_whitespace() || c == '=').unwrap_or(line.len());
    let (opt, value) = line.split_at(end);
    let value = value.trim_start_matches(|c: char| c.is_whitespace() || c == '=');
    // Short options may be glued to their value (`-rfile.txt`).
    if !opt.starts_with("--")
        && let (Some(short), Some(glued)) = (opt.get(..2), opt.get(2..))
        && !glued.is_empty()
    {
        return (Some(short), glued);
    }
    (Some(opt), value)
}

/// The requirement without trailing pip options (` --hash=...`).
fn cut_options(line: &str) -> &str {
    let bytes = line.as_bytes();
    let cut = bytes
        .windows(3)
        .position(|w| w.first().is_some_and(|b| b.is_ascii_whitespace()) && w.get(1..) == Some(&b"--"[..]));
    match cut {
        Some(at) => line.get(..at).unwrap_or(line),
        None => line,
    }
}

/// Split a PEP 440 specifier clause into its operator and version.
fn operator(clause: &str) -> Option<(&'static str, &str)> {
    // Longest operators first so `===` is not read as `==` followed by `=`.
    const OPS: [&str; 8] = ["===", "==", "!=", "<=", ">=", "~=", "<", ">"];
    OPS.iter().find_map(|op| clause.strip_prefix(op).map(|v| (*op, v)))
}

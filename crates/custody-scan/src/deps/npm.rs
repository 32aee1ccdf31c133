//! `package-lock.json` (and `npm-shrinkwrap.json`, the same format).
//!
//! lockfileVersion 2 and 3 list every installed package in `packages`, keyed by its install
//! path (`node_modules/a/node_modules/@scope/b`); the package name is what follows the last
//! `node_modules/` unless the entry names itself (aliases). lockfileVersion 1 has only the
//! nested `dependencies` tree.

use serde_json::{Map, Value};

use super::jsonpos::KeyIndex;
use super::{Dep, Malformed, Note, Parsed};

/// serde_json refuses nesting deeper than 128 levels, so the tree walk is bounded anyway; this
/// keeps the bound explicit.
const MAX_DEPTH: usize = 256;

/// Parse a `package-lock.json`.
pub(crate) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let root: Value = serde_json::from_str(text).map_err(|e| Malformed::from_json(text, &e))?;
    let Some(root) = root.as_object() else {
        return Err(Malformed { message: "top level is not a JSON object".into(), offset: Some(0) });
    };
    let index = KeyIndex::new(text);
    let mut out = Parsed::default();
    match (root.get("packages"), root.get("dependencies")) {
        (Some(Value::Object(packages)), _) => {
            let from = index.find("packages", 0, None).unwrap_or(0);
            for (path, entry) in packages {
                // "" is the project itself; paths without node_modules/ are workspace folders.
                let Some(at) = path.rfind("node_modules/") else { continue };
                let installed_as = path.get(at + "node_modules/".len()..).unwrap_or("");
                if entry.get("link").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                let name = entry.get("name").and_then(Value::as_str).unwrap_or(installed_as);
                let version = entry.get("version").and_then(Value::as_str);
                let offset = index.find(path, from, version);
                add(&mut out, name, version, offset);
            }
        }
        (Some(_), _) => {
            return Err(Malformed {
                message: "`packages` is not an object".into(),
                offset: index.find("packages", 0, None),
            });
        }
        (None, Some(Value::Object(deps))) => {
            let from = index.find("dependencies", 0, None).unwrap_or(0);
            walk_v1(deps, &index, from, 0, &mut out);
        }
        (None, Some(_)) => {
            return Err(Malformed {
                message: "`dependencies` is not an object".into(),
                offset: index.find("dependencies", 0, None),
            });
        }
        (None, None) => {}
    }
    Ok(out)
}

/// lockfileVersion 1: `{"name": {"version": ..., "dependencies": {...nested}}}`.
fn walk_v1(deps: &Map<String, Value>, index: &KeyIndex<'_>, from: usize, depth: usize, out: &mut Parsed) {
    if depth > MAX_DEPTH {
        return;
    }
    for (name, entry) in deps {
        let version = entry.get("version").and_then(Value::as_str);
        let offset = index.find(name, from, version);
        add(out, name, version, offset);
        if let Some(Value::Object(nested)) = entry.get("dependencies") {
            walk_v1(nested, index, offset.unwrap_or(from), depth + 1, out);
        }
    }
}

fn add(out: &mut Parsed, name: &str, version: Option<&str>, offset: Option<usize>) {
    let Some(version) = version else {
        out.notes.push(Note::unpinned(format!("{name} has no version; it cannot be checked"), offset));
        return;
    };
    // Aliases (`"foo": {"version": "npm:bar@1.2.3"}`) install another package under this name.
    if let Some(alias) = version.strip_prefix("npm:")
        && let Some(at) = alias.rfind('@').filter(|&at| at > 0)
    {
        let (real, v) = (alias.get(..at).unwrap_or(""), alias.get(at + 1..).unwrap_or(""));
        out.deps.push(Dep { name: real.to_string(), key: real.to_string(), version: v.to_string(), offset });
        return;
    }
    // Git, tarball and file dependencies record a URL or path instead of a registry version.
    if version.contains(':') || version.contains('/') {
        out.notes.push(Note::unpinned(
            format!("{name} is installed from `{version}`, not the registry; it cannot be checked"),
            offset,
        ));
        return;
    }
    out.deps.push(Dep { name: name.to_string(), key: name.to_string(), version: version.to_string(), offset });
}

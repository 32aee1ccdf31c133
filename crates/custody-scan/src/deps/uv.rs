//! `uv.lock`: TOML with one `[[package]]` table per locked package and a `source` table saying
//! where it comes from.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use super::{Malformed, Parsed};

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: Spanned<String>,
    version: Option<String>,
    /// Only the kind of source matters (its key: `registry`, `git`, `editable`, ...).
    source: Option<BTreeMap<String, IgnoredAny>>,
}

/// Parse a `uv.lock`.
pub(crate) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let lock: Lock = toml::from_str(text).map_err(Malformed::from_toml)?;
    let mut out = Parsed::default();
    for p in lock.package {
        let offset = p.name.span().start;
        let name = p.name.into_inner();
        let kinds: Vec<&str> = p.source.as_ref().map(|s| s.keys().map(String::as_str).collect()).unwrap_or_default();
        // The project's own workspace members: not published packages, nothing to look up.
        if kinds.iter().any(|k| matches!(*k, "editable" | "virtual")) {
            continue;
        }
        if let Some(kind) = kinds.iter().find(|k| matches!(**k, "git" | "path" | "directory" | "url")) {
            out.not_from_registry(&name, kind, offset);
            continue;
        }
        out.pypi(name, p.version, offset);
    }
    Ok(out)
}

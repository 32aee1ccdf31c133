//! `poetry.lock`: TOML with one `[[package]]` table per locked package.

use serde::Deserialize;
use toml::Spanned;

use super::{Dep, Malformed, Note, Parsed, pep503};

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: Spanned<String>,
    version: Option<String>,
    source: Option<Source>,
}

#[derive(Deserialize)]
struct Source {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Parse a `poetry.lock`.
pub(crate) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let lock: Lock = toml::from_str(text).map_err(Malformed::from_toml)?;
    let mut out = Parsed::default();
    for p in lock.package {
        let offset = p.name.span().start;
        let name = p.name.into_inner();
        // Git, path and URL sources are not PyPI releases, whatever version they claim.
        if let Some(kind) =
            p.source.and_then(|s| s.kind).filter(|k| matches!(k.as_str(), "git" | "directory" | "file" | "url"))
        {
            out.notes.push(Note::unpinned(
                format!("{name} comes from a {kind} source, not the registry; it cannot be checked"),
                offset,
            ));
            continue;
        }
        match p.version {
            Some(version) => out.deps.push(Dep { key: pep503(&name), name, version, offset: Some(offset) }),
            None => out.notes.push(Note::unpinned(format!("{name} has no version; it cannot be checked"), offset)),
        }
    }
    Ok(out)
}

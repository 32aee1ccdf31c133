//! `poetry.lock`: TOML with one `[[package]]` table per locked package.

use serde::Deserialize;
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
            out.not_from_registry(&name, &kind, offset);
            continue;
        }
        out.pypi(name, p.version, offset);
    }
    Ok(out)
}

//! `Cargo.lock`: TOML with one `[[package]]` table per crate.

use serde::Deserialize;
use toml::Spanned;

use super::{Dep, Malformed, Note, Parsed};

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: Spanned<String>,
    version: String,
    source: Option<String>,
}

/// The crates.io index, as Cargo records it (git protocol and sparse protocol).
const CRATES_IO: [&str; 2] =
    ["registry+https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io/"];

/// Parse a `Cargo.lock`.
pub(crate) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let lock: Lock = toml::from_str(text).map_err(Malformed::from_toml)?;
    let mut out = Parsed::default();
    for p in lock.package {
        let offset = p.name.span().start;
        let name = p.name.into_inner();
        match p.source.as_deref() {
            // No source: a workspace member or path dependency, not a published crate.
            None => {}
            Some(s) if CRATES_IO.contains(&s) => {
                out.deps.push(Dep { key: name.clone(), name, version: p.version, offset: Some(offset) });
            }
            Some(s) => {
                // Another registry's crate of the same name is a different crate; git sources
                // have no crates.io release to compare with.
                out.notes.push(Note::unpinned(
                    format!("{name} {} comes from `{s}`, not crates.io; it cannot be checked", p.version),
                    offset,
                ));
            }
        }
    }
    Ok(out)
}

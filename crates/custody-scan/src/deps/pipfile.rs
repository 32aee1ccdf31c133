//! `Pipfile.lock`: JSON with `default` and `develop` maps of package name to
//! `{"version": "==1.2.3", ...}`.

use serde_json::Value;

use super::jsonpos::KeyIndex;
use super::{Dep, Malformed, Note, Parsed, pep503};

/// Parse a `Pipfile.lock`.
pub(crate) fn parse(text: &str) -> Result<Parsed, Malformed> {
    let root: Value = serde_json::from_str(text).map_err(|e| Malformed::from_json(text, &e))?;
    let Some(root) = root.as_object() else {
        return Err(Malformed { message: "top level is not a JSON object".into(), offset: Some(0) });
    };
    let index = KeyIndex::new(text);
    let mut out = Parsed::default();
    for section in ["default", "develop"] {
        let Some(packages) = root.get(section) else { continue };
        let Some(packages) = packages.as_object() else {
            let offset = index.find(section, 0, None);
            return Err(Malformed { message: format!("`{section}` is not an object"), offset });
        };
        let section_at = index.find(section, 0, None).unwrap_or(0);
        for (name, entry) in packages {
            let version = entry.get("version").and_then(Value::as_str);
            let offset = index.find(name, section_at, version);
            let pinned = version.and_then(|v| v.strip_prefix("===").or_else(|| v.strip_prefix("==")));
            match pinned {
                Some(v) => {
                    out.deps.push(Dep { name: name.clone(), key: pep503(name), version: v.trim().to_string(), offset })
                }
                None => {
                    let what = ["git", "path", "file", "editable"]
                        .iter()
                        .find(|k| entry.get(**k).is_some())
                        .map_or_else(|| "is not pinned".to_string(), |k| format!("comes from a {k} source"));
                    out.notes.push(Note::unpinned(
                        format!("{name} {what}, not a registry release; it cannot be checked"),
                        offset,
                    ));
                }
            }
        }
    }
    Ok(out)
}

//! The manifest of a model: every file (or file shard) paired with its digest, in the order and
//! with the names the OpenSSF Model Signing v1.0 format fixes.

use crate::ProvenanceError;
use aws_lc_rs::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// The paths OMS signers leave out of a manifest by default (git metadata).
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// The digest algorithm of every resource (OMS `hash_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// SHA-256 (the OMS default).
    Sha256,
    /// BLAKE3 (256-bit output).
    Blake3,
}

impl HashAlgorithm {
    /// The OMS name: `sha256` or `blake3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Blake3 => "blake3",
        }
    }

    /// Parses an OMS name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sha256" => Some(Self::Sha256),
            "blake3" => Some(Self::Blake3),
            _ => None,
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a model is cut into resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One resource per file.
    Files,
    /// Files cut into shards of `shard_size` bytes (the last one shorter), named
    /// `path:start:end`; empty files have no shard.
    Shards {
        /// Bytes per shard, at least 1.
        shard_size: u64,
    },
}

/// The OMS `serialization` record: everything needed to recompute the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serialization {
    /// Files or shards.
    pub method: Method,
    /// The resource digest algorithm.
    pub hash: HashAlgorithm,
    /// Whether symbolic links are followed (refused otherwise).
    pub allow_symlinks: bool,
    /// Paths relative to the model root left out of the manifest, with everything under them.
    pub ignore_paths: Vec<String>,
}

impl Serialization {
    /// Whole files, SHA-256, no symlinks, git metadata ignored: what `model_signing sign` does.
    pub fn files(hash: HashAlgorithm) -> Self {
        Self {
            method: Method::Files,
            hash,
            allow_symlinks: false,
            ignore_paths: GIT_PATHS.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    /// Adds a path to ignore (kept sorted and unique).
    pub fn ignore(&mut self, path: impl Into<String>) {
        let path = path.into();
        if !self.ignore_paths.contains(&path) {
            self.ignore_paths.push(path);
            self.ignore_paths.sort();
        }
    }

    /// The OMS `serialization` record as JSON (`method`, `hash_type`, `shard_size`,
    /// `allow_symlinks`, `ignore_paths`), as it appears in the signed statement.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(SerializationRecord::from(self)).unwrap_or_default()
    }

    /// The `algorithm` of every resource, as OMS signers write it: the hash's name, or in
    /// shard mode `<hash>-sharded-<shard_size>`.
    pub fn resource_algorithm(&self) -> String {
        match self.method {
            Method::Files => self.hash.as_str().to_owned(),
            Method::Shards { shard_size } => format!("{}-sharded-{shard_size}", self.hash),
        }
    }

    /// Whether `relative` (a `/`-separated path under the model root) is ignored: it equals
    /// an ignore path or lies under one, compared component by component.
    pub fn is_ignored(&self, relative: &str) -> bool {
        self.ignore_paths.iter().any(|ignored| {
            let mut want = ignored.split('/').filter(|c| !c.is_empty() && *c != ".");
            let mut have = relative.split('/');
            loop {
                match (want.next(), have.next()) {
                    (None, _) => return true,
                    (Some(w), Some(h)) if w == h => {}
                    _ => return false,
                }
            }
        })
    }
}

/// The serialization record as JSON, in the field names of the OMS predicate.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SerializationRecord {
    pub method: String,
    pub hash_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "whole_number")]
    pub shard_size: Option<u64>,
    pub allow_symlinks: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_paths: Vec<String>,
}

/// A byte count written as a JSON integer, or as a float with no fraction: model_signing goes
/// through protobuf's `Struct`, whose numbers are doubles (`1000.0`).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    if let Some(u) = n.as_u64() {
        return Ok(Some(u));
    }
    match n.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 9.007_199_254_740_992e15 => Ok(Some(f as u64)),
        _ => Err(serde::de::Error::custom(format!("`{n}` is not a whole number of bytes"))),
    }
}

impl From<&Serialization> for SerializationRecord {
    fn from(s: &Serialization) -> Self {
        let (method, shard_size) = match s.method {
            Method::Files => ("files", None),
            Method::Shards { shard_size } => ("shards", Some(shard_size)),
        };
        Self {
            method: method.to_owned(),
            hash_type: s.hash.as_str().to_owned(),
            shard_size,
            allow_symlinks: s.allow_symlinks,
            ignore_paths: s.ignore_paths.clone(),
        }
    }
}

impl TryFrom<SerializationRecord> for Serialization {
    type Error = ProvenanceError;
    fn try_from(r: SerializationRecord) -> Result<Self, ProvenanceError> {
        const FIELD: &str = "predicate.serialization";
        let hash = HashAlgorithm::parse(&r.hash_type).ok_or_else(|| {
            ProvenanceError::bundle(format!("{FIELD}.hash_type"), format!("`{}` is not sha256 or blake3", r.hash_type))
        })?;
        let method = match (r.method.as_str(), r.shard_size) {
            ("files", _) => Method::Files,
            ("shards", Some(size)) if size > 0 => Method::Shards { shard_size: size },
            ("shards", _) => {
                return Err(ProvenanceError::bundle(
                    format!("{FIELD}.shard_size"),
                    "shards need a positive shard_size",
                ));
            }
            (other, _) => {
                return Err(ProvenanceError::bundle(
                    format!("{FIELD}.method"),
                    format!("`{other}` is not `files` or `shards`"),
                ));
            }
        };
        let mut ignore_paths = r.ignore_paths;
        ignore_paths.sort();
        ignore_paths.dedup();
        Ok(Self { method, hash, allow_symlinks: r.allow_symlinks, ignore_paths })
    }
}

/// The name of one resource: a `/`-separated path relative to the model root (`.` for a
/// single-file model), with a byte range in shard mode.
///
/// Resources sort by path *component* (so `a/b` < `a-c/f` < `a.txt`), then by range, which
/// is the order OMS signers hash them in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceName {
    /// The path.
    pub path: String,
    /// `[start, end)` in shard mode.
    pub range: Option<(u64, u64)>,
}

impl ResourceName {
    /// Parses a name as the serialization method writes it.
    pub fn parse(name: &str, method: Method) -> Result<Self, String> {
        let name_ok = |p: &str| !p.is_empty() && !p.starts_with('/') && p.split('/').all(|c| c != "..");
        match method {
            Method::Files => {
                if !name_ok(name) {
                    return Err(format!("`{name}` is not a relative path inside the model"));
                }
                Ok(Self { path: name.to_owned(), range: None })
            }
            Method::Shards { .. } => {
                let parts: Vec<&str> = name.split(':').collect();
                let [path, start, end] = parts[..] else {
                    return Err(format!("`{name}` is not `path:start:end`"));
                };
                let (Ok(start), Ok(end)) = (start.parse::<u64>(), end.parse::<u64>()) else {
                    return Err(format!("`{name}`: start and end must be byte offsets"));
                };
                if !name_ok(path) || end < start {
                    return Err(format!("`{name}` is not a valid shard"));
                }
                Ok(Self { path: path.to_owned(), range: Some((start, end)) })
            }
        }
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.range {
            None => f.write_str(&self.path),
            Some((start, end)) => write!(f, "{}:{start}:{end}", self.path),
        }
    }
}

impl Ord for ResourceName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.path.split('/').cmp(other.path.split('/')).then(self.range.cmp(&other.range))
    }
}

impl PartialOrd for ResourceName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One resource and its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Its name.
    pub name: ResourceName,
    /// The algorithm of `digest`.
    pub algorithm: HashAlgorithm,
    /// The 32-byte digest.
    pub digest: [u8; 32],
}

/// A model's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Informative name (the last component of the model's path); not covered by equality of
    /// contents, see [`Manifest::diff`].
    pub model_name: String,
    /// How the resources were produced.
    pub serialization: Serialization,
    /// The resources, in signing order.
    pub resources: Vec<Resource>,
}

impl Manifest {
    /// Builds a manifest, sorting the resources into signing order.
    pub fn new(model_name: String, serialization: Serialization, mut resources: Vec<Resource>) -> Self {
        resources.sort_by(|a, b| a.name.cmp(&b.name));
        Self { model_name, serialization, resources }
    }

    /// The root digest: SHA-256 over the raw resource digests concatenated in order.
    pub fn root_digest(&self) -> [u8; 32] {
        let mut ctx = Context::new(&SHA256);
        for r in &self.resources {
            ctx.update(&r.digest);
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// What differs between this (signed) manifest and the one computed from the files.
    pub fn diff(&self, actual: &Manifest) -> ManifestDiff {
        let expected: BTreeMap<String, &Resource> = self.resources.iter().map(|r| (r.name.to_string(), r)).collect();
        let found: BTreeMap<String, &Resource> = actual.resources.iter().map(|r| (r.name.to_string(), r)).collect();
        let mut diff = ManifestDiff::default();
        for (name, want) in &expected {
            match found.get(name) {
                None => diff.missing.push(name.clone()),
                Some(have) if have.digest != want.digest || have.algorithm != want.algorithm => {
                    diff.changed.push(ChangedResource {
                        name: name.clone(),
                        expected: format!("{}:{}", want.algorithm, hex::encode(want.digest)),
                        actual: format!("{}:{}", have.algorithm, hex::encode(have.digest)),
                    });
                }
                Some(_) => {}
            }
        }
        diff.extra = found.keys().filter(|n| !expected.contains_key(*n)).cloned().collect();
        diff
    }
}

/// A resource whose digest changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedResource {
    /// The resource.
    pub name: String,
    /// `algorithm:hex` as signed.
    pub expected: String,
    /// `algorithm:hex` as found.
    pub actual: String,
}

/// The differences between a signed manifest and the model on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ManifestDiff {
    /// Resources whose content differs.
    pub changed: Vec<ChangedResource>,
    /// Signed resources not found.
    pub missing: Vec<String>,
    /// Resources found but not signed.
    pub extra: Vec<String>,
}

impl ManifestDiff {
    /// True when the model matches its signature exactly.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn file(path: &str) -> ResourceName {
        ResourceName { path: path.to_owned(), range: None }
    }

    #[test]
    fn components_order_before_bytes() {
        let mut names = [file("a.txt"), file("a-c/f"), file("a/b"), file("b"), file("a/b/c")];
        names.sort();
        let shown: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["a/b", "a/b/c", "a-c/f", "a.txt", "b"]);
    }

    #[test]
    fn shards_order_numerically() {
        let m = Method::Shards { shard_size: 10 };
        let mut names: Vec<ResourceName> =
            ["w:100:110", "w:20:30", "w:0:10"].iter().map(|n| ResourceName::parse(n, m).unwrap()).collect();
        names.sort();
        assert_eq!(names[0].range, Some((0, 10)));
        assert_eq!(names[2].range, Some((100, 110)));
    }

    #[test]
    fn bad_names_are_refused() {
        let s = Method::Shards { shard_size: 4 };
        for bad in ["a:1", "a:x:2", "a:3:1", "../x:0:1", "a:b:0:1"] {
            assert!(ResourceName::parse(bad, s).is_err(), "{bad}");
        }
        for bad in ["", "/etc/passwd", "a/../../b"] {
            assert!(ResourceName::parse(bad, Method::Files).is_err(), "{bad}");
        }
    }

    #[test]
    fn ignore_matches_whole_components() {
        let s = Serialization::files(HashAlgorithm::Sha256);
        assert!(s.is_ignored(".git/config"));
        assert!(s.is_ignored(".gitignore"));
        assert!(!s.is_ignored(".gitfoo"));
        assert!(!s.is_ignored("x/.git"));
    }

    #[test]
    fn root_of_nothing_is_empty_sha256() {
        let m = Manifest::new("m".into(), Serialization::files(HashAlgorithm::Sha256), vec![]);
        assert_eq!(hex::encode(m.root_digest()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    proptest! {
        #[test]
        fn shard_names_round_trip(path in "[a-z]{1,4}(/[a-z][a-z.-]{0,3}){0,3}", start in 0u64..1<<40, len in 0u64..1<<30) {
            let m = Method::Shards { shard_size: 1 };
            let name = ResourceName { path, range: Some((start, start + len)) };
            prop_assert_eq!(ResourceName::parse(&name.to_string(), m).unwrap(), name);
        }

        #[test]
        fn ordering_is_a_total_order_consistent_with_components(a in "[a-c./-]{1,6}", b in "[a-c./-]{1,6}") {
            let (x, y) = (file(&a), file(&b));
            let by_components: Vec<&str> = a.split('/').collect();
            let other: Vec<&str> = b.split('/').collect();
            prop_assert_eq!(x.cmp(&y), by_components.cmp(&other));
            prop_assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
        }
    }
}

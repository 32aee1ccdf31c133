//! The offline OSV database: osv.dev's per-ecosystem exports, read on demand.
//!
//! Layouts understood, under the database directory:
//! * `<ecosystem>/all.zip` (as downloaded from osv.dev's bucket) or `<ecosystem>-all.zip`;
//! * `<ecosystem>/*.json`, the same records extracted;
//! * `all.zip` or loose `*.json` at the top, holding records of any ecosystem.
//!
//! Records are not loaded up front: a scan streams through the relevant sources once for the
//! package names its lockfile mentions, decompressing one member at a time and first reading
//! only `withdrawn` and `affected[].package` (borrowed, not copied) so records of other
//! packages cost little more than a tokenisation. Matching records are cached per
//! (ecosystem, package) for later scans.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::cvss::cvss3_base_score;
use super::package_key;
use super::pep440::Pep440Version;
use super::semver::SemVersion;
use crate::error::ScanError;
use crate::report::Severity;
use crate::zip;

/// Largest single record (or extracted JSON file) read; real records are a few KiB.
const MAX_RECORD: usize = 64 << 20;
/// Most members read from one zip (osv.dev's largest export has a few hundred thousand).
const MAX_MEMBERS: usize = 50_000_000;

/// Where records for an ecosystem (or, with `None`, for any ecosystem) are kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Zip { ecosystem: Option<String>, path: PathBuf },
    JsonDir { ecosystem: Option<String>, path: PathBuf },
}

impl Source {
    fn ecosystem(&self) -> Option<&str> {
        match self {
            Source::Zip { ecosystem, .. } | Source::JsonDir { ecosystem, .. } => ecosystem.as_deref(),
        }
    }
}

/// Records by (ecosystem, normalised package name).
type Cache = HashMap<(String, String), Vec<Arc<Record>>>;

/// An offline copy of OSV vulnerability records, as exported by osv.dev.
pub struct OsvDatabase {
    dir: PathBuf,
    sources: Vec<Source>,
    /// Records already looked up, by (ecosystem, normalised package name); an empty list means
    /// "looked up, none".
    cache: Mutex<Cache>,
}

impl fmt::Debug for OsvDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OsvDatabase").field("dir", &self.dir).field("sources", &self.sources).finish_non_exhaustive()
    }
}

impl OsvDatabase {
    /// Open a database directory (see the module documentation for the layouts). Fails if the
    /// directory cannot be read or holds nothing recognisable; the records themselves are only
    /// read by scans, and problems with them become findings.
    pub fn open(dir: &Path) -> Result<OsvDatabase, ScanError> {
        let io_err = |source| ScanError::Io { path: dir.to_path_buf(), source };
        let invalid = |reason: String| ScanError::OsvDatabase { path: dir.to_path_buf(), reason };
        let meta = std::fs::metadata(dir).map_err(io_err)?;
        if !meta.is_dir() {
            return Err(invalid("not a directory".into()));
        }
        let mut sources = Vec::new();
        let mut loose_json = false;
        for entry in std::fs::read_dir(dir).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
            if path.is_dir() {
                let zip = path.join("all.zip");
                if zip.is_file() {
                    sources.push(Source::Zip { ecosystem: Some(name), path: zip });
                } else if has_json(&path) {
                    sources.push(Source::JsonDir { ecosystem: Some(name), path });
                }
            } else if name == "all.zip" {
                sources.push(Source::Zip { ecosystem: None, path });
            } else if let Some(eco) = name.strip_suffix("-all.zip") {
                sources.push(Source::Zip { ecosystem: Some(eco.to_string()), path });
            } else if is_json_name(&name) {
                loose_json = true;
            }
        }
        if loose_json {
            sources.push(Source::JsonDir { ecosystem: None, path: dir.to_path_buf() });
        }
        if sources.is_empty() {
            return Err(invalid(
                "no OSV data found: expected `<ecosystem>/all.zip`, `<ecosystem>-all.zip`, `<ecosystem>/*.json` or \
                 `all.zip`"
                    .into(),
            ));
        }
        sources.sort();
        Ok(OsvDatabase { dir: dir.to_path_buf(), sources, cache: Mutex::new(HashMap::new()) })
    }

    /// The database directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Ecosystems with data of their own (a top-level `all.zip` or loose JSON may hold others).
    pub fn ecosystems(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self.sources.iter().filter_map(Source::ecosystem).collect();
        set.into_iter().collect()
    }

    /// Whether any source may hold records for `ecosystem` (OSV spelling: `PyPI`, `crates.io`,
    /// `npm`).
    pub fn covers(&self, ecosystem: &str) -> bool {
        self.sources.iter().any(|s| s.ecosystem().is_none_or(|e| e == ecosystem))
    }

    /// Records affecting any of `keys` (normalised names) in `ecosystem`, and problems that may
    /// have hidden some.
    pub(crate) fn lookup(&self, ecosystem: &str, keys: &BTreeSet<String>) -> Lookup {
        let mut result = Lookup::default();
        let mut missing = BTreeSet::new();
        {
            let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for key in keys {
                match cache.get(&(ecosystem.to_string(), key.clone())) {
                    Some(records) => {
                        result.records.insert(key.clone(), records.clone());
                    }
                    None => {
                        missing.insert(key.clone());
                    }
                }
            }
        }
        if missing.is_empty() {
            return result;
        }
        let mut found: BTreeMap<String, Vec<Arc<Record>>> = BTreeMap::new();
        let mut seen_ids: BTreeSet<(String, String)> = BTreeSet::new();
        let mut problems = Vec::new();
        let mut want =
            Wanted { ecosystem, keys: &missing, found: &mut found, seen: &mut seen_ids, problems: &mut problems };
        for source in self.sources.iter().filter(|s| s.ecosystem().is_none_or(|e| e == ecosystem)) {
            match source {
                Source::Zip { path, .. } => read_zip(path, &mut want),
                Source::JsonDir { path, .. } => read_json_dir(path, &mut want),
            }
        }
        // Only a complete pass may say "no records"; after a problem, look again next time.
        if problems.is_empty() {
            let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for key in &missing {
                cache.insert((ecosystem.to_string(), key.clone()), found.get(key).cloned().unwrap_or_default());
            }
        }
        result.records.extend(found);
        result.problems = problems;
        result
    }
}

fn is_json_name(name: &str) -> bool {
    name.len() > 5 && name.get(name.len() - 5..).is_some_and(|e| e.eq_ignore_ascii_case(".json"))
}

fn has_json(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut it| {
        it.any(|e| e.is_ok_and(|e| e.file_name().to_str().is_some_and(is_json_name) && e.path().is_file()))
    })
}

/// What a lookup found.
#[derive(Debug, Default)]
pub(crate) struct Lookup {
    /// Records by normalised package name.
    pub records: BTreeMap<String, Vec<Arc<Record>>>,
    /// Why some records may be missing (unreadable files, corrupt members, bad records).
    pub problems: Vec<String>,
}

struct Wanted<'a> {
    ecosystem: &'a str,
    keys: &'a BTreeSet<String>,
    found: &'a mut BTreeMap<String, Vec<Arc<Record>>>,
    /// (package, record id) pairs already added: the same record may be in two sources.
    seen: &'a mut BTreeSet<(String, String)>,
    problems: &'a mut Vec<String>,
}

fn read_zip(path: &Path, want: &mut Wanted<'_>) {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            want.problems.push(format!("cannot read `{}`: {e}", path.display()));
            return;
        }
    };
    let index = match zip::read_index(&data, MAX_MEMBERS) {
        Ok(i) => i,
        Err(e) => {
            want.problems.push(format!("`{}` is not a readable zip: {e}", path.display()));
            return;
        }
    };
    if let Some(why) = &index.broken_central {
        // Members were recovered from local headers, but some may be missing.
        want.problems.push(format!("`{}`: damaged zip ({why}); records may be missing", path.display()));
    }
    for entry in &index.entries {
        if entry.name.ends_with('/') || !is_json_name(&entry.name) {
            continue;
        }
        let label = format!("{}!{}", path.display(), entry.name);
        if entry.encrypted() {
            want.problems.push(format!("`{label}` is encrypted"));
            continue;
        }
        match zip::Archive::Mem(&data).member_data(entry, MAX_RECORD) {
            Ok(bytes) => consider(&bytes, &label, want),
            Err(zip::DataError::TooLarge) => want.problems.push(format!("`{label}` is larger than {MAX_RECORD} bytes")),
            Err(zip::DataError::Method(m)) => want.problems.push(format!("`{label}` uses compression method {m}")),
            Err(zip::DataError::Corrupt(why)) => want.problems.push(format!("`{label}` is corrupt: {why}")),
        }
    }
}

fn read_json_dir(dir: &Path, want: &mut Wanted<'_>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            want.problems.push(format!("cannot read `{}`: {e}", dir.display()));
            return;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_json_name) && p.is_file())
        .collect();
    files.sort();
    for file in files {
        match std::fs::metadata(&file) {
            Ok(m) if m.len() > MAX_RECORD as u64 => {
                want.problems.push(format!("`{}` is larger than {MAX_RECORD} bytes", file.display()));
                continue;
            }
            _ => {}
        }
        match std::fs::read(&file) {
            Ok(bytes) => consider(&bytes, &file.display().to_string(), want),
            Err(e) => want.problems.push(format!("cannot read `{}`: {e}", file.display())),
        }
    }
}

/// First pass over a record: only what decides whether it matters (names are borrowed from
/// the record's bytes unless they contain escapes).
#[derive(Deserialize)]
struct Skim<'a> {
    withdrawn: Option<IgnoredAny>,
    #[serde(borrow)]
    affected: Option<Vec<SkimAffected<'a>>>,
}

#[derive(Deserialize)]
struct SkimAffected<'a> {
    #[serde(borrow)]
    package: Option<SkimPackage<'a>>,
}

#[derive(Deserialize)]
struct SkimPackage<'a> {
    #[serde(borrow)]
    ecosystem: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
}

fn consider(bytes: &[u8], label: &str, want: &mut Wanted<'_>) {
    let skim: Skim = match serde_json::from_slice(bytes) {
        Ok(s) => s,
        Err(e) => {
            // A record we cannot read might be about a scanned package: say so rather than
            // let it pass as "no vulnerability".
            if mentions_any(bytes, want.keys) {
                want.problems.push(format!("`{label}` is not a readable OSV record ({e})"));
            }
            return;
        }
    };
    if skim.withdrawn.is_some() {
        return;
    }
    let hits: BTreeSet<String> = skim
        .affected
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.package)
        .filter(|p| p.ecosystem.as_deref() == Some(want.ecosystem))
        .filter_map(|p| p.name)
        .map(|n| package_key(want.ecosystem, &n))
        .filter(|k| want.keys.contains(k))
        .collect();
    if hits.is_empty() {
        return;
    }
    let record: Record = match serde_json::from_slice(bytes) {
        Ok(r) => r,
        Err(e) => {
            want.problems.push(format!("`{label}` is not a valid OSV record ({e})"));
            return;
        }
    };
    let record = Arc::new(record);
    for key in hits {
        if want.seen.insert((key.clone(), record.id.clone())) {
            want.found.entry(key).or_default().push(Arc::clone(&record));
        }
    }
}

/// Whether any wanted name occurs in the bytes, ignoring ASCII case (a cheap "could this
/// record be about it" test for records that do not parse).
fn mentions_any(bytes: &[u8], keys: &BTreeSet<String>) -> bool {
    let lower = bytes.to_ascii_lowercase();
    keys.iter().any(|k| {
        let k = k.to_ascii_lowercase();
        let k = k.as_bytes();
        !k.is_empty() && lower.windows(k.len()).any(|w| w == k)
    })
}

// ----- records ------------------------------------------------------------------------------

/// The parts of an OSV record the scanner uses.
#[derive(Debug, Deserialize)]
pub(crate) struct Record {
    pub id: String,
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
    pub summary: Option<String>,
    pub details: Option<String>,
    #[serde(default)]
    pub severity: Option<Vec<SeverityScore>>,
    /// Kept untyped: each database puts its own shape here.
    pub database_specific: Option<Value>,
    #[serde(default)]
    pub affected: Option<Vec<Affected>>,
}

/// One `severity[]` entry.
#[derive(Debug, Deserialize)]
pub(crate) struct SeverityScore {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

/// One `affected[]` entry.
#[derive(Debug, Deserialize)]
pub(crate) struct Affected {
    pub package: Option<Package>,
    #[serde(default)]
    pub severity: Option<Vec<SeverityScore>>,
    #[serde(default)]
    pub ranges: Option<Vec<Range>>,
    #[serde(default)]
    pub versions: Option<Vec<String>>,
    pub database_specific: Option<Value>,
    pub ecosystem_specific: Option<Value>,
}

/// `affected[].package`.
#[derive(Debug, Deserialize)]
pub(crate) struct Package {
    pub ecosystem: String,
    pub name: String,
}

/// `affected[].ranges[]`.
#[derive(Debug, Deserialize)]
pub(crate) struct Range {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub events: Vec<Event>,
}

/// One event; the schema allows one field per event, but all present are honoured.
#[derive(Debug, Deserialize)]
pub(crate) struct Event {
    pub introduced: Option<String>,
    pub fixed: Option<String>,
    pub last_affected: Option<String>,
    pub limit: Option<String>,
}

impl Record {
    fn affected_for<'a>(&'a self, ecosystem: &'a str, key: &'a str) -> impl Iterator<Item = &'a Affected> + 'a {
        self.affected.iter().flatten().filter(move |a| {
            a.package.as_ref().is_some_and(|p| p.ecosystem == ecosystem && package_key(ecosystem, &p.name) == key)
        })
    }

    /// Severity per the record: the database's own rating (GHSA's LOW/MODERATE/HIGH/CRITICAL)
    /// first, then CVSS v3 base scores computed from vectors; CVSS v2/v4 vectors (not computed
    /// here) and records with no severity at all count as high, to err on the side of caution.
    pub(crate) fn severity(&self, ecosystem: &str, key: &str) -> Severity {
        let affected: Vec<&Affected> = self.affected_for(ecosystem, key).collect();
        let labels = std::iter::once(&self.database_specific)
            .chain(affected.iter().flat_map(|a| [&a.database_specific, &a.ecosystem_specific]))
            .filter_map(|v| v.as_ref()?.get("severity")?.as_str().and_then(severity_label));
        if let Some(s) = labels.max() {
            return s;
        }
        let scores = self.severity.iter().flatten().chain(affected.iter().flat_map(|a| a.severity.iter().flatten()));
        scores.map(score_severity).max().unwrap_or(Severity::High)
    }

    /// Evaluate the OSV algorithm for `version` of the package `key` in `ecosystem`.
    pub(crate) fn evaluate(&self, ecosystem: &str, key: &str, version: &str) -> Outcome {
        let mut problems = Vec::new();
        let mut fixed = Vec::new();
        let mut affected = false;
        let mut matched = false;
        for a in self.affected_for(ecosystem, key) {
            matched = true;
            let ranges = a.ranges.as_deref().unwrap_or(&[]);
            let versions = a.versions.as_deref().unwrap_or(&[]);
            for r in ranges.iter().filter(|r| r.kind != "GIT") {
                for f in r.events.iter().filter_map(|e| e.fixed.as_ref()) {
                    if !fixed.contains(f) {
                        fixed.push(f.clone());
                    }
                }
            }
            if affected {
                continue;
            }
            if versions.iter().any(|v| same_version(ecosystem, v, version)) {
                affected = true;
                continue;
            }
            let mut evaluable = !versions.is_empty();
            for r in ranges {
                let scheme = match r.kind.as_str() {
                    // npm's own spelling (`v1.2.3`) of the installed version is still SemVer.
                    "SEMVER" if ecosystem == "npm" => Scheme::NpmSemVer,
                    "SEMVER" => Scheme::SemVer,
                    "ECOSYSTEM" => Scheme::of(ecosystem),
                    // Commit ranges need the repository; OSV requires a versions list with them.
                    _ => continue,
                };
                evaluable = true;
                match range_includes(scheme, version, &r.events) {
                    Ok(true) => affected = true,
                    Ok(false) => {}
                    Err(why) => problems.push(why),
                }
            }
            if !evaluable {
                problems.push("the record gives no versions or version ranges for the package".into());
            }
        }
        if affected {
            Outcome::Affected { fixed }
        } else if !matched || problems.is_empty() {
            Outcome::NotAffected
        } else {
            problems.dedup();
            Outcome::CannotCompare(problems.join("; "))
        }
    }

    /// Summary, or the first line of the details.
    pub(crate) fn title(&self) -> String {
        let text = self
            .summary
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| self.details.as_deref().and_then(|d| d.lines().find(|l| !l.trim().is_empty())))
            .unwrap_or("no summary");
        // One line, bounded: summaries are shown inside a single finding message.
        let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if one_line.chars().count() > 200 {
            format!("{}...", one_line.chars().take(200).collect::<String>())
        } else {
            one_line
        }
    }
}

/// Result of evaluating one record against one installed version.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The version is affected; `fixed` lists the record's fixed versions.
    Affected { fixed: Vec<String> },
    /// Not affected.
    NotAffected,
    /// Not affected by anything that could be evaluated, but some range could not be.
    CannotCompare(String),
}

fn severity_label(s: &str) -> Option<Severity> {
    match s.trim().to_ascii_uppercase().as_str() {
        "CRITICAL" => Some(Severity::Critical),
        "HIGH" | "IMPORTANT" => Some(Severity::High),
        "MODERATE" | "MEDIUM" => Some(Severity::Medium),
        "LOW" | "NEGLIGIBLE" => Some(Severity::Low),
        _ => None,
    }
}

fn score_severity(s: &SeverityScore) -> Severity {
    match s.kind.as_str() {
        "CVSS_V3" => match cvss3_base_score(&s.score) {
            Some(score) if score >= 9.0 => Severity::Critical,
            Some(score) if score >= 7.0 => Severity::High,
            Some(score) if score >= 4.0 => Severity::Medium,
            Some(_) => Severity::Low,
            None => Severity::High,
        },
        "Ubuntu" => severity_label(&s.score).unwrap_or(Severity::High),
        _ => Severity::High,
    }
}

// ----- version comparison -------------------------------------------------------------------

/// How versions of a range are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Pep440,
    SemVer,
    /// npm's spelling of SemVer (leading `v` or `=` allowed).
    NpmSemVer,
    /// An ecosystem whose ordering is not implemented.
    Unknown,
}

impl Scheme {
    fn of(ecosystem: &str) -> Scheme {
        match ecosystem {
            "PyPI" => Scheme::Pep440,
            "crates.io" => Scheme::SemVer,
            "npm" => Scheme::NpmSemVer,
            _ => Scheme::Unknown,
        }
    }

    fn parse(self, s: &str) -> Option<Version> {
        match self {
            Scheme::Pep440 => Pep440Version::parse(s).map(Version::Pep440),
            Scheme::SemVer => SemVersion::parse(s).map(Version::SemVer),
            Scheme::NpmSemVer => SemVersion::parse_loose(s).map(Version::SemVer),
            Scheme::Unknown => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scheme::Pep440 => "PEP 440",
            Scheme::SemVer | Scheme::NpmSemVer => "SemVer",
            Scheme::Unknown => "comparable",
        }
    }
}

/// A version under one scheme (ranges never mix schemes, so cross-variant order is unused).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    Pep440(Pep440Version),
    SemVer(SemVersion),
}

/// Equality for `versions[]` lists: the exact string, or equal under the ecosystem's ordering
/// (`1.0` and `1.0.0` are the same PyPI release).
fn same_version(ecosystem: &str, listed: &str, installed: &str) -> bool {
    if listed == installed {
        return true;
    }
    let scheme = Scheme::of(ecosystem);
    matches!((scheme.parse(listed), scheme.parse(installed)), (Some(a), Some(b)) if a == b)
}

/// Event kinds in the order they are applied when two events share a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Introduced,
    Fixed,
    LastAffected,
}

/// Bound of an event: `introduced: "0"` is before every version.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Bound {
    Zero,
    At(Version),
}

/// OSV's `IncludedInRanges` for one range (schema "Evaluation" pseudocode): limits first, then
/// the sorted events as a timeline.
fn range_includes(scheme: Scheme, version: &str, events: &[Event]) -> Result<bool, String> {
    let v = scheme.parse(version).ok_or_else(|| format!("`{version}` is not a valid {} version", scheme.name()))?;
    let parse_event =
        |s: &str| scheme.parse(s).ok_or_else(|| format!("range bound `{s}` is not a valid {} version", scheme.name()));

    let limits: Vec<&String> = events.iter().filter_map(|e| e.limit.as_ref()).collect();
    if !limits.is_empty() {
        let mut below_a_limit = false;
        for l in limits {
            // `*` means infinity.
            if l.contains('*') || v < parse_event(l)? {
                below_a_limit = true;
            }
        }
        if !below_a_limit {
            return Ok(false);
        }
    }

    let mut timeline: Vec<(Bound, Kind)> = Vec::new();
    for e in events {
        if let Some(i) = &e.introduced {
            let bound = if i == "0" { Bound::Zero } else { Bound::At(parse_event(i)?) };
            timeline.push((bound, Kind::Introduced));
        }
        if let Some(f) = &e.fixed {
            timeline.push((Bound::At(parse_event(f)?), Kind::Fixed));
        }
        if let Some(l) = &e.last_affected {
            timeline.push((Bound::At(parse_event(l)?), Kind::LastAffected));
        }
    }
    timeline.sort();
    let mut vulnerable = false;
    for (bound, kind) in &timeline {
        let at_or_after = match bound {
            Bound::Zero => true,
            Bound::At(b) => v >= *b,
        };
        match kind {
            Kind::Introduced if at_or_after => vulnerable = true,
            Kind::Fixed if at_or_after => vulnerable = false,
            Kind::LastAffected if matches!(bound, Bound::At(b) if v > *b) => vulnerable = false,
            _ => {}
        }
    }
    Ok(vulnerable)
}

//! Dependency scanning: pinned versions in lockfiles and requirements files, checked against an
//! offline copy of the OSV vulnerability database.
//!
//! ```no_run
//! use std::path::Path;
//! use custody_scan::deps::{OsvDatabase, scan_dependencies};
//!
//! let db = OsvDatabase::open(Path::new("osv"))?; // holds PyPI/all.zip, npm/all.zip, ...
//! let path = Path::new("requirements.txt");
//! let report = scan_dependencies(path, &std::fs::read(path)?, &db);
//! for f in &report.findings {
//!     println!("{}: {} ({})", f.rule, f.message, f.location.member);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Formats are recognised by file name ([`dependency_format`]). Findings:
//! * `deps.vulnerable`: a pinned version is affected by a record; severity from the record;
//! * `deps.cannot-compare`: a version or range bound does not parse, so a record could not be
//!   evaluated (never silently "not vulnerable");
//! * `deps.unpinned`, `deps.not-followed`: requirements that name no single registry version,
//!   and `-r` includes;
//! * `deps.unknown-ecosystem`: the database has no data for the file's ecosystem, or the file
//!   is not a known dependency file;
//! * `deps.malformed`: the file does not parse (with the position);
//! * `deps.database`: part of the database could not be read.
//!
//! All but `deps.vulnerable` mean "not fully checked" and keep a report from being clean.
//! Locations: `member` is `<path>:<line>` of the package entry (just `<path>` when the line is
//! not known) and `offset` its byte offset in the file.

mod cargo;
mod cvss;
mod digits;
mod jsonpos;
mod npm;
mod osv;
mod pep440;
mod pipfile;
mod poetry;
mod requirements;
mod semver;
mod uv;

use std::collections::BTreeSet;
use std::path::Path;

pub use cvss::cvss3_base_score;
pub use osv::OsvDatabase;
pub use pep440::Pep440Version;
pub use semver::SemVersion;

use crate::report::{self, FileReport, Finding, Format, Location, RuleId, Severity};
use osv::Outcome;

/// OSV ecosystem name for PyPI.
pub const PYPI: &str = "PyPI";
/// OSV ecosystem name for crates.io.
pub const CRATES_IO: &str = "crates.io";
/// OSV ecosystem name for npm.
pub const NPM: &str = "npm";

/// The dependency-file format of a path, by file name: `requirements*.txt` (and `*.txt` in a
/// `requirements/` directory), `poetry.lock`, `uv.lock`, `Pipfile.lock`, `Cargo.lock`,
/// `package-lock.json` (and `npm-shrinkwrap.json`, the same format).
pub fn dependency_format(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?;
    let format = match name {
        "poetry.lock" => Format::PoetryLock,
        "uv.lock" => Format::UvLock,
        "Pipfile.lock" => Format::PipfileLock,
        "Cargo.lock" => Format::CargoLock,
        "package-lock.json" | "npm-shrinkwrap.json" => Format::PackageLock,
        _ => {
            let lower = name.to_ascii_lowercase();
            let in_requirements_dir = path
                .parent()
                .and_then(Path::file_name)
                .and_then(|d| d.to_str())
                .is_some_and(|d| d.eq_ignore_ascii_case("requirements"));
            if lower.ends_with(".txt") && (lower.starts_with("requirements") || in_requirements_dir) {
                Format::Requirements
            } else {
                return None;
            }
        }
    };
    Some(format)
}

/// Whether [`scan_dependencies`] knows this file (see [`dependency_format`]).
pub fn is_dependency_file(path: &Path) -> bool {
    dependency_format(path).is_some()
}

/// The OSV ecosystem a dependency format's packages belong to.
pub fn ecosystem(format: Format) -> Option<&'static str> {
    match format {
        Format::Requirements | Format::PoetryLock | Format::UvLock | Format::PipfileLock => Some(PYPI),
        Format::CargoLock => Some(CRATES_IO),
        Format::PackageLock => Some(NPM),
        _ => None,
    }
}

/// A package name as the ecosystem compares names: PEP 503 for PyPI, as written elsewhere.
pub fn package_key(ecosystem: &str, name: &str) -> String {
    if ecosystem == PYPI { pep503(name) } else { name.to_string() }
}

/// PEP 503 normalisation: lowercase, runs of `-`, `_` and `.` become one `-`.
pub fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

/// Scan one dependency file (`path` selects the format by name and names the report) against
/// `db`. Never fails: unreadable files and database problems are findings.
pub fn scan_dependencies(path: &Path, data: &[u8], db: &OsvDatabase) -> FileReport {
    let name = path.display().to_string();
    let mut scan = Scan { name, newlines: None, bom: 0, findings: Vec::new() };
    let Some(format) = dependency_format(path) else {
        scan.push(
            RuleId::DEPS_UNKNOWN_ECOSYSTEM,
            Severity::Low,
            "not a dependency file this scanner knows (requirements*.txt, poetry.lock, uv.lock, Pipfile.lock, \
             Cargo.lock, package-lock.json); nothing was checked"
                .into(),
            None,
        );
        return scan.finish(Format::Unknown, data.len());
    };
    let Some(eco) = ecosystem(format) else { return scan.finish(format, data.len()) };

    let body = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    scan.bom = data.len() - body.len();
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.valid_up_to();
            scan.push(
                RuleId::DEPS_MALFORMED,
                Severity::Low,
                format!("not UTF-8 text (invalid byte at offset {offset})"),
                None,
            );
            return scan.finish(format, data.len());
        }
    };
    scan.newlines = Some(text.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i).collect());
    let parsed = match format {
        Format::Requirements => Ok(requirements::parse(text)),
        Format::PoetryLock => poetry::parse(text),
        Format::UvLock => uv::parse(text),
        Format::PipfileLock => pipfile::parse(text),
        Format::CargoLock => cargo::parse(text),
        _ => npm::parse(text),
    };
    let mut parsed = match parsed {
        Ok(p) => p,
        Err(m) => {
            let at = m.offset.map(|o| {
                let (line, col) = jsonpos::line_col(text, o);
                format!(" at line {line}, column {col}")
            });
            scan.push(
                RuleId::DEPS_MALFORMED,
                Severity::Low,
                format!("cannot parse{}: {}; nothing was checked", at.unwrap_or_default(), m.message),
                m.offset,
            );
            return scan.finish(format, data.len());
        }
    };
    parsed.deps.sort_by_key(|d| d.offset.unwrap_or(usize::MAX));
    for note in parsed.notes {
        scan.push(note.rule, note.severity, note.message, note.offset);
    }
    if parsed.deps.is_empty() {
        return scan.finish(format, data.len());
    }
    if !db.covers(eco) {
        scan.push(
            RuleId::DEPS_UNKNOWN_ECOSYSTEM,
            Severity::Low,
            format!(
                "the OSV database at `{}` has no {eco} data; {} packages were not checked",
                db.dir().display(),
                parsed.deps.len()
            ),
            None,
        );
        return scan.finish(format, data.len());
    }

    let keys: BTreeSet<String> = parsed.deps.iter().map(|d| d.key.clone()).collect();
    let lookup = db.lookup(eco, &keys);
    // Bounded: a damaged export could otherwise produce one finding per member.
    const MAX_PROBLEMS: usize = 20;
    for p in lookup.problems.iter().take(MAX_PROBLEMS) {
        scan.push(RuleId::DEPS_DATABASE, Severity::Low, format!("OSV database: {p}"), None);
    }
    if lookup.problems.len() > MAX_PROBLEMS {
        scan.push(
            RuleId::DEPS_DATABASE,
            Severity::Low,
            format!("OSV database: {} more problems", lookup.problems.len() - MAX_PROBLEMS),
            None,
        );
    }
    for dep in &parsed.deps {
        for record in lookup.records.get(&dep.key).into_iter().flatten() {
            match record.evaluate(eco, &dep.key, &dep.version) {
                Outcome::NotAffected => {}
                Outcome::Affected { fixed } => {
                    let aliases = record.aliases.as_deref().unwrap_or(&[]);
                    let aliases = if aliases.is_empty() { String::new() } else { format!(" ({})", aliases.join(", ")) };
                    let fixed = if fixed.is_empty() {
                        "no fixed version listed".to_string()
                    } else {
                        format!("fixed in {}", fixed.join(", "))
                    };
                    scan.push(
                        RuleId::DEPS_VULNERABLE,
                        record.severity(eco, &dep.key),
                        format!(
                            "{} {} is affected by {}{aliases}: {}; {fixed}",
                            dep.name,
                            dep.version,
                            record.id,
                            record.title()
                        ),
                        dep.offset,
                    );
                }
                Outcome::CannotCompare(why) => scan.push(
                    RuleId::DEPS_CANNOT_COMPARE,
                    Severity::Low,
                    format!("{} {}: cannot compare with {}: {why}", dep.name, dep.version, record.id),
                    dep.offset,
                ),
            }
        }
    }
    scan.finish(format, data.len())
}

/// Findings of one dependency scan in the making.
struct Scan {
    name: String,
    /// Offsets of the text's line feeds, once the file is known to be text (a lockfile can have
    /// many findings, so lines are not counted from the start for each).
    newlines: Option<Vec<usize>>,
    /// Length of a UTF-8 byte-order mark before the text: parsers' offsets are into the text,
    /// reported offsets into the file.
    bom: usize,
    findings: Vec<Finding>,
}

impl Scan {
    fn push(&mut self, rule: RuleId, severity: Severity, message: String, offset: Option<usize>) {
        let line = match (offset, &self.newlines) {
            (Some(o), Some(newlines)) => Some(newlines.partition_point(|&nl| nl < o) + 1),
            _ => None,
        };
        // The member names `path:line` too, for readers that show only the member.
        let member = line.map_or_else(|| self.name.clone(), |l| format!("{}:{l}", self.name));
        self.findings.push(Finding {
            rule,
            severity,
            message,
            location: Location {
                member,
                offset: offset.map(|o| (o + self.bom) as u64),
                line: line.map(|l| l as u64),
                ..Location::default()
            },
        });
    }

    fn finish(self, format: Format, len: usize) -> FileReport {
        let mut findings = self.findings;
        // Most severe first; stable so equal findings keep file order.
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        FileReport {
            name: self.name,
            format,
            verdict: report::verdict_for(&findings),
            findings,
            pickles: Vec::new(),
            members: Vec::new(),
            bytes_scanned: len as u64,
        }
    }
}

/// A package pinned to one version.
#[derive(Debug)]
pub(crate) struct Dep {
    /// As written in the file.
    pub name: String,
    /// As the ecosystem compares names ([`package_key`]).
    pub key: String,
    /// As written in the file (without `==`).
    pub version: String,
    /// Byte offset of the entry.
    pub offset: Option<usize>,
}

/// Something a parser noticed that is not a checkable pin.
#[derive(Debug)]
pub(crate) struct Note {
    pub rule: RuleId,
    pub severity: Severity,
    pub message: String,
    pub offset: Option<usize>,
}

impl Note {
    pub(crate) fn unpinned(message: String, offset: impl Into<Option<usize>>) -> Note {
        Note { rule: RuleId::DEPS_UNPINNED, severity: Severity::Info, message, offset: offset.into() }
    }

    pub(crate) fn not_followed(message: String, offset: impl Into<Option<usize>>) -> Note {
        Note { rule: RuleId::DEPS_NOT_FOLLOWED, severity: Severity::Info, message, offset: offset.into() }
    }

    pub(crate) fn malformed(message: String, offset: impl Into<Option<usize>>) -> Note {
        Note { rule: RuleId::DEPS_MALFORMED, severity: Severity::Low, message, offset: offset.into() }
    }
}

/// What a parser found.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub deps: Vec<Dep>,
    pub notes: Vec<Note>,
}

impl Parsed {
    /// A PyPI package locked at `version` (a note when it has none), named at `offset`.
    pub(crate) fn pypi(&mut self, name: String, version: Option<String>, offset: usize) {
        match version {
            Some(version) => self.deps.push(Dep { key: pep503(&name), name, version, offset: Some(offset) }),
            None => self.notes.push(Note::unpinned(format!("{name} has no version; it cannot be checked"), offset)),
        }
    }

    /// A package from a `kind` source (git, path, URL) rather than the registry.
    pub(crate) fn not_from_registry(&mut self, name: &str, kind: &str, offset: usize) {
        self.notes.push(Note::unpinned(
            format!("{name} comes from a {kind} source, not the registry; it cannot be checked"),
            offset,
        ));
    }
}

/// Why a file could not be parsed at all.
#[derive(Debug)]
pub(crate) struct Malformed {
    pub message: String,
    pub offset: Option<usize>,
}

impl Malformed {
    fn from_toml(e: toml::de::Error) -> Malformed {
        Malformed { message: e.message().trim().to_string(), offset: e.span().map(|s| s.start) }
    }

    fn from_json(text: &str, e: &serde_json::Error) -> Malformed {
        // serde_json's Display appends " at line L column C"; the position is reported separately.
        let message = e.to_string();
        let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m).to_string();
        Malformed { message, offset: (e.line() > 0).then(|| jsonpos::offset_of(text, e.line(), e.column())) }
    }
}

//! Dependency scanning: lockfile parsing, OSV evaluation against a database the tests build
//! themselves (hand-written zips and JSON in OSV schema), and the version orderings.

// Tests may panic and print; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};

use custody_scan::deps::{OsvDatabase, Pep440Version, SemVersion, cvss3_base_score, dependency_format, ecosystem};
use custody_scan::{FileReport, Format, RuleId, ScanError, Severity, Verdict, is_dependency_file, scan_dependencies};
use proptest::prelude::*;
use serde_json::{Value, json};

// ----- fixtures -----------------------------------------------------------------------------

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, AtomicOrdering::SeqCst);
        let dir = std::env::temp_dir().join(format!("custody-deps-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A zip archive with stored (uncompressed) members, CRCs correct.
fn zip_stored(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    zip_with(members, false)
}

/// A zip archive with deflated members, as osv.dev's exports are.
fn zip_deflated(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    zip_with(members, true)
}

fn zip_with(members: &[(String, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, plain) in members {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(plain);
        let data = if deflate { miniz_oxide::deflate::compress_to_vec(plain, 6) } else { plain.clone() };
        let method: u16 = if deflate { 8 } else { 0 };
        let header = |sig: &[u8], central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(sig);
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // version made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // version needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&method.to_le_bytes());
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&crc.to_le_bytes());
            h.extend_from_slice(&(data.len() as u32).to_le_bytes());
            h.extend_from_slice(&(plain.len() as u32).to_le_bytes());
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra length
            if central {
                h.extend_from_slice(&0u16.to_le_bytes()); // comment length
                h.extend_from_slice(&0u16.to_le_bytes()); // disk
                h.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
                h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(b"PK\x03\x04", false));
        out.extend_from_slice(&data);
        central.extend(header(b"PK\x01\x02", true));
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(members.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn record_members(records: &[Value]) -> Vec<(String, Vec<u8>)> {
    records
        .iter()
        .map(|r| (format!("{}.json", r["id"].as_str().unwrap()), serde_json::to_vec_pretty(r).unwrap()))
        .collect()
}

fn pypi_records() -> Vec<Value> {
    vec![
        // GHSA-style: severity label, aliases, name spelled differently from the lockfiles.
        json!({
            "schema_version": "1.6.0",
            "id": "GHSA-j8r2-6x86-q33q",
            "modified": "2024-01-01T00:00:00Z",
            "aliases": ["CVE-2023-32681", "PYSEC-2023-74"],
            "summary": "Unintended leak of Proxy-Authorization header",
            "details": "Requests leaks the header to destination servers.",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}],
            "affected": [{
                "package": {"ecosystem": "PyPI", "name": "Requests", "purl": "pkg:pypi/requests"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}]
            }],
            "database_specific": {"severity": "MODERATE", "github_reviewed": true}
        }),
        // last_affected is inclusive; only a CVSS vector gives the severity (9.8: critical).
        json!({
            "id": "PYSEC-2020-176",
            "aliases": ["CVE-2020-14343"],
            "summary": "Arbitrary code execution in full_load",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [{
                "package": {"ecosystem": "PyPI", "name": "pyyaml"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "5.1"}, {"last_affected": "5.3.1"}]}]
            }]
        }),
        // Explicit versions only; `2.10` lists the release that is installed as `2.10.0`.
        json!({
            "id": "GHSA-462w-v97r-4m45",
            "summary": "Jinja2 sandbox escape",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "Jinja2"}, "versions": ["2.9.6", "2.10"]}],
            "database_specific": {"severity": "HIGH"}
        }),
        // Withdrawn: must be ignored.
        json!({
            "id": "GHSA-withdrawn-numpy",
            "withdrawn": "2023-05-01T00:00:00Z",
            "summary": "Withdrawn advisory",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "numpy"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}],
            "database_specific": {"severity": "CRITICAL"}
        }),
        // A range bound that is no PEP 440 version: the record cannot be evaluated.
        json!({
            "id": "PYSEC-2099-1",
            "summary": "Bad bound",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "torch"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "not a version"}]}]}]
        }),
        // A SEMVER range on a PyPI package; only a CVSS v4 vector (not computed: high).
        json!({
            "id": "GHSA-g4mx-q9vg-27p4",
            "summary": "urllib3 request body not stripped after redirect",
            "severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N"}],
            "affected": [{"package": {"ecosystem": "PyPI", "name": "urllib3"},
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "2.0.0"}, {"fixed": "2.0.7"}]}]}]
        }),
        // Pre-release bounds; a GIT range alongside is not evaluable and must not matter.
        json!({
            "id": "PYSEC-2024-transformers",
            "summary": "Deserialization of untrusted data",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "transformers"},
                          "ranges": [
                              {"type": "GIT", "repo": "https://example.invalid/t", "events": [{"introduced": "abc"}]},
                              {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "4.36.0rc1"}]}
                          ]}],
            "database_specific": {"severity": "LOW"}
        }),
        // A package of another ecosystem with the same name: must not match.
        json!({
            "id": "GHSA-npm-requests",
            "summary": "npm requests",
            "affected": [{"package": {"ecosystem": "npm", "name": "requests"},
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}],
            "database_specific": {"severity": "CRITICAL"}
        }),
        // Not about any scanned package.
        json!({
            "id": "GHSA-flask",
            "summary": "flask",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "flask"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]
        }),
    ]
}

fn crates_records() -> Vec<Value> {
    vec![
        json!({
            "id": "RUSTSEC-2021-0003",
            "aliases": ["CVE-2021-25900", "GHSA-43w2-9j62-hq99"],
            "summary": "Buffer overflow in SmallVec::insert_many",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [{"package": {"ecosystem": "crates.io", "name": "smallvec"},
                          "ranges": [{"type": "SEMVER", "events": [
                              {"introduced": "0.6.3"}, {"fixed": "0.6.14"}, {"introduced": "1.0.0"}, {"fixed": "1.6.1"}
                          ]}]}]
        }),
        // No severity at all: counted as high.
        json!({
            "id": "RUSTSEC-2022-0013",
            "summary": "Regexes with large repetitions on empty sub-expressions take a very long time to parse",
            "affected": [{"package": {"ecosystem": "crates.io", "name": "regex"},
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.5.5"}]}]}]
        }),
        json!({
            "id": "RUSTSEC-2020-0071",
            "summary": "Potential segfault in the time crate",
            "affected": [{"package": {"ecosystem": "crates.io", "name": "time"},
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "0.2.0"}, {"fixed": "0.2.23"}]}]}],
            "database_specific": {"severity": "MODERATE"}
        }),
        // Pre-release precedence: 1.0.0-rc.1 < 1.0.0.
        json!({
            "id": "RUSTSEC-2099-0001",
            "summary": "Pre-release only",
            "affected": [{"package": {"ecosystem": "crates.io", "name": "prerel"},
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.0"}]}]}],
            "database_specific": {"severity": "LOW"}
        }),
    ]
}

fn npm_records() -> Vec<Value> {
    vec![
        json!({
            "id": "GHSA-35jh-r3h4-6jhm",
            "aliases": ["CVE-2021-23337"],
            "summary": "Command Injection in lodash",
            "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]}],
            "database_specific": {"severity": "HIGH"}
        }),
        json!({
            "id": "GHSA-67hx-6x53-jw92",
            "aliases": ["CVE-2023-45133"],
            "summary": "Babel vulnerable to arbitrary code execution when compiling specifically crafted malicious code",
            "affected": [{"package": {"ecosystem": "npm", "name": "@babel/traverse"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "7.23.2"}]},
                                     {"type": "ECOSYSTEM", "events": [{"introduced": "8.0.0-alpha.0"}, {"fixed": "8.0.0-alpha.4"}]}]}],
            "database_specific": {"severity": "CRITICAL"}
        }),
        json!({
            "id": "GHSA-xvch-5gv4-984h",
            "summary": "Prototype Pollution in minimist",
            "affected": [{"package": {"ecosystem": "npm", "name": "minimist"},
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"last_affected": "1.2.5"}]}]}],
            "database_specific": {"severity": "LOW"}
        }),
        // `limit`: versions at or above it are outside the range.
        json!({
            "id": "GHSA-limit",
            "summary": "Limited range",
            "affected": [{"package": {"ecosystem": "npm", "name": "limited"},
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"limit": "2.0.0"}]}]}],
            "database_specific": {"severity": "MODERATE"}
        }),
    ]
}

/// `PyPI/all.zip` (stored), `crates.io/*.json`, `npm/all.zip` (deflated).
fn full_db() -> (TempDir, OsvDatabase) {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path().join("PyPI")).unwrap();
    let mut members = record_members(&pypi_records());
    // A member that is not JSON and mentions no scanned package: skipped silently.
    members.push(("README.json".into(), b"not json at all".to_vec()));
    std::fs::write(dir.path().join("PyPI/all.zip"), zip_stored(&members)).unwrap();
    std::fs::create_dir_all(dir.path().join("crates.io")).unwrap();
    for (name, data) in record_members(&crates_records()) {
        std::fs::write(dir.path().join("crates.io").join(name), data).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("npm")).unwrap();
    std::fs::write(dir.path().join("npm/all.zip"), zip_deflated(&record_members(&npm_records()))).unwrap();
    let db = OsvDatabase::open(dir.path()).unwrap();
    (dir, db)
}

/// (rule, severity, `<path>:<line>`, message), in report order.
fn summary(r: &FileReport) -> Vec<(String, Severity, String, String)> {
    r.findings.iter().map(|f| (f.rule.to_string(), f.severity, f.location.member.clone(), f.message.clone())).collect()
}

/// The findings sorted, for comparison independent of the stable severity sort.
fn sorted(r: &FileReport) -> Vec<(String, Severity, String, String)> {
    let mut v = summary(r);
    v.sort();
    v
}

fn f(rule: &str, sev: Severity, at: &str, msg: &str) -> (String, Severity, String, String) {
    (rule.to_string(), sev, at.to_string(), msg.to_string())
}

// ----- end to end ---------------------------------------------------------------------------

const REQUIREMENTS: &str = r#"# Pinned for production
requests==2.28.0 \
    --hash=sha256:7c5599b102feddaa661c826c56ab4fee28bfd17f5abca1ebbe3e7f19d7c97983
PyYAML[extra]==5.3 ; python_version<"3.9"
jinja2 == 2.10.0   # listed as 2.10
numpy==1.20.0
torch==2.0.0
urllib3==2.0.5
transformers==4.36.0.dev0
flask>=2.0
django
-r other.txt
-e git+https://github.com/example/y.git#egg=y
--index-url https://example.org/simple
pip==
"#;

#[test]
fn requirements_end_to_end() {
    let (_dir, db) = full_db();
    let r = scan_dependencies(Path::new("app/requirements.txt"), REQUIREMENTS.as_bytes(), &db);
    assert_eq!(r.format, Format::Requirements);
    assert_eq!(r.verdict, Verdict::Malicious);
    let p = "app/requirements.txt";
    let expected = vec![
        f(
            "deps.cannot-compare",
            Severity::Low,
            &format!("{p}:7"),
            "torch 2.0.0: cannot compare with PYSEC-2099-1: range bound `not a version` is not a valid PEP 440 version",
        ),
        f("deps.malformed", Severity::Low, &format!("{p}:15"), "`pip==`: `==` has no version"),
        f(
            "deps.not-followed",
            Severity::Info,
            &format!("{p}:12"),
            "`-r other.txt` includes another file, which is not followed here: scan it separately",
        ),
        f("deps.unpinned", Severity::Info, &format!("{p}:10"), "flask >=2.0: not pinned, cannot be checked"),
        f("deps.unpinned", Severity::Info, &format!("{p}:11"), "django has no version: not pinned, cannot be checked"),
        f(
            "deps.unpinned",
            Severity::Info,
            &format!("{p}:13"),
            "`git+https://github.com/example/y.git#egg=y` is an editable requirement, not a registry release; it cannot be checked",
        ),
        f(
            "deps.vulnerable",
            Severity::Low,
            &format!("{p}:9"),
            "transformers 4.36.0.dev0 is affected by PYSEC-2024-transformers: Deserialization of untrusted data; fixed in 4.36.0rc1",
        ),
        f(
            "deps.vulnerable",
            Severity::Medium,
            &format!("{p}:2"),
            "requests 2.28.0 is affected by GHSA-j8r2-6x86-q33q (CVE-2023-32681, PYSEC-2023-74): Unintended leak of Proxy-Authorization header; fixed in 2.31.0",
        ),
        f(
            "deps.vulnerable",
            Severity::High,
            &format!("{p}:5"),
            "jinja2 2.10.0 is affected by GHSA-462w-v97r-4m45: Jinja2 sandbox escape; no fixed version listed",
        ),
        f(
            "deps.vulnerable",
            Severity::High,
            &format!("{p}:8"),
            "urllib3 2.0.5 is affected by GHSA-g4mx-q9vg-27p4: urllib3 request body not stripped after redirect; fixed in 2.0.7",
        ),
        f(
            "deps.vulnerable",
            Severity::Critical,
            &format!("{p}:4"),
            "PyYAML 5.3 is affected by PYSEC-2020-176 (CVE-2020-14343): Arbitrary code execution in full_load; no fixed version listed",
        ),
    ];
    let mut expected = expected;
    expected.sort();
    assert_eq!(sorted(&r), expected, "{:#?}", r.findings);
    // Most severe first.
    assert_eq!(r.findings[0].severity, Severity::Critical);
    // The byte offset is that of the entry.
    let pyyaml = r.findings.iter().find(|f| f.message.starts_with("PyYAML")).unwrap();
    let off = pyyaml.location.offset.unwrap() as usize;
    assert!(REQUIREMENTS[off..].starts_with("PyYAML[extra]"));
}

#[test]
fn fixed_and_later_versions_are_clean() {
    let (_dir, db) = full_db();
    let text = "requests==2.31.0\npyyaml==5.4\njinja2==2.11\ntransformers==4.36.0\nurllib3==2.0.7\nrequests==2.2.0\n";
    let r = scan_dependencies(Path::new("requirements.txt"), text.as_bytes(), &db);
    assert_eq!(summary(&r), vec![], "{:#?}", r.findings);
    assert_eq!(r.verdict, Verdict::Clean);
    // last_affected is inclusive, and the bound itself is affected.
    let r = scan_dependencies(Path::new("requirements.txt"), b"pyyaml==5.3.1\npyyaml==5.1\npyyaml==5.0.9\n", &db);
    let lines: Vec<&str> = r.findings.iter().map(|f| f.location.member.as_str()).collect();
    assert_eq!(lines, ["requirements.txt:1", "requirements.txt:2"]);
}

#[test]
fn poetry_lock() {
    let (_dir, db) = full_db();
    let lock = r#"# This file is automatically @generated by Poetry
[[package]]
name = "requests"
version = "2.30.0"
description = "Python HTTP for Humans."
optional = false
python-versions = ">=3.7"
files = [
    {file = "requests-2.30.0-py3-none-any.whl", hash = "sha256:abc"},
]

[package.dependencies]
urllib3 = ">=1.21.1,<3"

[[package]]
name = "mylib"
version = "0.1.0"
description = ""

[package.source]
type = "git"
url = "https://example.org/mylib.git"
reference = "main"

[[package]]
name = "Jinja2"
version = "2.10"

[metadata]
lock-version = "2.0"
python-versions = "^3.10"
content-hash = "abc"
"#;
    let r = scan_dependencies(Path::new("poetry.lock"), lock.as_bytes(), &db);
    assert_eq!(r.format, Format::PoetryLock);
    let mut expected = vec![
        f(
            "deps.vulnerable",
            Severity::Medium,
            "poetry.lock:3",
            "requests 2.30.0 is affected by GHSA-j8r2-6x86-q33q (CVE-2023-32681, PYSEC-2023-74): Unintended leak of Proxy-Authorization header; fixed in 2.31.0",
        ),
        f(
            "deps.unpinned",
            Severity::Info,
            "poetry.lock:16",
            "mylib comes from a git source, not the registry; it cannot be checked",
        ),
        f(
            "deps.vulnerable",
            Severity::High,
            "poetry.lock:26",
            "Jinja2 2.10 is affected by GHSA-462w-v97r-4m45: Jinja2 sandbox escape; no fixed version listed",
        ),
    ];
    expected.sort();
    assert_eq!(sorted(&r), expected, "{:#?}", r.findings);
}

#[test]
fn uv_lock() {
    let (_dir, db) = full_db();
    let lock = r#"version = 1
requires-python = ">=3.10"

[[package]]
name = "myproject"
version = "0.1.0"
source = { editable = "." }
dependencies = [{ name = "pyyaml" }]

[[package]]
name = "pyyaml"
version = "5.2"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.pythonhosted.org/pyyaml-5.2.tar.gz", hash = "sha256:abc", size = 1 }

[[package]]
name = "torch"
version = "2.1.0"
source = { git = "https://github.com/pytorch/pytorch?rev=abc#abc" }
"#;
    let r = scan_dependencies(Path::new("uv.lock"), lock.as_bytes(), &db);
    assert_eq!(r.format, Format::UvLock);
    let mut expected = vec![
        f(
            "deps.vulnerable",
            Severity::Critical,
            "uv.lock:11",
            "pyyaml 5.2 is affected by PYSEC-2020-176 (CVE-2020-14343): Arbitrary code execution in full_load; no fixed version listed",
        ),
        f(
            "deps.unpinned",
            Severity::Info,
            "uv.lock:17",
            "torch comes from a git source, not the registry; it cannot be checked",
        ),
    ];
    expected.sort();
    assert_eq!(sorted(&r), expected, "{:#?}", r.findings);
}

#[test]
fn pipfile_lock() {
    let (_dir, db) = full_db();
    let lock = r#"{
    "_meta": {
        "hash": {"sha256": "abc"},
        "pipfile-spec": 6,
        "requires": {"python_version": "3.11"},
        "sources": [{"name": "pypi", "url": "https://pypi.org/simple", "verify_ssl": true}]
    },
    "default": {
        "requests": {
            "hashes": ["sha256:abc"],
            "index": "pypi",
            "version": "==2.28.1"
        },
        "mylib": {
            "editable": true,
            "path": "."
        }
    },
    "develop": {
        "urllib3": {
            "hashes": ["sha256:def"],
            "version": "==2.0.6"
        },
        "requests": {
            "version": "==2.31.0"
        }
    }
}
"#;
    let r = scan_dependencies(Path::new("Pipfile.lock"), lock.as_bytes(), &db);
    assert_eq!(r.format, Format::PipfileLock);
    let mut expected = vec![
        f(
            "deps.vulnerable",
            Severity::Medium,
            "Pipfile.lock:9",
            "requests 2.28.1 is affected by GHSA-j8r2-6x86-q33q (CVE-2023-32681, PYSEC-2023-74): Unintended leak of Proxy-Authorization header; fixed in 2.31.0",
        ),
        f(
            "deps.unpinned",
            Severity::Info,
            "Pipfile.lock:14",
            "mylib comes from a path source, not a registry release; it cannot be checked",
        ),
        f(
            "deps.vulnerable",
            Severity::High,
            "Pipfile.lock:20",
            "urllib3 2.0.6 is affected by GHSA-g4mx-q9vg-27p4: urllib3 request body not stripped after redirect; fixed in 2.0.7",
        ),
    ];
    expected.sort();
    assert_eq!(sorted(&r), expected, "{:#?}", r.findings);
}

#[test]
fn cargo_lock() {
    let (_dir, db) = full_db();
    let lock = r#"# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 4

[[package]]
name = "myapp"
version = "0.1.0"
dependencies = ["smallvec", "regex"]

[[package]]
name = "smallvec"
version = "1.6.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "abc"

[[package]]
name = "smallvec"
version = "0.6.14"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "regex"
version = "1.5.4"
source = "sparse+https://index.crates.io/"

[[package]]
name = "time"
version = "0.2.23"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "prerel"
version = "1.0.0-rc.1"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "forked"
version = "0.3.0"
source = "git+https://github.com/example/forked?branch=main#0123abc"
"#;
    let r = scan_dependencies(Path::new("ws/Cargo.lock"), lock.as_bytes(), &db);
    assert_eq!(r.format, Format::CargoLock);
    let mut expected = vec![
        f(
            "deps.vulnerable",
            Severity::Critical,
            "ws/Cargo.lock:11",
            "smallvec 1.6.0 is affected by RUSTSEC-2021-0003 (CVE-2021-25900, GHSA-43w2-9j62-hq99): Buffer overflow in SmallVec::insert_many; fixed in 0.6.14, 1.6.1",
        ),
        f(
            "deps.vulnerable",
            Severity::High,
            "ws/Cargo.lock:22",
            "regex 1.5.4 is affected by RUSTSEC-2022-0013: Regexes with large repetitions on empty sub-expressions take a very long time to parse; fixed in 1.5.5",
        ),
        f(
            "deps.vulnerable",
            Severity::Low,
            "ws/Cargo.lock:32",
            "prerel 1.0.0-rc.1 is affected by RUSTSEC-2099-0001: Pre-release only; fixed in 1.0.0",
        ),
        f(
            "deps.unpinned",
            Severity::Info,
            "ws/Cargo.lock:37",
            "forked 0.3.0 comes from `git+https://github.com/example/forked?branch=main#0123abc`, not crates.io; it cannot be checked",
        ),
    ];
    expected.sort();
    assert_eq!(sorted(&r), expected, "{:#?}", r.findings);
}

#[test]
fn package_lock_v3() {
    let (_dir, db) = full_db();
    let lock = r#"{
  "name": "app",
  "version": "1.0.0",
  "lockfileVersion": 3,
  "requires": true,
  "packages": {
    "": {
      "name": "app",
      "version": "1.0.0",
      "dependencies": {"lodash": "^4.17.0"}
    },
    "node_modules/lodash": {
      "version": "4.17.20",
      "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.20.tgz"
    },
    "node_modules/@babel/traverse": {
      "version": "7.23.2"
    },
    "node_modules/minimist": {
      "version": "1.2.6"
    },
    "node_modules/a/node_modules/minimist": {
      "version": "1.2.5"
    },
    "node_modules/limited": {
      "version": "2.0.0"
    },
    "node_modules/@scope/old-babel": {
      "name": "@babel/traverse",
      "version": "7.0.0"
    },
    "node_modules/local-pkg": {
      "resolved": "packages/local-pkg",
      "link": true
    },
    "packages/local-pkg": {
      "version": "0.0.1"
    },
    "node_modules/from-git": {
      "version": "git+ssh://git@github.com/example/from-git.git#abc"
    }
  }
}
"#;
    let r = scan_dependencies(Path::new("package-lock.json"), lock.as_bytes(), &db);
    assert_eq!(r.format, Format::PackageLock);
    let mut expected = vec![
        f(
            "deps.vulnerable",
            Severity::High,
            "package-lock.json:12",
            "lodash 4.17.20 is affected by GHSA-35jh-r3h4-6jhm (CVE-2021-23337): Command Injection in lodash; fixed in 4.17.21",
        ),
        f(
            "deps.vulnerable",
            Severity::Low,
            "package-lock.json:22",
            "minimist 1.2.5 is affected by GHSA-xvch-5gv4-984h: Prototype Pollution in minimist; no fixed version listed",
        ),
        f(
            "deps.vulnerable",
            Severity::Critical,
            "package-lock.json:28",
            "@babel/traverse 7.0.0 is affected by GHSA-67hx-6x53-jw92 (CVE-2023-45133): Babel vulnerable to arbitrary code execution when compiling specifically crafted malicious code; fixed in 7.23.2, 8.0.0-alpha.4",
        ),
        f(
            "deps.unpinned",
            Severity::Info,
            "package-lock.json:39",
            "from-git is installed from `git+ssh://git@github.com/example/from-git.git#abc`, not the registry; it cannot be checked",
        ),
    ];
    expected.sort();
    assert_eq!(sorted(&r), expected, "{:#?}", r.findings);
}

#[test]
fn package_lock_v1_nested_and_aliases() {
    let (_dir, db) = full_db();
    let lock = r#"{
  "name": "old-app",
  "lockfileVersion": 1,
  "requires": true,
  "dependencies": {
    "a": {
      "version": "1.0.0",
      "requires": {"minimist": "1.2.0"},
      "dependencies": {
        "minimist": {
          "version": "1.2.0"
        }
      }
    },
    "minimist": {
      "version": "1.2.8"
    },
    "old-lodash": {
      "version": "npm:lodash@4.17.15"
    },
    "limited": {
      "version": "v1.5.0"
    }
  }
}
"#;
    let r = scan_dependencies(Path::new("sub/package-lock.json"), lock.as_bytes(), &db);
    let mut expected = vec![
        f(
            "deps.vulnerable",
            Severity::Low,
            "sub/package-lock.json:10",
            "minimist 1.2.0 is affected by GHSA-xvch-5gv4-984h: Prototype Pollution in minimist; no fixed version listed",
        ),
        f(
            "deps.vulnerable",
            Severity::High,
            "sub/package-lock.json:18",
            "lodash 4.17.15 is affected by GHSA-35jh-r3h4-6jhm (CVE-2021-23337): Command Injection in lodash; fixed in 4.17.21",
        ),
        f(
            "deps.vulnerable",
            Severity::Medium,
            "sub/package-lock.json:21",
            "limited v1.5.0 is affected by GHSA-limit: Limited range; no fixed version listed",
        ),
    ];
    expected.sort();
    assert_eq!(sorted(&r), expected, "{:#?}", r.findings);
}

// ----- problems -----------------------------------------------------------------------------

#[test]
fn malformed_lockfiles_report_the_position() {
    let (_dir, db) = full_db();
    let r =
        scan_dependencies(Path::new("Cargo.lock"), b"version = 4\n\n[[package]]\nname = \"x\nversion = \"1\"\n", &db);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].rule, RuleId::DEPS_MALFORMED);
    assert_eq!(r.findings[0].location.member, "Cargo.lock:4", "{:#?}", r.findings);
    assert!(r.findings[0].message.starts_with("cannot parse at line 4, column"), "{}", r.findings[0].message);

    let r = scan_dependencies(Path::new("package-lock.json"), b"{\n  \"packages\": {\n    \"x\": [1,]\n}", &db);
    assert_eq!(summary(&r).len(), 1);
    assert_eq!(r.findings[0].rule, RuleId::DEPS_MALFORMED);
    assert_eq!(r.findings[0].location.member, "package-lock.json:3", "{:#?}", r.findings);
    assert!(r.findings[0].message.contains("line 3"), "{}", r.findings[0].message);

    let r = scan_dependencies(Path::new("Pipfile.lock"), b"[1, 2]", &db);
    assert_eq!(r.findings[0].rule, RuleId::DEPS_MALFORMED);

    // A required field of the wrong type is malformed too, not "no packages".
    let r = scan_dependencies(Path::new("poetry.lock"), b"[[package]]\nname = 3\nversion = \"1\"\n", &db);
    assert_eq!(r.findings[0].rule, RuleId::DEPS_MALFORMED);
    assert_eq!(r.findings[0].location.member, "poetry.lock:2", "{:#?}", r.findings);

    let r = scan_dependencies(Path::new("requirements.txt"), b"ok==1.0\n\xff\xfe\n", &db);
    // Options glued to a non-ASCII character are not split inside it.
    let _ = scan_dependencies(Path::new("requirements.txt"), "-é\n-éx y\n".as_bytes(), &db);
    assert_eq!(r.findings[0].rule, RuleId::DEPS_MALFORMED);
    assert_eq!(r.verdict, Verdict::Inconclusive);
}

#[test]
fn missing_ecosystem_and_unknown_files_are_not_clean() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path().join("PyPI")).unwrap();
    std::fs::write(dir.path().join("PyPI/all.zip"), zip_stored(&record_members(&pypi_records()))).unwrap();
    let db = OsvDatabase::open(dir.path()).unwrap();
    assert_eq!(db.ecosystems(), vec!["PyPI"]);
    assert!(db.covers("PyPI") && !db.covers("npm"));

    let lock = "[[package]]\nname = \"regex\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
    let r = scan_dependencies(Path::new("Cargo.lock"), lock.as_bytes(), &db);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].rule, RuleId::DEPS_UNKNOWN_ECOSYSTEM);
    assert!(
        r.findings[0].message.contains("has no crates.io data; 1 packages were not checked"),
        "{}",
        r.findings[0].message
    );

    let r = scan_dependencies(Path::new("setup.py"), b"", &db);
    assert_eq!((r.format, r.verdict), (Format::Unknown, Verdict::Inconclusive));
    assert_eq!(r.findings[0].rule, RuleId::DEPS_UNKNOWN_ECOSYSTEM);

    // A lockfile with nothing to check is clean.
    let r = scan_dependencies(Path::new("Cargo.lock"), b"version = 4\n", &db);
    assert_eq!((r.verdict, r.findings.len()), (Verdict::Clean, 0));
}

#[test]
fn unreadable_records_about_scanned_packages_are_reported() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path().join("PyPI")).unwrap();
    let mut members = record_members(&pypi_records());
    // Truncated record mentioning `requests`: it might have been about the scanned version.
    members.push((
        "GHSA-broken.json".into(),
        br#"{"id": "GHSA-broken", "affected": [{"package": {"name": "requests""#.to_vec(),
    ));
    // A record that matches but does not fit the schema.
    members.push((
        "GHSA-bad-shape.json".into(),
        serde_json::to_vec(&json!({"id": "GHSA-bad-shape", "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"}, "ranges": "oops"}]}))
            .unwrap(),
    ));
    std::fs::write(dir.path().join("PyPI/all.zip"), zip_stored(&members)).unwrap();
    let db = OsvDatabase::open(dir.path()).unwrap();
    let r = scan_dependencies(Path::new("requirements.txt"), b"requests==2.31.0\n", &db);
    let rules: Vec<String> = r.findings.iter().map(|f| f.rule.to_string()).collect();
    assert_eq!(rules, ["deps.database", "deps.database"], "{:#?}", r.findings);
    assert!(r.findings.iter().any(|f| f.message.contains("GHSA-broken.json")));
    assert!(r.findings.iter().any(|f| f.message.contains("GHSA-bad-shape.json")));
    assert_eq!(r.verdict, Verdict::Inconclusive);
    // Records of other packages are not reported.
    let r = scan_dependencies(Path::new("requirements.txt"), b"flask==0.1\n", &db);
    assert_eq!(summary(&r).len(), 1, "{:#?}", r.findings);
    assert_eq!(r.findings[0].rule, RuleId::DEPS_VULNERABLE);

    // An invalid installed version is "cannot compare", never "not vulnerable".
    let r = scan_dependencies(Path::new("requirements.txt"), b"flask==not.a.version!\n", &db);
    assert_eq!(r.findings[0].rule, RuleId::DEPS_CANNOT_COMPARE, "{:#?}", r.findings);
    assert_eq!(r.verdict, Verdict::Inconclusive);
}

#[test]
fn database_layouts_and_open_errors() {
    // `<ecosystem>-all.zip` and a top-level `all.zip` of mixed ecosystems.
    let dir = TempDir::new();
    std::fs::write(dir.path().join("npm-all.zip"), zip_stored(&record_members(&npm_records()))).unwrap();
    let db = OsvDatabase::open(dir.path()).unwrap();
    let lock = br#"{"lockfileVersion": 2, "packages": {"node_modules/lodash": {"version": "4.17.0"}}}"#;
    let r = scan_dependencies(Path::new("package-lock.json"), lock, &db);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].location.member, "package-lock.json:1");

    let dir = TempDir::new();
    let mut all = record_members(&npm_records());
    all.extend(record_members(&pypi_records()));
    std::fs::write(dir.path().join("all.zip"), zip_stored(&all)).unwrap();
    let db = OsvDatabase::open(dir.path()).unwrap();
    assert!(db.covers("PyPI") && db.covers("npm"));
    let r = scan_dependencies(Path::new("requirements.txt"), b"requests==2.3.0\n", &db);
    // Only the PyPI record, not the npm package of the same name.
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    assert!(r.findings[0].message.contains("GHSA-j8r2-6x86-q33q"));
    // A second scan is answered from the cache, with the same result.
    let again = scan_dependencies(Path::new("requirements.txt"), b"requests==2.3.0\n", &db);
    assert_eq!(summary(&again), summary(&r));

    // Errors.
    let dir = TempDir::new();
    let err = OsvDatabase::open(dir.path()).unwrap_err();
    assert!(matches!(err, ScanError::OsvDatabase { .. }), "{err}");
    assert!(err.to_string().contains("no OSV data found"), "{err}");
    assert!(matches!(OsvDatabase::open(&dir.path().join("missing")), Err(ScanError::Io { .. })));
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    assert!(matches!(OsvDatabase::open(&dir.path().join("file")), Err(ScanError::OsvDatabase { .. })));
}

#[test]
fn file_names_and_ecosystems() {
    let cases = [
        ("requirements.txt", Some(Format::Requirements), Some("PyPI")),
        ("a/requirements-dev.txt", Some(Format::Requirements), Some("PyPI")),
        ("requirements/test.txt", Some(Format::Requirements), Some("PyPI")),
        ("poetry.lock", Some(Format::PoetryLock), Some("PyPI")),
        ("uv.lock", Some(Format::UvLock), Some("PyPI")),
        ("Pipfile.lock", Some(Format::PipfileLock), Some("PyPI")),
        ("x/Cargo.lock", Some(Format::CargoLock), Some("crates.io")),
        ("package-lock.json", Some(Format::PackageLock), Some("npm")),
        ("npm-shrinkwrap.json", Some(Format::PackageLock), Some("npm")),
        ("notes.txt", None, None),
        ("package.json", None, None),
        ("Pipfile", None, None),
        ("model.pkl", None, None),
    ];
    for (path, format, eco) in cases {
        assert_eq!(dependency_format(Path::new(path)), format, "{path}");
        assert_eq!(is_dependency_file(Path::new(path)), format.is_some(), "{path}");
        assert_eq!(format.and_then(ecosystem), eco, "{path}");
    }
}

#[test]
fn requirement_line_forms() {
    let (_dir, db) = full_db();
    // Every spelling of a pin of a vulnerable requests version is found; names normalised.
    let text = "Requests==2.28.0\nrequests[socks,security] == 2.28.0\nREQUESTS===2.28.0\nrequests (==2.28.0)\n\
                requests==2.28.0;python_version>='3'\nrequests>=2.0,==2.28.0\nrequests==2.28.*\n  # indented comment\n\
                requests==2.28.0 \\\n  --hash=sha256:aa \\\n  --hash=sha256:bb\nre_quests==1\n";
    let r = scan_dependencies(Path::new("requirements.txt"), text.as_bytes(), &db);
    let got: Vec<(String, String)> =
        r.findings.iter().map(|f| (f.rule.to_string(), f.location.member.clone())).collect();
    let mut expected: Vec<(String, String)> = [1, 2, 3, 4, 5, 6, 9]
        .iter()
        .map(|l| ("deps.vulnerable".to_string(), format!("requirements.txt:{l}")))
        .collect();
    expected.push(("deps.unpinned".into(), "requirements.txt:7".into()));
    assert_eq!(got, expected, "{:#?}", r.findings);
}

// ----- version orderings --------------------------------------------------------------------

fn pep(s: &str) -> Pep440Version {
    Pep440Version::parse(s).unwrap_or_else(|| panic!("`{s}` should parse"))
}

fn sem(s: &str) -> SemVersion {
    SemVersion::parse(s).unwrap_or_else(|| panic!("`{s}` should parse"))
}

#[track_caller]
fn assert_ascending<T: Ord + std::fmt::Debug>(items: &[(&str, T)]) {
    for (i, (a, va)) in items.iter().enumerate() {
        for (j, (b, vb)) in items.iter().enumerate() {
            assert_eq!(va.cmp(vb), i.cmp(&j), "{a} vs {b}");
        }
    }
}

#[test]
fn pep440_ordering_from_the_spec() {
    // PEP 440, "Summary of permitted suffixes and relative ordering" example.
    let spec = [
        "1.dev0",
        "1.0.dev456",
        "1.0a1",
        "1.0a2.dev456",
        "1.0a12.dev456",
        "1.0a12",
        "1.0b1.dev456",
        "1.0b2",
        "1.0b2.post345.dev456",
        "1.0b2.post345",
        "1.0rc1.dev456",
        "1.0rc1",
        "1.0",
        "1.0+abc.5",
        "1.0+abc.7",
        "1.0+5",
        "1.0.post456.dev34",
        "1.0.post456",
        "1.0.15",
        "1.1.dev1",
    ];
    assert_ascending(&spec.iter().map(|s| (*s, pep(s))).collect::<Vec<_>>());
    let chain = ["1.0.dev1", "1.0a1.dev1", "1.0a1", "1.0a1.post1.dev1", "1.0a1.post1", "1.0", "1.0.post1"];
    assert_ascending(&chain.iter().map(|s| (*s, pep(s))).collect::<Vec<_>>());
    let more = ["0.9", "1!0.1", "1!1.0", "2!0.0.1"];
    assert_ascending(&more.iter().map(|s| (*s, pep(s))).collect::<Vec<_>>());
}

#[test]
fn pep440_normalisation() {
    // (spelling, canonical form): equal under the ordering, and displayed canonically.
    let cases = [
        ("1.0", "1.0.0"),
        ("1.0.0.0", "1"),
        ("v1.0", "1.0"),
        ("  1.0\n", "1.0"),
        ("1.01", "1.1"),
        ("1.0RC1", "1.0rc1"),
        ("1.0c1", "1.0rc1"),
        ("1.0-preview2", "1.0rc2"),
        ("1.0.pre2", "1.0rc2"),
        ("1.0alpha1", "1.0a1"),
        ("1.0-alpha.1", "1.0a1"),
        ("1.0beta", "1.0b0"),
        ("1.1.a1", "1.1a1"),
        ("1.0a", "1.0a0"),
        ("1.0.post", "1.0.post0"),
        ("1.0-1", "1.0.post1"),
        ("1.0-r4", "1.0.post4"),
        ("1.0rev4", "1.0.post4"),
        ("1.0_post_4", "1.0.post4"),
        ("1.0.dev", "1.0.dev0"),
        ("1.0-dev2", "1.0.dev2"),
        ("1.0+ubuntu-1", "1.0+ubuntu.1"),
        ("1.0+UBUNTU_1", "1.0+ubuntu.1"),
        ("1.0a1.post.dev", "1.0a1.post0.dev0"),
        ("0!1.0", "1.0"),
    ];
    for (a, b) in cases {
        assert_eq!(pep(a), pep(b), "{a} == {b}");
    }
    assert_eq!(pep("1.0-preview2").to_string(), "1.0rc2");
    assert_eq!(pep("1!2.0.0a.post.dev+Local-1").to_string(), "1!2.0.0a0.post0.dev0+local.1");
    assert_ne!(pep("1.0+1"), pep("1.0+01.0"));
    assert!(pep("1.0+1") == pep("1.0+01"));
    for bad in [
        "",
        "abc",
        "1.0+",
        "1.0-",
        "1..0",
        "1.0.",
        "1.0+abc_",
        "1.0 beta",
        "1.0post1a",
        "1!",
        "-1",
        "1.0a1a1",
        "1.0+ab!c",
    ] {
        assert!(Pep440Version::parse(bad).is_none(), "`{bad}` should not parse");
    }
    assert!(pep("1.0a1").is_prerelease() && pep("1.0.dev1").is_prerelease() && !pep("1.0.post1").is_prerelease());
}

#[test]
fn semver_ordering_from_the_spec() {
    // semver.org section 11.
    let spec = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "2.0.0",
        "2.1.0",
        "2.1.1",
        "10.0.0",
    ];
    assert_ascending(&spec.iter().map(|s| (*s, sem(s))).collect::<Vec<_>>());
    // Build metadata is ignored; numeric identifiers of any length compare numerically.
    assert_eq!(sem("1.0.0+build.1"), sem("1.0.0+other"));
    assert_eq!(sem("1.0.0-alpha+001").cmp(&sem("1.0.0-alpha")), Ordering::Equal);
    assert!(sem("1.0.0-99999999999999999999999") > sem("1.0.0-9"));
    assert!(sem("99999999999999999999.0.0") > sem("9999999999999999999.0.0"));
    assert!(sem("1.0.0-a-b") > sem("1.0.0-a"));
    assert_eq!(sem("1.0.0-x.7.z.92").to_string(), "1.0.0-x.7.z.92");
    for bad in [
        "1",
        "1.0",
        "1.0.0.0",
        "01.0.0",
        "1.00.0",
        "1.0.0-01",
        "1.0.0-",
        "1.0.0+",
        "1.0.0-a..b",
        "v1.0.0",
        "=1.0.0",
        "1.0.0-é",
        " 1.0.0",
    ] {
        assert!(SemVersion::parse(bad).is_none(), "`{bad}` should not parse strictly");
    }
    for (loose, strict) in [("v1.2.3", "1.2.3"), ("=1.2.3", "1.2.3"), (" =v1.2.3-rc.1 ", "1.2.3-rc.1")] {
        assert_eq!(SemVersion::parse_loose(loose), Some(sem(strict)), "{loose}");
    }
    assert!(sem("1.0.0-rc.1").is_prerelease() && !sem("1.0.0").is_prerelease());
}

#[test]
fn cvss3_base_scores() {
    let cases = [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", 3.1),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O", 9.8),
    ];
    for (v, score) in cases {
        assert_eq!(cvss3_base_score(v), Some(score), "{v}");
    }
    for bad in [
        "",
        "CVSS:2.0/AV:N",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    ] {
        assert_eq!(cvss3_base_score(bad), None, "{bad}");
    }
}

// ----- properties ---------------------------------------------------------------------------

fn pep440_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "(v)?([0-9]!)?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}([-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]{0,2})?([-_.]?(post|rev|r)[0-9]{0,2}|-[0-9])?([-_.]?dev[0-9]{0,2})?(\\+[a-z0-9]{1,3}([-_.][a-z0-9]{1,3}){0,2})?",
        "[0-9a-zA-Z.!+_ -]{0,16}",
        any::<String>(),
    ]
}

fn semver_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[v=]?(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})(-[0-9a-z-]{1,4}(\\.[0-9a-z-]{1,4}){0,3})?(\\+[0-9a-z-]{1,4})?",
        "[0-9a-z.+=v-]{0,16}",
        any::<String>(),
    ]
}

/// Total order consistent with equality (and with `Hash` through equality).
fn check_total_order<T: Ord + std::fmt::Debug>(a: &T, b: &T, c: &T) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.cmp(b) == Ordering::Equal, a == b);
    prop_assert_eq!(a.cmp(b), b.cmp(a).reverse());
    prop_assert_eq!(a.partial_cmp(b), Some(a.cmp(b)));
    if a <= b && b <= c {
        prop_assert!(a <= c, "{:?} <= {:?} <= {:?}", a, b, c);
    }
    if a == b {
        prop_assert_eq!(a.cmp(c), b.cmp(c));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn pep440_parse_never_panics_and_orders_totally(a in pep440_like(), b in pep440_like(), c in pep440_like()) {
        let (pa, pb, pc) = (Pep440Version::parse(&a), Pep440Version::parse(&b), Pep440Version::parse(&c));
        if let (Some(x), Some(y), Some(z)) = (&pa, &pb, &pc) {
            check_total_order(x, y, z)?;
            // The canonical form parses back to an equal version.
            prop_assert_eq!(Pep440Version::parse(&x.to_string()), Some(x.clone()));
        }
    }

    #[test]
    fn semver_parse_never_panics_and_orders_totally(a in semver_like(), b in semver_like(), c in semver_like()) {
        let (pa, pb, pc) = (SemVersion::parse_loose(&a), SemVersion::parse_loose(&b), SemVersion::parse_loose(&c));
        let _ = SemVersion::parse(&a);
        if let (Some(x), Some(y), Some(z)) = (&pa, &pb, &pc) {
            check_total_order(x, y, z)?;
            prop_assert_eq!(SemVersion::parse(&x.to_string()), Some(x.clone()));
        }
    }

    #[test]
    fn requirements_text_never_panics(text in "([-a-zA-Zé_.=<>~!;\\[\\]()@#, \\\\+0-9]{0,30}\n){0,6}") {
        thread_local! {
            static DB: (TempDir, OsvDatabase) = full_db();
        }
        DB.with(|(_, db)| {
            let r = scan_dependencies(Path::new("requirements.txt"), text.as_bytes(), db);
            for f in &r.findings {
                prop_assert!(f.location.member.starts_with("requirements.txt"));
            }
            Ok(())
        })?;
    }

    #[test]
    fn lockfile_parsing_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400), which in 0usize..6) {
        thread_local! {
            static DB: (TempDir, OsvDatabase) = full_db();
        }
        let name = ["requirements.txt", "poetry.lock", "uv.lock", "Pipfile.lock", "Cargo.lock", "package-lock.json"][which];
        DB.with(|(_, db)| {
            let r = scan_dependencies(Path::new(name), &data, db);
            // Garbage is never reported as checked-and-clean unless it names nothing at all.
            prop_assert!(r.verdict != Verdict::Clean || r.findings.iter().all(|f| !f.rule.is_inconclusive()));
            Ok(())
        })?;
    }
}

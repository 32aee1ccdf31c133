//! SemVer 2.0.0 versions (crates.io, npm, and OSV `SEMVER` ranges) and their precedence.
//!
//! Precedence is section 11 of the spec: major, minor, patch numerically; a pre-release sorts
//! before its release; pre-release identifiers compare numerically when both are numeric,
//! numeric before alphanumeric, alphanumeric in ASCII order, and a longer list wins when all
//! earlier identifiers are equal. Build metadata is ignored, including by equality, so that
//! `Eq` agrees with `Ord`.

use std::fmt;

use super::digits::{Digits, digit_run};

/// A parsed SemVer 2.0.0 version (build metadata dropped).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SemVersion {
    // Field order is the comparison order.
    major: Digits,
    minor: Digits,
    patch: Digits,
    pre: Pre,
}

/// Pre-release part (variant order is the sort order: any pre-release before the release).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Pre {
    Identifiers(Vec<Identifier>),
    Release,
}

/// One pre-release identifier: numeric ones sort before alphanumeric ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Identifier {
    Numeric(Digits),
    Alpha(String),
}

impl SemVersion {
    /// Parse a strict SemVer 2.0.0 version (`1.2.3`, `1.0.0-rc.1+build.5`). Leading zeros in
    /// numeric parts, missing parts and empty identifiers are rejected, as the spec says.
    pub fn parse(s: &str) -> Option<SemVersion> {
        let (core_pre, build) = match s.split_once('+') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        if let Some(build) = build
            && !build.split('.').all(|id| !id.is_empty() && id.bytes().all(is_ident_byte))
        {
            return None;
        }
        let (core, pre) = match core_pre.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (core_pre, None),
        };
        let mut parts = core.split('.');
        let major = numeric(parts.next()?)?;
        let minor = numeric(parts.next()?)?;
        let patch = numeric(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        let pre = match pre {
            None => Pre::Release,
            Some(pre) => {
                let mut ids = Vec::new();
                for id in pre.split('.') {
                    if id.is_empty() || !id.bytes().all(is_ident_byte) {
                        return None;
                    }
                    if id.bytes().all(|b| b.is_ascii_digit()) {
                        ids.push(Identifier::Numeric(numeric(id)?));
                    } else {
                        ids.push(Identifier::Alpha(id.to_string()));
                    }
                }
                Pre::Identifiers(ids)
            }
        };
        Some(SemVersion { major, minor, patch, pre })
    }

    /// Parse the way npm writes versions: surrounding whitespace and a leading `v` or `=` are
    /// allowed, the rest must be strict SemVer.
    pub fn parse_loose(s: &str) -> Option<SemVersion> {
        let s = s.trim();
        let s = s.strip_prefix('=').unwrap_or(s).trim_start();
        let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
        SemVersion::parse(s)
    }

    /// Whether the version has a pre-release part.
    pub fn is_prerelease(&self) -> bool {
        matches!(self.pre, Pre::Identifiers(_))
    }
}

impl fmt::Display for SemVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major.as_str(), self.minor.as_str(), self.patch.as_str())?;
        if let Pre::Identifiers(ids) = &self.pre {
            for (i, id) in ids.iter().enumerate() {
                f.write_str(if i == 0 { "-" } else { "." })?;
                match id {
                    Identifier::Numeric(n) => f.write_str(n.as_str())?,
                    Identifier::Alpha(a) => f.write_str(a)?,
                }
            }
        }
        Ok(())
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// A numeric part: digits only, no leading zero unless it is `0`.
fn numeric(s: &str) -> Option<Digits> {
    let n = digit_run(s.as_bytes());
    if n == 0 || n != s.len() || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    Some(Digits::new(s))
}

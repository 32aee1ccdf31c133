//! PEP 440 versions (PyPI): parsing with the spec's normalisations, and its total order.
//!
//! The order is the one `packaging.version` implements: epoch, then release (trailing zeros
//! ignored, so `1.0 == 1.0.0`), then pre-release (a dev release with no pre or post release
//! sorts before every pre-release of that release), post-release, dev-release, and local
//! label. That gives `1.0.dev1 < 1.0a1.dev1 < 1.0a1 < 1.0a1.post1.dev1 < 1.0a1.post1 < 1.0 <
//! 1.0.post1.dev1 < 1.0.post1 < 1.0+local`.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use super::digits::{Digits, digit_run};

/// A parsed PEP 440 version. Equality and ordering are PEP 440's (`1.0 == 1.0.0 == v1.0`).
#[derive(Debug, Clone)]
pub struct Pep440Version {
    epoch: Digits,
    /// Release segments as written (trailing zeros are ignored by comparisons only, so the
    /// normalised form can still be displayed).
    release: Vec<Digits>,
    pre: PreKey,
    /// `None` sorts before any post-release.
    post: Option<Digits>,
    dev: DevKey,
    /// `None` (no local label) sorts before any local label.
    local: Option<Vec<LocalSegment>>,
}

impl Pep440Version {
    /// Release segments without trailing zeros: what comparisons see.
    fn release_key(&self) -> &[Digits] {
        let len = self.release.iter().rposition(|d| !d.is_zero()).map_or(0, |i| i + 1);
        self.release.get(..len).unwrap_or(&[])
    }
}

impl Ord for Pep440Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| self.release_key().cmp(other.release_key()))
            .then_with(|| self.pre.cmp(&other.pre))
            .then_with(|| self.post.cmp(&other.post))
            .then_with(|| self.dev.cmp(&other.dev))
            .then_with(|| self.local.cmp(&other.local))
    }
}

impl PartialOrd for Pep440Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pep440Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pep440Version {}

impl Hash for Pep440Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Exactly the parts `cmp` looks at, so equal versions hash alike.
        self.epoch.hash(state);
        self.release_key().hash(state);
        self.pre.hash(state);
        self.post.hash(state);
        self.dev.hash(state);
        self.local.hash(state);
    }
}

/// Pre-release phase, in PEP 440 order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Phase {
    Alpha,
    Beta,
    Rc,
}

/// Where a version sorts by its pre-release part (variant order is the sort order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum PreKey {
    /// A dev release of a final release (`1.0.dev1`): before all of its pre-releases.
    DevOfFinal,
    /// A pre-release.
    Pre(Phase, Digits),
    /// No pre-release.
    Final,
}

/// Dev-release part (a dev release sorts before the same version without one).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum DevKey {
    Dev(Digits),
    None,
}

/// One segment of a local label: alphanumeric segments sort before numeric ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum LocalSegment {
    Alpha(String),
    Num(Digits),
}

impl Pep440Version {
    /// Parse a version, accepting everything PEP 440's normalisation rules accept (case,
    /// `-`/`_`/`.` separators, a leading `v`, alternative pre-release spellings, implicit
    /// post-releases `1.0-1`, implicit numbers `1.0a`). `None` if it is not a PEP 440 version.
    pub fn parse(s: &str) -> Option<Pep440Version> {
        let s = s.trim().to_ascii_lowercase();
        let mut c = Cursor { s: s.as_bytes(), at: 0 };
        c.eat(b"v");
        let first = c.number()?;
        let (epoch, first) = if c.eat(b"!") { (first, c.number()?) } else { (Digits::default(), first) };
        let mut release = vec![first];
        loop {
            let save = c.at;
            if c.eat(b".")
                && let Some(n) = c.number()
            {
                release.push(n);
                continue;
            }
            c.at = save;
            break;
        }

        let pre = c.pre();
        let post = c.post();
        let dev = c.tagged(&[b"dev"]).map(|(_, n)| n);
        let local = if c.eat(b"+") { Some(c.local()?) } else { None };
        if c.at != c.s.len() {
            return None;
        }
        let pre = match (pre, &post, &dev) {
            (Some((phase, n)), _, _) => PreKey::Pre(phase, n),
            (None, None, Some(_)) => PreKey::DevOfFinal,
            (None, _, _) => PreKey::Final,
        };
        let dev = dev.map_or(DevKey::None, DevKey::Dev);
        Some(Pep440Version { epoch, release, pre, post, dev, local })
    }

    /// Whether this is a pre-release or dev release.
    pub fn is_prerelease(&self) -> bool {
        matches!(self.pre, PreKey::Pre(..) | PreKey::DevOfFinal) || matches!(self.dev, DevKey::Dev(_))
    }
}

impl fmt::Display for Pep440Version {
    /// The normalised form (PEP 440 "Normalization").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = |d: &Digits, f: &mut fmt::Formatter<'_>| f.write_str(d.as_str());
        if !self.epoch.is_zero() {
            num(&self.epoch, f)?;
            f.write_str("!")?;
        }
        for (i, r) in self.release.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            num(r, f)?;
        }
        if let PreKey::Pre(phase, n) = &self.pre {
            f.write_str(match phase {
                Phase::Alpha => "a",
                Phase::Beta => "b",
                Phase::Rc => "rc",
            })?;
            num(n, f)?;
        }
        if let Some(p) = &self.post {
            f.write_str(".post")?;
            num(p, f)?;
        }
        if let DevKey::Dev(d) = &self.dev {
            f.write_str(".dev")?;
            num(d, f)?;
        }
        if let Some(local) = &self.local {
            f.write_str("+")?;
            for (i, seg) in local.iter().enumerate() {
                if i > 0 {
                    f.write_str(".")?;
                }
                match seg {
                    LocalSegment::Alpha(a) => f.write_str(a)?,
                    LocalSegment::Num(n) => num(n, f)?,
                }
            }
        }
        Ok(())
    }
}

/// A position in the (lowercased) version string; every method restores nothing on failure
/// unless it says so, so callers save `at` where PEP 440's grammar needs backtracking.
struct Cursor<'a> {
    s: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        self.s.get(self.at..).unwrap_or(&[])
    }

    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.rest().starts_with(lit) {
            self.at += lit.len();
            true
        } else {
            false
        }
    }

    fn number(&mut self) -> Option<Digits> {
        let n = digit_run(self.rest());
        if n == 0 {
            return None;
        }
        let text = std::str::from_utf8(self.rest().get(..n)?).ok()?;
        self.at += n;
        Some(Digits::new(text))
    }

    fn separator(&mut self) {
        if matches!(self.rest().first(), Some(b'-' | b'_' | b'.')) {
            self.at += 1;
        }
    }

    /// `[-_.]? label [-_.]? number?`, the shape of pre, post and dev parts. Labels are tried in
    /// order, so longer spellings must come before their prefixes. Restores the position and
    /// returns `None` when no label matches.
    fn tagged(&mut self, labels: &[&[u8]]) -> Option<(usize, Digits)> {
        let save = self.at;
        self.separator();
        let Some(which) = labels.iter().position(|l| self.rest().starts_with(l)) else {
            self.at = save;
            return None;
        };
        self.at += labels.get(which).map_or(0, |l| l.len());
        // The separator before the number belongs to this part only if a number follows.
        let before_number = self.at;
        self.separator();
        let n = match self.number() {
            Some(n) => n,
            None => {
                self.at = before_number;
                Digits::default()
            }
        };
        Some((which, n))
    }

    fn pre(&mut self) -> Option<(Phase, Digits)> {
        const LABELS: [&[u8]; 8] = [b"alpha", b"a", b"beta", b"b", b"preview", b"pre", b"rc", b"c"];
        let (which, n) = self.tagged(&LABELS)?;
        let phase = match which {
            0 | 1 => Phase::Alpha,
            2 | 3 => Phase::Beta,
            _ => Phase::Rc,
        };
        Some((phase, n))
    }

    fn post(&mut self) -> Option<Digits> {
        // Implicit post-release: `1.0-1`.
        let save = self.at;
        if self.eat(b"-")
            && let Some(n) = self.number()
        {
            return Some(n);
        }
        self.at = save;
        self.tagged(&[b"post", b"rev", b"r"]).map(|(_, n)| n)
    }

    fn local(&mut self) -> Option<Vec<LocalSegment>> {
        let mut segments = Vec::new();
        loop {
            let n = self.rest().iter().take_while(|b| b.is_ascii_alphanumeric()).count();
            if n == 0 {
                return None;
            }
            let text = std::str::from_utf8(self.rest().get(..n)?).ok()?;
            self.at += n;
            segments.push(if text.bytes().all(|b| b.is_ascii_digit()) {
                LocalSegment::Num(Digits::new(text))
            } else {
                LocalSegment::Alpha(text.to_string())
            });
            if !matches!(self.rest().first(), Some(b'-' | b'_' | b'.')) {
                return Some(segments);
            }
            self.at += 1;
        }
    }
}

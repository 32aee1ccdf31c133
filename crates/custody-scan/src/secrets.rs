//! Secret detection in text: cloud credentials, API tokens, private keys, database URLs with
//! passwords and JWTs.
//!
//! One Aho-Corasick automaton (built once) finds every keyword or token prefix in a single
//! pass; each hit is then confirmed by a small hand-written scanner for that rule (charset,
//! length, boundaries, Shannon entropy, a decoded JWT header...). No regular expressions: every
//! scanner looks at a bounded window or at a run that starts at a token boundary, so the whole
//! scan stays linear in the input.
//!
//! Secrets are never stored: a [`SecretHit`] carries only a redacted form (see [`redact`]) and
//! the span's position and length.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use crate::report::{RuleId, Severity};

/// One secret found in a text. Holds no secret material: only its redacted form and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretHit {
    /// Which rule fired (`secret.*`).
    pub rule: RuleId,
    /// High for live credentials and private keys, medium for JWTs, database URLs and
    /// encrypted keys, info for documented examples and placeholders.
    pub severity: Severity,
    /// What kind of secret, e.g. `AWS access key id`.
    pub kind: String,
    /// The secret with all but a few characters elided, e.g. `AKIA…WXYZ`.
    pub redacted: String,
    /// Extra context for the message, e.g. why the severity is lowered.
    pub note: Option<&'static str>,
    /// Byte offset of the secret's first byte.
    pub offset: usize,
    /// Length of the secret in bytes.
    pub len: usize,
    /// 1-based line of `offset`.
    pub line: u64,
    /// 1-based column of `offset`, in characters (UTF-8 code points).
    pub column: u64,
}

/// What a keyword hit asks us to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    AwsKeyId,
    SecretKeyword,
    GcpType,
    GcpPrivateKey,
    AzureConnKey,
    AzureSecretFormat,
    HuggingFace,
    Sk,
    GitHub(&'static str),
    GitLab,
    Slack(&'static str),
    SlackWebhook,
    Pem,
    DbScheme,
    Jwt,
}

impl Trigger {
    /// Token prefixes are case-sensitive (`AKIA`, `ghp_`...); the automaton is not, so that
    /// keywords (`AccountKey=`, `SECRET`, `Postgres`) match in any case.
    fn case_sensitive(self) -> bool {
        !matches!(self, Trigger::SecretKeyword | Trigger::AzureConnKey | Trigger::SlackWebhook | Trigger::DbScheme)
    }
}

const PATTERNS: &[(&str, Trigger)] = &[
    ("AKIA", Trigger::AwsKeyId),
    ("ASIA", Trigger::AwsKeyId),
    ("secret", Trigger::SecretKeyword),
    ("service_account", Trigger::GcpType),
    ("private_key", Trigger::GcpPrivateKey),
    ("AccountKey=", Trigger::AzureConnKey),
    ("SharedAccessKey=", Trigger::AzureConnKey),
    ("Q~", Trigger::AzureSecretFormat),
    ("hf_", Trigger::HuggingFace),
    ("sk-", Trigger::Sk),
    ("ghp_", Trigger::GitHub("GitHub personal access token (classic)")),
    ("gho_", Trigger::GitHub("GitHub OAuth access token")),
    ("ghu_", Trigger::GitHub("GitHub user-to-server token")),
    ("ghs_", Trigger::GitHub("GitHub server-to-server token")),
    ("ghr_", Trigger::GitHub("GitHub refresh token")),
    ("github_pat_", Trigger::GitHub("GitHub fine-grained personal access token")),
    ("glpat-", Trigger::GitLab),
    ("gldt-", Trigger::GitLab),
    ("glrt-", Trigger::GitLab),
    ("xoxb-", Trigger::Slack("Slack bot token")),
    ("xoxp-", Trigger::Slack("Slack user token")),
    ("xoxa-", Trigger::Slack("Slack workspace access token")),
    ("xoxr-", Trigger::Slack("Slack refresh token")),
    ("xapp-", Trigger::Slack("Slack app-level token")),
    ("hooks.slack.com/", Trigger::SlackWebhook),
    ("-----BEGIN ", Trigger::Pem),
    ("postgres", Trigger::DbScheme),
    ("mysql", Trigger::DbScheme),
    ("mariadb", Trigger::DbScheme),
    ("mongodb", Trigger::DbScheme),
    ("redis", Trigger::DbScheme),
    ("amqp", Trigger::DbScheme),
    ("eyJ", Trigger::Jwt),
];

fn automaton() -> Option<&'static AhoCorasick> {
    static AC: OnceLock<Option<AhoCorasick>> = OnceLock::new();
    AC.get_or_init(|| {
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            // Standard semantics report overlapping hits (`secret` inside `aws_secret_access_key`,
            // `sk-` at the start of `sk-ant-`), which each rule then confirms on its own.
            .match_kind(MatchKind::Standard)
            // A full DFA: a few dozen short patterns make a small table, and it is the fastest
            // search without the (SIMD) prefilters of the `perf-literal` feature.
            .kind(Some(AhoCorasickKind::DFA))
            .build(PATTERNS.iter().map(|(p, _)| p))
            .ok()
    })
    .as_ref()
}

/// Find the secrets in `text` (any bytes; need not be UTF-8), in order of position, overlapping
/// candidates resolved to the most specific rule. `None` only if the matcher could not be
/// built, in which case the caller must not call the text clean.
pub fn find_secrets(text: &[u8]) -> Option<Vec<SecretHit>> {
    let ac = automaton()?;
    let mut sc = Scan { text, cands: Vec::new(), gcp_types: Vec::new(), private_keys: Vec::new() };
    for m in ac.try_find_overlapping_iter(text).ok()? {
        let Some(&(pat, trig)) = PATTERNS.get(m.pattern().as_usize()) else { continue };
        let s = m.start();
        if trig.case_sensitive() && !starts_at(text, s, pat.as_bytes()) {
            continue;
        }
        sc.on_hit(trig, s, m.end());
    }
    sc.pair_gcp();
    Some(finish(text, sc.cands))
}

/// Redact a secret for display: the first 4 and last 4 characters for secrets of 16 or more
/// characters, 2 and 2 from 10, nothing below that.
pub fn redact(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let keep = match chars.len() {
        16.. => 4,
        10..=15 => 2,
        _ => 0,
    };
    if keep == 0 {
        return "…".to_string();
    }
    let head: String = chars.iter().take(keep).collect();
    let tail: String = chars.iter().skip(chars.len() - keep).collect();
    format!("{head}…{tail}")
}

/// Redact a token with a well-known, non-secret prefix: the prefix, then only the last 4
/// characters of the body (for bodies of 16 or more characters).
fn redact_prefixed(prefix: &[u8], body: &[u8]) -> String {
    let prefix = String::from_utf8_lossy(prefix);
    if body.len() >= 16 {
        let tail = String::from_utf8_lossy(body.get(body.len() - 4..).unwrap_or_default());
        format!("{prefix}…{tail}")
    } else {
        format!("{prefix}…")
    }
}

/// Shannon entropy of `data` in bits per byte (0 for empty input).
pub fn shannon_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[usize::from(b)] += 1;
    }
    let n = data.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / n).map(|p| -p * p.log2()).sum()
}

// ----- candidates ---------------------------------------------------------------------------

struct Cand {
    start: usize,
    end: usize,
    rule: RuleId,
    severity: Severity,
    kind: String,
    redacted: String,
    note: Option<&'static str>,
    /// Which of two overlapping candidates wins: the more specific rule.
    priority: u8,
}

/// A parsed PEM private key block.
#[derive(Clone)]
struct Pem {
    end: usize,
    label: String,
    redacted: String,
    encrypted: bool,
}

struct Scan<'t> {
    text: &'t [u8],
    cands: Vec<Cand>,
    /// Offsets of `"type": "service_account"` (where `type` starts).
    gcp_types: Vec<usize>,
    /// Offsets of `"private_key": "-----BEGIN...` values, with the key parsed there.
    private_keys: Vec<(usize, Pem)>,
}

const NOTE_PLACEHOLDER: &str = " (looks like a documentation example or placeholder)";

impl Scan<'_> {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        start: usize,
        end: usize,
        rule: RuleId,
        severity: Severity,
        kind: impl Into<String>,
        redacted: String,
        priority: u8,
    ) {
        self.cands.push(Cand { start, end, rule, severity, kind: kind.into(), redacted, note: None, priority });
    }

    /// Push a token finding, lowered to info when the value is an example or placeholder.
    #[allow(clippy::too_many_arguments)]
    fn push_token(
        &mut self,
        start: usize,
        end: usize,
        rule: RuleId,
        kind: impl Into<String>,
        body: &[u8],
        redacted: String,
        priority: u8,
    ) {
        let placeholder = is_placeholder(body);
        self.cands.push(Cand {
            start,
            end,
            rule,
            severity: if placeholder { Severity::Info } else { Severity::High },
            kind: kind.into(),
            redacted,
            note: placeholder.then_some(NOTE_PLACEHOLDER),
            priority,
        });
    }

    fn on_hit(&mut self, trig: Trigger, s: usize, e: usize) {
        match trig {
            Trigger::AwsKeyId => self.aws_key_id(s),
            Trigger::SecretKeyword => self.secret_keyword(s, e),
            Trigger::GcpType => self.gcp_type(s, e),
            Trigger::GcpPrivateKey => self.gcp_private_key(e),
            Trigger::AzureConnKey => self.azure_conn_key(s, e),
            Trigger::AzureSecretFormat => self.azure_secret_format(s),
            Trigger::HuggingFace => self.huggingface(s),
            Trigger::Sk => self.sk(s),
            Trigger::GitHub(kind) => self.github(s, e, kind),
            Trigger::GitLab => self.gitlab(s, e),
            Trigger::Slack(kind) => self.slack(s, e, kind),
            Trigger::SlackWebhook => self.slack_webhook(s, e),
            Trigger::Pem => {
                if let Some(pem) = scan_pem(self.text, s) {
                    let (severity, note) = pem_severity(&pem);
                    self.cands.push(Cand {
                        start: s,
                        end: pem.end,
                        rule: RuleId::SECRET_PRIVATE_KEY,
                        severity,
                        kind: format!("PEM private key ({})", pem.label),
                        redacted: pem.redacted,
                        note,
                        priority: 8,
                    });
                }
            }
            Trigger::DbScheme => self.db_url(s),
            Trigger::Jwt => self.jwt(s),
        }
    }

    /// `AKIA`/`ASIA` + 16 of `[A-Z0-9]`, standing alone.
    fn aws_key_id(&mut self, s: usize) {
        let t = self.text;
        let Some((bs, end)) = token(t, s, 4, |b| b.is_ascii_uppercase() || b.is_ascii_digit(), 16, 16, is_alnum) else {
            return;
        };
        // A lowercase letter right after would make it part of a longer identifier.
        if at(t, end).is_some_and(is_alnum) {
            return;
        }
        let body = slice(t, bs, end);
        let redacted = redact(&String::from_utf8_lossy(slice(t, s, end)));
        let kind = if starts_at(t, s, b"ASIA") { "AWS temporary access key id" } else { "AWS access key id" };
        self.push_token(s, end, RuleId::SECRET_AWS_ACCESS_KEY, kind, body, redacted, 6);
    }

    /// A `secret`-named key assigned a value: an AWS secret access key (40 base64 characters),
    /// or an Azure client secret when the key or its surroundings name Azure.
    fn secret_keyword(&mut self, s: usize, e: usize) {
        let t = self.text;
        let (is, ie) = ident_bounds(t, s, e);
        let ident = slice(t, is, ie).to_ascii_lowercase();
        let Some(vs) = assigned_value(t, ie) else { return };
        let azure = contains(&ident, b"azure")
            || ((contains(&ident, b"client_secret") || contains(&ident, b"clientsecret")) && azure_context(t, is));
        if azure {
            let n = run(t, vs, 89, |b| is_alnum(b) || b"_~.+/=-".contains(&b));
            if !(32..=88).contains(&n) {
                return;
            }
            let value = slice(t, vs, vs + n);
            if !is_placeholder(value) && shannon_entropy(value) < 3.5 {
                return;
            }
            let redacted = redact(&String::from_utf8_lossy(value));
            self.push_token(vs, vs + n, RuleId::SECRET_AZURE_CLIENT_SECRET, "Azure client secret", value, redacted, 7);
            return;
        }
        let n = run(t, vs, 41, is_std_b64);
        if n != 40 || at(t, vs + n) == Some(b'=') {
            return;
        }
        let value = slice(t, vs, vs + n);
        let placeholder = is_placeholder(value);
        // Random base64 averages ~4.9 bits/char over 40 chars; hex (a SHA-1) tops out at 4.
        if !placeholder && shannon_entropy(value) < 4.2 {
            return;
        }
        let kind = if contains(&ident, b"aws") || contains(&ident, b"access") {
            "AWS secret access key"
        } else {
            "AWS-style secret access key (40-character high-entropy `secret` value)"
        };
        let redacted = redact(&String::from_utf8_lossy(value));
        self.push_token(vs, vs + n, RuleId::SECRET_AWS_SECRET_KEY, kind, value, redacted, 5);
    }

    /// `service_account` as the value of a `type` key: remember where, to pair with a key.
    fn gcp_type(&mut self, s: usize, e: usize) {
        let t = self.text;
        let closing = if at(t, e) == Some(b'\\') { e + 1 } else { e };
        if !starts_at(t, s, b"service_account") || !at(t, closing).is_some_and(is_quote) {
            return;
        }
        // Walk back over: opening quote (maybe escaped), spaces, `:`, spaces, closing quote of
        // `"type"` (maybe escaped), `type`.
        let mut i = s;
        if !i.checked_sub(1).and_then(|j| at(t, j)).is_some_and(is_quote) {
            return;
        }
        i -= 1;
        i = skip_back(t, i, |b| b == b'\\' || b == b' ' || b == b'\t');
        if i == 0 || at(t, i - 1) != Some(b':') {
            return;
        }
        i -= 1;
        i = skip_back(t, i, |b| b == b' ' || b == b'\t');
        if !i.checked_sub(1).and_then(|j| at(t, j)).is_some_and(is_quote) {
            return;
        }
        i -= 1;
        i = skip_back(t, i, |b| b == b'\\');
        if i >= 4 && slice(t, i - 4, i) == b"type" {
            self.gcp_types.push(i - 4);
        }
    }

    /// `private_key` (not `private_key_id`) assigned a PEM key.
    fn gcp_private_key(&mut self, e: usize) {
        let t = self.text;
        let mut i = e;
        i = skip(t, i, 4, |b| is_quote(b) || b == b'\\');
        i = skip(t, i, 8, |b| b == b' ' || b == b'\t');
        if at(t, i) != Some(b':') {
            return;
        }
        i = skip(t, i + 1, 8, |b| b == b' ' || b == b'\t');
        i = skip(t, i, 4, |b| is_quote(b) || b == b'\\');
        if let Some(pem) = scan_pem(t, i) {
            self.private_keys.push((i, pem));
        }
    }

    /// A service-account `type` and a `private_key` within one key file's reach: report the key
    /// as a GCP credential (it supersedes the plain PEM finding on the same span).
    fn pair_gcp(&mut self) {
        const REACH: usize = 16 << 10;
        let mut found = Vec::new();
        for &a in &self.gcp_types {
            let lo = a.saturating_sub(REACH);
            let first = self.private_keys.partition_point(|(p, _)| *p < lo);
            if let Some((p, pem)) = self.private_keys.get(first).filter(|(p, _)| *p <= a + REACH) {
                found.push((*p, pem.clone()));
            }
        }
        for (p, pem) in found {
            let (severity, note) = pem_severity(&pem);
            self.cands.push(Cand {
                start: p,
                end: pem.end,
                rule: RuleId::SECRET_GCP_SERVICE_ACCOUNT,
                severity,
                kind: "GCP service-account key".into(),
                redacted: pem.redacted,
                note,
                priority: 10,
            });
        }
    }

    /// `AccountKey=<88 base64>` / `SharedAccessKey=<44 base64>` in a connection string.
    fn azure_conn_key(&mut self, s: usize, e: usize) {
        let t = self.text;
        if prev(t, s).is_some_and(is_alnum) {
            return;
        }
        let n = run(t, e, 129, |b| is_std_b64(b) || b == b'=');
        if !(40..=128).contains(&n) {
            return;
        }
        let value = slice(t, e, e + n);
        let shared = slice(t, s, e).eq_ignore_ascii_case(b"SharedAccessKey=");
        let kind = if shared { "Azure shared access key" } else { "Azure storage account key" };
        let redacted = redact(&String::from_utf8_lossy(value));
        if value == AZURITE_KEY {
            self.cands.push(Cand {
                start: e,
                end: e + n,
                rule: RuleId::SECRET_AZURE_STORAGE_KEY,
                severity: Severity::Info,
                kind: kind.into(),
                redacted,
                note: Some(" (the storage emulator's published development key)"),
                priority: 7,
            });
            return;
        }
        if !is_placeholder(value) && shannon_entropy(value) < 4.0 {
            return;
        }
        self.push_token(e, e + n, RuleId::SECRET_AZURE_STORAGE_KEY, kind, value, redacted, 7);
    }

    /// Entra ID client secrets since 2022: 3 characters, a digit, `Q~`, then 31-34 more, from
    /// `[A-Za-z0-9_~.-]`.
    fn azure_secret_format(&mut self, q: usize) {
        let t = self.text;
        let set = |b: u8| is_alnum(b) || b"_~.-".contains(&b);
        if !starts_at(t, q, b"Q~") || q < 4 || !at(t, q - 1).is_some_and(|b| b.is_ascii_digit()) {
            return;
        }
        let s = q - 4;
        if !slice(t, s, q - 1).iter().all(|&b| set(b)) || prev(t, s).is_some_and(set) {
            return;
        }
        let n = run(t, q + 2, 35, set);
        if !(31..=34).contains(&n) {
            return;
        }
        let value = slice(t, s, q + 2 + n);
        if shannon_entropy(value) < 3.5 && !is_placeholder(value) {
            return;
        }
        let redacted = redact(&String::from_utf8_lossy(value));
        self.push_token(s, q + 2 + n, RuleId::SECRET_AZURE_CLIENT_SECRET, "Azure client secret", value, redacted, 7);
    }

    /// `hf_` + 34 or more alphanumerics.
    fn huggingface(&mut self, s: usize) {
        let t = self.text;
        let Some((bs, end)) = token(t, s, 3, is_alnum, 34, 96, |b| is_alnum(b) || b == b'_') else { return };
        if at(t, end) == Some(b'_') {
            return;
        }
        let body = slice(t, bs, end);
        if !looks_random(body) {
            return;
        }
        self.push_token(
            s,
            end,
            RuleId::SECRET_HUGGINGFACE_TOKEN,
            "Hugging Face token",
            body,
            redact_prefixed(b"hf_", body),
            6,
        );
    }

    /// `sk-ant-...` (Anthropic) or `sk-...`, `sk-proj-...`, `sk-svcacct-...` (OpenAI).
    fn sk(&mut self, s: usize) {
        let t = self.text;
        let body_ok = |b: u8| is_alnum(b) || b == b'-' || b == b'_';
        let Some((bs, end)) = token(t, s, 3, body_ok, 20, 512, body_ok) else { return };
        let body = slice(t, bs, end);
        if let Some(rest) = body.strip_prefix(b"ant-") {
            // Anthropic: sk-ant-api03-<93 chars>; the part after the version is the secret.
            let vlen = rest.iter().take_while(|&&b| b != b'-').count();
            let (prefix_len, secret) = match rest.get(vlen..) {
                Some(r) if vlen <= 8 && r.len() > 1 => (3 + 4 + vlen + 1, r.get(1..).unwrap_or_default()),
                _ => (3 + 4, rest),
            };
            if secret.len() < 32 || !looks_random(secret) {
                return;
            }
            let redacted = redact_prefixed(slice(t, s, s + prefix_len), secret);
            self.push_token(s, end, RuleId::SECRET_ANTHROPIC_API_KEY, "Anthropic API key", secret, redacted, 9);
            return;
        }
        let mut prefix_len = 3;
        for p in [&b"proj-"[..], b"svcacct-", b"admin-", b"None-"] {
            if body.starts_with(p) {
                prefix_len += p.len();
                break;
            }
        }
        let secret = slice(t, s + prefix_len, end);
        if secret.len() < 32 || !looks_random(secret) {
            return;
        }
        let redacted = redact_prefixed(slice(t, s, s + prefix_len), secret);
        self.push_token(s, end, RuleId::SECRET_OPENAI_API_KEY, "OpenAI API key", secret, redacted, 6);
    }

    /// `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` + 36 alphanumerics, or `github_pat_` + 82 of
    /// `[A-Za-z0-9_]`.
    fn github(&mut self, s: usize, e: usize, kind: &'static str) {
        let t = self.text;
        let plen = e - s;
        let fine_grained = plen > 4;
        let body_ok: fn(u8) -> bool = if fine_grained { |b| is_alnum(b) || b == b'_' } else { is_alnum };
        let (min, max) = if fine_grained { (60, 255) } else { (36, 255) };
        let Some((bs, end)) = token(t, s, plen, body_ok, min, max, |b| is_alnum(b) || b == b'_') else { return };
        if at(t, end) == Some(b'_') {
            return;
        }
        let body = slice(t, bs, end);
        let redacted = redact_prefixed(slice(t, s, bs), body);
        self.push_token(s, end, RuleId::SECRET_GITHUB_TOKEN, kind, body, redacted, 6);
    }

    /// `glpat-` (personal), `gldt-` (deploy), `glrt-` (runner) + 20 or more of
    /// `[A-Za-z0-9_.-]`.
    fn gitlab(&mut self, s: usize, e: usize) {
        let t = self.text;
        let body_ok = |b: u8| is_alnum(b) || b"_.-".contains(&b);
        let Some((bs, end)) = token(t, s, e - s, body_ok, 20, 255, is_alnum) else { return };
        // A trailing `.` ends a sentence, not the token.
        let end = bs + slice(t, bs, end).iter().rposition(|&b| b != b'.').map_or(0, |p| p + 1);
        let body = slice(t, bs, end);
        if body.len() < 20 {
            return;
        }
        let redacted = redact_prefixed(slice(t, s, bs), body);
        self.push_token(s, end, RuleId::SECRET_GITLAB_TOKEN, "GitLab token", body, redacted, 6);
    }

    /// `xoxb-123-456-abc...`: 20 or more of `[A-Za-z0-9-]`, with digits and dashes.
    fn slack(&mut self, s: usize, e: usize, kind: &'static str) {
        let t = self.text;
        let body_ok = |b: u8| is_alnum(b) || b == b'-';
        let Some((bs, end)) = token(t, s, e - s, body_ok, 20, 255, is_alnum) else { return };
        let body = slice(t, bs, end);
        if !body.iter().any(u8::is_ascii_digit) || !body.contains(&b'-') {
            return;
        }
        let redacted = redact_prefixed(slice(t, s, bs), body);
        self.push_token(s, end, RuleId::SECRET_SLACK_TOKEN, kind, body, redacted, 6);
    }

    /// `https://hooks.slack.com/services/T.../B.../<secret>` (also `workflows/`, `triggers/`).
    fn slack_webhook(&mut self, s: usize, e: usize) {
        let t = self.text;
        let Some(kind_len) = [&b"services/"[..], b"workflows/", b"triggers/"]
            .iter()
            .find(|k| slice(t, e, e + k.len()).eq_ignore_ascii_case(k))
            .map(|k| k.len())
        else {
            return;
        };
        let ps = e + kind_len;
        let n = run(t, ps, 256, |b| is_alnum(b) || b == b'/' || b == b'_' || b == b'-');
        let path = slice(t, ps, ps + n);
        if n < 20 || path.iter().filter(|&&b| b == b'/').count() < 1 {
            return;
        }
        let start = if s >= 8 && slice(t, s - 8, s).eq_ignore_ascii_case(b"https://") { s - 8 } else { s };
        let secret = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
        if secret.len() < 8 {
            return;
        }
        let shown = String::from_utf8_lossy(slice(t, s, ps));
        let redacted =
            format!("https://{shown}…{}", String::from_utf8_lossy(secret.get(secret.len() - 4..).unwrap_or_default()));
        self.push_token(start, ps + n, RuleId::SECRET_SLACK_WEBHOOK, "Slack webhook URL", secret, redacted, 6);
    }

    /// `scheme://user:password@host` for PostgreSQL, MySQL/MariaDB, MongoDB, Redis and AMQP
    /// (with SQLAlchemy-style `+driver` suffixes), unless the password is empty or a placeholder.
    fn db_url(&mut self, s: usize) {
        let t = self.text;
        if prev(t, s).is_some_and(|b| is_alnum(b) || b"+.-_".contains(&b)) {
            return;
        }
        let sl = run(t, s, 41, |b| is_alnum(b) || b"+.-".contains(&b));
        if sl > 40 || !starts_at(t, s + sl, b"://") {
            return;
        }
        let scheme = slice(t, s, s + sl).to_ascii_lowercase();
        let base = scheme.split(|&b| b == b'+').next().unwrap_or_default();
        let name = match base {
            b"postgres" | b"postgresql" => "PostgreSQL",
            b"mysql" => "MySQL",
            b"mariadb" => "MariaDB",
            b"mongodb" => "MongoDB",
            b"redis" | b"rediss" => "Redis",
            b"amqp" | b"amqps" => "AMQP",
            _ => return,
        };
        let a = s + sl + 3;
        let n = run(t, a, 512, |b| !(b.is_ascii_whitespace() || b.is_ascii_control() || b"\"'`/?#\\<>".contains(&b)));
        let auth = slice(t, a, a + n);
        let Some(at_pos) = auth.iter().rposition(|&b| b == b'@') else { return };
        let userinfo = auth.get(..at_pos).unwrap_or_default();
        let host = auth.get(at_pos + 1..).unwrap_or_default();
        let Some(colon) = userinfo.iter().position(|&b| b == b':') else { return };
        let user = userinfo.get(..colon).unwrap_or_default();
        let password = userinfo.get(colon + 1..).unwrap_or_default();
        if host.is_empty() || is_placeholder_password(password) {
            return;
        }
        let cut = |b: &[u8]| String::from_utf8_lossy(b.get(..b.len().min(64)).unwrap_or_default()).into_owned();
        let redacted = format!("{}://{}:…@{}", String::from_utf8_lossy(&scheme), cut(user), cut(host));
        // `postgres:postgres@localhost`, `guest:guest`: tutorial and container defaults, worth
        // knowing but not a leak.
        let default = password == user || DEFAULT_PASSWORDS.iter().any(|d| password.eq_ignore_ascii_case(d));
        self.cands.push(Cand {
            start: s,
            end: a + n,
            rule: RuleId::SECRET_DATABASE_URL,
            severity: if default { Severity::Info } else { Severity::Medium },
            kind: format!("{name} URL with a password"),
            redacted,
            note: default.then_some(" (a well-known default password)"),
            priority: 3,
        });
    }

    /// `header.payload.signature`, base64url, where the header decodes to JSON with `alg`.
    fn jwt(&mut self, s: usize) {
        let t = self.text;
        if prev(t, s).is_some_and(|b| is_b64url(b) || b == b'.') {
            return;
        }
        let h = run(t, s, 1025, is_b64url);
        if !(10..=1024).contains(&h) || at(t, s + h) != Some(b'.') {
            return;
        }
        let ps = s + h + 1;
        let p = run(t, ps, 1 << 16, is_b64url);
        if p < 4 || at(t, ps + p) != Some(b'.') {
            return;
        }
        let ss = ps + p + 1;
        let sig = run(t, ss, 4097, is_b64url);
        if !(16..=4096).contains(&sig) {
            return;
        }
        let Some(header) = crate::text::base64_decode(slice(t, s, s + h)) else { return };
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(&header) else {
            return;
        };
        if !obj.contains_key("alg") {
            return;
        }
        let end = ss + sig;
        let redacted = redact(&String::from_utf8_lossy(slice(t, s, end)));
        self.push(s, end, RuleId::SECRET_JWT, Severity::Medium, "JSON Web Token", redacted, 4);
    }
}

/// Default passwords of database and broker images and tutorials.
const DEFAULT_PASSWORDS: &[&[u8]] =
    &[b"postgres", b"root", b"admin", b"guest", b"test", b"mysql", b"mongo", b"redis", b"rabbitmq", b"example"];

/// The storage emulator's account key, published in Microsoft's documentation.
const AZURITE_KEY: &[u8] = b"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn pem_severity(pem: &Pem) -> (Severity, Option<&'static str>) {
    if pem.encrypted {
        // Useless without its passphrase, but open to offline guessing.
        (Severity::Medium, Some(" (encrypted with a passphrase)"))
    } else {
        (Severity::High, None)
    }
}

/// Parse a PEM private key block whose `-----BEGIN ` is at `s`. The body may be split by real
/// newlines or by `\n` escapes (keys inside JSON strings), and may carry RFC 1421 headers
/// (`Proc-Type: 4,ENCRYPTED`). Needs at least 64 base64 characters: code that merely mentions
/// the marker (`if line.startswith("-----BEGIN RSA PRIVATE KEY-----")`) has none.
fn scan_pem(t: &[u8], s: usize) -> Option<Pem> {
    const MAX_BODY: usize = 64 << 10;
    if !starts_at(t, s, b"-----BEGIN ") {
        return None;
    }
    let mut i = s + b"-----BEGIN ".len();
    let ll = run(t, i, 64, |b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ');
    let label = std::str::from_utf8(slice(t, i, i + ll)).ok()?.trim_end().to_string();
    if !(label.ends_with("PRIVATE KEY") || label.ends_with("PRIVATE KEY BLOCK")) || !starts_at(t, i + ll, b"-----") {
        return None;
    }
    i += ll + 5;
    let mut encrypted = label.contains("ENCRYPTED");
    let mut body = 0usize;
    let mut head: Vec<u8> = Vec::new();
    let mut tail: Vec<u8> = Vec::new();
    let mut body_end = i;
    let mut headers = 0;
    loop {
        match at(t, i) {
            Some(b'\r' | b'\n' | b' ' | b'\t') => {
                i += 1;
                continue;
            }
            Some(b'\\') => {
                i += 1;
                if matches!(at(t, i), Some(b'n' | b'r' | b't')) {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        let hn = run(t, i, 32, |b| b.is_ascii_alphabetic() || b == b'-');
        if body == 0 && headers < 8 && hn > 0 && at(t, i + hn) == Some(b':') {
            // An RFC 1421 / OpenPGP armor header line: skip to its (real or escaped) newline.
            headers += 1;
            let line_len = run(t, i, 256, |b| b != b'\n' && b != b'\\');
            if contains(slice(t, i, i + line_len), b"ENCRYPTED") {
                encrypted = true;
            }
            i += line_len;
            continue;
        }
        let n = run(t, i, MAX_BODY, |b| is_std_b64(b) || b == b'=');
        if n == 0 {
            break;
        }
        let chunk = slice(t, i, i + n);
        if head.len() < 128 {
            head.extend(chunk.iter().take(128 - head.len()));
        }
        tail.extend(chunk.iter().skip(n.saturating_sub(4)));
        tail = tail.split_off(tail.len().saturating_sub(4));
        body += n;
        i += n;
        body_end = i;
        if body >= MAX_BODY {
            break;
        }
    }
    if body < 64 {
        return None;
    }
    let mut end = body_end;
    if starts_at(t, i, b"-----END ") {
        let close = run(t, i + 9, 64, |b| b != b'-');
        if starts_at(t, i + 9 + close, b"-----") {
            end = i + 9 + close + 5;
        }
    }
    if label == "OPENSSH PRIVATE KEY" && openssh_encrypted(&head) {
        encrypted = true;
    }
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let redacted = format!("{}…{}", show(head.get(..4).unwrap_or_default()), show(&tail));
    Some(Pem { end, label, redacted, encrypted })
}

/// Whether an `openssh-key-v1` body (its first base64 characters) names a cipher other than
/// `none`: OpenSSH keeps the passphrase flag inside the body, not in the PEM label.
fn openssh_encrypted(head_b64: &[u8]) -> bool {
    let whole = head_b64.len() / 4 * 4;
    let Some(raw) = crate::text::base64_decode(head_b64.get(..whole).unwrap_or_default()) else { return false };
    let Some(rest) = raw.strip_prefix(b"openssh-key-v1\0") else { return false };
    let Some(len_bytes) = rest.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else { return false };
    let len = u32::from_be_bytes(len_bytes) as usize;
    4usize.checked_add(len).and_then(|end| rest.get(4..end)).is_some_and(|cipher| cipher != b"none")
}

/// Sort, drop overlapping weaker candidates, and compute line and column in one forward walk.
fn finish(text: &[u8], mut cands: Vec<Cand>) -> Vec<SecretHit> {
    cands.sort_by(|a, b| a.start.cmp(&b.start).then(b.priority.cmp(&a.priority)).then(b.end.cmp(&a.end)));
    let mut kept: Vec<Cand> = Vec::with_capacity(cands.len());
    for c in cands {
        match kept.last_mut() {
            Some(last) if c.start < last.end => {
                if (c.priority, c.end - c.start) > (last.priority, last.end - last.start) {
                    *last = c;
                }
            }
            _ => kept.push(c),
        }
    }
    let mut hits = Vec::with_capacity(kept.len());
    let (mut pos, mut line, mut col) = (0usize, 1u64, 1u64);
    for c in kept {
        for &b in text.get(pos..c.start).unwrap_or_default() {
            if b == b'\n' {
                line += 1;
                col = 1;
            } else if b & 0xc0 != 0x80 {
                col += 1;
            }
        }
        pos = pos.max(c.start);
        hits.push(SecretHit {
            rule: c.rule,
            severity: c.severity,
            kind: c.kind,
            redacted: c.redacted,
            note: c.note,
            offset: c.start,
            len: c.end - c.start,
            line,
            column: col,
        });
    }
    hits
}

// ----- small scanners -----------------------------------------------------------------------

fn at(t: &[u8], i: usize) -> Option<u8> {
    t.get(i).copied()
}

fn prev(t: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).and_then(|j| t.get(j).copied())
}

fn slice(t: &[u8], a: usize, b: usize) -> &[u8] {
    t.get(a..b).unwrap_or_default()
}

fn starts_at(t: &[u8], i: usize, pat: &[u8]) -> bool {
    t.get(i..).is_some_and(|r| r.starts_with(pat))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

/// Length of the run of bytes satisfying `ok` from `from`, looking at no more than `max`.
fn run(t: &[u8], from: usize, max: usize, ok: impl Fn(u8) -> bool) -> usize {
    t.get(from..).map_or(0, |r| r.iter().take(max).take_while(|&&b| ok(b)).count())
}

fn skip(t: &[u8], from: usize, max: usize, ok: impl Fn(u8) -> bool) -> usize {
    from + run(t, from, max, ok)
}

/// Move back from `i` over at most 8 bytes satisfying `ok`.
fn skip_back(t: &[u8], mut i: usize, ok: impl Fn(u8) -> bool) -> usize {
    for _ in 0..8 {
        match prev(t, i) {
            Some(b) if ok(b) => i -= 1,
            _ => break,
        }
    }
    i
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_quote(b: u8) -> bool {
    b == b'"' || b == b'\''
}

fn is_std_b64(b: u8) -> bool {
    is_alnum(b) || b == b'+' || b == b'/'
}

fn is_b64url(b: u8) -> bool {
    is_alnum(b) || b == b'-' || b == b'_'
}

/// A token: `prefix_len` bytes at `s` (already matched), then a body of `min..=max` bytes
/// satisfying `body_ok`, not preceded by a byte satisfying `reject_before` (so it starts at a
/// boundary rather than inside a longer word or base64 run). Returns (body start, end).
fn token(
    t: &[u8],
    s: usize,
    prefix_len: usize,
    body_ok: impl Fn(u8) -> bool,
    min: usize,
    max: usize,
    reject_before: impl Fn(u8) -> bool,
) -> Option<(usize, usize)> {
    if prev(t, s).is_some_and(reject_before) {
        return None;
    }
    let bs = s + prefix_len;
    let n = run(t, bs, max + 1, body_ok);
    (min..=max).contains(&n).then_some((bs, bs + n))
}

/// The identifier around a keyword hit (`aws_secret_access_key` around `secret`).
fn ident_bounds(t: &[u8], s: usize, e: usize) -> (usize, usize) {
    let id = |b: u8| is_alnum(b) || b == b'_' || b == b'.' || b == b'-';
    let mut is = s;
    for _ in 0..48 {
        match prev(t, is) {
            Some(b) if id(b) => is -= 1,
            _ => break,
        }
    }
    (is, skip(t, e, 64, id))
}

/// After a key name ending at `i`: closing quotes or bracket, an assignment (`=`, `:`, `:=`,
/// `=>`), opening quotes. Returns where the value starts.
fn assigned_value(t: &[u8], i: usize) -> Option<usize> {
    let mut i = skip(t, i, 6, |b| matches!(b, b'"' | b'\'' | b']' | b' ' | b'\t' | b'\\'));
    match at(t, i) {
        Some(b'=') => i += if at(t, i + 1) == Some(b'>') { 2 } else { 1 },
        Some(b':') => i += if at(t, i + 1) == Some(b'=') { 2 } else { 1 },
        _ => return None,
    }
    Some(skip(t, i, 6, |b| matches!(b, b'"' | b'\'' | b'`' | b' ' | b'\t' | b'\\')))
}

/// Whether the 256 bytes before `s` mention Azure (for a bare `client_secret`).
fn azure_context(t: &[u8], s: usize) -> bool {
    let w = slice(t, s.saturating_sub(256), s);
    contains(w, b"azure") || contains(w, b"microsoftonline") || contains(w, b"ClientSecretCredential")
}

/// Placeholder words, or too little entropy for a random token (`xxxxxxxx`, `aaaa...`).
fn is_placeholder(v: &[u8]) -> bool {
    const WORDS: &[&[u8]] = &[
        b"example",
        b"xxxx",
        b"your",
        b"placeholder",
        b"redacted",
        b"dummy",
        b"sample",
        b"changeme",
        b"fake",
        b"insert",
        b"replace",
        b"****",
        b"....",
    ];
    WORDS.iter().any(|w| contains(v, w)) || shannon_entropy(v) < if v.len() <= 20 { 2.5 } else { 3.0 }
}

/// Tokens behind a short prefix (`hf_`, `sk-`) must look generated, not like an identifier
/// such as `sk-learn-model-selection-and-evaluation`: enough entropy and a digit, or several
/// upper-case letters in a row (random base62 has them; CamelCase words do not).
fn looks_random(body: &[u8]) -> bool {
    let digit = body.iter().any(u8::is_ascii_digit);
    let upper_pairs = body.windows(2).filter(|w| w.iter().all(u8::is_ascii_uppercase)).count();
    (digit || upper_pairs >= 2) && (shannon_entropy(body) >= 3.5 || is_placeholder(body))
}

/// Passwords in URLs that are not secrets: empty, template variables, or stand-ins.
fn is_placeholder_password(p: &[u8]) -> bool {
    if p.is_empty() {
        return true;
    }
    let lower = p.to_ascii_lowercase();
    // Templates (`${DB_PASSWORD}`, `{pw}`, `<password>`) and syntax diagrams (`[:password]`).
    if matches!(p.first(), Some(b'$' | b'<')) || p.iter().any(|b| b"{}[]".contains(b)) {
        return true;
    }
    if lower == b"%s" || lower.starts_with(b"%(") {
        return true;
    }
    if p.iter().all(|&b| matches!(b, b'*' | b'x' | b'X' | b'.' | b'#' | b'-' | b'_')) {
        return true;
    }
    matches!(
        lower.as_slice(),
        b"password"
            | b"pass"
            | b"passwd"
            | b"pwd"
            | b"pw"
            | b"secret"
            | b"mypassword"
            | b"yourpassword"
            | b"your_password"
            | b"your-password"
            | b"changeme"
            | b"password123"
    ) || contains(&lower, b"placeholder")
        || contains(&lower, b"your_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<(&'static str, Severity)> {
        find_secrets(text.as_bytes()).unwrap().into_iter().map(|h| (h.rule.0, h.severity)).collect()
    }

    #[test]
    fn redaction_lengths() {
        assert_eq!(redact("AKIAQWERTYUIOPASWXYZ"), "AKIA…WXYZ");
        assert_eq!(redact("0123456789"), "01…89");
        assert_eq!(redact("short"), "…");
    }

    #[test]
    fn entropy() {
        assert_eq!(shannon_entropy(b""), 0.0);
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
    }

    #[test]
    fn line_and_column() {
        let hits = find_secrets("x\né = \"AKIAQWERTYUIOPASDFGH\"".as_bytes()).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].line, hits[0].column), (2, 6));
        assert_eq!(hits[0].offset, 8);
    }

    #[test]
    fn anthropic_is_not_also_openai() {
        let key = "sk-ant-api03-Zx8Qw3Rt7Yu1Io9Pa5Sd2Fg6Hj4Kl0ZxCvBnMqWeRtYuIoPaSdFgHjKl1234567890AbCdEfGhIjKlMnOpQrStUvWxYz-AbCdEfAA";
        assert_eq!(rules(key), vec![("secret.anthropic-api-key", Severity::High)]);
    }

    #[test]
    fn openssh_cipher() {
        // "openssh-key-v1\0" + len 10 + "aes256-ctr"
        let mut raw = b"openssh-key-v1\0\0\0\0\x0aaes256-ctr".to_vec();
        raw.extend([0u8; 6]);
        let b64 = b64encode(&raw);
        assert!(openssh_encrypted(b64.as_bytes()));
        let mut raw = b"openssh-key-v1\0\0\0\0\x04none".to_vec();
        raw.extend([0u8; 6]);
        assert!(!openssh_encrypted(b64encode(&raw).as_bytes()));
    }

    fn b64encode(data: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in data.chunks(3) {
            let n = (u32::from(c[0]) << 16)
                | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
                | u32::from(*c.get(2).unwrap_or(&0));
            for k in 0..4 {
                if k <= c.len() {
                    out.push(A[((n >> (18 - 6 * k)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

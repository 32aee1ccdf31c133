//! Secret detection in notebooks and plain text: a table of positive and negative cases per
//! rule, notebooks with secrets in sources and every kind of output, redaction, nbformat 3,
//! malformed JSON, and properties over arbitrary input.
//!
//! Every secret here is generated at run time from a fixed-seed PRNG, so no token-shaped
//! string sits in the source for secret-scanning push protection to trip over.

// Tests may panic and print; the library may not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use std::time::{Duration, Instant};

use custody_scan::{FileReport, Format, RuleId, ScanOptions, Severity, Verdict, scan_bytes, scan_notebook, scan_text};
use proptest::prelude::*;
use serde_json::json;

// ----- generators ---------------------------------------------------------------------------

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &[u8] = b"0123456789abcdef";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` characters from `set`, regenerated until it has a digit and (if the set has
    /// letters of both cases) both cases, the way real generated tokens do.
    fn pick(&mut self, set: &[u8], n: usize) -> String {
        loop {
            let s: String = (0..n).map(|_| set[(self.next() % set.len() as u64) as usize] as char).collect();
            let wants_case = set.iter().any(u8::is_ascii_lowercase) && set.iter().any(u8::is_ascii_uppercase);
            let ok = s.bytes().any(|b| b.is_ascii_digit())
                && (!wants_case
                    || (s.bytes().any(|b| b.is_ascii_lowercase()) && s.bytes().any(|b| b.is_ascii_uppercase())));
            if ok || n < 4 {
                return s;
            }
        }
    }
}

fn b64(data: &[u8], alphabet: &[u8], pad: bool) -> String {
    let mut out = String::new();
    for c in data.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                out.push(alphabet[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// A PEM block with a random body in 64-character lines, joined by `nl` (a real newline, or
/// the two characters `\n` for a key inside a JSON string).
fn pem(label: &str, body: &str, nl: &str) -> String {
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----{nl}{}{nl}-----END {label}-----{nl}", lines.join(nl))
}

fn openssh_body(rng: &mut Rng, cipher: &str) -> String {
    let mut raw = b"openssh-key-v1\0".to_vec();
    raw.extend((cipher.len() as u32).to_be_bytes());
    raw.extend(cipher.as_bytes());
    raw.extend((0..300).map(|_| (rng.next() & 0xff) as u8));
    b64(&raw, B64, true)
}

fn jwt(rng: &mut Rng) -> String {
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#, B64URL, false);
    let payload = b64(br#"{"sub":"1234567890","name":"Jane","iat":1516239022}"#, B64URL, false);
    format!("{header}.{payload}.{}", rng.pick(B64URL, 43))
}

// ----- helpers ------------------------------------------------------------------------------

fn secret_findings(r: &FileReport) -> Vec<(&'static str, Severity)> {
    r.findings.iter().filter(|f| f.rule.0.starts_with("secret.")).map(|f| (f.rule.0, f.severity)).collect()
}

/// The report, serialized, contains neither `secret` nor any 8-character piece of it.
#[track_caller]
fn assert_redacted(r: &FileReport, secret: &str) {
    let json = serde_json::to_string(r).unwrap();
    assert!(!json.contains(secret), "full secret `{secret}` in report: {json}");
    let chars: Vec<char> = secret.chars().collect();
    for w in chars.windows(8) {
        let piece: String = w.iter().collect();
        assert!(!json.contains(&piece), "piece `{piece}` of secret `{secret}` in report: {json}");
    }
}

enum Expect {
    /// Exactly one secret finding, of this rule and severity.
    One(RuleId, Severity),
    /// No secret findings above info.
    NothingAboveInfo,
    /// No findings at all.
    Nothing,
}

struct Case {
    name: &'static str,
    text: String,
    /// The part that must never appear in a report (empty for negatives).
    secret: String,
    expect: Expect,
}

fn case(name: &'static str, text: String, secret: &str, expect: Expect) -> Case {
    Case { name, text, secret: secret.to_string(), expect }
}

fn cases() -> Vec<Case> {
    use Expect::*;
    use Severity::*;
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let r = &mut rng;
    let mut v = Vec::new();

    // AWS
    let k = r.pick(UPPER_DIGITS, 16);
    v.push(case("aws key id", format!("aws_access_key_id = AKIA{k}\n"), &k, One(RuleId::SECRET_AWS_ACCESS_KEY, High)));
    let k = r.pick(UPPER_DIGITS, 16);
    v.push(case(
        "aws temp key id",
        format!("creds = {{'AccessKeyId': 'ASIA{k}'}}"),
        &k,
        One(RuleId::SECRET_AWS_ACCESS_KEY, High),
    ));
    let s = r.pick(B64, 40);
    v.push(case(
        "aws secret ini",
        format!("[default]\naws_secret_access_key = {s}\n"),
        &s,
        One(RuleId::SECRET_AWS_SECRET_KEY, High),
    ));
    let s = r.pick(B64, 40);
    v.push(case(
        "aws secret json",
        format!("{{\"SecretAccessKey\": \"{s}\"}}"),
        &s,
        One(RuleId::SECRET_AWS_SECRET_KEY, High),
    ));
    let s = r.pick(B64, 40);
    v.push(case(
        "aws secret env",
        format!("os.environ[\"AWS_SECRET_ACCESS_KEY\"] = \"{s}\""),
        &s,
        One(RuleId::SECRET_AWS_SECRET_KEY, High),
    ));
    v.push(case(
        "aws documented example id",
        "AKIAIOSFODNN7EXAMPLE".into(),
        "",
        One(RuleId::SECRET_AWS_ACCESS_KEY, Info),
    ));
    v.push(case(
        "aws documented example secret",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        "",
        One(RuleId::SECRET_AWS_SECRET_KEY, Info),
    ));
    v.push(case(
        "aws key id inside base64",
        format!("iVBORw0KGgoAAAANSUhEUgAKIA{}xyz", r.pick(UPPER_DIGITS, 16)),
        "",
        Nothing,
    ));
    v.push(case("aws key id too long", format!("AKIA{}", r.pick(UPPER_DIGITS, 20)), "", Nothing));
    v.push(case("hex sha1 as secret", "secret = \"da39a3ee5e6b4b0d3255bfef95601890afd80709\"".into(), "", Nothing));
    v.push(case("secret from env", "aws_secret_access_key = os.environ['AWS_SECRET_ACCESS_KEY']".into(), "", Nothing));

    // GCP
    let body = r.pick(B64, 1200);
    let key_id = r.pick(HEX, 40);
    let sa = json!({
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": key_id,
        "private_key": pem("PRIVATE KEY", &body, "\n"),
        "client_email": "svc@demo-project.iam.gserviceaccount.com",
        "client_id": "123456789012345678901",
    });
    let sa_text = serde_json::to_string_pretty(&sa).unwrap();
    v.push(case("gcp service account json", sa_text, &body, One(RuleId::SECRET_GCP_SERVICE_ACCOUNT, High)));
    let body = r.pick(B64, 1200);
    v.push(case(
        "gcp service account python repr",
        format!("{{'type': 'service_account', 'private_key': '{}'}}", pem("PRIVATE KEY", &body, "\\n")),
        &body,
        One(RuleId::SECRET_GCP_SERVICE_ACCOUNT, High),
    ));
    let body = r.pick(B64, 1200);
    v.push(case(
        "gcp service account escaped in a string",
        format!(
            "KEY = \"{{\\\"type\\\": \\\"service_account\\\", \\\"private_key\\\": \\\"{}\\\"}}\"",
            pem("PRIVATE KEY", &body, "\\\\n")
        ),
        &body,
        One(RuleId::SECRET_GCP_SERVICE_ACCOUNT, High),
    ));
    v.push(case("gcp type without key", "{\"type\": \"service_account\", \"project_id\": \"p\"}".into(), "", Nothing));

    // Azure
    let ak = format!("{}==", r.pick(B64, 86));
    v.push(case(
        "azure storage connection string",
        format!("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ak};EndpointSuffix=core.windows.net"),
        &ak,
        One(RuleId::SECRET_AZURE_STORAGE_KEY, High),
    ));
    let sk = format!("{}=", r.pick(B64, 43));
    v.push(case(
        "azure service bus shared access key",
        format!("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={sk}"),
        &sk,
        One(RuleId::SECRET_AZURE_STORAGE_KEY, High),
    ));
    v.push(case(
        "azurite development key",
        "AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;".into(),
        "",
        One(RuleId::SECRET_AZURE_STORAGE_KEY, Info),
    ));
    v.push(case("azure key from env", "AccountKey=${AZURE_STORAGE_KEY};".into(), "", Nothing));
    let cs = format!(
        "{}8Q~{}",
        r.pick(B62, 3),
        r.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_~.-", 34)
    );
    v.push(case(
        "azure client secret format",
        format!("secret: \"{cs}\""),
        &cs,
        One(RuleId::SECRET_AZURE_CLIENT_SECRET, High),
    ));
    let cs = r.pick(B62, 40);
    v.push(case(
        "azure client secret keyword",
        format!("AZURE_CLIENT_SECRET=\"{cs}\""),
        &cs,
        One(RuleId::SECRET_AZURE_CLIENT_SECRET, High),
    ));
    let cs = r.pick(B62, 34);
    v.push(case(
        "azure client secret credential",
        format!("from azure.identity import ClientSecretCredential\ncred = ClientSecretCredential(tenant_id=t, client_id=c, client_secret=\"{cs}\")"),
        &cs,
        One(RuleId::SECRET_AZURE_CLIENT_SECRET, High),
    ));

    // Hugging Face
    let t = r.pick(B62, 34);
    v.push(case("hf token", format!("login(token=\"hf_{t}\")"), &t, One(RuleId::SECRET_HUGGINGFACE_TOKEN, High)));
    v.push(case(
        "hf identifier",
        "from huggingface_hub import hf_hub_download, hf_hub_url\nhf_hub_download(repo_id=x)".into(),
        "",
        Nothing,
    ));
    v.push(case("hf env", "token = os.environ[\"HF_TOKEN\"]".into(), "", Nothing));

    // OpenAI / Anthropic
    let t = format!("{}T3BlbkFJ{}", r.pick(B62, 20), r.pick(B62, 20));
    v.push(case("openai legacy", format!("openai.api_key = \"sk-{t}\""), &t, One(RuleId::SECRET_OPENAI_API_KEY, High)));
    let t = r.pick(B64URL, 120);
    v.push(case(
        "openai project key",
        format!("OPENAI_API_KEY=sk-proj-{t}"),
        &t,
        One(RuleId::SECRET_OPENAI_API_KEY, High),
    ));
    let t = format!("{}AA", r.pick(B64URL, 93));
    v.push(case(
        "anthropic key",
        format!("client = Anthropic(api_key='sk-ant-api03-{t}')"),
        &t,
        One(RuleId::SECRET_ANTHROPIC_API_KEY, High),
    ));
    v.push(case("openai from env", "import os; key = os.environ[\"OPENAI_API_KEY\"]".into(), "", Nothing));
    v.push(case(
        "sk-learn",
        "pip install scikit-learn  # a.k.a. sk-learn, not sk-learn-intelex-extensions".into(),
        "",
        Nothing,
    ));
    v.push(case("sk- inside a word", format!("task-{}", r.pick(B62, 40)), "", Nothing));
    v.push(case("sk placeholder", "api_key = \"sk-...\"  # or sk-your-key-here".into(), "", Nothing));

    // GitHub
    for p in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        let t = r.pick(B62, 36);
        v.push(case("github token", format!("GITHUB_TOKEN={p}{t}"), &t, One(RuleId::SECRET_GITHUB_TOKEN, High)));
    }
    let t = format!("{}_{}", r.pick(B62, 22), r.pick(B62, 59));
    v.push(case(
        "github fine-grained pat",
        format!("token: github_pat_{t}"),
        &t,
        One(RuleId::SECRET_GITHUB_TOKEN, High),
    ));
    v.push(case(
        "github placeholder",
        "token = \"ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"".into(),
        "",
        NothingAboveInfo,
    ));
    v.push(case("github too short", "ghp_abc123".into(), "", Nothing));

    // GitLab
    let t = r.pick(B62, 20);
    v.push(case(
        "gitlab pat",
        format!("git clone https://oauth2:glpat-{t}@gitlab.com/x/y.git"),
        &t,
        One(RuleId::SECRET_GITLAB_TOKEN, High),
    ));

    // Slack
    for p in ["xoxb", "xoxp", "xoxa", "xoxr"] {
        let t = format!("{}-{}-{}", r.pick(b"0123456789", 12), r.pick(b"0123456789", 13), r.pick(B62, 24));
        v.push(case("slack token", format!("SLACK_TOKEN='{p}-{t}'"), &t, One(RuleId::SECRET_SLACK_TOKEN, High)));
    }
    let t = format!("1-A{}-{}-{}", r.pick(UPPER_DIGITS, 10), r.pick(b"0123456789", 13), r.pick(HEX, 64));
    v.push(case("slack app token", format!("xapp-{t}"), &t, One(RuleId::SECRET_SLACK_TOKEN, High)));
    let t = r.pick(B62, 24);
    v.push(case(
        "slack webhook",
        format!(
            "requests.post(\"https://hooks.slack.com/services/T0{}/B0{}/{t}\", json=msg)",
            r.pick(UPPER_DIGITS, 8),
            r.pick(UPPER_DIGITS, 8)
        ),
        &t,
        One(RuleId::SECRET_SLACK_WEBHOOK, High),
    ));
    v.push(case("slack placeholder", "SLACK_BOT_TOKEN=xoxb-your-token-here".into(), "", Nothing));

    // PEM
    for label in ["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY", "DSA PRIVATE KEY"] {
        let body = r.pick(B64, 900);
        v.push(case("pem key", pem(label, &body, "\n"), &body, One(RuleId::SECRET_PRIVATE_KEY, High)));
    }
    let body = openssh_body(r, "none");
    v.push(case("openssh key", pem("OPENSSH PRIVATE KEY", &body, "\n"), &body, One(RuleId::SECRET_PRIVATE_KEY, High)));
    let body = openssh_body(r, "aes256-ctr");
    v.push(case(
        "openssh encrypted",
        pem("OPENSSH PRIVATE KEY", &body, "\n"),
        &body,
        One(RuleId::SECRET_PRIVATE_KEY, Medium),
    ));
    let body = r.pick(B64, 900);
    v.push(case(
        "pkcs8 encrypted",
        pem("ENCRYPTED PRIVATE KEY", &body, "\n"),
        &body,
        One(RuleId::SECRET_PRIVATE_KEY, Medium),
    ));
    let body = r.pick(B64, 900);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let legacy = format!(
        "-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-128-CBC,{}\r\n\r\n{}\r\n-----END RSA PRIVATE KEY-----\r\n",
        r.pick(HEX, 32).to_uppercase(),
        lines.join("\r\n")
    );
    v.push(case("legacy encrypted", legacy, &body, One(RuleId::SECRET_PRIVATE_KEY, Medium)));
    let body = r.pick(B64, 900);
    v.push(case(
        "pem in json string",
        format!("{{\"key\": \"{}\"}}", pem("RSA PRIVATE KEY", &body, "\\n")),
        &body,
        One(RuleId::SECRET_PRIVATE_KEY, High),
    ));
    v.push(case(
        "pem marker in code",
        "if line.startswith(\"-----BEGIN RSA PRIVATE KEY-----\"):\n    pass".into(),
        "",
        Nothing,
    ));
    v.push(case("public key", pem("PUBLIC KEY", &r.pick(B64, 300), "\n"), "", Nothing));
    v.push(case("certificate", pem("CERTIFICATE", &r.pick(B64, 900), "\n"), "", Nothing));

    // Database URLs
    let pw = r.pick(B62, 14);
    v.push(case(
        "postgres url",
        format!("DATABASE_URL=postgres://admin:{pw}@db.internal:5432/app"),
        &pw,
        One(RuleId::SECRET_DATABASE_URL, Medium),
    ));
    let pw = r.pick(B62, 12);
    v.push(case(
        "sqlalchemy url",
        format!("engine = create_engine('postgresql+psycopg2://etl:{pw}@10.0.0.5/warehouse')"),
        &pw,
        One(RuleId::SECRET_DATABASE_URL, Medium),
    ));
    let pw = r.pick(B62, 16);
    v.push(case(
        "mysql url",
        format!("mysql://root:{pw}@localhost:3306/db"),
        &pw,
        One(RuleId::SECRET_DATABASE_URL, Medium),
    ));
    let pw = r.pick(B62, 16);
    v.push(case(
        "mongodb srv url",
        format!("MongoClient(\"mongodb+srv://app:{pw}@cluster0.abcde.mongodb.net/?retryWrites=true\")"),
        &pw,
        One(RuleId::SECRET_DATABASE_URL, Medium),
    ));
    let pw = r.pick(B62, 16);
    v.push(case(
        "redis url no user",
        format!("REDIS_URL=redis://:{pw}@cache:6379/0"),
        &pw,
        One(RuleId::SECRET_DATABASE_URL, Medium),
    ));
    let pw = r.pick(B62, 16);
    v.push(case(
        "amqp url",
        format!("broker_url = 'amqps://worker:{pw}@mq.example.net:5671/vhost'"),
        &pw,
        One(RuleId::SECRET_DATABASE_URL, Medium),
    ));
    for url in [
        "postgres://user:@localhost/db",
        "postgres://user:${DB_PASSWORD}@localhost/db",
        "postgres://user:<password>@localhost/db",
        "postgres://user:password@localhost/db",
        "postgres://user:****@localhost/db",
        "postgresql://localhost:5432/db",
        "f\"postgresql://{user}:{pw}@{host}/db\"",
        "mysql://user:%s@host/db",
        "redis://localhost:6379",
    ] {
        v.push(case("db url without a real password", url.into(), "", Nothing));
    }
    for url in ["postgresql://postgres:postgres@localhost:5432/postgres", "amqp://guest:guest@localhost:5672//"] {
        v.push(case("db url with a default password", url.into(), "", One(RuleId::SECRET_DATABASE_URL, Info)));
    }

    // JWT
    let t = jwt(r);
    let sig = t.rsplit('.').next().unwrap().to_string();
    v.push(case("jwt", format!("Authorization: Bearer {t}"), &sig, One(RuleId::SECRET_JWT, Medium)));
    v.push(case(
        "jwt-like, header not json",
        format!("eyJ{}.{}.{}", r.pick(B62, 30), r.pick(B62, 30), r.pick(B62, 43)),
        "",
        Nothing,
    ));
    v.push(case("jwt prefix only", "the header starts with eyJhbGciOi as usual".into(), "", Nothing));

    // Ordinary notebook code
    v.push(case(
        "ordinary code",
        "import os\nimport pandas as pd\nfrom sklearn.model_selection import train_test_split\nkey = os.environ[\"OPENAI_API_KEY\"]\nsecret = get_secret('db')\nprint(f'{secret=}')\n".into(),
        "",
        Nothing,
    ));
    v
}

// ----- the table ----------------------------------------------------------------------------

#[test]
fn rule_table() {
    let cases = cases();
    let mut failures = Vec::new();
    for c in &cases {
        let r = scan_text(c.name, c.text.as_bytes());
        assert_eq!(r.format, Format::Text);
        let got = secret_findings(&r);
        let ok = match &c.expect {
            Expect::One(rule, sev) => got == vec![(rule.0, *sev)],
            Expect::NothingAboveInfo => got.iter().all(|(_, s)| *s == Severity::Info),
            Expect::Nothing => r.findings.is_empty(),
        };
        if !ok {
            failures.push(format!("{}: got {:?} for {:?}", c.name, r.findings, c.text));
            continue;
        }
        if let Expect::One(_, sev) = c.expect {
            let f = &r.findings[0];
            assert!(
                f.location.offset.is_some() && f.location.line.is_some() && f.location.column.is_some(),
                "{}",
                c.name
            );
            assert_eq!(f.location.cell, None);
            assert_eq!(r.verdict, report_verdict(sev), "{}", c.name);
        }
        if !c.secret.is_empty() {
            assert_redacted(&r, &c.secret);
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

fn report_verdict(sev: Severity) -> Verdict {
    match sev {
        Severity::High | Severity::Critical => Verdict::Malicious,
        Severity::Medium => Verdict::Suspicious,
        _ => Verdict::Clean,
    }
}

#[test]
fn location_in_plain_text() {
    let mut r = Rng(7);
    let t = r.pick(B62, 36);
    let text = format!("# config\n\n  token: \"ghp_{t}\"\n");
    let rep = scan_text("cfg.yaml", text.as_bytes());
    let f = &rep.findings[0];
    assert_eq!(f.location.offset, Some(text.find("ghp_").unwrap() as u64));
    assert_eq!((f.location.line, f.location.column), (Some(3), Some(11)));
    assert!(f.message.contains("GitHub personal access token"), "{}", f.message);
    assert!(f.message.contains(&format!("`ghp_…{}`", &t[32..])), "{}", f.message);
    // Optional location fields are left out of JSON when unset.
    let json = serde_json::to_value(&f.location).unwrap();
    assert!(json.get("cell").is_none() && json.get("output").is_none());
    assert_eq!(json["line"], 3);
}

#[test]
fn several_secrets_in_one_text_are_all_reported_in_order() {
    let mut r = Rng(99);
    let (a, b, c) = (r.pick(UPPER_DIGITS, 16), r.pick(B62, 34), r.pick(B62, 36));
    let text = format!("A=AKIA{a}\nB=hf_{b}\nC=ghp_{c}\n");
    let rep = scan_text("env", text.as_bytes());
    let rules: Vec<_> = rep.findings.iter().map(|f| (f.rule.0, f.location.line)).collect();
    assert_eq!(
        rules,
        vec![
            ("secret.aws-access-key", Some(1)),
            ("secret.huggingface-token", Some(2)),
            ("secret.github-token", Some(3))
        ]
    );
    for s in [a, b, c] {
        assert_redacted(&rep, &s);
    }
}

// ----- notebooks ----------------------------------------------------------------------------

struct NbSecrets {
    hf: String,
    aws: String,
    openai: String,
    github: String,
    png_aws: String,
}

fn v4_notebook() -> (Vec<u8>, NbSecrets) {
    let mut r = Rng(0xfeed_beef);
    let s = NbSecrets {
        hf: r.pick(B62, 34),
        aws: r.pick(UPPER_DIGITS, 16),
        openai: r.pick(B64URL, 100),
        github: r.pick(B62, 36),
        png_aws: r.pick(UPPER_DIGITS, 16),
    };
    // ~2 MB of base64 "image" with a token-shaped string in it, bounded by `+` so that a
    // scanner looking at it would report it.
    let png = format!("iVBORw0KGgo{}+AKIA{}+{}", r.pick(B64, 1 << 20), s.png_aws, r.pick(B64, 1 << 20));
    let nb = json!({
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Training\n", "Uses `os.environ[\"HF_TOKEN\"]`.\n"]},
            {
                "cell_type": "code", "execution_count": 1, "metadata": {}, "id": "a1",
                "source": ["import os\n", "from huggingface_hub import login\n", format!("login(token=\"hf_{}\")\n", s.hf)],
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": ["loading...\n", format!("using AKIA{}\n", s.aws)]},
                    {"output_type": "execute_result", "execution_count": 1, "metadata": {},
                     "data": {"text/plain": [format!("'sk-proj-{}'", s.openai)]}},
                    {"output_type": "display_data", "metadata": {},
                     "data": {"image/png": png, "text/plain": ["<Figure size 640x480 with 1 Axes>"]}},
                    {"output_type": "error", "ename": "HTTPError", "evalue": "401 Unauthorized",
                     "traceback": [
                        "\u{1b}[0;31m---------------------------------------------------------------------------\u{1b}[0m",
                        "\u{1b}[0;31mHTTPError\u{1b}[0m                                 Traceback (most recent call last)",
                        format!("Cell \u{1b}[0;32mIn[1], line 3\u{1b}[0m\n\u{1b}[0;32m----> 3\u{1b}[0m push(token\u{1b}[38;5;241m=\u{1b}[39mghp_{}\u{1b}[0m)", s.github),
                     ]},
                ]
            },
            {"cell_type": "code", "execution_count": 2, "metadata": {}, "source": "import pickle\nmodel = pickle.load(open('m.pkl', 'rb'))", "outputs": []},
        ]
    });
    (serde_json::to_vec(&nb).unwrap(), s)
}

#[test]
fn notebook_secrets_in_source_and_every_output_kind() {
    let (data, s) = v4_notebook();
    let r = scan_notebook("train.ipynb", &data);
    assert_eq!(r.format, Format::Notebook);
    assert_eq!(r.verdict, Verdict::Malicious);
    let mut got: Vec<_> =
        r.findings.iter().map(|f| (f.rule.0, f.location.cell, f.location.output, f.location.line)).collect();
    got.sort();
    let mut want = vec![
        ("secret.huggingface-token", Some(1), None, Some(3)),
        ("secret.aws-access-key", Some(1), Some(0), Some(2)),
        ("secret.openai-api-key", Some(1), Some(1), Some(1)),
        ("secret.github-token", Some(1), Some(3), Some(4)),
    ];
    want.sort();
    assert_eq!(got, want, "{:#?}", r.findings);
    // Messages say where, in JSON-path terms.
    let msg = |rule: &str| r.findings.iter().find(|f| f.rule.0 == rule).unwrap().message.clone();
    assert!(
        msg("secret.huggingface-token").contains("in cells[1].source at line 3"),
        "{}",
        msg("secret.huggingface-token")
    );
    assert!(msg("secret.aws-access-key").contains("in cells[1].outputs[0].text"));
    assert!(msg("secret.openai-api-key").contains("in cells[1].outputs[1].data[text/plain]"));
    assert!(msg("secret.github-token").contains("in cells[1].outputs[3].traceback"));
    // The column in the traceback counts the text with colour codes removed.
    let gh = r.findings.iter().find(|f| f.rule.0 == "secret.github-token").unwrap();
    assert_eq!(gh.location.column, Some("----> 3 push(token=".len() as u64 + 1));
    for secret in [&s.hf, &s.aws, &s.openai, &s.github, &s.png_aws] {
        assert_redacted(&r, secret);
    }
    // Routed the same way through scan_bytes.
    let via_bytes = scan_bytes("train.ipynb", &data, &ScanOptions::default());
    assert_eq!(via_bytes.format, Format::Notebook);
    assert_eq!(via_bytes.findings, r.findings);
}

#[test]
fn base64_images_are_not_scanned_but_text_is() {
    let (data, s) = v4_notebook();
    let r = scan_notebook("nb", &data);
    assert!(!r.findings.iter().any(|f| f.location.output == Some(2)), "{:#?}", r.findings);
    // Same payload under a text MIME type is scanned: the skip is what keeps it quiet.
    let mut nb: serde_json::Value = serde_json::from_slice(&data).unwrap();
    let png = nb["cells"][1]["outputs"][2]["data"]["image/png"].take();
    nb["cells"][1]["outputs"][2]["data"]["text/html"] = png;
    let r = scan_notebook("nb", &serde_json::to_vec(&nb).unwrap());
    let f = r.findings.iter().find(|f| f.location.output == Some(2)).expect("token in text/html");
    assert_eq!(f.rule, RuleId::SECRET_AWS_ACCESS_KEY);
    assert!(f.message.contains("data[text/html]"));
    assert_redacted(&r, &s.png_aws);
}

#[test]
fn clean_notebook_is_clean() {
    let nb = json!({
        "nbformat": 4, "nbformat_minor": 2, "metadata": {},
        "cells": [
            {"cell_type": "code", "metadata": {}, "execution_count": 1,
             "source": ["import os\n", "key = os.environ[\"OPENAI_API_KEY\"]\n", "from sklearn.svm import SVC  # sk-learn\n"],
             "outputs": [{"output_type": "stream", "name": "stdout", "text": "AKIAIOSFODNN7EXAMPLE is AWS's documented example\n"},
                         {"output_type": "execute_result", "execution_count": 1, "metadata": {},
                          "data": {"application/json": {"db": "postgres://user:${PASSWORD}@db/app"}, "text/plain": "{'db': ...}"}}]},
        ]
    });
    let r = scan_notebook("ok.ipynb", &serde_json::to_vec(&nb).unwrap());
    assert!(r.findings.iter().all(|f| f.severity == Severity::Info), "{:#?}", r.findings);
    assert_eq!(r.verdict, Verdict::Clean);
    assert_eq!(r.bytes_scanned, serde_json::to_vec(&nb).unwrap().len() as u64);
}

#[test]
fn json_output_and_markdown_and_attachments() {
    let mut r = Rng(3);
    let (pw, t) = (r.pick(B62, 16), r.pick(B62, 20));
    let nb = json!({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": format!("Clone with `glpat-{t}`"),
             "attachments": {"shot.png": {"image/png": format!("AAAA+AKIA{}+AAAA", r.pick(UPPER_DIGITS, 16))}}},
            {"cell_type": "code", "metadata": {}, "execution_count": 3, "source": "cfg",
             "outputs": [{"output_type": "execute_result", "execution_count": 3, "metadata": {},
                          "data": {"application/json": {"db": {"url": format!("postgres://app:{pw}@db:5432/x")}},
                                   "text/markdown": "fine"}}]},
        ]
    });
    let rep = scan_notebook("nb", &serde_json::to_vec(&nb).unwrap());
    let got: Vec<_> = rep.findings.iter().map(|f| (f.rule.0, f.location.cell, f.location.output)).collect();
    assert_eq!(got.len(), 2, "{:#?}", rep.findings);
    assert!(got.contains(&("secret.gitlab-token", Some(0), None)));
    assert!(got.contains(&("secret.database-url", Some(1), Some(0))));
    assert_eq!(rep.verdict, Verdict::Malicious);
    assert_redacted(&rep, &pw);
    assert_redacted(&rep, &t);
}

#[test]
fn user_controlled_keys_are_not_echoed() {
    let mut r = Rng(13);
    let (key_name, t) = (format!("AKIA{}", r.pick(UPPER_DIGITS, 16)), r.pick(B62, 36));
    let nb = json!({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "",
         "attachments": {key_name.clone(): {"text/plain": format!("ghp_{t}")}}},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "",
         "outputs": [{"output_type": "display_data", "metadata": {}, "data": {key_name.clone(): format!("ghp_{t}")}}]}]});
    let rep = scan_notebook("nb", &serde_json::to_vec(&nb).unwrap());
    assert_eq!(secret_findings(&rep).len(), 2, "{:#?}", rep.findings);
    assert!(rep.findings.iter().all(|f| f.message.contains("[…]")), "{:#?}", rep.findings);
    assert_redacted(&rep, &key_name[4..]);
    assert_redacted(&rep, &t);
}

#[test]
fn gcp_key_in_notebook_output() {
    let mut r = Rng(11);
    let body = r.pick(B64, 1200);
    let repr = format!(
        "{{'type': 'service_account', 'project_id': 'p', 'private_key_id': '{}', 'private_key': '{}', 'client_email': 'a@p.iam.gserviceaccount.com'}}",
        r.pick(HEX, 40),
        pem("PRIVATE KEY", &body, "\\n")
    );
    let nb = json!({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "json.load(open('key.json'))",
         "outputs": [{"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": repr}}]}]});
    let rep = scan_notebook("nb", &serde_json::to_vec(&nb).unwrap());
    assert_eq!(secret_findings(&rep), vec![("secret.gcp-service-account", Severity::High)], "{:#?}", rep.findings);
    assert_redacted(&rep, &body);
}

#[test]
fn nbformat3_worksheets() {
    let mut r = Rng(0x33);
    let (a, b, c) = (r.pick(B62, 34), r.pick(UPPER_DIGITS, 16), r.pick(B62, 36));
    let nb = json!({
        "nbformat": 3, "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [{
            "metadata": {},
            "cells": [
                {"cell_type": "heading", "level": 1, "metadata": {}, "source": ["Old notebook"]},
                {"cell_type": "code", "collapsed": false, "language": "python", "metadata": {}, "prompt_number": 1,
                 "input": ["import os\n", format!("HF = 'hf_{a}'")],
                 "outputs": [
                    {"output_type": "pyout", "prompt_number": 1, "metadata": {},
                     "text": [format!("'AKIA{b}'")], "png": format!("iVBORw0+AKIA{}+AAAA", r.pick(UPPER_DIGITS, 16))},
                    {"output_type": "stream", "stream": "stdout", "text": "ok\n"},
                    {"output_type": "pyerr", "ename": "ValueError", "evalue": format!("bad token ghp_{c}"), "traceback": ["line 1"]},
                 ]},
            ]
        }]
    });
    let rep = scan_notebook("old.ipynb", &serde_json::to_vec(&nb).unwrap());
    let mut got: Vec<_> = rep.findings.iter().map(|f| (f.rule.0, f.location.cell, f.location.output)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("secret.aws-access-key", Some(1), Some(0)),
            ("secret.github-token", Some(1), Some(2)),
            ("secret.huggingface-token", Some(1), None),
        ],
        "{:#?}",
        rep.findings
    );
    assert!(rep.findings.iter().any(|f| f.message.contains("worksheets[0].cells[1].outputs[2].evalue")));
    for s in [a, b, c] {
        assert_redacted(&rep, &s);
    }
}

#[test]
fn malformed_notebook_is_inconclusive_with_position() {
    let data = b"{\n  \"nbformat\": 4,\n  \"cells\": [ {\"source\": \"x\" ,, ]\n}";
    let r = scan_notebook("broken.ipynb", data);
    assert_eq!(r.verdict, Verdict::Inconclusive);
    let f = r.findings.iter().find(|f| f.rule == RuleId::NOTEBOOK_MALFORMED).unwrap();
    assert!(f.rule.is_inconclusive());
    assert!(f.message.contains("line 3 column"), "{}", f.message);
    assert_eq!(f.location.line, Some(3));
    assert!(f.location.column.is_some() && f.location.offset.is_some());
    let off = f.location.offset.unwrap() as usize;
    assert_eq!(data[off], b',', "offset points at the second comma");
    // Routed through scan_bytes too.
    assert_eq!(scan_bytes("broken", data, &ScanOptions::default()).verdict, Verdict::Inconclusive);
}

#[test]
fn malformed_notebook_still_reports_secrets_from_raw_bytes() {
    let t = Rng(5).pick(B62, 36);
    let data = format!("{{\"nbformat\": 4, \"cells\": [{{\"source\": \"tok = 'ghp_{t}'\"");
    let r = scan_notebook("truncated.ipynb", data.as_bytes());
    assert!(r.findings.iter().any(|f| f.rule == RuleId::NOTEBOOK_MALFORMED));
    let f = r.findings.iter().find(|f| f.rule == RuleId::SECRET_GITHUB_TOKEN).unwrap();
    assert!(f.message.contains("in the raw file"));
    assert_eq!(f.location.offset, Some(data.find("ghp_").unwrap() as u64));
    assert_eq!(r.verdict, Verdict::Malicious);
    assert_redacted(&r, &t);
}

#[test]
fn not_a_notebook_shapes_are_inconclusive() {
    for data in [&b"[1, 2, 3]"[..], b"{\"nbformat\": 4}", b"", b"\xff\xfe{", b"{\"cells\": [] }  trailing"] {
        let r = scan_notebook("x", data);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{:?}: {:#?}", String::from_utf8_lossy(data), r.findings);
    }
    // An empty but well-formed notebook is clean.
    assert_eq!(scan_notebook("x", b"\xef\xbb\xbf{\"cells\": [], \"nbformat\": 4}").verdict, Verdict::Clean);
    // Deep nesting is a JSON error (serde_json's recursion limit), not a stack overflow.
    let deep = format!("{{\"cells\": {}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(scan_notebook("deep", deep.as_bytes()).verdict, Verdict::Inconclusive);
}

#[test]
fn text_and_binary_are_scanned_as_bytes() {
    let t = Rng(8).pick(B62, 36);
    let mut data = vec![0xff, 0x00, 0x80, b'\n'];
    data.extend(format!("x=ghp_{t}").as_bytes());
    data.extend([0xc3, 0x28]);
    let r = scan_text("blob", &data);
    assert_eq!(secret_findings(&r), vec![("secret.github-token", Severity::High)]);
    assert_eq!(r.findings[0].location.line, Some(2));
    assert_eq!(scan_text("empty", b"").verdict, Verdict::Clean);
}

#[test]
fn many_secrets_are_capped_keeping_the_worst() {
    let mut r = Rng(21);
    let mut text = String::new();
    for _ in 0..1500 {
        text.push_str("AKIAIOSFODNN7EXAMPLE\n");
    }
    let gh = r.pick(B62, 36);
    text.push_str(&format!("ghp_{gh}\n"));
    let rep = scan_text("many", text.as_bytes());
    assert_eq!(
        rep.findings.iter().filter(|f| f.rule.0.starts_with("secret.") && f.rule != RuleId::SECRET_LIMIT).count(),
        1000
    );
    assert!(rep.findings.iter().any(|f| f.rule == RuleId::SECRET_LIMIT && f.message.starts_with("501 more")));
    assert_eq!(rep.findings[0].rule, RuleId::SECRET_GITHUB_TOKEN);
    assert_eq!(rep.verdict, Verdict::Malicious);
}

#[test]
fn adversarial_text_scans_in_linear_time() {
    // Every trigger over and over, with near-miss continuations.
    let unit = "sk-eyJhbGc.eyJ.-----BEGIN PRIVATE KEY-----AAAA postgres://a:b@ secret=AKIA hf_ ghp_ xoxb-1- Q~ AccountKey= service_account \"private_key\": ";
    let text = unit.repeat((4 << 20) / unit.len());
    let start = Instant::now();
    let r = scan_text("adversarial", text.as_bytes());
    let spent = start.elapsed();
    assert!(spent < Duration::from_secs(20), "took {spent:?}");
    eprintln!("{} MiB adversarial text in {spent:?}, {} findings", text.len() >> 20, r.findings.len());
    // A long base64 run is skipped cheaply too.
    let blob: String = Rng(1).pick(B64, 4 << 20);
    let start = Instant::now();
    let _ = scan_text("blob", blob.as_bytes());
    assert!(start.elapsed() < Duration::from_secs(20));
}

// ----- properties ---------------------------------------------------------------------------

fn token_templates() -> Vec<(&'static str, &'static str, &'static [u8], usize)> {
    // (prefix, suffix, body alphabet, body length): each yields a finding whose body must not
    // leak.
    vec![
        ("x = 'AKIA", "'", UPPER_DIGITS, 16),
        ("token=hf_", "\n", B62, 34),
        ("k=\"sk-proj-", "\"", B64URL, 80),
        ("sk-ant-api03-", "", B64URL, 95),
        ("ghp_", " ", B62, 36),
        ("glpat-", ";", B62, 20),
        ("aws_secret_access_key: ", "\n", B64, 40),
        ("AccountKey=", ";", B64, 88),
        ("mongodb://u:", "@h/db", B62, 18),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_text_or_notebook(data in proptest::collection::vec(any::<u8>(), 0..800)) {
        let _ = scan_text("fuzz", &data);
        let r = scan_notebook("fuzz", &data);
        if serde_json::from_slice::<serde_json::Value>(&data).is_err() {
            prop_assert_ne!(r.verdict, Verdict::Clean);
        }
    }

    #[test]
    fn trigger_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("sk-"), Just("sk-ant-"), Just("eyJ"), Just("."), Just("-----BEGIN "), Just("PRIVATE KEY-----"),
        Just("-----END "), Just("\\n"), Just("\n"), Just("Proc-Type: 4,ENCRYPTED"), Just("postgres://"), Just(":"),
        Just("@"), Just("AKIA"), Just("hf_"), Just("ghp_"), Just("github_pat_"), Just("Q~"), Just("8"),
        Just("AccountKey="), Just("\"type\": \"service_account\""), Just("\"private_key\": \""), Just("secret"),
        Just("="), Just("hooks.slack.com/services/"), Just("/"), Just("xoxb-"), Just("-"), Just("glpat-"),
        Just("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), Just("abcdefghijklmnopqrstuvwxyz"), Just("\u{e9}"), Just("\u{1b}[0m"),
    ], 0..60)) {
        let text = parts.concat();
        let r = scan_text("soup", text.as_bytes());
        for f in &r.findings {
            prop_assert!(f.location.offset.unwrap() as usize <= text.len());
        }
        let nb = json!({"nbformat": 4, "cells": [{"source": text, "outputs": [{"output_type": "error", "traceback": [text]}]}]});
        let _ = scan_notebook("soup", &serde_json::to_vec(&nb).unwrap());
    }

    #[test]
    fn generated_secrets_never_leak(seed in any::<u64>(), which in 0usize..9, noise in "[ -~]{0,40}") {
        let (prefix, suffix, set, len) = token_templates()[which];
        let body = Rng(seed | 1).pick(set, len);
        let text = format!("{noise}\n{prefix}{body}{suffix}\n{noise}");
        let rep = scan_text("gen", text.as_bytes());
        prop_assert!(rep.findings.iter().any(|f| f.rule.0.starts_with("secret.")), "{} -> {:?}", text, rep.findings);
        let json = serde_json::to_string(&rep).unwrap();
        prop_assert!(!json.contains(&body));
        let nb = json!({"nbformat": 4, "cells": [{"source": [text], "outputs": [{"output_type": "stream", "text": text}]}]});
        let rep = scan_notebook("gen", &serde_json::to_vec(&nb).unwrap());
        prop_assert!(!serde_json::to_string(&rep).unwrap().contains(&body));
    }
}

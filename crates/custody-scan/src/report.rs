//! Report types: what a scan found, where, and how bad it is.
//!
//! Everything here is `serde::Serialize` so callers can emit JSON (or map it to SARIF) without
//! this crate knowing about either.

use serde::Serialize;
use std::fmt;

/// How serious a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Context only; never changes a verdict.
    Info,
    /// Worth knowing, not a reason to block.
    Low,
    /// Unknown or unusual behaviour: the file is suspicious.
    Medium,
    /// Known-dangerous behaviour: the file is malicious.
    High,
    /// Direct code execution, file or network access.
    Critical,
}

/// Overall judgement for a file. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fully parsed; everything it would import is on the allow-list.
    Clean,
    /// Could not be fully analysed (unknown format, encrypted, truncated, budget exceeded).
    /// Never treated as clean.
    Inconclusive,
    /// Imports or does something not known to be safe.
    Suspicious,
    /// Imports or calls something known to be dangerous.
    Malicious,
}

/// Detected file format (by content, never by extension; dependency files, which are not
/// model files, by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A raw pickle stream (possibly several pickles in a row).
    Pickle,
    /// A legacy (pre-1.6) PyTorch file: several pickles in a row followed by storage bytes.
    TorchLegacy,
    /// A zip archive (PyTorch checkpoints, `.npz`, anything else zipped).
    Zip,
    /// A NumPy `.npy` array.
    Npy,
    /// A joblib pickle (NumPy array bytes interleaved with the pickle stream).
    Joblib,
    /// A gzip stream.
    Gzip,
    /// A zlib stream (joblib's zlib compressor).
    Zlib,
    /// An xz stream.
    Xz,
    /// A raw LZMA ("lzma-alone") stream.
    Lzma,
    /// An LZ4 frame.
    Lz4,
    /// A bzip2 stream (not decoded).
    Bzip2,
    /// A zstd stream (not decoded).
    Zstd,
    /// A 7z archive.
    SevenZ,
    /// A Jupyter notebook (`.ipynb` JSON, nbformat 3 or 4), scanned for secrets.
    Notebook,
    /// Plain text (source code, config, `.env`...), scanned for secrets.
    Text,
    /// A safetensors file (JSON header, then raw tensor bytes).
    Safetensors,
    /// A GGUF file (llama.cpp / ggml).
    Gguf,
    /// An ONNX model (a protobuf `ModelProto`).
    Onnx,
    /// A Keras v3 `.keras` archive (zip with `config.json` and `metadata.json`).
    Keras,
    /// An HDF5 file (legacy Keras `.h5` models and weights).
    Hdf5,
    /// Nothing we recognise.
    Unknown,
    /// A pip requirements file (`requirements*.txt`), recognised by name.
    Requirements,
    /// A Poetry lockfile (`poetry.lock`).
    PoetryLock,
    /// A uv lockfile (`uv.lock`).
    UvLock,
    /// A Pipenv lockfile (`Pipfile.lock`).
    PipfileLock,
    /// A Cargo lockfile (`Cargo.lock`).
    CargoLock,
    /// An npm lockfile (`package-lock.json` or `npm-shrinkwrap.json`).
    PackageLock,
}

/// Stable identifier of the rule that produced a finding, e.g. `pickle.dangerous-global`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct RuleId(pub &'static str);

impl RuleId {
    /// An import on the deny-list.
    pub const DANGEROUS_GLOBAL: RuleId = RuleId("pickle.dangerous-global");
    /// An import neither allowed nor denied.
    pub const UNKNOWN_GLOBAL: RuleId = RuleId("pickle.unknown-global");
    /// A global whose module/name could not be resolved statically.
    pub const DYNAMIC_GLOBAL: RuleId = RuleId("pickle.dynamic-global");
    /// `BUILD` (or item/append mutation) applied to an imported object.
    pub const ATTRIBUTE_REWRITE: RuleId = RuleId("pickle.attribute-rewrite");
    /// EXT1/EXT2/EXT4: a global looked up through the copyreg extension registry.
    pub const EXT_OPCODE: RuleId = RuleId("pickle.ext-opcode");
    /// A call whose argument looks like source code or a shell command.
    pub const CODE_ARGUMENT: RuleId = RuleId("pickle.code-argument");
    /// A pickle found inside another (argument of a loader, embedded constant, base64).
    pub const NESTED: RuleId = RuleId("pickle.nested");
    /// The pickle is truncated or invalid where the loader would fail.
    pub const MALFORMED: RuleId = RuleId("pickle.malformed");
    /// Bytes after the last pickle in a stream.
    pub const TRAILING_DATA: RuleId = RuleId("pickle.trailing-data");
    /// An opcode crosses a FRAME boundary (the C unpickler accepts it; pickle.py does not).
    pub const FRAME_DIVERGENCE: RuleId = RuleId("pickle.frame-divergence");
    /// A memo, stack or nesting limit was reached.
    pub const PICKLE_BUDGET: RuleId = RuleId("pickle.budget");
    /// A decompression, size or depth limit was reached.
    pub const ARCHIVE_BUDGET: RuleId = RuleId("archive.budget");
    /// An archive member is encrypted and could not be read.
    pub const ARCHIVE_ENCRYPTED: RuleId = RuleId("archive.encrypted");
    /// The archive (or a member) is damaged or uses an unsupported method.
    pub const ARCHIVE_MALFORMED: RuleId = RuleId("archive.malformed");
    /// A structural oddity in an archive that loaders tolerate (CRC or name mismatch, flag bits).
    pub const ARCHIVE_ANOMALY: RuleId = RuleId("archive.anomaly");
    /// The file's format is not recognised, so nothing was scanned.
    pub const UNKNOWN_FORMAT: RuleId = RuleId("format.unknown");
    /// The format is recognised but not supported (e.g. bzip2 without a decoder).
    pub const UNSUPPORTED_FORMAT: RuleId = RuleId("format.unsupported");
    /// A NumPy header is invalid.
    pub const NPY_MALFORMED: RuleId = RuleId("npy.malformed");
    /// A notebook is not valid JSON or has no `cells`/`worksheets`.
    pub const NOTEBOOK_MALFORMED: RuleId = RuleId("notebook.malformed");
    /// An AWS access key id (`AKIA...`/`ASIA...`).
    pub const SECRET_AWS_ACCESS_KEY: RuleId = RuleId("secret.aws-access-key");
    /// An AWS secret access key (40 characters assigned to a `secret`-named key).
    pub const SECRET_AWS_SECRET_KEY: RuleId = RuleId("secret.aws-secret-key");
    /// A GCP service-account key (JSON with `"type": "service_account"` and a private key).
    pub const SECRET_GCP_SERVICE_ACCOUNT: RuleId = RuleId("secret.gcp-service-account");
    /// An Azure storage account key or shared access key in a connection string.
    pub const SECRET_AZURE_STORAGE_KEY: RuleId = RuleId("secret.azure-storage-key");
    /// An Azure AD (Entra ID) client secret.
    pub const SECRET_AZURE_CLIENT_SECRET: RuleId = RuleId("secret.azure-client-secret");
    /// A Hugging Face access token (`hf_...`).
    pub const SECRET_HUGGINGFACE_TOKEN: RuleId = RuleId("secret.huggingface-token");
    /// An OpenAI API key (`sk-...`, `sk-proj-...`).
    pub const SECRET_OPENAI_API_KEY: RuleId = RuleId("secret.openai-api-key");
    /// An Anthropic API key (`sk-ant-...`).
    pub const SECRET_ANTHROPIC_API_KEY: RuleId = RuleId("secret.anthropic-api-key");
    /// A GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`).
    pub const SECRET_GITHUB_TOKEN: RuleId = RuleId("secret.github-token");
    /// A GitLab token (`glpat-`, `gldt-`, `glrt-`).
    pub const SECRET_GITLAB_TOKEN: RuleId = RuleId("secret.gitlab-token");
    /// A Slack token (`xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xapp-`).
    pub const SECRET_SLACK_TOKEN: RuleId = RuleId("secret.slack-token");
    /// A Slack incoming-webhook URL.
    pub const SECRET_SLACK_WEBHOOK: RuleId = RuleId("secret.slack-webhook");
    /// A PEM private key (`-----BEGIN ... PRIVATE KEY-----` with a body).
    pub const SECRET_PRIVATE_KEY: RuleId = RuleId("secret.private-key");
    /// A database or broker URL with an inline password.
    pub const SECRET_DATABASE_URL: RuleId = RuleId("secret.database-url");
    /// A signed JSON Web Token.
    pub const SECRET_JWT: RuleId = RuleId("secret.jwt");
    /// More secrets than are reported individually; the rest are summarised.
    pub const SECRET_LIMIT: RuleId = RuleId("secret.limit");
    /// The secret scanner could not run (its matcher failed to build).
    pub const SECRET_INCOMPLETE: RuleId = RuleId("secret.incomplete");
    /// A pinned dependency is affected by a known vulnerability (OSV record).
    pub const DEPS_VULNERABLE: RuleId = RuleId("deps.vulnerable");
    /// A requirement names no single registry version (a range, no version, a URL or path).
    pub const DEPS_UNPINNED: RuleId = RuleId("deps.unpinned");
    /// A requirements file includes another (`-r`, `-c`), which is not followed.
    pub const DEPS_NOT_FOLLOWED: RuleId = RuleId("deps.not-followed");
    /// No vulnerability data for the file's ecosystem (or not a known dependency file).
    pub const DEPS_UNKNOWN_ECOSYSTEM: RuleId = RuleId("deps.unknown-ecosystem");
    /// A dependency file (or one of its lines) does not parse.
    pub const DEPS_MALFORMED: RuleId = RuleId("deps.malformed");
    /// A version or range bound could not be compared, so a record could not be evaluated.
    pub const DEPS_CANNOT_COMPARE: RuleId = RuleId("deps.cannot-compare");
    /// Part of the vulnerability database could not be read.
    pub const DEPS_DATABASE: RuleId = RuleId("deps.database");
    /// A safetensors header or layout is invalid (the loader would reject it, or loaders may
    /// disagree on it).
    pub const SAFETENSORS_MALFORMED: RuleId = RuleId("safetensors.malformed");
    /// A safetensors `__metadata__` entry worth a human look (e.g. a chat template).
    pub const SAFETENSORS_METADATA: RuleId = RuleId("safetensors.metadata");
    /// A GGUF file is truncated or invalid.
    pub const GGUF_MALFORMED: RuleId = RuleId("gguf.malformed");
    /// A GGUF chat template (Jinja, rendered at inference): for review, elevated when it looks
    /// like a sandbox escape.
    pub const GGUF_CHAT_TEMPLATE: RuleId = RuleId("gguf.chat-template");
    /// A note about GGUF content that could not be checked in full (e.g. a tensor type of unknown
    /// size).
    pub const GGUF_NOTE: RuleId = RuleId("gguf.note");
    /// An ONNX model is invalid past the point where it was recognised.
    pub const ONNX_MALFORMED: RuleId = RuleId("onnx.malformed");
    /// An ONNX tensor's external data points outside the model's directory.
    pub const ONNX_EXTERNAL_DATA_ESCAPE: RuleId = RuleId("onnx.external-data-escape");
    /// An ONNX tensor is stored in an external file (not scanned here).
    pub const ONNX_EXTERNAL_DATA: RuleId = RuleId("onnx.external-data");
    /// An ONNX node uses an operator domain that needs a custom runtime library.
    pub const ONNX_CUSTOM_DOMAIN: RuleId = RuleId("onnx.custom-op-domain");
    /// A Keras `Lambda` layer (or serialized lambda): Python bytecode run at load or call time.
    pub const KERAS_LAMBDA: RuleId = RuleId("keras.lambda-layer");
    /// A Keras layer that calls TensorFlow operations by name (`TFOpLambda`, `SlicingOpLambda`).
    pub const KERAS_OP_LAMBDA: RuleId = RuleId("keras.op-lambda");
    /// A Keras object resolved from a module outside Keras (a custom object: its code is
    /// imported at load time).
    pub const KERAS_CUSTOM_OBJECT: RuleId = RuleId("keras.custom-object");
    /// A Keras model config could not be parsed.
    pub const KERAS_MALFORMED: RuleId = RuleId("keras.malformed");
    /// Context about a Keras/HDF5 file (version, weights only).
    pub const KERAS_NOTE: RuleId = RuleId("keras.note");

    /// Whether this rule means "we could not finish": such a finding keeps a file from being clean.
    pub fn is_inconclusive(self) -> bool {
        matches!(
            self.0,
            "pickle.malformed"
                | "pickle.budget"
                | "archive.budget"
                | "archive.encrypted"
                | "archive.malformed"
                | "format.unknown"
                | "format.unsupported"
                | "npy.malformed"
                | "notebook.malformed"
                | "secret.incomplete"
                | "deps.unpinned"
                | "deps.not-followed"
                | "deps.unknown-ecosystem"
                | "deps.malformed"
                | "deps.cannot-compare"
                | "deps.database"
                | "safetensors.malformed"
                | "gguf.malformed"
                | "onnx.malformed"
                | "keras.malformed"
        )
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Where a finding is: the member path inside (possibly nested) archives, and a byte offset;
/// for text, also line and column; for notebooks, also the cell and output.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Location {
    /// Member path, `!`-separated across nested archives (`outer.zip!model/data.pkl`); empty for
    /// the top-level file.
    pub member: String,
    /// Byte offset inside that member (or inside the decompressed stream), if meaningful. In a
    /// notebook: inside the decoded text of the cell source or output field.
    pub offset: Option<u64>,
    /// 1-based line of `offset` in the text it points into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 1-based column of `offset` on its line, in characters (UTF-8 code points).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    /// 0-based index of the notebook cell (across all worksheets for nbformat 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell: Option<u64>,
    /// 0-based index of the output within the cell; `None` for the cell's source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<u64>,
}

/// One thing the scanner noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Which rule fired.
    pub rule: RuleId,
    /// How serious it is.
    pub severity: Severity,
    /// Human-readable explanation (user-controlled text quoted in backticks).
    pub message: String,
    /// Where it is.
    pub location: Location,
}

/// How a global was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ImportVia {
    /// `GLOBAL` (protocol 0-3 text form).
    Global,
    /// `STACK_GLOBAL` with operands from the stack.
    StackGlobal,
    /// `INST` (import and instantiate).
    Inst,
    /// EXT1/EXT2/EXT4 registry lookup.
    Ext,
}

/// What the policy thinks of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Disposition {
    /// On the allow-list.
    Allowed,
    /// On the deny-list.
    Denied,
    /// Neither.
    Unknown,
}

/// One import a pickle performs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Import {
    /// Module as written in the pickle (decoded).
    pub module: String,
    /// Attribute name (may be dotted: a path of attributes).
    pub name: String,
    /// Opcode that imported it.
    pub via: ImportVia,
    /// Whether an operand came from a memo lookup (GET/BINGET/LONG_BINGET).
    pub operand_from_memo: bool,
    /// Byte offset of the importing opcode (relative to the member).
    pub offset: u64,
    /// Policy decision.
    pub disposition: Disposition,
}

/// Calls made on one callee by one kind of opcode (aggregated: tensor-heavy pickles call the
/// same rebuild function thousands of times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    /// Opcode (`REDUCE`, `NEWOBJ`, `NEWOBJ_EX`, `OBJ`, `INST`).
    pub opcode: &'static str,
    /// Dotted path of the callable, or a description such as `<result of builtins.getattr>`.
    pub callee: String,
    /// Offset of the first such call.
    pub first_offset: u64,
    /// How many times.
    pub count: u64,
}

/// A `BUILD` (or mutation) applied directly to an imported global.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributeRewrite {
    /// The global whose attributes are rewritten.
    pub target: String,
    /// Opcode (`BUILD`, `SETITEM`, `APPEND`, ...).
    pub opcode: &'static str,
    /// Offset of the opcode.
    pub offset: u64,
}

/// A parse error inside a pickle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PickleError {
    /// Offset where the loader would fail.
    pub offset: u64,
    /// Why.
    pub message: String,
}

/// What one pickle (one `STOP`-terminated stream) does.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PickleReport {
    /// Member path the pickle was found in.
    pub member: String,
    /// Offset of the pickle's first byte within the member.
    pub start: u64,
    /// Offset just past `STOP`, if reached.
    pub end: Option<u64>,
    /// Highest `PROTO` seen (0 if none).
    pub protocol: u8,
    /// Number of opcodes walked.
    pub opcodes: u64,
    /// Imports, in order (capped; see `imports_truncated`).
    pub imports: Vec<Import>,
    /// Whether more imports were seen than recorded.
    pub imports_truncated: bool,
    /// Calls, aggregated by (opcode, callee).
    pub calls: Vec<Call>,
    /// Attribute rewrites of globals.
    pub rewrites: Vec<AttributeRewrite>,
    /// Parse errors (at most one fatal error per pickle, plus notes).
    pub errors: Vec<PickleError>,
    /// Nesting depth (0 for a top-level pickle).
    pub depth: u32,
}

/// The result of scanning one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// The name the caller gave.
    pub name: String,
    /// Top-level format.
    pub format: Format,
    /// Overall verdict.
    pub verdict: Verdict,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Every pickle analysed (including nested ones and archive members).
    pub pickles: Vec<PickleReport>,
    /// Archive members (or decompressed streams) examined, `!`-separated paths.
    pub members: Vec<String>,
    /// Total bytes examined after decompression.
    pub bytes_scanned: u64,
}

impl FileReport {
    /// The highest severity among findings, if any.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Compute a verdict from findings: any High/Critical → malicious; Medium → suspicious; any
/// "could not finish" rule → inconclusive; otherwise clean.
pub fn verdict_for(findings: &[Finding]) -> Verdict {
    let mut v = Verdict::Clean;
    for f in findings {
        let this = if f.severity >= Severity::High {
            Verdict::Malicious
        } else if f.severity == Severity::Medium {
            Verdict::Suspicious
        } else if f.rule.is_inconclusive() {
            Verdict::Inconclusive
        } else {
            Verdict::Clean
        };
        // A "could not finish" finding is never downgraded to clean by its severity.
        let this = if f.rule.is_inconclusive() { this.max(Verdict::Inconclusive) } else { this };
        v = v.max(this);
    }
    v
}

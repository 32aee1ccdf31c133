//! The command line, defined once; help and shell completions come from it.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Custody: the chain of custody for AI data and models.
#[derive(Debug, Parser)]
#[command(name = "custody", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The server to talk to [default: from the config file, else http://127.0.0.1:7070].
    #[arg(long, global = true, env = "CUSTODY_SERVER")]
    pub server: Option<String>,
    /// The CLI's configuration file [default: $XDG_CONFIG_HOME/custody/cli.toml].
    #[arg(long = "cli-config", global = true, env = "CUSTODY_CLI_CONFIG")]
    pub cli_config: Option<PathBuf>,
    /// A file holding the API token (the token itself is read from CUSTODY_TOKEN).
    #[arg(long, global = true, env = "CUSTODY_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// A PEM CA certificate to trust for an HTTPS server.
    #[arg(long, global = true, env = "CUSTODY_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Start an embedded server on a temporary data directory and walk a realistic lifecycle
    /// through the API, printing what each step proves.
    Demo(DemoArgs),
    /// Show who the server thinks you are.
    Whoami,
    /// Projects: isolation boundaries for datasets, models and roles.
    #[command(subcommand)]
    Project(ProjectCmd),
    /// Datasets and their immutable versions.
    #[command(subcommand)]
    Dataset(DatasetCmd),
    /// Approval requests.
    #[command(subcommand)]
    Approval(ApprovalCmd),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Cedar policies (offline).
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Print the SHA-256 of a file, as dataset versions record it (offline).
    Digest {
        /// The file.
        file: PathBuf,
    },
    /// Encrypt a file (or stdin) into a custody encrypted object under a KEK of the local
    /// keyring (offline): a fresh data key per object, bound to the encryption context.
    Encrypt(EncryptArgs),
    /// Decrypt a custody encrypted object (or a byte range of it); the output appears only
    /// once everything read has authenticated (stdout streams: check the exit code).
    Decrypt(DecryptArgs),
    /// Key-encryption keys of the local keyring.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Sign a model (a directory or a single file) into an OpenSSF Model Signing bundle
    /// (offline; `model_signing verify key` accepts it).
    Sign(SignArgs),
    /// Verify a model against an OpenSSF Model Signing bundle (offline): the signature, then
    /// every file. Exit 0 verified, 9 not verified (names what differs), 1 cannot check.
    Verify(VerifyArgs),
    /// Signing keys for `sign` (offline).
    #[command(subcommand, name = "signing-key")]
    SigningKey(SigningKeyCmd),
    /// The model registry: models, trusted signers, signed versions, promotions.
    #[command(subcommand)]
    Model(ModelCmd),
    /// Deployments: record what is served, and check it against the registry's digest.
    #[command(subcommand)]
    Deploy(DeployCmd),
    /// Edge bundles: a model with its signature and the audit log's proof of its approval,
    /// verifiable offline with `custody verify --offline`.
    #[command(subcommand)]
    Bundle(BundleCmd),
    /// Scan model files, archives and directories (recursively) for code that would run when
    /// they are loaded (offline). Exit 0 clean, 1 findings at or above --fail-level, 2
    /// inconclusive (a file that could not be fully analysed), 3 usage or I/O error.
    Scan(ScanArgs),
    /// Lineage: send OpenLineage events, and ask the graph where data came from and what it
    /// reached.
    #[command(subcommand)]
    Lineage(LineageCmd),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file (see docs/configuration.md); CUSTODY_* variables override it.
    #[arg(long, env = "CUSTODY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "CUSTODY_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the data directory here instead of a temporary one.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ProjectCmd {
    /// Create a project.
    Create {
        /// Its name.
        name: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List projects.
    List,
    /// Show a project.
    Get {
        /// Its name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DatasetCmd {
    /// Register a dataset.
    Register(RegisterArgs),
    /// List and search a project's datasets.
    List {
        /// The project.
        project: String,
        /// Names containing this text.
        #[arg(long)]
        query: Option<String>,
        /// Only this classification.
        #[arg(long)]
        classification: Option<String>,
        /// Only this region.
        #[arg(long)]
        region: Option<String>,
        /// Only this owner.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Show a dataset.
    Get {
        /// Its id.
        id: String,
    },
    /// Add a version: hashes FILE (streaming, with progress) or takes --digest and --size.
    AddVersion {
        /// The dataset id.
        id: String,
        /// The version label (`v1`, `2024-06-01`).
        #[arg(long)]
        label: String,
        /// The file whose bytes this version is.
        #[arg(conflicts_with_all = ["digest", "size"], required_unless_present = "digest")]
        file: Option<PathBuf>,
        /// The SHA-256 (`sha256:…`), when the bytes are not here.
        #[arg(long, requires = "size")]
        digest: Option<String>,
        /// The size in bytes, with --digest.
        #[arg(long)]
        size: Option<u64>,
        /// Where the bytes are stored (URI).
        #[arg(long)]
        location: Option<String>,
    },
    /// List a dataset's versions.
    Versions {
        /// The dataset id.
        id: String,
    },
    /// Scan a dataset version's file (its SHA-256 must be the version's) for pickled code and
    /// secrets, and attach the result to the version.
    Scan {
        /// The dataset id.
        id: String,
        /// The version label.
        #[arg(long)]
        label: String,
        /// The file whose bytes the version is.
        file: PathBuf,
    },
    /// Raise the classification.
    Raise {
        /// The dataset id.
        id: String,
        /// The new level.
        #[arg(long)]
        to: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Ask for the classification to be lowered (needs an approval).
    Lower {
        /// The dataset id.
        id: String,
        /// The level asked for.
        #[arg(long)]
        to: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// The change ticket.
        #[arg(long)]
        ticket: Option<String>,
    },
    /// Grant a principal explicit access to a restricted dataset.
    Grant {
        /// The dataset id.
        id: String,
        /// The principal.
        principal: String,
    },
    /// Revoke an explicit grant.
    Revoke {
        /// The dataset id.
        id: String,
        /// The principal.
        principal: String,
    },
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The project.
    pub project: String,
    /// The dataset name.
    pub name: String,
    /// Licence (SPDX id or text).
    #[arg(long)]
    pub licence: String,
    /// Where it comes from (URI).
    #[arg(long)]
    pub source: String,
    /// public, internal, confidential or restricted.
    #[arg(long)]
    pub classification: String,
    /// Where it lives.
    #[arg(long)]
    pub region: String,
    /// How long it may be kept (`90d`, `6w`, `7y`).
    #[arg(long)]
    pub retention: String,
    /// The owner (default: you).
    #[arg(long)]
    pub owner: Option<String>,
    /// An intended use (repeatable).
    #[arg(long = "intended-use")]
    pub intended_use: Vec<String>,
    /// A prohibited use (repeatable).
    #[arg(long = "prohibited-use")]
    pub prohibited_use: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalCmd {
    /// List a project's approval requests.
    List {
        /// The project.
        project: String,
        /// pending, approved or rejected.
        #[arg(long)]
        status: Option<String>,
    },
    /// Approve a request.
    Approve {
        /// Its id.
        id: String,
        /// A comment.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a request.
    Reject {
        /// Its id.
        id: String,
        /// A comment.
        #[arg(long)]
        comment: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Issue a token; the secret is printed once.
    Create {
        /// A label.
        #[arg(long)]
        name: String,
        /// The principal it authenticates as.
        #[arg(long)]
        principal: String,
        /// user or workload.
        #[arg(long, default_value = "user")]
        kind: String,
        /// A project, or `*` for every project.
        #[arg(long)]
        project: String,
        /// viewer, data-scientist, ml-engineer, approver, auditor or admin.
        #[arg(long)]
        role: String,
        /// Limit it to these regions (repeatable).
        #[arg(long = "region")]
        regions: Vec<String>,
        /// Days until it expires.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List a project's tokens (`*`: global ones).
    List {
        /// The project, or `*`.
        #[arg(long)]
        project: String,
    },
    /// Revoke a token.
    Revoke {
        /// Its id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Read audit events.
    Log {
        /// Start at this sequence number.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Only this actor.
        #[arg(long)]
        actor: Option<String>,
        /// Only this action.
        #[arg(long)]
        action: Option<String>,
        /// Only this project.
        #[arg(long)]
        project: Option<String>,
        /// Only this resource (`dataset:<id>`).
        #[arg(long)]
        resource: Option<String>,
        /// Only resources of this kind (`dataset`, `model`, `deployment`, `token`, …).
        #[arg(long)]
        resource_kind: Option<String>,
        /// Only this region.
        #[arg(long)]
        region: Option<String>,
        /// Only this outcome: success, denied, rejected or error.
        #[arg(long)]
        outcome: Option<String>,
        /// Only at or after this time (RFC 3339, or YYYY-MM-DD for its start, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Only before this time (same forms).
        #[arg(long)]
        until: Option<String>,
        /// Fetch each record's inclusion proof and verify it here (exit 9 if one fails).
        #[arg(long)]
        with_proofs: bool,
    },
    /// Show the log's size and Merkle root.
    Root,
    /// Fetch an inclusion proof for a record and verify it here.
    Prove {
        /// The record's sequence number.
        seq: u64,
        /// The tree size to prove against (default: current).
        #[arg(long)]
        size: Option<u64>,
    },
    /// Fetch a consistency proof between two sizes and verify it here.
    Consistency {
        /// The older size.
        from: u64,
        /// The newer size (default: current).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Print the log's verifier key (publish it; `audit verify` needs it).
    Key {
        /// Read it from the server's key file instead of asking the server (offline).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Show the newest signed checkpoint.
    Checkpoint,
    /// Export records with their signed checkpoints into a directory, for offline
    /// verification or archiving; run again to resume. `-` streams JSON lines to stdout (SIEM).
    Export {
        /// The directory (created), or `-` for stdout.
        dir: PathBuf,
        /// First sequence number.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// One past the last sequence number (default: the log's size now).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Verify an exported log offline: every record, the tree, every signed checkpoint.
    /// Exit code 9 names the first bad record or checkpoint on stderr.
    Verify {
        /// The export directory.
        dir: PathBuf,
        /// The log's verifier key string (`custody audit key`).
        #[arg(long, conflicts_with = "key_file", required_unless_present = "key_file")]
        key: Option<String>,
        /// A file holding the verifier key string.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Once the records verify, write them as JSON lines (the server's export format) to
        /// this file, or `-` for stdout (the summary then goes to stderr).
        #[arg(long, value_name = "PATH")]
        jsonl: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Validate a directory of `*.cedar` policies against the schema.
    Check {
        /// The directory.
        dir: PathBuf,
    },
    /// Print the Cedar schema.
    Schema,
    /// Write the built-in policies into a directory, to start customising them.
    Export {
        /// The directory (created).
        dir: PathBuf,
    },
}

/// Where the local keyring is.
#[derive(Debug, Args)]
pub struct KeyringArg {
    /// The local keyring file (unlocked by CUSTODY_KEYRING_KEY or CUSTODY_KEYRING_PASSPHRASE).
    #[arg(long, env = "CUSTODY_KEYRING")]
    pub keyring: PathBuf,
}

/// A key provider that holds key-encryption keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    /// A local keyring file (the embedded default).
    Local,
    /// OpenBao or Vault transit (BAO_ADDR, BAO_TOKEN, BAO_NAMESPACE, BAO_CACERT; mount from
    /// CUSTODY_OPENBAO_MOUNT, default `transit`).
    Openbao,
    /// AWS KMS, configured as the AWS SDK is (AWS_REGION, the credentials chain,
    /// AWS_ENDPOINT_URL_KMS for another endpoint); KEKs are key ARNs, ids or aliases.
    AwsKms,
}

/// Which key provider, and how to reach it.
#[derive(Debug, Args)]
pub struct ProviderArgs {
    /// The key provider. Decryption and rewrapping use the provider an object names.
    #[arg(long, env = "CUSTODY_KEY_PROVIDER", value_enum, default_value = "local")]
    pub provider: ProviderKind,
    /// The local keyring file (unlocked by CUSTODY_KEYRING_KEY or CUSTODY_KEYRING_PASSPHRASE).
    #[arg(long, env = "CUSTODY_KEYRING")]
    pub keyring: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The file to encrypt, or `-` for stdin.
    pub input: PathBuf,
    /// Where to write the object [default: INPUT.custody]; `-` for stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub keys: ProviderArgs,
    /// The KEK to wrap the data key under (created if absent).
    #[arg(long, default_value = "default")]
    pub key: String,
    /// An encryption-context attribute, `name=value` (repeatable): project, dataset, version,
    /// classification, region...
    #[arg(long = "context", value_name = "NAME=VALUE")]
    pub context: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The object, or `-` for stdin.
    pub input: PathBuf,
    /// Where to write the plaintext [default: INPUT without `.custody`]; `-` for stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub keys: ProviderArgs,
    /// Only the plaintext bytes `START..END` (random access: only their chunks are opened).
    #[arg(long, value_name = "START..END")]
    pub range: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create a new local keyring (mode 0600).
    Init(KeyringArg),
    /// List the KEKs and their versions (no secret is printed).
    List(ProviderArgs),
    /// Add a version to a KEK: new data keys are wrapped under it; old versions still unwrap.
    Rotate {
        /// The KEK.
        key: String,
        #[command(flatten)]
        keys: ProviderArgs,
    },
    /// Rewrap the data keys of objects under their KEK's current version, rewriting only the
    /// headers (resumable: an object already current is skipped).
    Rewrap {
        /// The objects.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        keys: ProviderArgs,
    },
    /// Retire old versions: versions below MIN no longer unwrap.
    Retire {
        /// The KEK.
        key: String,
        /// The minimum decryption version.
        #[arg(long)]
        min_version: u32,
        #[command(flatten)]
        keys: ProviderArgs,
    },
    /// Destroy a KEK version (or all): every data key it wrapped becomes unrecoverable.
    Shred {
        /// The KEK.
        key: String,
        /// The version [default: every version].
        #[arg(long, value_name = "N")]
        key_version: Option<u32>,
        #[command(flatten)]
        keys: ProviderArgs,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The model: a directory, or a single file.
    pub model: PathBuf,
    /// The private key (PEM: PKCS#8 or SEC1; ECDSA P-256/P-384/P-521 or Ed25519).
    #[arg(long, value_name = "PEM", required_unless_present = "openbao_key", conflicts_with = "openbao_key")]
    pub private_key: Option<PathBuf>,
    /// Sign with this OpenBao/Vault transit key instead (`custody signing-key openbao`); the
    /// private key never leaves the server. Address and token from BAO_ADDR and BAO_TOKEN.
    #[arg(long, value_name = "NAME")]
    pub openbao_key: Option<String>,
    /// Where to write the bundle (left out of the manifest if it lies inside the model).
    #[arg(long, value_name = "FILE", default_value = "model.sig")]
    pub signature: PathBuf,
    #[command(flatten)]
    pub hashing: HashingArgs,
}

#[derive(Debug, Args)]
pub struct HashingArgs {
    /// The resource digest: sha256 (what every OMS verifier takes) or blake3 (faster).
    #[arg(long = "hash", value_enum, default_value_t = HashChoice::Sha256)]
    pub hash: HashChoice,
    /// Cut files into shards of this many bytes (`path:start:end` resources).
    #[arg(long, value_name = "BYTES")]
    pub shard_size: Option<u64>,
    /// A path (relative to the model) to leave out, with everything under it (repeatable).
    #[arg(long = "ignore-path", value_name = "PATH")]
    pub ignore_paths: Vec<String>,
    /// Include .git, .gitattributes, .github and .gitignore.
    #[arg(long)]
    pub no_ignore_git_paths: bool,
    /// Follow symbolic links (refused otherwise).
    #[arg(long)]
    pub allow_symlinks: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HashChoice {
    /// SHA-256.
    Sha256,
    /// BLAKE3.
    Blake3,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The model (a directory or a single file).
    #[arg(required_unless_present = "offline", conflicts_with = "offline")]
    pub model: Option<PathBuf>,
    /// The bundle.
    #[arg(long, value_name = "FILE", default_value = "model.sig")]
    pub signature: PathBuf,
    /// The signer's public key (PEM).
    #[arg(long, value_name = "PEM", required_unless_present = "offline", conflicts_with = "offline")]
    pub public_key: Option<PathBuf>,
    /// Verify an edge bundle (`custody bundle create`) with no network: the model against its
    /// signature, the signer and digest against the audit record of the approval, that record
    /// against the log's signed checkpoint.
    #[arg(long, value_name = "BUNDLE", requires = "log_key_source")]
    pub offline: Option<PathBuf>,
    #[command(flatten)]
    pub log_key: LogKeyArgs,
    /// With --offline: the stage the approval must have moved the version into.
    #[arg(long, value_enum, default_value_t = ApprovedStage::Production, requires = "offline")]
    pub stage: ApprovedStage,
}

/// The audit log's verifier key, obtained from a source other than the bundle it checks.
#[derive(Debug, Args)]
#[group(id = "log_key_source", multiple = false)]
pub struct LogKeyArgs {
    /// The log's verifier key string (`custody audit key`).
    #[arg(long, value_name = "VKEY")]
    pub log_key: Option<String>,
    /// A file holding the log's verifier key string.
    #[arg(long, value_name = "FILE")]
    pub log_key_file: Option<PathBuf>,
}

/// A stage an approval moves a version into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApprovedStage {
    /// Staging.
    Staging,
    /// Production.
    Production,
}

impl ApprovedStage {
    /// As the registry names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ModelCmd {
    /// Register a model in a project.
    Register {
        /// The project.
        project: String,
        /// The model's name.
        name: String,
        /// low, medium or high: how much evidence and how many approvals promotion needs.
        #[arg(long)]
        risk_tier: String,
        /// The owner [default: you].
        #[arg(long)]
        owner: Option<String>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Show a model and its versions.
    Get {
        /// The model id.
        id: String,
    },
    /// Trust a public key to sign the project's models (project administrators).
    TrustSigner {
        /// The project.
        project: String,
        /// A name for the key (a team, a pipeline).
        #[arg(long)]
        name: String,
        /// The PEM public key.
        #[arg(long, value_name = "PEM")]
        public_key: PathBuf,
    },
    /// The project's trusted signers.
    Signers {
        /// The project.
        project: String,
    },
    /// Scan a model version's files and attach the result to the version: DIR must hash to the
    /// version's signed digest (checked here under the project's trusted key), and every signed
    /// file is scanned. Promotion to staging or production needs the latest scan to be clean.
    Scan {
        /// The model id.
        id: String,
        /// The version label.
        #[arg(long)]
        label: String,
        /// The model's directory (or single file), as signed.
        dir: PathBuf,
        /// An offline OSV database for the model's dependency lockfiles (see `custody scan`).
        #[arg(long, value_name = "DIR", env = "CUSTODY_OSV_DIR")]
        osv: Option<PathBuf>,
    },
    /// Register a signed version (`custody sign` made the signature).
    AddVersion {
        /// The model id.
        id: String,
        /// The version label.
        #[arg(long)]
        label: String,
        /// The OMS signature bundle of the model's files.
        #[arg(long, value_name = "FILE")]
        signature: PathBuf,
        /// A signed SLSA provenance bundle of the training run.
        #[arg(long, value_name = "FILE")]
        provenance: Option<PathBuf>,
        /// A named component: `KIND/NAME=sha256:HEX`, KIND one of base_model, adapter,
        /// tokenizer, prompt_template, evaluation_baseline (repeatable).
        #[arg(long = "component", value_name = "KIND/NAME=DIGEST")]
        components: Vec<String>,
    },
    /// Show a version.
    Version {
        /// The model id.
        id: String,
        /// The version label.
        label: String,
    },
    /// A version's immutable stage history.
    History {
        /// The model id.
        id: String,
        /// The version label.
        label: String,
    },
    /// Ask for a version to move to another stage.
    Promote {
        /// The model id.
        id: String,
        /// The version label.
        label: String,
        /// staging, production or archived.
        #[arg(long)]
        to: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// The change ticket (high-risk models need one).
        #[arg(long)]
        ticket: Option<String>,
    },
    /// Approve a promotion (someone other than who asked).
    Approve {
        /// The promotion id.
        promotion: String,
        /// Why.
        #[arg(long)]
        comment: String,
    },
    /// Show a promotion and its approvals.
    Promotion {
        /// The promotion id.
        id: String,
    },
}

/// What is served: a local directory or file, or a URL the model's files are under.
#[derive(Debug, Args)]
#[group(id = "served", required = true, multiple = false)]
pub struct ServedArgs {
    /// The served model on this machine (a directory or a single file).
    #[arg(long, value_name = "PATH")]
    pub dir: Option<PathBuf>,
    /// The base URL the served files are under (`<URL>/<path>` for each signed file; the URL
    /// of the file itself for a single-file model).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DeployCmd {
    /// Hash what is served, then record the deployment (refused unless it is the approved digest).
    Record {
        /// The model id.
        id: String,
        /// The version label.
        label: String,
        #[command(flatten)]
        served: ServedArgs,
        /// The environment (`prod-eu`).
        #[arg(long)]
        environment: String,
        /// The serving endpoint.
        #[arg(long)]
        endpoint: String,
        /// The region it runs in.
        #[arg(long)]
        region: String,
        /// The serving container image digest (`sha256:…`).
        #[arg(long)]
        image_digest: Option<String>,
        /// A runtime library, `NAME=VERSION` (repeatable).
        #[arg(long = "runtime-library", value_name = "NAME=VERSION")]
        runtime_libraries: Vec<String>,
        /// The accelerator (`nvidia-l4`).
        #[arg(long)]
        accelerator: Option<String>,
        /// The hash of the policy set the runtime enforces.
        #[arg(long)]
        policy_set_hash: Option<String>,
    },
    /// Recompute the digest of what is served and compare it with the registry's. Exit 0 when
    /// it is the signed, registered digest; 9 when it is not (names what differs).
    Verify {
        /// The model id.
        id: String,
        /// The version label.
        label: String,
        #[command(flatten)]
        served: ServedArgs,
    },
    /// A model's deployments, newest first.
    List {
        /// The model id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BundleCmd {
    /// Write an edge bundle: the model's files, its signature, the signer's key, and the audit
    /// record of its approval with its inclusion proof and the log's signed checkpoint.
    Create {
        /// The model id.
        id: String,
        /// The version label.
        label: String,
        /// The model's files (checked against the signature before anything is written).
        #[arg(long, value_name = "PATH")]
        model_dir: PathBuf,
        /// The bundle directory to create (must not exist).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The approval to prove: the promotion into this stage.
        #[arg(long, value_enum, default_value_t = ApprovedStage::Production)]
        stage: ApprovedStage,
    },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyCmd {
    /// Generate a key pair: the private key (PKCS#8 PEM, mode 0600) and `<OUT>.pub`.
    Generate {
        /// Where to write the private key.
        #[arg(long, value_name = "PEM")]
        out: PathBuf,
        /// p256, p384, p521 (ECDSA) or ed25519 (Custody's own bundles only).
        #[arg(long, default_value = "p256")]
        algorithm: String,
    },
    /// Create a signing key in OpenBao/Vault transit (or use the one of that name, if it has
    /// the algorithm asked) and write its public key; sign with `custody sign --openbao-key`.
    /// Address and token from BAO_ADDR and BAO_TOKEN.
    Openbao {
        /// The transit key's name.
        name: String,
        /// Where to write the public key (PEM).
        #[arg(long, value_name = "PEM")]
        out: PathBuf,
        /// p256, p384, p521 (ECDSA) or ed25519.
        #[arg(long, default_value = "p256")]
        algorithm: String,
    },
}

/// `custody lineage …`.
#[derive(Debug, Subcommand)]
pub enum LineageCmd {
    /// Send OpenLineage events into a project: a file holding one event, a JSON array of
    /// events, or JSON lines (`-`: standard input). Events already received are acknowledged
    /// and change nothing.
    Send {
        /// The project.
        project: String,
        /// The events.
        file: PathBuf,
    },
    /// Everything downstream of a node, to --depth.
    Downstream(LineageNode),
    /// Everything upstream of a node, to --depth.
    Upstream(LineageNode),
    /// Every derived dataset, cache, model version and live deployment a dataset version reached.
    Impact(LineageNode),
    /// What trained a model version: source datasets with digests, runs, code, images.
    Training(LineageNode),
    /// What an erasure request on a dataset version must reach, with an action for each item.
    Erasure(LineageNode),
    /// A dataset version's effective classification and why it holds.
    Classification(LineageNode),
    /// The share of model versions whose training inputs are fully traced to registered,
    /// digested dataset versions.
    Completeness {
        /// The project.
        project: String,
        /// As the graph was at this time (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Record runs from a system that does not speak OpenLineage: a file (or `-`) holding one
    /// run, a JSON array or JSON lines of `{run_id, job: {namespace, name}, event_time, inputs,
    /// outputs, code_commit, code_url, image_digest, parameters, state}` (docs/cli.md). The
    /// event time is required, so that a retry is the same event.
    RecordRun {
        /// The project.
        project: String,
        /// The runs.
        file: PathBuf,
    },
    /// Declare, approve, withdraw or list jobs that anonymise or aggregate (an approved one
    /// stops classification inheritance through it).
    #[command(subcommand)]
    Transform(TransformCmd),
    /// Carry out an erasure: a file (or `-`) holding `{sources, record_key, reason, actions}`,
    /// one action per source and per item of the erasure report. Deletes the data Custody
    /// holds for every version answered `deleted`, and prints the receipt.
    Erase {
        /// The project.
        project: String,
        /// The erasure request.
        file: PathBuf,
        /// The request's change ticket (the default policy requires one).
        #[arg(long)]
        ticket: String,
    },
    /// A project's erasure receipts.
    Erasures {
        /// The project.
        project: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TransformCmd {
    /// Declare that a job anonymises or aggregates (in force once someone else approves it).
    Declare {
        /// The project.
        project: String,
        /// The job (`namespace/name`).
        #[arg(long)]
        job: String,
        /// `anonymizing` or `aggregating`.
        #[arg(long)]
        kind: String,
        /// Why its outputs no longer hold its inputs' sensitive data.
        #[arg(long)]
        justification: String,
    },
    /// Approve a job's declaration (not your own).
    Approve {
        /// The project.
        project: String,
        /// The job (`namespace/name`).
        #[arg(long)]
        job: String,
    },
    /// Withdraw a job's declaration.
    Withdraw {
        /// The project.
        project: String,
        /// The job (`namespace/name`).
        #[arg(long)]
        job: String,
    },
    /// List the declarations.
    List {
        /// The project.
        project: String,
    },
}

/// A node of a project's lineage graph: a dataset version (`--namespace` and `--name`, with
/// `--dataset-version`, `--digest` or `--run`), a job (`--job ns/name`) or a run (`--run` alone).
#[derive(Debug, Args)]
pub struct LineageNode {
    /// The project.
    pub project: String,
    /// The dataset's namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// The dataset's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The version its `version` facet declared.
    #[arg(long, value_name = "VERSION")]
    pub dataset_version: Option<String>,
    /// The version by content digest (`sha256:…`).
    #[arg(long)]
    pub digest: Option<String>,
    /// The version written by this run (with --namespace/--name), or the run itself.
    #[arg(long)]
    pub run: Option<String>,
    /// A job, `namespace/name`.
    #[arg(long)]
    pub job: Option<String>,
    /// Follow at most this many edges.
    #[arg(long)]
    pub depth: Option<u32>,
    /// As the graph was at this time (RFC 3339).
    #[arg(long)]
    pub as_of: Option<String>,
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files or directories (directories are walked recursively; symbolic links are not followed).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The lowest severity that fails the scan (exit 1). Anything neither known safe nor known
    /// dangerous is medium ("suspicious"), so the default fails closed.
    #[arg(long, value_enum, default_value_t = FailLevel::Medium)]
    pub fail_level: FailLevel,
    /// Show every finding, not only those at or above the fail level.
    #[arg(long)]
    pub all: bool,
    /// An offline OSV database (the per-ecosystem `all.zip` files osv.dev exports, as
    /// `DIR/<ecosystem>/all.zip`): dependency lockfiles found are checked against it.
    #[arg(long, value_name = "DIR", env = "CUSTODY_OSV_DIR")]
    pub osv: Option<PathBuf>,
    /// Also write the findings as SARIF 2.1.0 to FILE (`-`: standard output, instead of the
    /// summary).
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<PathBuf>,
}

/// A severity threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailLevel {
    /// Critical findings only.
    Critical,
    /// High and above.
    High,
    /// Medium and above: suspicious imports fail (the default).
    Medium,
    /// Low and above.
    Low,
}

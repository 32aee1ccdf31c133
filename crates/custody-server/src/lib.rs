//! The Custody control-plane server.
//!
//! [`start`] opens the store, loads and validates the Cedar policies, issues the first
//! administrator token on an empty database, and serves the JSON API (HTTP or HTTPS) until
//! [`RunningServer::shutdown`]. Every route but `/healthz` and `/readyz` requires a bearer
//! credential ([`auth`]); every request to the API is authorized by the policies and recorded
//! in the audit log in the same transaction as the change it makes (see the store's write
//! path). The routes are one table, [`route_table`], with an OpenAPI document, [`ApiDoc`].

pub mod auth;
pub mod config;
mod error;
pub mod keys;
mod lineage;
mod lineage_registry;
pub mod log_key;
mod routes;
mod state;

pub use config::Config;
pub use error::ApiError;
pub use routes::{ApiDoc, RouteInfo, route_table};

use auth::{Authenticator, OidcVerifier, issue_token};
use custody_core::{
    Action, AuditDraft, Decision, Grant, Outcome, PrincipalKind, ProjectScope, RequestId, ResourceRef, Role,
};
use custody_policy::PolicyEngine;
use custody_store::{NewToken, Store, StoreOptions};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::OnceLock;
use tokio::sync::oneshot;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The data directory could not be created or secured.
    #[error("data directory `{path}`: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The policies are invalid.
    #[error("policies: {0}")]
    Policy(#[from] custody_policy::PolicyError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] custody_store::StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    /// The key provider or blob store is unusable.
    #[error(transparent)]
    Keys(#[from] keys::KeysError),
    /// The OIDC client could not be built.
    #[error("OIDC: {0}")]
    Oidc(String),
    /// The audit log's key is unusable.
    #[error(transparent)]
    LogKey(#[from] log_key::LogKeyError),
    /// The first administrator token could not be generated.
    #[error("generating the administrator token failed")]
    Random,
}

/// A server that is accepting connections.
pub struct RunningServer {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// On a new database: the platform administrator's token, to be shown once.
    pub bootstrap_token: Option<String>,
    /// The store, shared with the server.
    pub store: Store,
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// The base URL (`http://127.0.0.1:7070`).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops accepting connections, finishes requests in flight, and commits queued writes.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.done.await;
        self.store.close().await;
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(&mut self) {
        let _ = (&mut self.done).await;
    }
}

/// How much lower than the thread that builds it [`runtime`] runs its worker threads (in
/// nice levels; +5 gives a thread at the default a three times larger share of a busy CPU).
pub const WORKER_NICENESS: i32 = 5;

/// The runtime `custody` runs the server on: Tokio's multi-threaded runtime whose threads run
/// at a lower scheduling priority ([`WORKER_NICENESS`]) than the thread that builds it.
///
/// Every write waits for the store's writer, one thread (with its SQLite connection's thread)
/// that commits batch after batch; on a busy machine the workers parsing requests kept it
/// waiting for a core, and every write with it (lineage ingest: 5-27% more events/s on two
/// cores with this, BENCHMARKS.md "Lineage"). A thread inherits its creator's priority, so
/// [`start`] must run on the thread that built the runtime (in `block_on`, as `custody serve`
/// does) for the writer to keep the default; its threads do not share the workers' CPUs any
/// less when the machine is idle, as priorities only weigh shares of a busy one. A failure to
/// lower a worker's priority (a platform without it) leaves it where it was.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let base = rustix::process::getpriority_process(None).unwrap_or(0);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(move || {
            if let Err(e) = rustix::process::setpriority_process(None, base + WORKER_NICENESS) {
                tracing::debug!(error = %e, "cannot lower a runtime thread's priority");
            }
        })
        .build()
}

/// Starts the server described by `config`.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    // The data directory holds the SQLite database and, by default, the audit log's key.
    if config.database_url.is_none() || config.audit_key_file.is_none() {
        create_private_dir(&config.data_dir)?;
    }
    let policy = match &config.policy_dir {
        Some(dir) => PolicyEngine::from_dir(dir)?,
        None => PolicyEngine::builtin()?,
    };
    let origin = config.audit_origin.clone().unwrap_or_else(log_key::default_origin);
    let signer = std::sync::Arc::new(log_key::load_or_create(&config.audit_key_path(), &origin)?);
    let log_key = signer.verifier();
    // What this server last signed lives beside its key, out of the database's reach.
    let last_signed = config.audit_key_path().with_extension("head");
    let checkpoints = custody_store::CheckpointSigning {
        signer: std::sync::Arc::new(custody_store::LogSigner::new(signer, Some(last_signed))),
        interval: std::time::Duration::from_millis(config.checkpoint_interval_ms),
    };
    let store =
        Store::open(&config.database_url(), StoreOptions { checkpoints: Some(checkpoints), ..StoreOptions::default() })
            .await?;
    let bootstrap_token = bootstrap_admin(&store, &policy).await?;
    let oidc = config.oidc.clone().map(OidcVerifier::new).transpose().map_err(|e| StartError::Oidc(e.to_string()))?;
    let provider = keys::open_provider(&config.keys, &config.data_dir).await?;
    let blobs = keys::open_blobs(&config.blobs, &config.data_dir, provider)?;
    let lineage = lineage::LineageIndex::load(&store).await?;
    let state = state::AppState::new(state::Inner {
        store: store.clone(),
        policy: policy.clone(),
        auth: Authenticator::new(store.clone(), oidc),
        metrics: metrics_handle(),
        max_body_bytes: config.max_body_bytes,
        log_key,
        data: state::DataStore {
            blobs,
            keys: config.keys.clone(),
            max_bytes: config.blobs.max_bytes,
            rewrap: Default::default(),
        },
        registry: config.registry.clone(),
        lineage,
    });
    let app = routes::router(state);
    let listener =
        std::net::TcpListener::bind(config.bind).map_err(|source| StartError::Bind { addr: config.bind, source })?;
    listener.set_nonblocking(true).map_err(|source| StartError::Bind { addr: config.bind, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.bind, source })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let (scheme, done) = match &config.tls {
        Some(tls) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .map_err(StartError::Tls)?;
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tokio::spawn(async move {
                let _ = stopped.await;
                h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
            });
            let server = axum_server::from_tcp_rustls(listener, rustls).map_err(StartError::Tls)?.handle(handle);
            (
                "https",
                tokio::spawn(async move {
                    if let Err(e) = server.serve(app.into_make_service()).await {
                        tracing::error!(error = %e, "server failed");
                    }
                }),
            )
        }
        None => {
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(|source| StartError::Bind { addr, source })?;
            (
                "http",
                tokio::spawn(async move {
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    });
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "server failed");
                    }
                }),
            )
        }
    };
    tracing::info!(%addr, scheme, backend = store.backend().as_str(), policy_hash = policy.policy_hash(), "custody listening");
    Ok(RunningServer { addr, scheme, bootstrap_token, store, stop, done })
}

/// On a database without tokens, issues a platform administrator token (principal `admin`).
async fn bootstrap_admin(store: &Store, policy: &PolicyEngine) -> Result<Option<String>, StartError> {
    if store.has_tokens().await? {
        return Ok(None);
    }
    let issued = issue_token().map_err(|_| StartError::Random)?;
    let draft = AuditDraft {
        actor: "system".into(),
        action: Action::TokenCreate,
        resource: ResourceRef::new("token", issued.id),
        project: None,
        region: None,
        decision: Decision::Allow,
        policy_hash: policy.policy_hash().to_owned(),
        request_id: RequestId::new(),
        outcome: Outcome::Success,
        details: serde_json::json!({ "bootstrap": true }),
    };
    let new = NewToken {
        id: issued.id,
        name: "bootstrap administrator".into(),
        principal: "admin".into(),
        kind: PrincipalKind::User,
        grant: Grant { scope: ProjectScope::All, role: Role::Admin },
        secret_hash: issued.secret_hash.clone(),
        allowed_regions: None,
        expires_at: None,
        created_by: "system".into(),
    };
    store.create_token(draft, new).await?;
    Ok(Some(issued.token))
}

fn create_private_dir(path: &std::path::Path) -> Result<(), StartError> {
    let err = |source| StartError::DataDir { path: path.display().to_string(), source };
    std::fs::create_dir_all(path).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// The process's Prometheus recorder, installed on first use.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (an embedding program's); then our
            // page stays empty rather than failing the start.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    /// The runtime's threads run below the thread that built it; that thread keeps its own.
    #[test]
    fn runtime_workers_run_below_the_thread_that_builds_it() {
        let before = rustix::process::getpriority_process(None).unwrap();
        let rt = super::runtime().unwrap();
        let worker = rt.block_on(async {
            tokio::spawn(async { rustix::process::getpriority_process(None).unwrap() }).await.unwrap()
        });
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
        // Nice levels end at 19.
        assert_eq!(worker, (before + super::WORKER_NICENESS).min(19));
    }
}

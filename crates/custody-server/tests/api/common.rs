use custody_server::{Config, RunningServer};
use custody_store::testing::{self, TestDb};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub url: String,
    pub admin: String,
    pub http: reqwest::Client,
    config: Config,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub request_id: Option<String>,
}

impl TestServer {
    pub async fn start(db: TestDb) -> Self {
        Self::start_with(db, |_| {}).await
    }

    pub async fn start_with(db: TestDb, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().join("data"),
            database_url: Some(db.url.clone()),
            bind: "127.0.0.1:0".parse().unwrap(),
            max_body_bytes: 16 * 1024,
            ..Config::default()
        };
        tweak(&mut config);
        let server = custody_server::start(config.clone()).await.unwrap();
        let admin = server.bootstrap_token.clone().expect("bootstrap token on a new database");
        Self {
            url: server.url(),
            server: Some(server),
            admin,
            http: reqwest::Client::new(),
            config,
            _db: db,
            _dir: dir,
        }
    }

    /// Stops the server and starts a new one on the same database and data directory.
    pub async fn restart(mut self) -> Self {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        let server = custody_server::start(self.config.clone()).await.unwrap();
        self.url = server.url();
        self.server = Some(server);
        self
    }

    /// The configuration of another server on the same database and data directory.
    pub fn replica_config(&self) -> Config {
        self.config.clone()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    pub async fn call(&self, token: Option<&str>, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self.http.request(method, format!("{}{}", self.url, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let request_id = resp.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body, request_id }
    }

    pub async fn get(&self, token: &str, path: &str) -> Answer {
        self.call(Some(token), Method::GET, path, None).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Answer {
        self.call(Some(token), Method::POST, path, Some(body)).await
    }

    /// Issues a token with the admin token and returns its secret.
    pub async fn token(&self, principal: &str, project: &str, role: &str) -> String {
        self.token_with(principal, project, role, json!({})).await
    }

    pub async fn token_with(&self, principal: &str, project: &str, role: &str, extra: Value) -> String {
        let mut body =
            json!({ "name": principal, "principal": principal, "kind": "user", "project": project, "role": role });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let a = self.post(&self.admin, "/api/v1/tokens", body).await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        a.body["secret"].as_str().unwrap().to_owned()
    }

    pub async fn project(&self, name: &str) {
        let a = self.post(&self.admin, "/api/v1/projects", json!({ "name": name })).await;
        assert_eq!(a.status, 201, "{:?}", a.body);
    }

    pub async fn dataset(&self, token: &str, project: &str, name: &str, classification: &str) -> Value {
        let a =
            self.post(token, &format!("/api/v1/projects/{project}/datasets"), dataset_body(name, classification)).await;
        assert_eq!(a.status, 201, "{:?}", a.body);
        a.body
    }

    /// The audit events, read with the admin token (the read itself is recorded too).
    pub async fn audit(&self) -> Vec<Value> {
        let a = self.get(&self.admin, "/api/v1/audit?limit=1000").await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        a.body.as_array().unwrap().clone()
    }
}

pub fn dataset_body(name: &str, classification: &str) -> Value {
    json!({
        "name": name, "licence": "CC-BY-4.0", "source_uri": "s3://bucket/x", "classification": classification,
        "region": "eu-west-1", "retention": "365d",
    })
}

/// Runs `f` once per backend with a fresh server.
pub async fn each_backend<F, Fut>(f: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = TestServer>,
{
    for db in testing::all().await {
        let backend = db.backend;
        eprintln!("backend: {backend:?}");
        let server = TestServer::start(db).await;
        f(server).await.stop().await;
    }
}

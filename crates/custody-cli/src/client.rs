//! A small typed client for the Custody API.

use anyhow::Context;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// An error answered by the server, or the failure to reach it.
#[derive(Debug)]
pub enum ClientError {
    /// The server answered with an error.
    Api {
        /// HTTP status.
        status: StatusCode,
        /// Field at fault.
        field: Option<String>,
        /// Message.
        message: String,
        /// Request id.
        request_id: Option<String>,
    },
    /// The server could not be reached or answered something unreadable.
    Transport(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api { status, message, field, request_id, .. } => {
                write!(f, "{} {}", status.as_u16(), message)?;
                if let Some(field) = field {
                    write!(f, " (field `{field}`)")?;
                }
                if let Some(id) = request_id.as_ref().filter(|_| status.is_server_error()) {
                    write!(f, " [request {id}]")?;
                }
                Ok(())
            }
            Self::Transport(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ClientError {}

impl ClientError {
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::Transport(_) => None,
        }
    }
}

/// A connection to one server with one credential.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for `base` (`http://127.0.0.1:7070`), trusting `ca_pem` in addition to the
    /// system roots when given.
    pub fn new(base: &str, token: Option<String>, ca_pem: Option<&[u8]>) -> anyhow::Result<Self> {
        let mut builder =
            reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(10)).pool_max_idle_per_host(64);
        if let Some(pem) = ca_pem {
            let cert = reqwest::Certificate::from_pem(pem).context("reading the CA certificate")?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(Self { base: base.trim_end_matches('/').to_owned(), token, http: builder.build()? })
    }

    /// The same server with another credential.
    pub fn with_token(&self, token: &str) -> Self {
        Self { token: Some(token.to_owned()), ..self.clone() }
    }

    /// GET a JSON resource.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    /// GET a streamed answer (an export): the response, for its body to be read in chunks.
    /// No overall time limit, since a large log streams for a long time.
    pub async fn get_raw(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        self.send::<()>(Method::GET, path, None, None).await
    }

    /// POST a JSON body.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        self.call(Method::POST, path, Some(body)).await
    }

    /// DELETE a resource.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call::<(), T>(Method::DELETE, path, None).await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let resp = self.send(method, path, body, Some(std::time::Duration::from_secs(60))).await?;
        let bytes = resp.bytes().await.map_err(|e| ClientError::Transport(e.to_string()))?;
        // 204 answers carry no body; `()` and `Option` targets read it as null.
        let bytes = if bytes.is_empty() { &b"null"[..] } else { &bytes[..] };
        serde_json::from_slice(bytes)
            .map_err(|e| ClientError::Transport(format!("unreadable answer from the server: {e}")))
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Option<std::time::Duration>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self.request(method, path);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.answer(req).await
    }

    /// PUT raw bytes (a dataset version's data) with extra headers (`custody-run`).
    pub async fn put_bytes<T: DeserializeOwned>(
        &self,
        path: &str,
        bytes: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        let mut req = self.request(Method::PUT, path).body(bytes);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = self.answer(req).await?;
        resp.json().await.map_err(|e| ClientError::Transport(format!("unreadable answer from the server: {e}")))
    }

    /// A request with extra headers (`range`, `custody-run`, `custody-ticket`) and an optional
    /// JSON body, answered raw.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = self.request(method, path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        self.answer(req).await
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, format!("{}{}", self.base, path));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn answer(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("cannot reach {}: {}", self.base, root_cause(&e))))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let request_id = resp.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let err = &body["error"];
        Err(ClientError::Api {
            status,
            field: err["field"].as_str().map(str::to_owned),
            message: err["message"].as_str().unwrap_or_else(|| status.canonical_reason().unwrap_or("error")).to_owned(),
            request_id: err["request_id"].as_str().map(str::to_owned).or(request_id),
        })
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

//! The API's error responses: `{"error": {"code", "message", "field"?, "request_id"?}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custody_core::{CoreError, RequestId};
use custody_store::StoreError;
use serde::Serialize;

/// An error answered to an API caller. Its message never contains secrets.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`invalid`, `not_found`, `conflict`, …).
    pub code: &'static str,
    /// The input field at fault, when there is one.
    pub field: Option<String>,
    /// What is wrong, for people.
    pub message: String,
    /// The request, so a 5xx can be matched with the server's log.
    pub request_id: Option<RequestId>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable machine-readable code.
    code: &'static str,
    /// What is wrong.
    message: String,
    /// The input field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// The request id (also in the `x-request-id` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, field: None, message: message.into(), request_id: None }
    }

    /// 400: the input is malformed or invalid; `field` names the culprit.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), ..Self::new(StatusCode::BAD_REQUEST, "invalid", message) }
    }

    /// 401: no valid credentials.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403: the policies deny it.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404.
    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), ..Self::new(StatusCode::NOT_FOUND, "not_found", message) }
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the body is larger than {limit} bytes"))
    }

    /// 415.
    pub fn unsupported_media_type() -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "the body must be application/json")
    }

    /// 409: the request conflicts with the state it would change.
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), ..Self::new(StatusCode::CONFLICT, "conflict", message) }
    }

    /// 410: the thing existed and is gone for good (crypto-shredded data).
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "gone", message)
    }

    /// 422: the content is not what it was declared to be.
    pub fn mismatch(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "mismatch", message) }
    }

    /// 500: something on our side; details are in the log under the request id.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log for this request id",
        )
    }

    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The same error, tagged with the request it answers.
    pub fn with_request(mut self, id: RequestId) -> Self {
        self.request_id = Some(id);
        self
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        Self::invalid(e.field, e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, key } => Self::not_found(what, format!("{what} `{key}` not found")),
            StoreError::Conflict { field, reason } => Self {
                field: Some(field.to_owned()),
                ..Self::new(StatusCode::CONFLICT, "conflict", format!("conflict on `{field}`: {reason}"))
            },
            StoreError::Invalid(core) => core.into(),
            StoreError::OutOfRange { field, reason } => Self::invalid(field, reason),
            StoreError::WriterStopped => Self::unavailable("the server is shutting down"),
            other => {
                tracing::error!(error = %other, "store error");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
                request_id: self.request_id.map(|r| r.to_string()),
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

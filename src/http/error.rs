//! `ApiError`: the one place REST failures become HTTP statuses (spec §9.10).
//! Bodies are short plain text, as hosted Pusher sends them; the SDKs show them as they are.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};

use crate::{adapter::AdapterError, auth::RestAuthError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or invalid parameters, names, limits other than size.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(#[from] RestAuthError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// Event data over the app's limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("Cluster state unavailable: {0}")]
    Unavailable(#[from] AdapterError),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest(message.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::warn!(error = %self, "REST request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "REST request refused");
        }
        HttpResponse::build(status)
            .content_type("text/plain; charset=utf-8")
            .body(format!("{self}\n"))
    }
}

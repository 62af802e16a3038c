//! `ApiError`: the one place REST failures become HTTP statuses (spec §9.10).
//! Bodies are short plain text, as hosted Pusher sends them; the SDKs show them as they are.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};

use crate::{
    adapter::AdapterError,
    auth::RestAuthError,
    salesforce::{self, FaultCode},
};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or invalid parameters, names, limits other than size.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(#[from] RestAuthError),
    /// A wrong or missing secret other than a REST signature (e.g. the Outbound Messaging token).
    #[error("{0}")]
    InvalidCredentials(String),
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
            ApiError::Unauthorized(_) | ApiError::InvalidCredentials(_) => StatusCode::UNAUTHORIZED,
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

/// An `ApiError` answered as a SOAP fault, for Salesforce Outbound Messaging. The status is the same
/// one `ApiError` picks; the fault code says whether the sender (`Client`) or Herald (`Server`) failed.
/// Salesforce retries every fault, so a fixed configuration still receives the retried messages.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SoapFault(#[from] pub ApiError);

impl ResponseError for SoapFault {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let code = if status.is_server_error() {
            tracing::warn!(error = %self.0, "Outbound Message not accepted");
            FaultCode::Server
        } else {
            tracing::info!(status = status.as_u16(), error = %self.0, "Outbound Message refused");
            FaultCode::Client
        };
        HttpResponse::build(status)
            .content_type("text/xml; charset=utf-8")
            .body(salesforce::fault(code, &self.0.to_string()))
    }
}

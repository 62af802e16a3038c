//! The webhook operator API, signed with the app secret like the rest of the HTTP API:
//! list pending and dead-lettered deliveries, retry one or all, drop one.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use tokio::sync::Notify;

use super::{ApiContext, error::ApiError, signature};
use crate::webhooks::store::{DeliveryState, DeliveryStore, StoreError};

/// The outbox and the sender's wake-up, present when some app has webhook targets.
#[derive(Clone)]
pub struct Outbox {
    pub store: Arc<dyn DeliveryStore>,
    pub wake: Arc<Notify>,
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        ApiError::Unavailable(crate::adapter::AdapterError::Unavailable(error.to_string()))
    }
}

fn outbox(context: &ApiContext) -> Result<&Outbox, ApiError> {
    context
        .outbox
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("No app has webhooks configured".into()))
}

/// `GET /apps/{app_id}/webhooks?state=pending|dead&limit=N`.
pub async fn list(
    request: HttpRequest,
    app_id: web::Path<String>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let signed = signature::verify(&context, &request, &app_id, &body)?;
    let outbox = outbox(&context)?;
    let state = match signed.query.get("state").map(String::as_str) {
        None | Some("pending") => DeliveryState::Pending,
        Some("dead") => DeliveryState::Dead,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Unknown state {other:?}; use pending or dead"
            )));
        }
    };
    let limit = match signed.query.get("limit") {
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request("limit must be a number"))?
            .min(1000),
        None => 100,
    };
    let deliveries = outbox
        .store
        .list(signed.app.id.as_str(), state, limit)
        .await?;
    Ok(HttpResponse::Ok().json(json!({ "deliveries": deliveries })))
}

/// `POST /apps/{app_id}/webhooks/retry`: every dead letter back to pending.
pub async fn retry_all(
    request: HttpRequest,
    app_id: web::Path<String>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let signed = signature::verify(&context, &request, &app_id, &body)?;
    retry(&context, signed.app.id.as_str(), None).await
}

/// `POST /apps/{app_id}/webhooks/{id}/retry`.
pub async fn retry_one(
    request: HttpRequest,
    path: web::Path<(String, u64)>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let (app_id, id) = path.into_inner();
    let signed = signature::verify(&context, &request, &app_id, &body)?;
    retry(&context, signed.app.id.as_str(), Some(id)).await
}

async fn retry(
    context: &ApiContext,
    app_id: &str,
    id: Option<u64>,
) -> Result<HttpResponse, ApiError> {
    let outbox = outbox(context)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let retried = outbox.store.retry(app_id, id, now_ms).await?;
    if id.is_some() && retried == 0 {
        return Err(ApiError::NotFound("No such dead-lettered delivery".into()));
    }
    outbox.wake.notify_one();
    Ok(HttpResponse::Ok().json(json!({ "retried": retried })))
}

/// `POST /apps/{app_id}/webhooks/{id}/drop`: deletes a pending or dead delivery.
pub async fn drop_one(
    request: HttpRequest,
    path: web::Path<(String, u64)>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let (app_id, id) = path.into_inner();
    let signed = signature::verify(&context, &request, &app_id, &body)?;
    let outbox = outbox(&context)?;
    if !outbox
        .store
        .drop_delivery(signed.app.id.as_str(), id)
        .await?
    {
        return Err(ApiError::NotFound("No such delivery".into()));
    }
    outbox.wake.notify_one();
    Ok(HttpResponse::Ok().json(json!({ "dropped": id })))
}

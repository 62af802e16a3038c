//! `POST /apps/{id}/users/{user_id}/terminate_connections` (spec §9.8, §5.6).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{ApiContext, error::ApiError, signature};
use crate::protocol::UserId;

pub async fn terminate(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let (app_id, user_id) = path.into_inner();
    let signed = signature::verify(&context, &request, &app_id, &body)?;
    terminate_user(&context, &signed, &user_id).await
}

/// The same call on the path the Python SDK uses, without `/apps/{id}`; the app comes from `auth_key`.
pub async fn terminate_without_app(
    request: HttpRequest,
    user_id: web::Path<String>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let signed = signature::verify_by_key(&context, &request, &body)?;
    terminate_user(&context, &signed, &user_id).await
}

async fn terminate_user(
    context: &ApiContext,
    signed: &signature::Signed,
    user_id: &str,
) -> Result<HttpResponse, ApiError> {
    if user_id.is_empty() {
        return Err(ApiError::bad_request("Missing user id"));
    }
    context
        .adapter
        .terminate_user(&signed.app.id, &UserId::new(user_id))
        .await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

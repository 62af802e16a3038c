//! Resolves the app of a REST request and checks its signature (spec §9.2).

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use actix_web::HttpRequest;

use super::{ApiContext, error::ApiError};
use crate::{
    app::App,
    auth::{self, Query, RestRequest},
};

/// A request whose signature checked out: the app it is for and its decoded query.
pub struct Signed {
    pub app: Arc<App>,
    pub query: Query,
}

/// Finds the app by path id and verifies the request against it.
pub fn verify(
    context: &ApiContext,
    request: &HttpRequest,
    app_id: &str,
    body: &[u8],
) -> Result<Signed, ApiError> {
    let app = context
        .apps
        .by_id(app_id)
        .ok_or_else(|| ApiError::NotFound(format!("Unknown app {app_id}")))?
        .clone();
    verify_for(context, request, app, body)
}

/// Like `verify`, but also accepts `Authorization: Bearer <token>` when the app has bearer tokens:
/// the Herald extension for callers that cannot compute HMACs (publish endpoints only).
pub fn verify_publish(
    context: &ApiContext,
    request: &HttpRequest,
    app_id: &str,
    body: &[u8],
) -> Result<Signed, ApiError> {
    let Some(token) = bearer_token(request) else {
        return verify(context, request, app_id, body);
    };
    let app = context
        .apps
        .by_id(app_id)
        .ok_or_else(|| ApiError::NotFound(format!("Unknown app {app_id}")))?
        .clone();
    if app.bearer_token_digests.is_empty() {
        return Err(auth::RestAuthError::BearerDisabled.into());
    }
    if !auth::token_matches(token, &app.bearer_token_digests) {
        return Err(auth::RestAuthError::InvalidBearerToken.into());
    }
    if !app.enabled {
        return Err(ApiError::Forbidden(format!("App {} is disabled", app.id)));
    }
    let query = auth::decode_query(request.query_string(), true);
    Ok(Signed { app, query })
}

fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Finds the app by `auth_key` alone, for routes without an app id (the Python SDK's terminate path).
pub fn verify_by_key(
    context: &ApiContext,
    request: &HttpRequest,
    body: &[u8],
) -> Result<Signed, ApiError> {
    let query = auth::decode_query(request.query_string(), true);
    let key = query
        .get("auth_key")
        .ok_or(auth::RestAuthError::MissingParameter("auth_key"))?;
    let app = context
        .apps
        .by_key(key)
        .ok_or_else(|| auth::RestAuthError::UnknownKey(key.clone()))?
        .clone();
    verify_for(context, request, app, body)
}

fn verify_for(
    context: &ApiContext,
    request: &HttpRequest,
    app: Arc<App>,
    body: &[u8],
) -> Result<Signed, ApiError> {
    // SDKs sign the path from /apps/ on, never a mount prefix.
    let path = request
        .path()
        .strip_prefix(context.config.path_prefix.as_str())
        .unwrap_or(request.path());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let rest_request = RestRequest {
        method: request.method().as_str(),
        path,
        query: request.query_string(),
        body,
    };
    let query = auth::verify_rest(
        &rest_request,
        &app.key,
        &app.secret,
        now,
        context.config.timestamp_window,
    )?;
    if !app.enabled {
        return Err(ApiError::Forbidden(format!("App {} is disabled", app.id)));
    }
    Ok(Signed { app, query })
}

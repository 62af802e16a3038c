//! Channel queries: `GET /apps/{id}/channels`, `/channels/{name}` and `/channels/{name}/users` (spec §9.5–§9.7).
//! Every answer comes from the adapter, so it is cluster-wide.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::{
    ApiContext,
    error::ApiError,
    events::{channel_info, parse_info, validate_channel},
    signature,
};
use crate::protocol::ChannelKind;

/// `GET /apps/{app_id}/channels?filter_by_prefix=…&info=user_count`.
pub async fn list(
    request: HttpRequest,
    app_id: web::Path<String>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let signed = signature::verify(&context, &request, &app_id, &body)?;
    let app = signed.app;
    let prefix = signed
        .query
        .get("filter_by_prefix")
        .cloned()
        .unwrap_or_default();
    let info = parse_info(
        signed.query.get("info").map(String::as_str),
        &["user_count", "subscription_count"],
    )?;
    if info.user_count && !prefix.starts_with("presence-") {
        return Err(ApiError::bad_request(
            "info=user_count needs filter_by_prefix to start with presence-",
        ));
    }
    let mut channels: Vec<_> = context
        .adapter
        .channels(&app.id)
        .await?
        .into_iter()
        .filter(|(name, _)| name.as_str().starts_with(&prefix))
        .collect();
    channels.sort_by(|a, b| a.0.cmp(&b.0));
    let mut listed = Map::new();
    for (name, counts) in channels {
        let mut attributes = Map::new();
        if info.user_count {
            attributes.insert("user_count".into(), json!(counts.user_count));
        }
        if info.subscription_count {
            attributes.insert(
                "subscription_count".into(),
                json!(counts.subscription_count),
            );
        }
        listed.insert(name.to_string(), Value::Object(attributes));
    }
    Ok(HttpResponse::Ok().json(json!({ "channels": listed })))
}

/// `GET /apps/{app_id}/channels/{channel_name}?info=user_count,subscription_count,cache`.
pub async fn show(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let (app_id, channel_name) = path.into_inner();
    let signed = signature::verify(&context, &request, &app_id, &body)?;
    let app = signed.app;
    let channel = validate_channel(&app, &channel_name)?;
    let info = parse_info(
        signed.query.get("info").map(String::as_str),
        &["user_count", "subscription_count", "cache"],
    )?;
    if info.user_count && channel.kind() != ChannelKind::Presence {
        return Err(ApiError::bad_request(format!(
            "user_count is only available for presence channels, not {channel}"
        )));
    }
    let counts = context.adapter.channel_counts(&app.id, &channel).await?;
    let mut answer = Map::new();
    answer.insert("occupied".into(), json!(counts.subscription_count > 0));
    answer.extend(channel_info(&context, &app, &channel, info).await?);
    if info.cache {
        let cached = if channel.is_cache() {
            context.adapter.cache_lookup(&app.id, &channel).await?
        } else {
            None
        };
        let cache = cached.map(|cached| {
            let ttl = cached
                .expires_at
                .saturating_duration_since(std::time::Instant::now());
            json!({ "event": cached.event, "data": cached.data, "ttl": ttl.as_secs() })
        });
        answer.insert("cache".into(), cache.unwrap_or(Value::Null));
    }
    Ok(HttpResponse::Ok().json(Value::Object(answer)))
}

/// `GET /apps/{app_id}/channels/{channel_name}/users`: presence channels only.
pub async fn users(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let (app_id, channel_name) = path.into_inner();
    let signed = signature::verify(&context, &request, &app_id, &body)?;
    let app = signed.app;
    let channel = validate_channel(&app, &channel_name)?;
    if channel.kind() != ChannelKind::Presence {
        return Err(ApiError::bad_request(format!(
            "Users can only be listed for presence channels, not {channel}"
        )));
    }
    let users: Vec<Value> = context
        .adapter
        .presence_users(&app.id, &channel)
        .await?
        .iter()
        .map(|user_id| json!({ "id": user_id.as_str() }))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "users": users })))
}

//! Publishing: `POST /apps/{id}/events`, `/batch_events` and the legacy per-channel endpoint (spec §9.3, §9.4, §9.9).
//! Every event of a request is validated before any is published.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json, value::RawValue};

use super::{ApiContext, error::ApiError, signature};
use crate::{
    app::App,
    auth::Query,
    protocol::{ChannelKind, ChannelName, SocketId, frames},
};

/// One validated event, ready to publish.
struct Event {
    name: String,
    data: String,
    channels: Vec<ChannelName>,
    socket_id: Option<SocketId>,
    info: Info,
}

/// Which counts the caller asked for with `info`.
#[derive(Clone, Copy, Default)]
pub(super) struct Info {
    pub user_count: bool,
    pub subscription_count: bool,
    pub cache: bool,
}

impl Info {
    fn requested(&self) -> bool {
        self.user_count || self.subscription_count
    }
}

/// Reads a comma-separated `info` list; `allowed` names the attributes this endpoint knows.
pub(super) fn parse_info(text: Option<&str>, allowed: &[&str]) -> Result<Info, ApiError> {
    let mut info = Info::default();
    for attribute in text
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        if !allowed.contains(&attribute) {
            return Err(ApiError::bad_request(format!(
                "Unknown info attribute {attribute:?}; expected one of {}",
                allowed.join(", ")
            )));
        }
        match attribute {
            "user_count" => info.user_count = true,
            "subscription_count" => info.subscription_count = true,
            "cache" => info.cache = true,
            _ => {}
        }
    }
    Ok(info)
}

/// Fields of one event as sent, before validation.
#[derive(Default, Deserialize)]
struct RawEvent {
    name: Option<String>,
    data: Option<Box<RawValue>>,
    channels: Option<Vec<String>>,
    channel: Option<String>,
    socket_id: Option<String>,
    info: Option<String>,
}

impl RawEvent {
    /// Fills fields missing from the body from the query string (spec §9.1).
    fn merge_query(mut self, query: &Query) -> Result<RawEvent, ApiError> {
        let text = |key: &str| query.get(key).cloned();
        self.name = self.name.or_else(|| text("name"));
        self.channel = self.channel.or_else(|| text("channel"));
        self.socket_id = self.socket_id.or_else(|| text("socket_id"));
        self.info = self.info.or_else(|| text("info"));
        if self.channels.is_none()
            && let Some(joined) = query.get("channels[]").or_else(|| query.get("channels"))
        {
            self.channels = Some(joined.split(',').map(str::to_owned).collect());
        }
        if self.data.is_none()
            && let Some(data) = query.get("data")
        {
            let encoded =
                serde_json::to_string(data).map_err(|e| ApiError::bad_request(e.to_string()))?;
            self.data = RawValue::from_string(encoded).ok();
        }
        Ok(self)
    }
}

fn validate_name(app: &App, name: Option<String>) -> Result<String, ApiError> {
    let name = name.ok_or_else(|| ApiError::bad_request("Missing event name"))?;
    if name.is_empty() {
        return Err(ApiError::bad_request("Event name must not be empty"));
    }
    let limit = app.limits.max_event_name_length;
    if name.chars().count() > limit {
        return Err(ApiError::bad_request(format!(
            "Event name is longer than {limit} characters"
        )));
    }
    if name.starts_with("pusher:") || name.starts_with("pusher_internal:") {
        return Err(ApiError::bad_request(format!(
            "Event name {name:?} is reserved"
        )));
    }
    Ok(name)
}

/// `data` must be a string; any other JSON value is published as its compact JSON text (spec §9.3).
fn validate_data(app: &App, data: Option<Box<RawValue>>) -> Result<String, ApiError> {
    let raw = data.ok_or_else(|| ApiError::bad_request("Missing data"))?;
    // The usual case, a JSON string, is read straight into a String.
    if let Ok(text) = serde_json::from_str::<String>(raw.get()) {
        check_data_size(app, &text)?;
        return Ok(text);
    }
    let text = match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(error) => return Err(ApiError::bad_request(format!("Invalid data: {error}"))),
    };
    check_data_size(app, &text)?;
    Ok(text)
}

fn check_data_size(app: &App, data: &str) -> Result<(), ApiError> {
    let limit = app.limits.max_event_data_bytes;
    if data.len() > limit {
        return Err(ApiError::PayloadTooLarge(format!(
            "Event data is {} bytes; the limit is {limit}",
            data.len()
        )));
    }
    Ok(())
}

pub(super) fn validate_channel(app: &App, name: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(name, app.limits.max_channel_name_length)
        .map_err(|error| ApiError::bad_request(format!("Invalid channel name: {error}")))
}

fn validate_socket_id(socket_id: Option<String>) -> Result<Option<SocketId>, ApiError> {
    socket_id
        .filter(|text| !text.is_empty())
        .map(|text| {
            text.parse()
                .map_err(|e: crate::protocol::SocketIdError| ApiError::bad_request(e.to_string()))
        })
        .transpose()
}

fn validate_event(app: &App, raw: RawEvent, max_channels: usize) -> Result<Event, ApiError> {
    let name = validate_name(app, raw.name)?;
    let names = match (raw.channels, raw.channel) {
        (Some(channels), _) => channels,
        (None, Some(channel)) => vec![channel],
        (None, None) => return Err(ApiError::bad_request("Missing channels")),
    };
    if names.is_empty() {
        return Err(ApiError::bad_request(
            "channels must name at least one channel",
        ));
    }
    if names.len() > max_channels {
        return Err(ApiError::bad_request(format!(
            "{} channels given; at most {max_channels} are allowed per event",
            names.len()
        )));
    }
    let channels = names
        .iter()
        .map(|name| validate_channel(app, name))
        .collect::<Result<Vec<_>, _>>()?;
    if channels.len() > 1
        && channels
            .iter()
            .any(|c| c.kind() == ChannelKind::PrivateEncrypted)
    {
        return Err(ApiError::bad_request(
            "Encrypted channels must be triggered one at a time",
        ));
    }
    let data = validate_data(app, raw.data)?;
    let socket_id = validate_socket_id(raw.socket_id)?;
    // Attributes that do not apply to a channel are left out of its answer, not refused (spec §9.3).
    let info = parse_info(raw.info.as_deref(), &["user_count", "subscription_count"])?;
    Ok(Event {
        name,
        data,
        channels,
        socket_id,
        info,
    })
}

fn parse_body<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("Invalid JSON body: {error}")))
}

/// The `Idempotency-Key` header of a publish, if any (a Herald extension, IETF draft header name).
fn idempotency_key(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?;
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// Publishes `events` unless their idempotency key was already used; a failed publish releases the key
/// so the caller's retry goes through.
async fn publish_once(
    context: &ApiContext,
    app: &App,
    key: Option<String>,
    events: &[Event],
) -> Result<(), ApiError> {
    let remembered = key.map(|key| format!("idempotency:{key}"));
    if let Some(remembered) = &remembered
        && !context
            .adapter
            .first_seen(&app.id, remembered, context.config.idempotency_ttl)
            .await?
    {
        tracing::debug!(app = %app.id, key = %remembered, "duplicate publish acknowledged without publishing");
        return Ok(());
    }
    for event in events {
        if let Err(error) = publish(context, app, event).await {
            if let Some(remembered) = &remembered {
                let _ = context.adapter.forget(&app.id, remembered).await;
            }
            return Err(error);
        }
    }
    Ok(())
}

/// Publishes one event to each of its channels.
async fn publish(context: &ApiContext, app: &App, event: &Event) -> Result<(), ApiError> {
    for channel in &event.channels {
        publish_to(
            context,
            app,
            channel,
            &event.name,
            &event.data,
            event.socket_id,
        )
        .await?;
    }
    Ok(())
}

/// Publishes one event to one channel (serialized once for all its subscribers), and stores it
/// as the channel's last event on cache channels.
pub(super) async fn publish_to(
    context: &ApiContext,
    app: &App,
    channel: &ChannelName,
    name: &str,
    data: &str,
    except: Option<SocketId>,
) -> Result<(), ApiError> {
    let frame = frames::channel_event(name, channel.as_str(), data);
    context
        .adapter
        .publish(&app.id, channel, frame.into(), except)
        .await?;
    if channel.is_cache() {
        context
            .adapter
            .cache_store(&app.id, channel, name, data, app.limits.cache_ttl)
            .await?;
    }
    Ok(())
}

/// The requested counts of one channel, omitting what does not apply to its kind.
pub(super) async fn channel_info(
    context: &ApiContext,
    app: &App,
    channel: &ChannelName,
    info: Info,
) -> Result<Map<String, Value>, ApiError> {
    let mut attributes = Map::new();
    if !info.requested() {
        return Ok(attributes);
    }
    let counts = context.adapter.channel_counts(&app.id, channel).await?;
    if info.user_count && channel.kind() == ChannelKind::Presence {
        attributes.insert("user_count".into(), json!(counts.user_count));
    }
    if info.subscription_count {
        attributes.insert(
            "subscription_count".into(),
            json!(counts.subscription_count),
        );
    }
    Ok(attributes)
}

/// The `{}` body of a successful publish, without serializing anything.
fn empty(mut response: actix_web::HttpResponseBuilder) -> HttpResponse {
    response.content_type("application/json").body("{}")
}

/// `POST /apps/{app_id}/events`.
pub async fn trigger(
    request: HttpRequest,
    app_id: web::Path<String>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let signed = signature::verify_publish(&context, &request, &app_id, &body)?;
    let app = signed.app;
    let key = idempotency_key(&request)?;
    let raw: RawEvent = parse_body::<RawEvent>(&body)?.merge_query(&signed.query)?;
    let event = validate_event(&app, raw, app.limits.max_channels_per_event)?;
    publish_once(&context, &app, key, std::slice::from_ref(&event)).await?;
    if !event.info.requested() {
        return Ok(empty(HttpResponse::Ok()));
    }
    let mut channels = Map::new();
    for channel in &event.channels {
        if !channels.contains_key(channel.as_str()) {
            let attributes = channel_info(&context, &app, channel, event.info).await?;
            channels.insert(channel.to_string(), Value::Object(attributes));
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "channels": channels })))
}

#[derive(Default, Deserialize)]
struct BatchBody {
    batch: Option<Vec<RawEvent>>,
}

/// `POST /apps/{app_id}/batch_events`: up to 10 events, each on exactly one channel.
pub async fn trigger_batch(
    request: HttpRequest,
    app_id: web::Path<String>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let signed = signature::verify_publish(&context, &request, &app_id, &body)?;
    let app = signed.app;
    let key = idempotency_key(&request)?;
    let batch = parse_body::<BatchBody>(&body)?
        .batch
        .ok_or_else(|| ApiError::bad_request("Missing batch"))?;
    let limit = app.limits.max_batch_events;
    if batch.len() > limit {
        return Err(ApiError::bad_request(format!(
            "Batch has {} events; at most {limit} are allowed",
            batch.len()
        )));
    }
    let mut events = Vec::with_capacity(batch.len());
    for (index, item) in batch.into_iter().enumerate() {
        if item.channel.is_none() || item.channels.is_some() {
            return Err(ApiError::bad_request(format!(
                "Batch event {index} needs exactly one channel, given as \"channel\""
            )));
        }
        let event = validate_event(&app, item, 1)
            .map_err(|error| prefix_error(error, &format!("Batch event {index}: ")))?;
        events.push(event);
    }
    publish_once(&context, &app, key, &events).await?;
    if !events.iter().any(|event| event.info.requested()) {
        return Ok(empty(HttpResponse::Ok()));
    }
    let mut results = Vec::with_capacity(events.len());
    for event in &events {
        results.push(Value::Object(
            channel_info(&context, &app, &event.channels[0], event.info).await?,
        ));
    }
    Ok(HttpResponse::Ok().json(json!({ "batch": results })))
}

fn prefix_error(error: ApiError, prefix: &str) -> ApiError {
    match error {
        ApiError::BadRequest(message) => ApiError::BadRequest(format!("{prefix}{message}")),
        ApiError::PayloadTooLarge(message) => {
            ApiError::PayloadTooLarge(format!("{prefix}{message}"))
        }
        other => other,
    }
}

/// `POST /apps/{app_id}/channels/{channel}/events?name=…`: the 2012 endpoint that Apex snippets use.
/// The body is the event data itself; success is 202.
pub async fn trigger_legacy(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, ApiError> {
    let (app_id, channel_name) = path.into_inner();
    let signed = signature::verify_publish(&context, &request, &app_id, &body)?;
    let app = signed.app;
    let key = idempotency_key(&request)?;
    let name = validate_name(&app, signed.query.get("name").cloned())?;
    let channel = validate_channel(&app, &channel_name)?;
    let data = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("Event data must be UTF-8 text"))?
        .to_owned();
    check_data_size(&app, &data)?;
    let socket_id = validate_socket_id(signed.query.get("socket_id").cloned())?;
    let event = Event {
        name,
        data,
        channels: vec![channel],
        socket_id,
        info: Info::default(),
    };
    publish_once(&context, &app, key, std::slice::from_ref(&event)).await?;
    Ok(empty(HttpResponse::Accepted()))
}

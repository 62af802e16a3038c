//! `POST /salesforce/outbound/{app_id}`: Salesforce Outbound Messaging into Pusher events.
//! Salesforce retries a message until it gets an `Ack`, so the `Ack` is sent only after every
//! notification was published, and notification ids are remembered so retries publish once.

use std::{net::IpAddr, time::Duration};

use actix_web::{HttpRequest, HttpResponse, web};

use super::{
    ApiContext,
    error::{ApiError, SoapFault},
    events,
};
use crate::{
    app::{App, OutboundBridge},
    auth,
    protocol::ChannelName,
    salesforce::{self, Notification, ObjectMapping},
};

/// Salesforce retries for 24 hours; notification ids are remembered a little longer.
const NOTIFICATION_MEMORY: Duration = Duration::from_secs(25 * 3600);

pub async fn receive(
    request: HttpRequest,
    app_id: web::Path<String>,
    body: web::Bytes,
    context: web::Data<ApiContext>,
) -> Result<HttpResponse, SoapFault> {
    let app = context
        .apps
        .by_id(&app_id)
        .ok_or_else(|| ApiError::NotFound(format!("Unknown app {app_id}")))?
        .clone();
    let bridge = app.outbound.as_ref().ok_or_else(|| {
        ApiError::NotFound(format!(
            "Outbound Messaging is not configured for app {app_id}"
        ))
    })?;
    check_sender(&context, &request, &app, bridge)?;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("The body is not UTF-8"))?;
    let message =
        salesforce::parse_outbound(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !bridge
        .organization_ids
        .iter()
        .any(|allowed| salesforce::same_organization(allowed, &message.organization_id))
    {
        return Err(ApiError::Forbidden(format!(
            "Organization {} may not send to app {app_id}",
            message.organization_id
        ))
        .into());
    }
    // Check every notification before publishing any, so a bad message publishes nothing.
    let mut planned = Vec::with_capacity(message.notifications.len());
    for notification in &message.notifications {
        let mapping = bridge.objects.get(&notification.object).ok_or_else(|| {
            ApiError::bad_request(format!(
                "No mapping for sObject {} in app {app_id}",
                notification.object
            ))
        })?;
        planned.push((
            notification,
            mapping,
            event_data(&app, notification, mapping)?,
        ));
    }
    let organization = message
        .organization_id
        .get(..15)
        .unwrap_or(&message.organization_id);
    for (notification, mapping, data) in planned {
        let key = format!("outbound:{organization}:{}", notification.id);
        let first = context
            .adapter
            .first_seen(&app.id, &key, NOTIFICATION_MEMORY)
            .await
            .map_err(ApiError::from)?;
        if !first {
            tracing::debug!(app = %app.id, notification = %notification.id, "duplicate notification acknowledged");
            continue;
        }
        if let Err(error) = publish(&context, &app, mapping, &data).await {
            let _ = context.adapter.forget(&app.id, &key).await;
            return Err(error.into());
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/xml; charset=utf-8")
        .body(salesforce::ack()))
}

/// The URL token, then the source address allow-list.
fn check_sender(
    context: &ApiContext,
    request: &HttpRequest,
    app: &App,
    bridge: &OutboundBridge,
) -> Result<(), ApiError> {
    let token = form_urlencoded::parse(request.query_string().as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if !auth::token_matches(&token, std::slice::from_ref(&bridge.token_digest)) {
        return Err(ApiError::InvalidCredentials(
            "Missing or invalid token".into(),
        ));
    }
    if !app.enabled {
        return Err(ApiError::Forbidden(format!("App {} is disabled", app.id)));
    }
    if bridge.allowed_ips.is_empty() {
        return Ok(());
    }
    let address = client_address(request, context.config.trust_forwarded_for)
        .ok_or_else(|| ApiError::Forbidden("The sender's address is unknown".into()))?;
    if bridge
        .allowed_ips
        .iter()
        .any(|network| network.contains(&address))
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{address} is not an allowed sender"
        )))
    }
}

fn client_address(request: &HttpRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for
        && let Some(forwarded) = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
    {
        return forwarded.split(',').next()?.trim().parse().ok();
    }
    request.peer_addr().map(|address| address.ip())
}

/// The event data, without the full field map when the record is too large for one event.
fn event_data(
    app: &App,
    notification: &Notification,
    mapping: &ObjectMapping,
) -> Result<String, ApiError> {
    let limit = app.limits.max_event_data_bytes;
    let full = salesforce::event_data(notification, mapping, true);
    if full.len() <= limit {
        return Ok(full);
    }
    let short = salesforce::event_data(notification, mapping, false);
    if short.len() <= limit {
        return Ok(short);
    }
    Err(ApiError::PayloadTooLarge(format!(
        "Notification {} makes {} bytes of event data; the limit is {limit}",
        notification.id,
        short.len()
    )))
}

async fn publish(
    context: &ApiContext,
    app: &App,
    mapping: &ObjectMapping,
    data: &str,
) -> Result<(), ApiError> {
    let channel = ChannelName::parse(&mapping.channel, usize::MAX)
        .map_err(|e| ApiError::bad_request(format!("Configured channel is invalid: {e}")))?;
    events::publish_to(context, app, &channel, &mapping.event, data, None).await
}

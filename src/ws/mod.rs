//! The WebSocket side: `/app/{key}` upgrades, the connection-time checks of spec §2.2 in their order,
//! and one session task per socket.

mod client_event;
mod session;
mod signin;
mod subscribe;

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    adapter::Adapter,
    app::{App, Apps},
    config::ServerConfig,
    metrics::Metrics,
    protocol::SocketError,
    webhooks::Webhooks,
};

/// Protocol versions served: 7 is pusher-js's; 5 and 6 are still used by older mobile clients.
const PROTOCOLS: std::ops::RangeInclusive<u32> = 4..=7;

/// What the WebSocket side needs from the rest of the server.
pub struct WsContext {
    pub apps: Apps,
    pub adapter: Arc<dyn Adapter>,
    pub config: ServerConfig,
    /// Cancelled when the server drains; sessions then close with 4200.
    pub shutdown: CancellationToken,
    /// Tracks session tasks so shutdown can wait for them.
    pub sessions: TaskTracker,
    pub webhooks: Webhooks,
    pub metrics: Arc<Metrics>,
}

/// Registers `/app/{key}` under the configured prefix. Other upgrade paths are refused with 4005
/// by `refuse_path`, which the server installs as its default service.
pub fn configure(config: &mut web::ServiceConfig) {
    config.route("/app/{key}", web::get().to(connect));
}

/// `GET /app/{key}`: check, upgrade, and start a session or refuse with the right close code.
async fn connect(
    request: HttpRequest,
    body: web::Payload,
    key: web::Path<String>,
    context: web::Data<WsContext>,
) -> actix_web::Result<HttpResponse> {
    let admitted = admit(&context, &key, request.query_string());
    let (response, ws, stream) = actix_ws::handle(&request, body)?;
    let registry = context.adapter.registry();
    let conn = admitted.and_then(|app| {
        registry.connect(
            &app,
            context.config.max_connections,
            context.config.outbound_queue_bytes,
        )
    });
    match conn {
        Ok(conn) => {
            let context = context.into_inner();
            let sessions = context.sessions.clone();
            let task = session::Session::new(context, conn, ws).run(stream);
            actix_web::rt::spawn(sessions.track_future(task));
        }
        Err(error) => {
            tracing::debug!(key = %key, %error, "refusing socket");
            actix_web::rt::spawn(session::refuse(ws, error));
        }
    }
    Ok(response)
}

/// Upgrades any other WebSocket request and closes it with 4005; plain HTTP gets 404.
pub async fn refuse_path(
    request: HttpRequest,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let is_upgrade = request
        .headers()
        .get(actix_web::http::header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"));
    if !is_upgrade {
        return Ok(HttpResponse::NotFound().body("Not found"));
    }
    let (response, ws, _stream) = actix_ws::handle(&request, body)?;
    actix_web::rt::spawn(session::refuse(ws, SocketError::PathNotFound));
    Ok(response)
}

/// The checks of spec §2.2 that need no state: app key, enabled, protocol version.
fn admit(context: &WsContext, key: &str, query: &str) -> Result<Arc<App>, SocketError> {
    let app = context
        .apps
        .by_key(key)
        .ok_or_else(|| SocketError::UnknownAppKey(key.to_owned()))?;
    if !app.enabled {
        return Err(SocketError::AppDisabled);
    }
    let protocol = form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "protocol")
        .map(|(_, value)| value.into_owned())
        .ok_or(SocketError::NoProtocol)?;
    let version: u32 = protocol
        .parse()
        .map_err(|_| SocketError::InvalidProtocol(protocol.clone()))?;
    if !PROTOCOLS.contains(&version) {
        return Err(SocketError::UnsupportedProtocol(version));
    }
    Ok(app.clone())
}

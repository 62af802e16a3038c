//! The WebSocket side: every HTTP upgrade request lands here, not in the web app. After the handshake
//! the connection-time checks of spec §2.2 run in their order, then one session serves the socket on the
//! raw stream (see `transport`).

mod client_event;
mod session;
mod signin;
mod subscribe;
mod transport;

use std::sync::Arc;

use actix_codec::{Framed, FramedParts};
use actix_http::{Request, Response, body::BodySize, h1};
use actix_web::rt::net::TcpStream;
use futures_util::SinkExt;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    adapter::Adapter,
    app::{App, Apps},
    config::ServerConfig,
    metrics::Metrics,
    protocol::SocketError,
    webhooks::Webhooks,
};
use transport::Transport;

/// Protocol versions served: 7 is pusher-js's; 5 and 6 are still used by older mobile clients.
const PROTOCOLS: std::ops::RangeInclusive<u32> = 4..=7;

/// What the WebSocket side needs from the rest of the server.
pub struct WsContext {
    pub apps: Apps,
    pub adapter: Arc<dyn Adapter>,
    pub config: ServerConfig,
    /// Cancelled when the server drains: new sockets are then refused with 4200 (open ones are closed
    /// through their outboxes).
    pub shutdown: CancellationToken,
    /// Tracks session tasks so shutdown can wait for them.
    pub sessions: TaskTracker,
    pub webhooks: Webhooks,
    pub metrics: Arc<Metrics>,
}

/// Serves one upgrade request: the WebSocket handshake, then a session or a refusal with the right
/// close code. Requests that are not WebSocket handshakes get the HTTP error actix-http picks.
pub async fn upgrade(
    context: Arc<WsContext>,
    request: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> std::io::Result<()> {
    let response = match actix_http::ws::handshake(request.head()) {
        Ok(mut response) => response.finish().drop_body(),
        Err(error) => {
            let response: Response<_> = error.into();
            return framed
                .send(h1::Message::Item((
                    response.drop_body(),
                    BodySize::Sized(0),
                )))
                .await;
        }
    };
    framed
        .send(h1::Message::Item((response, BodySize::None)))
        .await?;
    // Keep only the stream: the HTTP layer's buffers, codec and request are dropped here, not held
    // for the life of the socket.
    let FramedParts { io, read_buf, .. } = framed.into_parts();
    let transport = Transport::new(io, read_buf, context.config.max_frame_bytes);
    let admitted = app_key(&context.config.path_prefix, request.path())
        .ok_or(SocketError::PathNotFound)
        .and_then(|key| admit(&context, key, request.uri().query().unwrap_or_default()));
    let path = request.path().to_owned();
    drop(request);
    let registry = context.adapter.registry();
    let conn = admitted.and_then(|app| {
        registry.connect(
            &app,
            context.config.max_connections,
            context.config.outbound_queue_bytes,
        )
    });
    // Checked after registering, so a socket is either closed by the drain or refused here.
    let conn = conn.and_then(|conn| {
        if context.shutdown.is_cancelled() {
            registry.disconnect(&conn.app.id, conn.socket_id);
            return Err(SocketError::ShuttingDown);
        }
        Ok(conn)
    });
    // The socket gets a task of its own, so the HTTP layer's per-connection state (several KB) is freed
    // now rather than held for the socket's life; shutdown waits for it through `sessions`.
    match conn {
        Ok(conn) => {
            let sessions = context.sessions.clone();
            let session = session::Session::new(context, conn, transport);
            actix_web::rt::spawn(sessions.track_future(session.run()));
        }
        Err(error) => {
            tracing::debug!(%path, %error, "refusing socket");
            actix_web::rt::spawn(session::refuse(transport, error));
        }
    }
    Ok(())
}

/// The key in `{prefix}/app/{key}`, the only WebSocket path (spec §2.1).
fn app_key<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    let key = path.strip_prefix(prefix)?.strip_prefix("/app/")?;
    (!key.is_empty() && !key.contains('/')).then_some(key)
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

#[cfg(test)]
mod tests {
    use super::app_key;

    #[test]
    fn only_app_paths_carry_a_key() {
        assert_eq!(app_key("", "/app/k"), Some("k"));
        assert_eq!(app_key("/ws", "/ws/app/k"), Some("k"));
        for path in [
            "/app/",
            "/app",
            "/apps/k",
            "/app/k/extra",
            "/socket",
            "/ws/app/k",
        ] {
            assert_eq!(
                app_key("", path).filter(|_| !path.starts_with("/ws")),
                None,
                "{path}"
            );
        }
        assert_eq!(app_key("/ws", "/app/k"), None);
    }
}

//! One socket's session: a single `select!` loop over client frames, queued outbound frames,
//! the activity timer, the authorization deadline and shutdown. Every failure is answered by `reply_error`.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use actix_ws::{AggregatedMessage, CloseCode, CloseReason, MessageStream, ProtocolError};
use bytestring::ByteString;
use tokio::time::sleep_until;

use super::WsContext;
use crate::{
    protocol::{
        ChannelName, ClientMessage, Reaction, SocketError, UserId,
        frames::{self, Presence},
    },
    registry::ConnHandle,
};

/// What the loop does after handling something.
pub(super) enum Flow {
    Continue,
    /// The socket is finished (closed by us or gone); run cleanup.
    Stop,
}

/// The signed-in identity of a session (spec §5).
pub(super) struct SignedIn {
    pub user_id: UserId,
    pub user_info: Option<Box<serde_json::value::RawValue>>,
    /// Internal watchlist channels this socket listens on.
    pub watching: Vec<ChannelName>,
}

/// A token bucket for client events (spec §7): holds up to `per_second` events and refills at that rate,
/// so a burst is capped at one second's worth and the long-run rate at `per_second`.
pub(super) struct RateLimiter {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    fn new(now: Instant, per_second: u32) -> RateLimiter {
        RateLimiter {
            tokens: f64::from(per_second),
            updated: now,
        }
    }

    /// Takes one token; false when the bucket is empty.
    pub fn admit(&mut self, now: Instant, per_second: u32) -> bool {
        let rate = f64::from(per_second);
        let refill = now.duration_since(self.updated).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(rate);
        self.updated = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

pub(super) struct Session {
    pub context: Arc<WsContext>,
    pub conn: ConnHandle,
    ws: actix_ws::Session,
    /// Channels this socket joined, with the presence user id it joined as.
    pub subscriptions: HashMap<ChannelName, Option<UserId>>,
    pub signed_in: Option<SignedIn>,
    /// Signed in or joined a private/presence channel ("authorized connections", spec §5.5).
    pub authorized: bool,
    pub client_events: RateLimiter,
    last_received: Instant,
}

impl Session {
    pub fn new(context: Arc<WsContext>, conn: ConnHandle, ws: actix_ws::Session) -> Session {
        let now = Instant::now();
        let client_events = RateLimiter::new(now, conn.app.limits.client_events_per_second);
        Session {
            context,
            conn,
            ws,
            subscriptions: HashMap::new(),
            signed_in: None,
            authorized: false,
            client_events,
            last_received: now,
        }
    }

    /// Queues a frame for this socket, behind anything already queued.
    pub fn send(&self, frame: String) {
        self.conn.outbox.push(ByteString::from(frame));
    }

    /// The one place a failure becomes what the client sees: a `pusher:error`, or that and a close.
    pub fn reply_error(&self, error: SocketError) {
        match error.reaction() {
            Reaction::Error { code } => {
                tracing::debug!(socket_id = %self.conn.socket_id, %error, "client error");
                self.send(frames::error(code, &error.to_string()));
            }
            Reaction::Close { .. } => self.conn.outbox.close(error),
        }
    }

    pub async fn run(mut self, stream: MessageStream) {
        let config = &self.context.config;
        let mut stream = stream
            .max_frame_size(config.max_frame_bytes)
            .aggregate_continuations()
            .max_continuation_size(config.max_frame_bytes);
        let activity_timeout = config.activity_timeout;
        let pong_timeout = config.pong_timeout;
        self.send(frames::connection_established(
            self.conn.socket_id,
            activity_timeout.as_secs(),
        ));
        let app = self.conn.app.clone();
        let authorize_by = app
            .require_authorization
            .then(|| Instant::now() + app.authorization_timeout);
        // Timers are created once and moved only when their deadline changes, never per frame:
        // when the idle timer fires it compares with the last frame received.
        let idle_timer = sleep_until((self.last_received + activity_timeout).into());
        tokio::pin!(idle_timer);
        let authorize_timer = sleep_until(authorize_by.unwrap_or_else(far_future).into());
        tokio::pin!(authorize_timer);
        let mut awaiting_pong = false;
        let mut draining = false;
        let shutdown = self.context.shutdown.clone();
        loop {
            let flow = tokio::select! {
                biased;
                () = shutdown.cancelled(), if !draining => {
                    draining = true;
                    self.conn.outbox.close(SocketError::ShuttingDown);
                    Flow::Continue
                }
                () = self.conn.outbox.ready() => self.flush().await,
                message = stream.recv() => match message {
                    Some(message) => {
                        self.last_received = Instant::now();
                        awaiting_pong = false;
                        self.on_frame(message).await
                    }
                    None => Flow::Stop,
                },
                () = &mut idle_timer => {
                    let now = Instant::now();
                    if awaiting_pong {
                        self.reply_error(SocketError::PongTimeout);
                        idle_timer.as_mut().reset(far_future().into());
                    } else if now.duration_since(self.last_received) >= activity_timeout {
                        self.send(frames::ping());
                        awaiting_pong = true;
                        idle_timer.as_mut().reset((now + pong_timeout).into());
                    } else {
                        idle_timer.as_mut().reset((self.last_received + activity_timeout).into());
                    }
                    Flow::Continue
                }
                () = &mut authorize_timer, if authorize_by.is_some() && !self.authorized => {
                    self.reply_error(SocketError::NotAuthorizedInTime);
                    authorize_timer.as_mut().reset(far_future().into());
                    Flow::Continue
                }
            };
            if let Flow::Stop = flow {
                break;
            }
        }
        self.cleanup().await;
    }

    /// Writes everything queued, then closes if a close was requested. A close requested while the
    /// socket is not taking frames (a slow consumer) cuts the write short.
    async fn flush(&mut self) -> Flow {
        let batch = self.conn.outbox.take();
        let ws = &mut self.ws;
        let outbox = &self.conn.outbox;
        let write_all = async {
            for frame in batch.frames {
                ws.text(frame).await?;
            }
            Ok::<(), actix_ws::Closed>(())
        };
        tokio::select! {
            written = write_all => {
                if written.is_err() {
                    return Flow::Stop;
                }
            }
            () = outbox.closing(), if batch.close.is_none() => {}
        }
        let close = batch.close.or_else(|| self.conn.outbox.take().close);
        match close {
            Some(reason) => {
                self.close(reason).await;
                Flow::Stop
            }
            None => Flow::Continue,
        }
    }

    /// Sends `pusher:error` with the close code, then the Close frame (spec §2.2).
    async fn close(&mut self, reason: SocketError) {
        let code = match reason.reaction() {
            Reaction::Close { code } => code,
            Reaction::Error { code } => code.unwrap_or(crate::protocol::codes::RECONNECT),
        };
        let message = reason.to_string();
        tracing::debug!(socket_id = %self.conn.socket_id, code, %message, "closing socket");
        let ws = self.ws.clone();
        let closing = async move {
            let mut ws = ws;
            ws.text(frames::error(Some(code), &message)).await?;
            ws.close(Some(CloseReason {
                code: CloseCode::Other(code),
                description: Some(message),
            }))
            .await
        };
        let _ = tokio::time::timeout(self.context.config.pong_timeout, closing).await;
    }

    async fn on_frame(&mut self, message: Result<AggregatedMessage, ProtocolError>) -> Flow {
        match message {
            Ok(AggregatedMessage::Text(text)) => self.on_text(&text).await,
            Ok(AggregatedMessage::Binary(bytes)) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(text).await,
                Err(_) => {
                    self.reply_error(SocketError::InvalidMessage(
                        "binary frame is not UTF-8 JSON".into(),
                    ));
                    Flow::Continue
                }
            },
            Ok(AggregatedMessage::Ping(bytes)) => {
                if self.ws.pong(&bytes).await.is_err() {
                    return Flow::Stop;
                }
                Flow::Continue
            }
            Ok(AggregatedMessage::Pong(_)) => Flow::Continue,
            Ok(AggregatedMessage::Close(reason)) => {
                tracing::debug!(socket_id = %self.conn.socket_id, ?reason, "client closed");
                let _ = self.ws.clone().close(None).await;
                Flow::Stop
            }
            Err(ProtocolError::Overflow) => {
                self.reply_error(SocketError::FrameTooLarge {
                    limit: self.context.config.max_frame_bytes,
                });
                Flow::Continue
            }
            Err(error) => {
                tracing::debug!(socket_id = %self.conn.socket_id, %error, "WebSocket protocol error");
                Flow::Stop
            }
        }
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        let message = match crate::protocol::client::parse(text) {
            Ok(message) => message,
            Err(error) => {
                self.reply_error(SocketError::InvalidMessage(error.to_string()));
                return Flow::Continue;
            }
        };
        let result = match message {
            ClientMessage::Ping => {
                self.send(frames::pong());
                Ok(())
            }
            ClientMessage::Pong | ClientMessage::Ignored(_) => Ok(()),
            ClientMessage::Subscribe(request) => self.subscribe(request).await,
            ClientMessage::Unsubscribe { channel } => {
                self.unsubscribe(&channel).await;
                Ok(())
            }
            ClientMessage::Signin { auth, user_data } => self.signin(&auth, &user_data).await,
            ClientMessage::ClientEvent {
                event,
                channel,
                data,
            } => self.client_event(&event, &channel, data).await,
            ClientMessage::Unsupported(event) => Err(SocketError::UnsupportedEvent(event)),
        };
        if let Err(error) = result {
            self.reply_error(error);
        }
        Flow::Continue
    }

    /// Runs every leave side effect once the socket is gone (spec §6.1).
    async fn cleanup(mut self) {
        let channels: Vec<ChannelName> = self.subscriptions.keys().cloned().collect();
        for channel in channels {
            self.leave(&channel).await;
        }
        if let Some(signed_in) = self.signed_in.take() {
            self.sign_out(signed_in).await;
        }
        self.context
            .adapter
            .registry()
            .disconnect(&self.conn.app.id, self.conn.socket_id);
    }

    /// Tells watchers of this user that it went online or offline.
    pub async fn announce(&self, user_id: &UserId, presence: Presence) {
        let frame = frames::watchlist_events(&[(presence, vec![user_id.as_str()])]);
        let channel = ChannelName::watchlist_of(user_id.as_str());
        self.publish(&channel, frame, None).await;
    }

    /// Publishes through the adapter; a failure is logged, never shown to this client.
    pub async fn publish(
        &self,
        channel: &ChannelName,
        frame: String,
        except: Option<crate::protocol::SocketId>,
    ) {
        let app_id = &self.conn.app.id;
        if let Err(error) = self
            .context
            .adapter
            .publish(app_id, channel, frame.into(), except)
            .await
        {
            tracing::debug!(app = %app_id, channel = %channel, %error, "publish failed");
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

/// Refuses a socket that failed the connection checks: `pusher:error`, then Close with the same code.
pub(super) async fn refuse(mut ws: actix_ws::Session, error: SocketError) {
    let code = match error.reaction() {
        Reaction::Close { code } => code,
        Reaction::Error { code } => code.unwrap_or(crate::protocol::codes::PATH_NOT_FOUND),
    };
    let message = error.to_string();
    if ws.text(frames::error(Some(code), &message)).await.is_err() {
        return;
    }
    let _ = ws
        .close(Some(CloseReason {
            code: CloseCode::Other(code),
            description: Some(message),
        }))
        .await;
}

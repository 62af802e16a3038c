//! One socket's session: a single `select!` loop over client frames, queued outbound frames,
//! the activity timer, the authorization deadline and shutdown. Every failure is answered by `reply_error`.
//! Frames queued in the socket's outbox are written together, in one `write` call.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use bytestring::ByteString;
use tokio::time::sleep_until;

use super::{
    WsContext,
    transport::{self, Incoming, ReadOutcome, Transport},
};
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

/// Spaces out the writes of a socket that receives faster than `interval` (`server.write_batch_interval`),
/// so that frames queued meanwhile share one `write`: under a heavy fan-out the cost of a delivery is
/// mostly the syscall and the loopback/TCP work behind it, paid per write and not per frame.
/// A generic cell rate: up to `BURST` writes in a row go out at once (replies to a client's own
/// messages are never held), then at most one per `interval`. A zero interval turns pacing off.
pub(super) struct WritePacer {
    interval: Duration,
    /// When the next write would be on schedule ("theoretical arrival time").
    on_schedule: Instant,
}

impl WritePacer {
    const BURST: u32 = 4;

    pub fn new(interval: Duration) -> WritePacer {
        WritePacer {
            interval,
            on_schedule: Instant::now(),
        }
    }

    /// `None` when a write may happen now; otherwise the instant it may.
    pub fn hold_until(&self, now: Instant) -> Option<Instant> {
        if self.interval.is_zero() {
            return None;
        }
        let allowed = self
            .on_schedule
            .checked_sub(self.interval * (Self::BURST - 1))
            .unwrap_or(now);
        (allowed > now).then_some(allowed)
    }

    /// Records a write at `now`.
    pub fn wrote(&mut self, now: Instant) {
        if !self.interval.is_zero() {
            self.on_schedule = self.on_schedule.max(now) + self.interval;
        }
    }
}

pub(super) struct Session {
    pub context: Arc<WsContext>,
    pub conn: ConnHandle,
    transport: Transport,
    /// Channels this socket joined, with the presence user id it joined as.
    pub subscriptions: HashMap<ChannelName, Option<UserId>>,
    pub signed_in: Option<SignedIn>,
    /// Signed in or joined a private/presence channel ("authorized connections", spec §5.5).
    pub authorized: bool,
    pub client_events: RateLimiter,
    last_received: Instant,
}

impl Session {
    pub fn new(context: Arc<WsContext>, conn: ConnHandle, transport: Transport) -> Session {
        let now = Instant::now();
        let client_events = RateLimiter::new(now, conn.app.limits.client_events_per_second);
        Session {
            context,
            conn,
            transport,
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

    pub async fn run(mut self) {
        let config = &self.context.config;
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
        // Once set, the socket ends at this time at the latest: it is closing, or stuck.
        let hang_up = sleep_until(far_future().into());
        tokio::pin!(hang_up);
        // `closing`: the Close frame is queued; `hang_up_armed`: the connection ends at `hang_up`.
        let mut closing = false;
        let mut hang_up_armed = false;
        let mut awaiting_pong = false;
        // Write pacing: `paced` while queued frames wait for `pace_timer`; `write_now` asks the
        // end of this turn of the loop to write the queue.
        let mut pacer = WritePacer::new(config.write_batch_interval);
        let pace_timer = sleep_until(far_future().into());
        tokio::pin!(pace_timer);
        let mut paced = false;
        let mut write_now = false;
        let mut incoming = Vec::new();
        loop {
            let writing = self.transport.has_unwritten();
            let flow = tokio::select! {
                biased;
                () = self.conn.outbox.ready(), if !writing && !closing && !paced => {
                    match pacer.hold_until(Instant::now()) {
                        Some(until) => {
                            pace_timer.as_mut().reset(until.into());
                            paced = true;
                        }
                        None => write_now = true,
                    }
                    Flow::Continue
                }
                () = &mut pace_timer, if paced => {
                    paced = false;
                    write_now = !writing && !closing;
                    Flow::Continue
                }
                // A close requested while the client reads nothing (a slow consumer): the queued
                // bytes and the Close frame get as long as a ping would, then the connection is dropped.
                () = self.conn.outbox.closing(), if writing && !hang_up_armed => {
                    hang_up_armed = true;
                    hang_up.as_mut().reset((Instant::now() + pong_timeout).into());
                    Flow::Continue
                }
                ready = self.transport.writable(), if writing => match ready {
                    Ok(()) => self.flush(),
                    Err(_) => Flow::Stop,
                },
                ready = self.transport.readable() => match ready {
                    Ok(()) => {
                        self.last_received = Instant::now();
                        awaiting_pong = false;
                        let outcome = self.transport.read(&mut incoming);
                        let mut flow = Flow::Continue;
                        for message in incoming.drain(..) {
                            if closing {
                                continue;
                            }
                            // Boxed: handling a message needs far more state than waiting does, and an
                            // idle socket should not carry that state (see docs/benchmarks.md).
                            if let Flow::Stop = Box::pin(self.on_message(message)).await {
                                flow = Flow::Stop;
                            }
                        }
                        match (outcome, flow) {
                            (ReadOutcome::Ended, _) | (_, Flow::Stop) => Flow::Stop,
                            (ReadOutcome::Open, Flow::Continue) => Flow::Continue,
                        }
                    }
                    Err(_) => Flow::Stop,
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
                () = &mut hang_up, if hang_up_armed => Flow::Stop,
            };
            if let Flow::Stop = flow {
                break;
            }
            if std::mem::take(&mut write_now) {
                pacer.wrote(Instant::now());
                let (close_sent, flow) = self.write_queued();
                if close_sent {
                    closing = true;
                    if !hang_up_armed {
                        hang_up_armed = true;
                        hang_up
                            .as_mut()
                            .reset((Instant::now() + pong_timeout).into());
                    }
                }
                if let Flow::Stop = flow {
                    break;
                }
            }
            if closing && !self.transport.has_unwritten() {
                // The Close frame is out: end our side of the stream.
                self.transport.shutdown_write();
                break;
            }
        }
        let transport = Box::pin(self.cleanup()).await;
        // Keep reading (and discarding) until the client ends its side too, so that closing our
        // socket early cannot reset the connection before the client has read the Close frame.
        transport.linger(LINGER).await;
    }

    /// Writes everything queued for the socket at once; returns true when that includes the Close frame.
    fn write_queued(&mut self) -> (bool, Flow) {
        let batch = self.conn.outbox.take();
        // `pusher:error` with the close code, then the Close frame with the same code (spec §2.2).
        let close = batch.close.map(|reason| {
            let code = match reason.reaction() {
                Reaction::Close { code } => code,
                Reaction::Error { code } => code.unwrap_or(crate::protocol::codes::RECONNECT),
            };
            let message = reason.to_string();
            tracing::debug!(socket_id = %self.conn.socket_id, code, %message, "closing socket");
            (code, frames::error(Some(code), &message), message)
        });
        let closing = close.is_some();
        let sent = self.transport.send(|dst| {
            for frame in &batch.frames {
                transport::text(dst, frame.as_bytes());
            }
            if let Some((code, error, message)) = &close {
                transport::text(dst, error.as_bytes());
                transport::close(dst, *code, message);
            }
        });
        (
            closing,
            if sent.is_ok() {
                Flow::Continue
            } else {
                Flow::Stop
            },
        )
    }

    /// Writes what the kernel takes now; a failed write means the client is gone.
    fn flush(&mut self) -> Flow {
        match self.transport.flush() {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }

    async fn on_message(&mut self, message: Incoming) -> Flow {
        match message {
            Incoming::Text(bytes) | Incoming::Binary(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => self.on_text(text).await,
                Err(_) => {
                    self.reply_error(SocketError::InvalidMessage(
                        "frame is not UTF-8 JSON".into(),
                    ));
                    Flow::Continue
                }
            },
            Incoming::Ping(payload) => {
                match self.transport.send(|dst| transport::pong(dst, &payload)) {
                    Ok(()) => Flow::Continue,
                    Err(_) => Flow::Stop,
                }
            }
            Incoming::Pong => Flow::Continue,
            Incoming::Close => {
                tracing::debug!(socket_id = %self.conn.socket_id, "client closed");
                let _ = self.transport.send(|dst| transport::close(dst, 1000, ""));
                Flow::Stop
            }
            Incoming::TooLarge => {
                self.reply_error(SocketError::FrameTooLarge {
                    limit: self.context.config.max_frame_bytes,
                });
                Flow::Continue
            }
            Incoming::Invalid(error) => {
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

    /// Runs every leave side effect once the socket is gone (spec §6.1), handing back the stream.
    async fn cleanup(mut self) -> Transport {
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
        self.transport
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

/// How long a refused socket has to take its Close frame before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How long a closed socket waits for the client to end its side of the stream.
const LINGER: Duration = Duration::from_secs(1);

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

/// Refuses a socket that failed the connection checks: `pusher:error`, then Close with the same code.
pub(super) async fn refuse(mut transport: Transport, error: SocketError) {
    let code = match error.reaction() {
        Reaction::Close { code } => code,
        Reaction::Error { code } => code.unwrap_or(crate::protocol::codes::PATH_NOT_FOUND),
    };
    let message = error.to_string();
    let error_frame = frames::error(Some(code), &message);
    let written = async {
        transport.send(|dst| {
            transport::text(dst, error_frame.as_bytes());
            transport::close(dst, code, &message);
        })?;
        while transport.has_unwritten() {
            transport.writable().await?;
            transport.flush()?;
        }
        Ok::<(), std::io::Error>(())
    };
    if tokio::time::timeout(CLOSE_GRACE, written).await.is_ok() {
        transport.shutdown_write();
        transport.linger(LINGER).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_off_never_holds() {
        let mut pacer = WritePacer::new(Duration::ZERO);
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(pacer.hold_until(now), None);
            pacer.wrote(now);
        }
    }

    #[test]
    fn a_burst_goes_out_then_writes_are_spaced_by_the_interval() {
        let interval = Duration::from_millis(10);
        let mut pacer = WritePacer::new(interval);
        let start = Instant::now();
        for _ in 0..WritePacer::BURST {
            assert_eq!(pacer.hold_until(start), None);
            pacer.wrote(start);
        }
        let until = pacer.hold_until(start).expect("held after the burst");
        assert_eq!(until, start + interval);
        // Writing at that instant is on schedule; the next one waits a whole interval more.
        assert_eq!(pacer.hold_until(until), None);
        pacer.wrote(until);
        assert_eq!(pacer.hold_until(until), Some(until + interval));
    }

    #[test]
    fn a_quiet_socket_earns_its_burst_back() {
        let interval = Duration::from_millis(10);
        let mut pacer = WritePacer::new(interval);
        let start = Instant::now();
        for _ in 0..WritePacer::BURST {
            pacer.wrote(start);
        }
        let later = start + interval * (WritePacer::BURST + 1);
        for _ in 0..WritePacer::BURST {
            assert_eq!(pacer.hold_until(later), None);
            pacer.wrote(later);
        }
        assert!(pacer.hold_until(later).is_some());
    }
}

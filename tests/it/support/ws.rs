//! A minimal Pusher-protocol WebSocket client over awc, reading with timeouts.

use actix_codec::Framed;
use awc::{BoxedSocket, ws};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

use super::{KEY, READ_TIMEOUT, SECRET};

pub struct WsClient {
    framed: Framed<BoxedSocket, ws::Codec>,
    pub socket_id: String,
}

/// What the server sent next.
#[derive(Debug)]
pub enum Received {
    Event(Value),
    Close(Option<u16>, String),
    Ended,
}

impl WsClient {
    /// Connects and reads `pusher:connection_established`.
    pub async fn connect(url: &str) -> WsClient {
        let mut framed = open(url).await;
        let first = next_event(&mut framed).await;
        assert_eq!(first["event"], "pusher:connection_established", "{first}");
        let data: Value =
            serde_json::from_str(first["data"].as_str().expect("data is a string")).unwrap();
        assert_eq!(data["activity_timeout"].as_u64().map(|t| t > 0), Some(true));
        WsClient {
            framed,
            socket_id: data["socket_id"].as_str().unwrap().to_owned(),
        }
    }

    /// A client on a raw connection that has not read anything yet.
    pub async fn raw(url: &str) -> WsClient {
        WsClient {
            framed: open(url).await,
            socket_id: String::new(),
        }
    }

    pub async fn send(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.framed
            .send(ws::Message::Text(text.to_owned().into()))
            .await
            .expect("send a frame");
    }

    pub async fn send_message(&mut self, message: ws::Message) {
        self.framed.send(message).await.expect("send a frame");
    }

    /// The next event or close, answering nothing on the client's behalf.
    pub async fn receive(&mut self) -> Received {
        loop {
            let frame = tokio::time::timeout(READ_TIMEOUT, self.framed.next())
                .await
                .expect("the server answered within the read timeout");
            match frame {
                Some(Ok(ws::Frame::Text(bytes))) => {
                    return Received::Event(
                        serde_json::from_slice(&bytes).expect("frames are JSON"),
                    );
                }
                Some(Ok(ws::Frame::Close(reason))) => {
                    return Received::Close(
                        reason.as_ref().map(|r| u16::from(r.code)),
                        reason.and_then(|r| r.description).unwrap_or_default(),
                    );
                }
                Some(Ok(ws::Frame::Ping(_) | ws::Frame::Pong(_))) => continue,
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
                Some(Err(error)) => panic!("protocol error {error}"),
                None => return Received::Ended,
            }
        }
    }

    /// The next event; fails the test on a close.
    pub async fn recv(&mut self) -> Value {
        match self.receive().await {
            Received::Event(value) => value,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// The next event, which must be named `event`.
    pub async fn expect(&mut self, event: &str) -> Value {
        let value = self.recv().await;
        assert_eq!(value["event"], event, "{value}");
        value
    }

    /// Proves nothing else is queued for this socket: a `pusher:ping` must be answered next by the pong.
    pub async fn expect_nothing_pending(&mut self) {
        self.send(json!({"event": "pusher:ping", "data": {}})).await;
        self.expect("pusher:pong").await;
    }

    /// Expects `pusher:error` with `code`, then a Close frame with the same code.
    pub async fn expect_closed_with(&mut self, code: u16) -> String {
        let error = self.expect("pusher:error").await;
        assert_eq!(error["data"]["code"], code, "{error}");
        match self.receive().await {
            Received::Close(Some(closed), _) => assert_eq!(closed, code),
            other => panic!("expected close {code}, got {other:?}"),
        }
        error["data"]["message"].as_str().unwrap().to_owned()
    }

    /// Expects `pusher:error` carrying `code` (`None` = null) on an open socket; returns the message.
    pub async fn expect_error(&mut self, code: Option<u16>) -> String {
        let error = self.expect("pusher:error").await;
        assert_eq!(error["data"]["code"], json!(code), "{error}");
        error["data"]["message"].as_str().unwrap().to_owned()
    }

    /// Subscribes to a public channel, or a private/presence one with a valid signature.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(subscribe_frame(&self.socket_id, channel, None))
            .await;
        self.expect("pusher_internal:subscription_succeeded").await
    }

    /// Subscribes to a presence channel with `channel_data`.
    pub async fn join(&mut self, channel: &str, channel_data: &str) -> Value {
        self.send(subscribe_frame(
            &self.socket_id,
            channel,
            Some(channel_data),
        ))
        .await;
        let reply = self.expect("pusher_internal:subscription_succeeded").await;
        serde_json::from_str(reply["data"].as_str().unwrap()).unwrap()
    }

    pub async fn signin(&mut self, user_data: &str) -> Value {
        let signed = format!("{}::user::{user_data}", self.socket_id);
        self.send(json!({
            "event": "pusher:signin",
            "data": {"auth": format!("{KEY}:{}", sign(&signed)), "user_data": user_data}
        }))
        .await;
        self.expect("pusher:signin_success").await
    }
}

async fn open(url: &str) -> Framed<BoxedSocket, ws::Codec> {
    let (_response, framed) = awc::Client::new()
        .ws(url)
        .max_frame_size(1 << 20)
        .connect()
        .await
        .unwrap_or_else(|error| panic!("connect to {url}: {error}"));
    framed
}

async fn next_event(framed: &mut Framed<BoxedSocket, ws::Codec>) -> Value {
    match tokio::time::timeout(READ_TIMEOUT, framed.next()).await {
        Ok(Some(Ok(ws::Frame::Text(bytes)))) => serde_json::from_slice(&bytes).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Lower-case hex HMAC-SHA256 with the test app's secret.
pub fn sign(message: &str) -> String {
    herald::auth::sign(SECRET, message.as_bytes())
}

/// The subscribe frame pusher-js sends, signed for `socket_id` when the channel needs it.
pub fn subscribe_frame(socket_id: &str, channel: &str, channel_data: Option<&str>) -> Value {
    let needs_auth = ["private-", "presence-"]
        .iter()
        .any(|p| channel.starts_with(p));
    let auth = if needs_auth {
        let signed = match channel_data {
            Some(data) => format!("{socket_id}:{channel}:{data}"),
            None => format!("{socket_id}:{channel}"),
        };
        format!("{KEY}:{}", sign(&signed))
    } else {
        String::new()
    };
    let mut data = json!({"auth": auth, "channel": channel});
    if let Some(channel_data) = channel_data {
        data["channel_data"] = json!(channel_data);
    }
    json!({"event": "pusher:subscribe", "data": data})
}

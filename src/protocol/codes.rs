//! Pusher error and close codes (spec §2.6), and the one mapping from a socket error to what the client sees.
//! Pure: no IO.

use super::channel::ChannelNameError;

pub const SSL_ONLY: u16 = 4000;
pub const APP_NOT_FOUND: u16 = 4001;
pub const APP_DISABLED: u16 = 4003;
pub const APP_OVER_QUOTA: u16 = 4004;
pub const PATH_NOT_FOUND: u16 = 4005;
pub const INVALID_VERSION_FORMAT: u16 = 4006;
pub const UNSUPPORTED_PROTOCOL: u16 = 4007;
pub const NO_PROTOCOL: u16 = 4008;
pub const UNAUTHORIZED: u16 = 4009;
pub const OVER_CAPACITY: u16 = 4100;
pub const RECONNECT: u16 = 4200;
pub const PONG_NOT_RECEIVED: u16 = 4201;
pub const CLIENT_EVENT_RATE_LIMIT: u16 = 4301;
pub const WATCHLIST_LIMIT: u16 = 4302;
/// WebSocket "message too big": frames over the size cap (spec §2.5).
pub const MESSAGE_TOO_BIG: u16 = 1009;

/// Everything that can go wrong on a socket, with the data needed to explain it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SocketError {
    #[error("Path not found")]
    PathNotFound,
    #[error("App key {0} does not exist in this cluster.")]
    UnknownAppKey(String),
    #[error("Application disabled")]
    AppDisabled,
    #[error("Application is over connection quota")]
    OverQuota,
    #[error("Over capacity")]
    OverCapacity,
    #[error("No protocol version supplied")]
    NoProtocol,
    #[error("Invalid version string format")]
    InvalidProtocol(String),
    #[error("Unsupported protocol version")]
    UnsupportedProtocol(u32),
    #[error("Connection not authorized within timeout")]
    NotAuthorizedInTime,
    #[error("You got disconnected by the app.")]
    TerminatedByApp,
    #[error("Server is shutting down; reconnect")]
    ShuttingDown,
    #[error("Pong reply not received")]
    PongTimeout,
    #[error("Connection could not keep up with its messages")]
    SlowConsumer,
    #[error("Message exceeds the size limit of {limit} bytes")]
    FrameTooLarge { limit: usize },

    #[error("Invalid message: {0}")]
    InvalidMessage(String),
    #[error("Unsupported event received on socket {0}")]
    UnsupportedEvent(String),
    #[error("Invalid channel name: {0}")]
    InvalidChannel(ChannelNameError),
    #[error("Existing subscription to channel {0}")]
    ExistingSubscription(String),
    #[error("Invalid key in subscription auth data: '{0}'")]
    InvalidAuthKey(String),
    #[error("Invalid signature: Expected HMAC SHA256 hex digest of {signed}, but got {got}")]
    InvalidSignature { signed: String, got: String },
    #[error("Invalid presence channel_data: {0}")]
    InvalidChannelData(String),
    #[error("Presence user id is {length} characters long; the limit is {limit}")]
    UserIdTooLong { length: usize, limit: usize },
    #[error("Presence user data is {size} bytes; the limit is {limit}")]
    UserDataTooLarge { size: usize, limit: usize },
    #[error("Presence channel {channel} is full: it has {limit} members")]
    PresenceFull { channel: String, limit: usize },
    #[error("Only the user {owner} may subscribe to {channel}")]
    UserChannelForbidden { channel: String, owner: String },
    #[error(
        "To send client events, you must enable this feature in the Settings page of your dashboard."
    )]
    ClientEventsDisabled,
    #[error("Client events are only allowed on private and presence channels, not on {0}")]
    ClientEventChannel(String),
    #[error("Client event rejected: not subscribed to channel {0}")]
    ClientEventNotSubscribed(String),
    #[error("Client event data is {size} bytes; the limit is {limit}")]
    ClientEventTooLarge { size: usize, limit: usize },
    #[error("Event name is {length} characters long; the limit is {limit}")]
    EventNameTooLong { length: usize, limit: usize },
    #[error("Client event rejected due to rate limit")]
    ClientEventRateLimited,
    #[error("Sign-in failed: {0}")]
    SigninFailed(String),
    /// A failed sign-in on an app that requires authorized connections: the socket is closed.
    #[error("Connection is unauthorized: {0}")]
    Unauthorized(String),
    #[error("Watchlist limit exceeded; only the first {limit} user ids were accepted")]
    WatchlistTruncated { limit: usize },
}

/// What the client is told: an error frame on an open connection, or an error frame then a close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// `pusher:error` with this code (`None` serializes as `null`, as hosted Pusher does); the socket stays open.
    Error { code: Option<u16> },
    /// `pusher:error` with this code, then a Close frame with the same code.
    Close { code: u16 },
}

impl SocketError {
    /// The one place that decides which code a failure carries and whether the socket closes.
    pub fn reaction(&self) -> Reaction {
        use SocketError::*;
        let close = |code| Reaction::Close { code };
        let error = |code| Reaction::Error { code };
        match self {
            PathNotFound => close(PATH_NOT_FOUND),
            UnknownAppKey(_) => close(APP_NOT_FOUND),
            AppDisabled => close(APP_DISABLED),
            OverQuota => close(APP_OVER_QUOTA),
            OverCapacity | SlowConsumer => close(OVER_CAPACITY),
            NoProtocol => close(NO_PROTOCOL),
            InvalidProtocol(_) => close(INVALID_VERSION_FORMAT),
            UnsupportedProtocol(_) => close(UNSUPPORTED_PROTOCOL),
            NotAuthorizedInTime | TerminatedByApp | Unauthorized(_) => close(UNAUTHORIZED),
            ShuttingDown => close(RECONNECT),
            PongTimeout => close(PONG_NOT_RECEIVED),
            FrameTooLarge { .. } => close(MESSAGE_TOO_BIG),
            ClientEventRateLimited => error(Some(CLIENT_EVENT_RATE_LIMIT)),
            WatchlistTruncated { .. } => error(Some(WATCHLIST_LIMIT)),
            SigninFailed(_) => error(Some(UNAUTHORIZED)),
            InvalidMessage(_)
            | UnsupportedEvent(_)
            | InvalidChannel(_)
            | ExistingSubscription(_)
            | InvalidAuthKey(_)
            | InvalidSignature { .. }
            | InvalidChannelData(_)
            | UserIdTooLong { .. }
            | UserDataTooLarge { .. }
            | PresenceFull { .. }
            | UserChannelForbidden { .. }
            | ClientEventsDisabled
            | ClientEventChannel(_)
            | ClientEventNotSubscribed(_)
            | ClientEventTooLarge { .. }
            | EventNameTooLong { .. } => error(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(error: SocketError, reaction: Reaction, message: &str) {
        assert_eq!(error.reaction(), reaction, "{error:?}");
        assert_eq!(error.to_string(), message);
    }

    #[test]
    fn connection_failures_close_with_the_spec_codes() {
        let close = |code| Reaction::Close { code };
        check(
            SocketError::UnknownAppKey("nope".into()),
            close(4001),
            "App key nope does not exist in this cluster.",
        );
        check(
            SocketError::AppDisabled,
            close(4003),
            "Application disabled",
        );
        check(
            SocketError::OverQuota,
            close(4004),
            "Application is over connection quota",
        );
        check(SocketError::PathNotFound, close(4005), "Path not found");
        check(
            SocketError::InvalidProtocol("x".into()),
            close(4006),
            "Invalid version string format",
        );
        check(
            SocketError::UnsupportedProtocol(3),
            close(4007),
            "Unsupported protocol version",
        );
        check(
            SocketError::NoProtocol,
            close(4008),
            "No protocol version supplied",
        );
        check(
            SocketError::TerminatedByApp,
            close(4009),
            "You got disconnected by the app.",
        );
        check(
            SocketError::SlowConsumer,
            close(4100),
            "Connection could not keep up with its messages",
        );
        check(
            SocketError::PongTimeout,
            close(4201),
            "Pong reply not received",
        );
    }

    #[test]
    fn subscription_failures_keep_the_socket_open_with_null_code() {
        check(
            SocketError::InvalidSignature {
                signed: "1.2:private-a".into(),
                got: "deadbeef".into(),
            },
            Reaction::Error { code: None },
            "Invalid signature: Expected HMAC SHA256 hex digest of 1.2:private-a, but got deadbeef",
        );
        check(
            SocketError::InvalidAuthKey("other".into()),
            Reaction::Error { code: None },
            "Invalid key in subscription auth data: 'other'",
        );
        check(
            SocketError::ExistingSubscription("a".into()),
            Reaction::Error { code: None },
            "Existing subscription to channel a",
        );
        check(
            SocketError::ClientEventRateLimited,
            Reaction::Error { code: Some(4301) },
            "Client event rejected due to rate limit",
        );
    }
}

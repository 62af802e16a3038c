//! The Pusher wire protocol: names, ids, codes, and the frames both sides send.
//! Pure: no IO; every Pusher event string lives here.

pub mod channel;
pub mod client;
pub mod codes;
pub mod frames;
pub mod socket_id;
pub mod user;

pub use channel::{ChannelKind, ChannelName, ChannelNameError};
pub use client::{ClientMessage, ParseError, Subscribe};
pub use codes::{Reaction, SocketError};
pub use socket_id::{SocketId, SocketIdError};
pub use user::{Member, SignedInUser, UserId};

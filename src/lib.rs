//! Herald: a self-hosted, Pusher Channels–compatible real-time server.
//!
//! Apps publish events with signed HTTP calls; browsers and apps subscribed over WebSocket receive them.
//! The wire contract is the Pusher protocol (pusher-js 7/8, the official server SDKs), unchanged.
//!
//! # Code map, in reading order
//!
//! - [`protocol`]: Pusher wire types: channel names and kinds, socket ids, user ids, client frames,
//!   server frames, and the error/close codes. Pure.
//! - [`app`]: an app's credentials, switches and limits, looked up by id or key.
//! - [`auth`]: HMAC signatures for channel auth, sign-in, REST requests and webhooks. Pure; "now" is a parameter.
//! - [`config`]: defaults, then a TOML file, then `HERALD__…` variables, validated once into [`config::Config`].
//! - [`registry`]: this node's sockets, channel members, presence, signed-in users, cache events. No IO.
//! - [`metrics`]: metric handles and the Prometheus exposition.
//! - [`salesforce`]: the Outbound Messaging SOAP message, its mapping to events, `Ack` and faults. Pure.
//! - [`adapter`]: the fan-out seam. [`adapter::Adapter`] is implemented by the local adapter (one node).
//! - [`webhooks`]: webhook events, the grace window, batching, the durable outbox and the sender.
//! - [`ws`]: the `/app/{key}` upgrade, connection checks, and one session task per socket.
//! - [`http`]: the signed REST API and the probes; `http::error` is where statuses are chosen.
//! - [`server`]: the composition root: shared state, routes, drain on shutdown.
//!
//! # Invariants
//!
//! - **Invariant:** a broadcast is serialized once; every recipient's queue holds the same shared bytes.
//! - **Invariant:** every frame to a socket goes through its bounded [`registry::Outbox`]; a socket whose
//!   queue overflows is closed with 4100 instead of growing memory.
//! - **Invariant:** registry locks are `std::sync` locks held briefly and never across `.await`; fan-out
//!   takes only the published channel's read lock, never a global one.
//! - **Invariant:** all fan-out goes through [`adapter::Adapter::publish`], and every REST query asks the
//!   adapter, so answers stay cluster-wide behind the same seam.
//! - **Invariant:** socket failures become client-visible errors in one place
//!   ([`protocol::SocketError::reaction`]); REST failures in one place (`http::error::ApiError`).
//! - **Invariant:** nothing a client sends can panic the server; signatures are checked on the exact bytes
//!   received, in constant time.

pub mod protocol;

pub mod app;
pub mod metrics;

pub mod auth;
pub mod config;

pub mod registry;
pub mod salesforce;

pub mod adapter;
pub mod webhooks;

pub mod http;
pub mod ws;

pub mod server;

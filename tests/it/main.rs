//! Integration tests: the real server on an ephemeral port, driven over the wire.
//!
//! - `connection`: the connection-time checks and close codes, ping/pong, idle timeout, frame limits
//! - `channels`: subscribe/unsubscribe for every channel type, signatures, name rules
//! - `presence`: member lists, join/leave events across several sockets per user, limits
//! - `client_events`: relay rules, rate limit, size limit
//! - `cluster`: several nodes over a real Redis (and a Redis Cluster), dead nodes, Redis outages
//! - `cache`: cache channels and `pusher:cache_miss`
//! - `users`: sign-in, the user channel, watchlists, terminate_connections, authorized connections
//! - `rest`: every REST endpoint and error status, signatures as the SDKs make them
//! - `lifecycle`: probes, drain on shutdown, slow consumers, static files
//! - `salesforce`: the Outbound Messaging bridge, replayed from the fixtures
//! - `webhooks`: every webhook event, the grace window, outages, restarts, dead letters, operator API

mod support;

mod cache;
mod channels;
mod client_events;
mod cluster;
mod connection;
mod lifecycle;
mod presence;
mod rest;
mod salesforce;
mod users;
mod webhooks;

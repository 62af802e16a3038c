//! Configuration: built-in defaults, then an optional TOML file, then `HERALD__SECTION__KEY` variables,
//! read into `RawConfig` and validated once into `Config`. A bad key or value names itself in the error.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use ipnet::IpNet;

mod raw;

pub use raw::*;

use crate::{
    app::{App, Limits, OutboundBridge, WebhookTarget},
    protocol::ChannelName,
    salesforce::ObjectMapping,
};

/// The development app used when no app is configured; `main` warns loudly when it is in use.
pub const DEV_APP: (&str, &str, &str) = ("1", "app-key", "app-secret");

/// Why the configuration could not be used; each variant names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Source(#[from] config::ConfigError),
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// Validated settings for the listener and the sockets.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub host: IpAddr,
    pub port: u16,
    /// Mount point for both the WebSocket and the REST API, e.g. `/pusher`; empty for none.
    pub path_prefix: String,
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    pub shutdown_timeout: Duration,
    /// Open sockets allowed on this node; `None` is unlimited. Over it, new sockets get 4100.
    pub max_connections: Option<usize>,
    /// Silence after which the server pings a client; sent to clients as `activity_timeout`.
    pub activity_timeout: Duration,
    /// How long a pinged client has to answer before it is closed with 4201.
    pub pong_timeout: Duration,
    /// Largest WebSocket frame accepted; larger ones close the socket with 1009.
    pub max_frame_bytes: usize,
    /// Bytes that may wait for one socket; a socket over it is a slow consumer and is closed with 4100.
    pub outbound_queue_bytes: usize,
    /// A socket written to more often than this waits out the interval, so that the frames queued
    /// meanwhile go out in one write (see `WritePacer`); zero writes every frame at once.
    pub write_batch_interval: Duration,
    /// Largest REST request body accepted (413 beyond).
    pub max_request_bytes: usize,
    /// Accepted clock skew of `auth_timestamp` (spec §9.2).
    pub timestamp_window: Duration,
    /// How long an `Idempotency-Key` on a publish is remembered.
    pub idempotency_ttl: Duration,
    /// Take the client address from `X-Forwarded-For` (behind a trusted proxy) for IP allow-lists.
    pub trust_forwarded_for: bool,
}

/// Which adapter serves fan-out and cluster-wide state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdapterConfig {
    /// One node, in-process.
    Local,
    /// Several nodes sharing a Redis (or a Redis Cluster).
    Redis(RedisConfig),
}

/// Settings for the Redis adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisConfig {
    /// Where Redis is: one URL for a single Redis, several for the seed nodes of a Redis Cluster.
    pub target: RedisTarget,
    /// Prefix of every key and channel, so several Herald clusters can share one Redis.
    pub key_prefix: String,
    /// How often a node announces it is alive and looks for dead nodes.
    pub heartbeat_interval: Duration,
    /// A node silent this long is dead: its sockets leave presence lists and counts.
    pub node_timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    Single(String),
    Cluster(Vec<String>),
}

/// Settings shared by every app's webhooks (spec §10).
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// The embedded outbox file (single node).
    pub store_path: PathBuf,
    pub request_timeout: Duration,
    /// A delivery still failing this long after it was produced goes to the dead letters.
    pub max_age: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Delay before `channel_vacated` and `member_removed`, cancelled by a quick return (spec §10.2).
    pub grace: Duration,
    /// With batching on, events are gathered this long, up to `batch_max_events`, per request.
    pub batch_interval: Duration,
    pub batch_max_events: usize,
}

/// A static directory Herald serves (off unless `static.dir` is set), e.g. the live offers page.
#[derive(Clone, Debug)]
pub struct StaticConfig {
    pub dir: PathBuf,
    /// URL path the directory is served under, e.g. `/offers`.
    pub mount: String,
    /// Connection settings handed to the page as `{mount}/herald-config.js`, so the page is never edited.
    pub client: PageClient,
}

/// What a served page needs to connect: empty host and port 0 mean "the page's own".
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageClient {
    pub app_key: String,
    pub ws_host: String,
    pub ws_port: u16,
    /// Named as pusher-js's option is.
    #[serde(rename = "forceTLS")]
    pub force_tls: bool,
    /// The server's `path_prefix`, for pusher-js's `wsPath`.
    pub ws_path: String,
    pub channel: String,
    pub event: String,
}

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub adapter: AdapterConfig,
    pub log_level: String,
    pub webhooks: WebhookConfig,
    pub static_files: Option<StaticConfig>,
    pub apps: Vec<App>,
    /// True when no app was configured and the development app is in use.
    pub dev_credentials: bool,
}

impl Config {
    /// Reads defaults, then `file` if given, then the environment (`HERALD__…` and `PORT`).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_from(file, std::env::vars())
    }

    /// As `load`, with the environment given explicitly (tests pass their own).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            let path: PathBuf = path.into();
            if !path.exists() {
                return Err(invalid(
                    "--config",
                    format!("file {} does not exist", path.display()),
                ));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let herald_vars: config::Map<String, String> = env
            .iter()
            .filter(|(name, _)| name.starts_with("HERALD__"))
            .cloned()
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("HERALD")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(herald_vars)),
        );
        if let Some((_, port)) = env.iter().find(|(name, _)| name == "PORT") {
            let port: u16 = port
                .parse()
                .map_err(|_| invalid("PORT", format!("{port:?} is not a port number")))?;
            builder = builder.set_override("server.port", i64::from(port))?;
        }
        let raw: RawConfig = builder.build()?.try_deserialize()?;
        Config::from_raw(raw)
    }

    /// Parses a TOML document on its own (no environment), e.g. the example config in tests.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        Config::from_raw(raw)
    }

    /// All validation, once: durations, addresses, unique keys, sane limits.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let server = server_config(raw.server)?;
        let mut apps = Vec::new();
        let mut keys = HashSet::new();
        for (id, raw_app) in raw.apps {
            let app = app_config(&id, raw_app)?;
            if !keys.insert(app.key.clone()) {
                return Err(invalid(
                    format!("apps.{id}.key"),
                    format!("key {:?} is used by another app", app.key),
                ));
            }
            apps.push(app);
        }
        let dev_credentials = apps.is_empty();
        if dev_credentials {
            let (id, key, secret) = DEV_APP;
            let mut app = App::new(id, key, secret);
            app.client_events = true;
            app.subscription_count = true;
            app.watchlist_events = true;
            apps.push(app);
        }
        let static_files = static_config(raw.static_files, &server, &apps)?;
        Ok(Config {
            server,
            adapter: adapter_config(raw.adapter)?,
            log_level: raw.log.level,
            webhooks: webhook_config(raw.webhooks)?,
            static_files,
            apps,
            dev_credentials,
        })
    }
}

fn adapter_config(raw: RawAdapter) -> Result<AdapterConfig, ConfigError> {
    match raw.driver.as_str() {
        "local" => return Ok(AdapterConfig::Local),
        "redis" => {}
        other => {
            return Err(invalid(
                "adapter.driver",
                format!("{other:?} is not an adapter; use \"local\" or \"redis\""),
            ));
        }
    }
    let check_url = |key: &str, url: &str| {
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(())
        } else {
            Err(invalid(key, format!("{url:?} is not a redis:// URL")))
        }
    };
    let target = match (raw.redis_url.is_empty(), raw.redis_cluster_urls.is_empty()) {
        (false, true) => {
            check_url("adapter.redis_url", &raw.redis_url)?;
            RedisTarget::Single(raw.redis_url)
        }
        (true, false) => {
            for url in &raw.redis_cluster_urls {
                check_url("adapter.redis_cluster_urls", url)?;
            }
            RedisTarget::Cluster(raw.redis_cluster_urls)
        }
        (true, true) => {
            return Err(invalid(
                "adapter.redis_url",
                "the redis adapter needs redis_url (or redis_cluster_urls for a Redis Cluster)",
            ));
        }
        (false, false) => {
            return Err(invalid(
                "adapter.redis_cluster_urls",
                "set either redis_url or redis_cluster_urls, not both",
            ));
        }
    };
    if raw.key_prefix.is_empty() || raw.key_prefix.contains(['{', '}', ' ', '\n']) {
        return Err(invalid(
            "adapter.key_prefix",
            "must be non-empty, without braces, spaces or newlines",
        ));
    }
    let heartbeat_interval = duration("adapter.heartbeat_interval", &raw.heartbeat_interval)?;
    let node_timeout = duration("adapter.node_timeout", &raw.node_timeout)?;
    if node_timeout < heartbeat_interval * 2 {
        return Err(invalid(
            "adapter.node_timeout",
            "must be at least twice heartbeat_interval, or live nodes would be taken for dead",
        ));
    }
    Ok(AdapterConfig::Redis(RedisConfig {
        target,
        key_prefix: raw.key_prefix,
        heartbeat_interval,
        node_timeout,
    }))
}

fn webhook_config(raw: RawWebhooks) -> Result<WebhookConfig, ConfigError> {
    if raw.store.is_empty() {
        return Err(invalid(
            "webhooks.store",
            "must name a file for the webhook outbox",
        ));
    }
    let grace = duration("webhooks.grace", &raw.grace)?;
    Ok(WebhookConfig {
        store_path: PathBuf::from(raw.store),
        request_timeout: duration("webhooks.request_timeout", &raw.request_timeout)?,
        max_age: duration("webhooks.max_age", &raw.max_age)?,
        initial_backoff: duration("webhooks.initial_backoff", &raw.initial_backoff)?,
        max_backoff: duration("webhooks.max_backoff", &raw.max_backoff)?,
        grace,
        batch_interval: duration("webhooks.batch_interval", &raw.batch_interval)?,
        batch_max_events: positive("webhooks.batch_max_events", raw.batch_max_events)?,
    })
}

fn static_config(
    raw: RawStatic,
    server: &ServerConfig,
    apps: &[App],
) -> Result<Option<StaticConfig>, ConfigError> {
    if raw.dir.is_empty() {
        return Ok(None);
    }
    let dir = PathBuf::from(&raw.dir);
    if !dir.is_dir() {
        return Err(invalid(
            "static.dir",
            format!("{} is not a directory", dir.display()),
        ));
    }
    let mount = raw.mount.trim_end_matches('/').to_owned();
    if !mount.starts_with('/') {
        return Err(invalid(
            "static.mount",
            "must start with '/' and name a path below the root",
        ));
    }
    let app_key = if raw.client.app_key.is_empty() {
        apps[0].key.clone()
    } else if apps.iter().any(|app| app.key == raw.client.app_key) {
        raw.client.app_key
    } else {
        return Err(invalid(
            "static.client.app_key",
            format!(
                "{:?} is not the key of a configured app",
                raw.client.app_key
            ),
        ));
    };
    Ok(Some(StaticConfig {
        dir,
        mount,
        client: PageClient {
            app_key,
            ws_host: raw.client.ws_host,
            ws_port: raw.client.ws_port,
            force_tls: raw.client.force_tls,
            ws_path: server.path_prefix.clone(),
            channel: raw.client.channel,
            event: raw.client.event,
        },
    }))
}

fn duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text).map_err(|e| {
        invalid(
            key,
            format!("{text:?} is not a duration like \"30s\" or \"5m\" ({e})"),
        )
    })
}

fn positive(key: &str, value: usize) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(invalid(key, "must be greater than 0"));
    }
    Ok(value)
}

fn server_config(raw: RawServer) -> Result<ServerConfig, ConfigError> {
    let host = raw.host.parse().map_err(|_| {
        invalid(
            "server.host",
            format!("{:?} is not an IP address", raw.host),
        )
    })?;
    let path_prefix = raw.path_prefix.trim_end_matches('/').to_owned();
    if !path_prefix.is_empty() && !path_prefix.starts_with('/') {
        return Err(invalid("server.path_prefix", "must start with '/'"));
    }
    let activity_timeout = duration("server.activity_timeout", &raw.activity_timeout)?;
    if activity_timeout.as_secs() == 0 {
        return Err(invalid(
            "server.activity_timeout",
            "must be at least 1s: pusher-js refuses a zero activity_timeout",
        ));
    }
    Ok(ServerConfig {
        host,
        port: raw.port,
        path_prefix,
        workers: raw.workers,
        shutdown_timeout: duration("server.shutdown_timeout", &raw.shutdown_timeout)?,
        max_connections: (raw.max_connections > 0).then_some(raw.max_connections),
        activity_timeout,
        pong_timeout: duration("server.pong_timeout", &raw.pong_timeout)?,
        max_frame_bytes: positive("server.max_frame_bytes", raw.max_frame_bytes)?,
        outbound_queue_bytes: positive("server.outbound_queue_bytes", raw.outbound_queue_bytes)?,
        write_batch_interval: duration("server.write_batch_interval", &raw.write_batch_interval)?,
        max_request_bytes: positive("server.max_request_bytes", raw.max_request_bytes)?,
        timestamp_window: duration("server.timestamp_window", &raw.timestamp_window)?,
        idempotency_ttl: duration("server.idempotency_ttl", &raw.idempotency_ttl)?,
        trust_forwarded_for: raw.trust_forwarded_for,
    })
}

fn app_config(id: &str, raw: RawApp) -> Result<App, ConfigError> {
    let key_of = |field: &str| format!("apps.{id}.{field}");
    if raw.key.is_empty() {
        return Err(invalid(key_of("key"), "must not be empty"));
    }
    if raw.secret.is_empty() {
        return Err(invalid(key_of("secret"), "must not be empty"));
    }
    if raw.key.contains(['/', '?', '#', ':']) {
        return Err(invalid(
            key_of("key"),
            "must not contain '/', '?', '#' or ':'",
        ));
    }
    let mut app = App::new(id, &raw.key, &raw.secret);
    app.enabled = raw.enabled;
    app.client_events = raw.client_events;
    app.require_authorization = raw.require_authorization;
    app.authorization_timeout =
        duration(&key_of("authorization_timeout"), &raw.authorization_timeout)?;
    app.subscription_count = raw.subscription_count;
    app.watchlist_events = raw.watchlist_events;
    app.max_connections = (raw.max_connections > 0).then_some(raw.max_connections);
    app.limits = limits(id, raw.limits)?;
    if let Some(index) = raw.bearer_tokens.iter().position(|token| token.len() < 16) {
        return Err(invalid(
            key_of(&format!("bearer_tokens[{index}]")),
            "a bearer token must be at least 16 characters; use a long random string",
        ));
    }
    app.bearer_token_digests = raw
        .bearer_tokens
        .iter()
        .map(|token| crate::auth::token_digest(token))
        .collect();
    app.outbound = raw
        .salesforce
        .map(|bridge| outbound_bridge(&key_of("salesforce"), bridge, &app.limits))
        .transpose()?;
    app.webhook_batching = raw.webhook_batching;
    app.webhooks = raw
        .webhooks
        .into_iter()
        .enumerate()
        .map(|(index, hook)| webhook(&key_of(&format!("webhooks[{index}]")), hook))
        .collect::<Result<_, _>>()?;
    Ok(app)
}

fn outbound_bridge(
    key: &str,
    raw: RawSalesforce,
    limits: &Limits,
) -> Result<OutboundBridge, ConfigError> {
    if raw.token.len() < 16 {
        return Err(invalid(
            format!("{key}.token"),
            "must be at least 16 characters; use a long random string",
        ));
    }
    if raw.organization_ids.is_empty() {
        return Err(invalid(
            format!("{key}.organization_ids"),
            "list the Salesforce organization ids allowed to send",
        ));
    }
    if let Some(bad) = raw
        .organization_ids
        .iter()
        .find(|id| !(id.len() == 15 || id.len() == 18))
    {
        return Err(invalid(
            format!("{key}.organization_ids"),
            format!("{bad:?} is not a 15- or 18-character id"),
        ));
    }
    let allowed_ips = raw
        .allowed_ips
        .iter()
        .map(|text| {
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    invalid(
                        format!("{key}.allowed_ips"),
                        format!("{text:?} is not an address or CIDR network"),
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    if raw.objects.is_empty() {
        return Err(invalid(
            format!("{key}.objects"),
            "map at least one sObject type to a channel and event",
        ));
    }
    let mut objects = HashMap::new();
    for (object, mapping) in raw.objects {
        let object_key = format!("{key}.objects.{object}");
        ChannelName::parse(&mapping.channel, limits.max_channel_name_length)
            .map_err(|e| invalid(format!("{object_key}.channel"), e.to_string()))?;
        if mapping.event.is_empty() || mapping.event.starts_with("pusher") {
            return Err(invalid(
                format!("{object_key}.event"),
                "must be a non-empty, non-reserved event name",
            ));
        }
        objects.insert(
            object,
            ObjectMapping {
                channel: mapping.channel,
                event: mapping.event,
                text_field: mapping.text_field,
                description_field: (!mapping.description_field.is_empty())
                    .then_some(mapping.description_field),
            },
        );
    }
    Ok(OutboundBridge {
        token_digest: crate::auth::token_digest(&raw.token),
        organization_ids: raw.organization_ids,
        allowed_ips,
        objects,
    })
}

fn limits(id: &str, raw: RawLimits) -> Result<Limits, ConfigError> {
    let defaults = Limits::default();
    let key = |field: &str| format!("apps.{id}.limits.{field}");
    let size = |field: &str, value: Option<usize>, default: usize| match value {
        Some(value) => positive(&key(field), value),
        None => Ok(default),
    };
    Ok(Limits {
        max_event_data_bytes: size(
            "max_event_data_bytes",
            raw.max_event_data_bytes,
            defaults.max_event_data_bytes,
        )?,
        max_channel_name_length: size(
            "max_channel_name_length",
            raw.max_channel_name_length,
            defaults.max_channel_name_length,
        )?,
        max_event_name_length: size(
            "max_event_name_length",
            raw.max_event_name_length,
            defaults.max_event_name_length,
        )?,
        max_channels_per_event: size(
            "max_channels_per_event",
            raw.max_channels_per_event,
            defaults.max_channels_per_event,
        )?,
        max_batch_events: size(
            "max_batch_events",
            raw.max_batch_events,
            defaults.max_batch_events,
        )?,
        max_presence_members: size(
            "max_presence_members",
            raw.max_presence_members,
            defaults.max_presence_members,
        )?,
        max_presence_user_bytes: size(
            "max_presence_user_bytes",
            raw.max_presence_user_bytes,
            defaults.max_presence_user_bytes,
        )?,
        max_presence_user_id_length: size(
            "max_presence_user_id_length",
            raw.max_presence_user_id_length,
            defaults.max_presence_user_id_length,
        )?,
        client_events_per_second: match raw.client_events_per_second {
            Some(0) => {
                return Err(invalid(
                    key("client_events_per_second"),
                    "must be greater than 0",
                ));
            }
            Some(rate) => rate,
            None => defaults.client_events_per_second,
        },
        max_watchlist: size("max_watchlist", raw.max_watchlist, defaults.max_watchlist)?,
        cache_ttl: match raw.cache_ttl {
            Some(text) => duration(&key("cache_ttl"), &text)?,
            None => defaults.cache_ttl,
        },
    })
}

fn webhook(key: &str, raw: RawWebhook) -> Result<WebhookTarget, ConfigError> {
    if !(raw.url.starts_with("http://") || raw.url.starts_with("https://")) {
        return Err(invalid(
            format!("{key}.url"),
            format!("{:?} is not an http(s) URL", raw.url),
        ));
    }
    const KNOWN: [&str; 7] = [
        "channel_occupied",
        "channel_vacated",
        "member_added",
        "member_removed",
        "client_event",
        "cache_miss",
        "subscription_count",
    ];
    if let Some(unknown) = raw
        .events
        .iter()
        .find(|name| !KNOWN.contains(&name.as_str()))
    {
        return Err(invalid(
            format!("{key}.events"),
            format!(
                "unknown webhook event {unknown:?}; known: {}",
                KNOWN.join(", ")
            ),
        ));
    }
    Ok(WebhookTarget {
        url: raw.url,
        events: raw.events,
        headers: raw.headers.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests;

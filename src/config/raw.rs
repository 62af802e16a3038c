//! The configuration as written: every section and key of the TOML file (and of the
//! `HERALD__SECTION__KEY` variables) with its built-in default, before any validation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: RawServer,
    pub adapter: RawAdapter,
    pub log: RawLog,
    pub webhooks: RawWebhooks,
    #[serde(rename = "static")]
    pub static_files: RawStatic,
    pub apps: BTreeMap<String, RawApp>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdapter {
    pub driver: String,
    pub redis_url: String,
    pub redis_cluster_urls: Vec<String>,
    pub key_prefix: String,
    pub heartbeat_interval: String,
    pub node_timeout: String,
}

impl Default for RawAdapter {
    fn default() -> RawAdapter {
        RawAdapter {
            driver: "local".into(),
            redis_url: String::new(),
            redis_cluster_urls: Vec::new(),
            key_prefix: "herald".into(),
            heartbeat_interval: "2s".into(),
            node_timeout: "10s".into(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebhooks {
    pub store: String,
    pub request_timeout: String,
    pub max_age: String,
    pub initial_backoff: String,
    pub max_backoff: String,
    pub grace: String,
    pub batch_interval: String,
    pub batch_max_events: usize,
}

impl Default for RawWebhooks {
    fn default() -> RawWebhooks {
        RawWebhooks {
            store: "herald-data/webhooks.redb".into(),
            request_timeout: "10s".into(),
            max_age: "24h".into(),
            initial_backoff: "1s".into(),
            max_backoff: "5m".into(),
            grace: "3s".into(),
            batch_interval: "50ms".into(),
            batch_max_events: 100,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStatic {
    pub dir: String,
    pub mount: String,
    pub client: RawPageClient,
}

impl Default for RawStatic {
    fn default() -> RawStatic {
        RawStatic {
            dir: String::new(),
            mount: "/offers".into(),
            client: RawPageClient::default(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPageClient {
    pub app_key: String,
    pub ws_host: String,
    pub ws_port: u16,
    pub force_tls: bool,
    pub channel: String,
    pub event: String,
}

impl Default for RawPageClient {
    fn default() -> RawPageClient {
        RawPageClient {
            app_key: String::new(),
            ws_host: String::new(),
            ws_port: 0,
            force_tls: false,
            channel: "offers".into(),
            event: "new_offer".into(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub host: String,
    pub port: u16,
    pub path_prefix: String,
    pub workers: usize,
    pub shutdown_timeout: String,
    pub max_connections: usize,
    pub activity_timeout: String,
    pub pong_timeout: String,
    pub max_frame_bytes: usize,
    pub outbound_queue_bytes: usize,
    pub write_batch_interval: String,
    pub max_request_bytes: usize,
    pub timestamp_window: String,
    pub idempotency_ttl: String,
    pub trust_forwarded_for: bool,
}

impl Default for RawServer {
    fn default() -> RawServer {
        RawServer {
            host: "0.0.0.0".into(),
            port: 6001,
            path_prefix: String::new(),
            workers: 0,
            shutdown_timeout: "10s".into(),
            max_connections: 0,
            activity_timeout: "120s".into(),
            pong_timeout: "30s".into(),
            max_frame_bytes: 64 * 1024,
            outbound_queue_bytes: 1024 * 1024,
            write_batch_interval: "0s".into(),
            max_request_bytes: 1024 * 1024,
            timestamp_window: "600s".into(),
            idempotency_ttl: "24h".into(),
            trust_forwarded_for: false,
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub level: String,
}

impl Default for RawLog {
    fn default() -> RawLog {
        RawLog {
            level: "info".into(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub key: String,
    pub secret: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub client_events: bool,
    #[serde(default)]
    pub require_authorization: bool,
    #[serde(default = "default_authorization_timeout")]
    pub authorization_timeout: String,
    #[serde(default)]
    pub subscription_count: bool,
    #[serde(default)]
    pub watchlist_events: bool,
    #[serde(default)]
    pub max_connections: usize,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
    #[serde(default)]
    pub webhook_batching: bool,
    #[serde(default)]
    pub bearer_tokens: Vec<String>,
    #[serde(default)]
    pub salesforce: Option<RawSalesforce>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSalesforce {
    pub token: String,
    pub organization_ids: Vec<String>,
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    pub objects: BTreeMap<String, RawObjectMapping>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawObjectMapping {
    pub channel: String,
    pub event: String,
    #[serde(default = "default_text_field")]
    pub text_field: String,
    #[serde(default)]
    pub description_field: String,
}

fn default_text_field() -> String {
    "Name".into()
}

fn yes() -> bool {
    true
}

fn default_authorization_timeout() -> String {
    "30s".into()
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    pub max_event_data_bytes: Option<usize>,
    pub max_channel_name_length: Option<usize>,
    pub max_event_name_length: Option<usize>,
    pub max_channels_per_event: Option<usize>,
    pub max_batch_events: Option<usize>,
    pub max_presence_members: Option<usize>,
    pub max_presence_user_bytes: Option<usize>,
    pub max_presence_user_id_length: Option<usize>,
    pub client_events_per_second: Option<u32>,
    pub max_watchlist: Option<usize>,
    pub cache_ttl: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

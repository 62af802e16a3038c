//! Apps: the id/key/secret triple, per-app switches and limits, and lookups by id and key (spec §1, §11).

use std::{collections::HashMap, fmt, sync::Arc, time::Duration};

use ipnet::IpNet;

use crate::salesforce::ObjectMapping;

/// The app id used in REST paths (`/apps/{id}/…`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AppId(Arc<str>);

impl AppId {
    pub fn new(id: &str) -> AppId {
        AppId(Arc::from(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Per-app limits; the defaults are hosted Pusher's (spec §11).
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Bytes of `data` in one event, from the HTTP API or a client (10 KB).
    pub max_event_data_bytes: usize,
    /// Characters in a channel name (200, what every SDK allows; hosted docs say 164).
    pub max_channel_name_length: usize,
    /// Characters in an event name (200).
    pub max_event_name_length: usize,
    /// Channels in one `POST /events` (100).
    pub max_channels_per_event: usize,
    /// Events in one `POST /batch_events` (10).
    pub max_batch_events: usize,
    /// Distinct users in one presence channel (100).
    pub max_presence_members: usize,
    /// Bytes of a presence member's `channel_data` (1 KB).
    pub max_presence_user_bytes: usize,
    /// Characters in a presence user id (128).
    pub max_presence_user_id_length: usize,
    /// Client events one connection may send per second (10).
    pub client_events_per_second: u32,
    /// Watched user ids accepted at sign-in (100).
    pub max_watchlist: usize,
    /// How long a cache channel keeps its last event (30 minutes).
    pub cache_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_event_data_bytes: 10 * 1024,
            max_channel_name_length: 200,
            max_event_name_length: 200,
            max_channels_per_event: 100,
            max_batch_events: 10,
            max_presence_members: 100,
            max_presence_user_bytes: 1024,
            max_presence_user_id_length: 128,
            client_events_per_second: 10,
            max_watchlist: 100,
            cache_ttl: Duration::from_secs(30 * 60),
        }
    }
}

/// Where an app's webhooks go and which events each target wants (issue: webhooks).
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookTarget {
    pub url: String,
    /// Event names this target receives; empty means all.
    pub events: Vec<String>,
    pub headers: Vec<(String, String)>,
}

/// One configured app.
#[derive(Clone, Debug)]
pub struct App {
    pub id: AppId,
    /// Public key: in the WebSocket URL, `auth` strings and `auth_key`.
    pub key: String,
    /// HMAC key; never sent anywhere.
    pub secret: String,
    pub enabled: bool,
    /// Whether clients may send `client-*` events (off by default, as on hosted Pusher).
    pub client_events: bool,
    /// "Authorized connections": close sockets that neither sign in nor join a private channel in time.
    pub require_authorization: bool,
    pub authorization_timeout: Duration,
    /// Whether subscribers receive `pusher_internal:subscription_count`.
    pub subscription_count: bool,
    /// Whether signed-in users receive watchlist online/offline events.
    pub watchlist_events: bool,
    /// Open connections allowed at once; `None` is unlimited.
    pub max_connections: Option<usize>,
    pub limits: Limits,
    pub webhooks: Vec<WebhookTarget>,
    /// Send several webhook events per request (gathered for a short interval).
    pub webhook_batching: bool,
    /// SHA-256 digests of the tokens accepted as `Authorization: Bearer` on the publish endpoints
    /// (a Herald extension for Salesforce Named Credentials); empty means bearer auth is off.
    pub bearer_token_digests: Vec<[u8; 32]>,
    /// The Salesforce Outbound Messaging bridge, when configured for this app.
    pub outbound: Option<OutboundBridge>,
}

/// Who may post Salesforce Outbound Messages to an app, and how each object type becomes an event.
#[derive(Clone, Debug)]
pub struct OutboundBridge {
    /// SHA-256 of the secret token the endpoint URL carries as `?token=`.
    pub token_digest: [u8; 32],
    /// Organizations allowed to send; compared on their 15-character form.
    pub organization_ids: Vec<String>,
    /// Source networks allowed to send; empty allows any.
    pub allowed_ips: Vec<IpNet>,
    /// sObject API name (e.g. `Offer__c`) to its event.
    pub objects: HashMap<String, ObjectMapping>,
}

impl App {
    /// An app with the given credentials and every other setting at its default.
    pub fn new(id: &str, key: &str, secret: &str) -> App {
        App {
            id: AppId::new(id),
            key: key.to_owned(),
            secret: secret.to_owned(),
            enabled: true,
            client_events: false,
            require_authorization: false,
            authorization_timeout: Duration::from_secs(30),
            subscription_count: false,
            watchlist_events: false,
            max_connections: None,
            limits: Limits::default(),
            webhooks: Vec::new(),
            webhook_batching: false,
            bearer_token_digests: Vec::new(),
            outbound: None,
        }
    }
}

/// All configured apps, looked up by id (REST) or key (WebSocket).
#[derive(Clone, Debug, Default)]
pub struct Apps {
    by_id: HashMap<AppId, Arc<App>>,
    by_key: HashMap<String, Arc<App>>,
}

impl Apps {
    /// Builds the lookups; the caller has already checked that ids and keys are unique.
    pub fn new(apps: impl IntoIterator<Item = App>) -> Apps {
        let mut all = Apps::default();
        for app in apps {
            let app = Arc::new(app);
            all.by_key.insert(app.key.clone(), app.clone());
            all.by_id.insert(app.id.clone(), app);
        }
        all
    }

    pub fn by_id(&self, id: &str) -> Option<&Arc<App>> {
        self.by_id.get(&AppId::new(id))
    }

    pub fn by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.by_key.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<App>> {
        self.by_id.values()
    }
}

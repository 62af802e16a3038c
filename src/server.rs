//! Composition root: builds the shared state, picks the adapter, mounts the routes, and drains on shutdown.

use std::{
    net::TcpListener,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use actix_http::HttpService;
use actix_service::{fn_factory, fn_service, map_config};
use actix_web::{App as ActixApp, HttpResponse, dev::AppConfig, web};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    adapter::{Adapter, ClusterNotice, LocalAdapter, RedisAdapter},
    app::Apps,
    config::{AdapterConfig, Config},
    http::{self, ApiContext, webhooks::Outbox},
    metrics::Metrics,
    protocol::SocketError,
    registry::Registry,
    webhooks::{self, DeliveryStore, EmbeddedStore, LeaveArbiter, WebhookEvent, Webhooks},
    ws::{self, WsContext},
};

/// How often expired cache-channel events and remembered keys are swept from memory.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Whether the node takes new work: `/ready` answers 503 while draining or while the cluster backend
/// (Redis) is unreachable, so a load balancer prefers nodes that can deliver everywhere.
struct Readiness {
    draining: AtomicBool,
    adapter: Arc<dyn Adapter>,
}

async fn ready(readiness: web::Data<Readiness>) -> HttpResponse {
    if readiness.draining.load(Ordering::Relaxed) {
        return HttpResponse::ServiceUnavailable().body("draining\n");
    }
    if !readiness.adapter.healthy() {
        return HttpResponse::ServiceUnavailable()
            .body("redis unavailable: serving local sockets only\n");
    }
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ready\n")
}

/// Hands changes the cluster found on its own (dead nodes, resyncs) to webhooks.
async fn forward_notices(
    mut notices: tokio::sync::mpsc::UnboundedReceiver<ClusterNotice>,
    apps: Apps,
    webhooks: Webhooks,
) {
    while let Some(notice) = notices.recv().await {
        let (app_id, event) = match notice {
            ClusterNotice::ChannelOccupied { app_id, channel } => {
                (app_id, WebhookEvent::ChannelOccupied { channel })
            }
            ClusterNotice::ChannelVacated { app_id, channel } => {
                (app_id, WebhookEvent::ChannelVacated { channel })
            }
            ClusterNotice::MemberAdded {
                app_id,
                channel,
                user_id,
            } => (app_id, WebhookEvent::MemberAdded { channel, user_id }),
            ClusterNotice::MemberRemoved {
                app_id,
                channel,
                user_id,
            } => (app_id, WebhookEvent::MemberRemoved { channel, user_id }),
        };
        if let Some(app) = apps.by_id(app_id.as_str()) {
            webhooks.emit(app, event);
        }
    }
}

/// Serves on `listener` until `shutdown` is cancelled, then drains: stop accepting, close every socket
/// with 4200, wait for the sessions up to the configured timeout, and stop.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let apps = Apps::new(config.apps.clone());
    let registry = Arc::new(Registry::new(apps.iter()));
    // The one place the adapter is chosen.
    let (adapter, cluster): (Arc<dyn Adapter>, _) = match &config.adapter {
        AdapterConfig::Local => (Arc::new(LocalAdapter::new(registry.clone())), None),
        AdapterConfig::Redis(redis) => {
            let (adapter, notices) = RedisAdapter::start(
                redis.clone(),
                config.webhooks.grace,
                apps.clone(),
                registry.clone(),
            )
            .await
            .map_err(|error| std::io::Error::other(format!("adapter.redis_url: {error}")))?;
            (
                adapter.clone() as Arc<dyn Adapter>,
                Some((adapter, notices)),
            )
        }
    };
    let metrics = Arc::new(Metrics::new());
    let redis = cluster.as_ref().map(|(adapter, _)| adapter.clone());
    let (webhooks, outbox) = start_webhooks(&config, &apps, &metrics, redis)?;
    if let Some((_, notices)) = cluster {
        actix_web::rt::spawn(forward_notices(notices, apps.clone(), webhooks.clone()));
    }
    let server_config = config.server.clone();
    let sessions = TaskTracker::new();
    let ws_context = web::Data::new(WsContext {
        apps: apps.clone(),
        adapter: adapter.clone(),
        config: server_config.clone(),
        shutdown: shutdown.clone(),
        sessions: sessions.clone(),
        webhooks,
        metrics: metrics.clone(),
    });
    let api_context = web::Data::new(ApiContext {
        apps,
        adapter: adapter.clone(),
        config: server_config.clone(),
        metrics,
        outbox,
    });
    let readiness = web::Data::new(Readiness {
        draining: AtomicBool::new(false),
        adapter: adapter.clone(),
    });
    let prefix = server_config.path_prefix.clone();
    let max_request_bytes = server_config.max_request_bytes;
    let factory_readiness = readiness.clone();
    let static_files = config.static_files.clone();
    let web_app = move || {
        let mut app = ActixApp::new()
            .app_data(api_context.clone())
            .app_data(factory_readiness.clone())
            .app_data(web::PayloadConfig::new(max_request_bytes))
            .route("/", web::get().to(http::root))
            .route("/ready", web::get().to(ready))
            .route("/metrics", web::get().to(http::metrics));
        if let Some(settings) = &static_files {
            // Registered before the API scope, which would otherwise claim every path under an empty prefix.
            app = app.configure(http::page::configure(settings));
        }
        app.service(web::scope(&prefix).configure(http::configure))
            .default_service(web::to(not_found))
    };
    let sockets = ws_context.into_inner();
    let shutdown_signal = shutdown.clone();
    let mut server = actix_server::Server::build()
        .disable_signals()
        .shutdown_timeout(server_config.shutdown_timeout.as_secs().max(1))
        .listen("herald", listener, move || {
            let sockets = sockets.clone();
            // WebSocket upgrades go to `ws`, on the raw stream; every other request to the web app.
            let upgrade = fn_factory(move || {
                let sockets = sockets.clone();
                async move {
                    Ok::<_, ()>(fn_service(move |(request, framed)| {
                        let sockets = sockets.clone();
                        async move {
                            ws::upgrade(sockets, request, framed)
                                .await
                                .map_err(actix_web::Error::from)
                        }
                    }))
                }
            });
            let draining = shutdown_signal.clone();
            HttpService::build()
                // When draining starts, idle keep-alive connections close instead of holding the exit.
                .graceful_shutdown_signal(move || {
                    let draining = draining.clone();
                    async move { draining.cancelled().await }
                })
                // Frames queued together already leave in one write; Nagle's algorithm would only hold
                // a socket's next write back until the client acknowledged the previous one (up to a
                // round trip, or a delayed ACK), and the same for REST responses.
                .tcp_nodelay(true)
                .upgrade(upgrade)
                .h1(map_config(web_app(), |_| AppConfig::default()))
                .tcp()
        })?;
    if server_config.workers > 0 {
        server = server.workers(server_config.workers);
    }
    let server = server.run();
    let handle = server.handle();
    let sweeper = actix_web::rt::spawn(sweep(registry.clone()));
    let serving = actix_web::rt::spawn(server);
    shutdown.cancelled().await;
    tracing::info!("draining: closing sockets with 4200");
    readiness.draining.store(true, Ordering::Relaxed);
    handle.pause().await;
    for conn in registry.all_connections() {
        conn.outbox.close(SocketError::ShuttingDown);
    }
    sessions.close();
    if tokio::time::timeout(server_config.shutdown_timeout, sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = registry.connection_count(),
            "sessions did not finish within the shutdown timeout"
        );
    }
    adapter.shutdown().await;
    handle.stop(true).await;
    sweeper.abort();
    match serving.await {
        Ok(result) => result,
        Err(join_error) => Err(std::io::Error::other(join_error)),
    }
}

/// Opens the webhook outbox and starts the producer and sender loops, when some app has targets.
/// In a cluster the outbox lives in Redis, shared by every node, and Redis arbitrates the grace window.
fn start_webhooks(
    config: &Config,
    apps: &Apps,
    metrics: &Arc<Metrics>,
    redis: Option<Arc<RedisAdapter>>,
) -> std::io::Result<(Webhooks, Option<Outbox>)> {
    if apps.iter().all(|app| app.webhooks.is_empty()) {
        return Ok((Webhooks::disabled(), None));
    }
    let (store, arbiter): (Arc<dyn DeliveryStore>, Option<Arc<dyn LeaveArbiter>>) = match redis {
        Some(redis) => {
            tracing::info!("webhooks enabled, with the outbox in Redis");
            (redis.outbox(config.webhooks.request_timeout), Some(redis))
        }
        None => {
            let path = &config.webhooks.store_path;
            let store = EmbeddedStore::open(path).map_err(|error| {
                std::io::Error::other(format!("webhooks.store {}: {error}", path.display()))
            })?;
            tracing::info!(store = %path.display(), "webhooks enabled");
            (Arc::new(store), None)
        }
    };
    let (webhooks, wake) = webhooks::start(
        store.clone(),
        config.webhooks.clone(),
        metrics.clone(),
        arbiter,
    );
    webhooks::sender::start(
        store.clone(),
        apps.clone(),
        config.webhooks.clone(),
        metrics.clone(),
        wake.clone(),
    );
    Ok((webhooks, Some(Outbox { store, wake })))
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .body("Not found\n")
}

async fn sweep(registry: Arc<Registry>) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        interval.tick().await;
        registry.sweep(Instant::now());
    }
}

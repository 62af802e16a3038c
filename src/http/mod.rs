//! The REST side: signed HTTP API routes (spec §9) and the load balancer probes.

mod channels;
pub mod error;
mod events;
mod outbound;
pub mod page;
mod signature;
mod users;
pub mod webhooks;

use std::sync::Arc;

use actix_web::{HttpResponse, web};

use crate::{adapter::Adapter, app::Apps, config::ServerConfig, metrics::Metrics};

/// What the REST side needs from the rest of the server.
pub struct ApiContext {
    pub apps: Apps,
    pub adapter: Arc<dyn Adapter>,
    pub config: ServerConfig,
    pub metrics: Arc<Metrics>,
    /// The webhook outbox, when some app has webhook targets.
    pub outbox: Option<webhooks::Outbox>,
}

/// Registers the HTTP API under the configured prefix.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/apps/{app_id}/events", web::post().to(events::trigger))
        .route(
            "/apps/{app_id}/batch_events",
            web::post().to(events::trigger_batch),
        )
        .route("/apps/{app_id}/channels", web::get().to(channels::list))
        .route(
            "/apps/{app_id}/channels/{channel}",
            web::get().to(channels::show),
        )
        .route(
            "/apps/{app_id}/channels/{channel}/users",
            web::get().to(channels::users),
        )
        .route(
            "/apps/{app_id}/channels/{channel}/events",
            web::post().to(events::trigger_legacy),
        )
        .route(
            "/apps/{app_id}/users/{user_id}/terminate_connections",
            web::post().to(users::terminate),
        )
        .route(
            "/users/{user_id}/terminate_connections",
            web::post().to(users::terminate_without_app),
        )
        .route(
            "/salesforce/outbound/{app_id}",
            web::post().to(outbound::receive),
        )
        .route("/apps/{app_id}/webhooks", web::get().to(webhooks::list))
        .route(
            "/apps/{app_id}/webhooks/retry",
            web::post().to(webhooks::retry_all),
        )
        .route(
            "/apps/{app_id}/webhooks/{id}/retry",
            web::post().to(webhooks::retry_one),
        )
        .route(
            "/apps/{app_id}/webhooks/{id}/drop",
            web::post().to(webhooks::drop_one),
        );
}

/// `GET /`: a liveness answer for load balancers.
pub async fn root() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("Herald is running\n")
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(context: web::Data<ApiContext>) -> HttpResponse {
    let metrics = &context.metrics;
    metrics
        .connections
        .set(context.adapter.registry().connection_count() as i64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics.render())
}

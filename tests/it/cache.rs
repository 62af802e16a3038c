//! Cache channels: the last event replayed on subscribe, or `pusher:cache_miss` (spec §8.1).

use serde_json::json;

use crate::support::{config, config_with, spawn_server};

#[actix_rt::test]
async fn an_empty_cache_channel_answers_cache_miss() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    client.subscribe("cache-prices").await;
    assert_eq!(
        client.recv().await,
        json!({"event": "pusher:cache_miss", "channel": "cache-prices"})
    );
}

#[actix_rt::test]
async fn the_last_event_is_replayed_to_new_subscribers() {
    let server = spawn_server(config());
    let rest = server.rest();
    assert_eq!(
        rest.trigger(&["cache-prices"], "price", "1").await.status,
        200
    );
    assert_eq!(
        rest.trigger(&["cache-prices"], "price", "2").await.status,
        200
    );
    let mut client = server.connect().await;
    client.subscribe("cache-prices").await;
    assert_eq!(
        client.recv().await,
        json!({"event": "price", "channel": "cache-prices", "data": "2"})
    );
    let info = rest
        .get("/channels/cache-prices", &[("info", "cache")])
        .await
        .json();
    assert_eq!(info["cache"]["event"], "price");
    assert_eq!(info["cache"]["data"], "2");
    assert!(info["cache"]["ttl"].as_u64().unwrap() > 1700);
}

#[actix_rt::test]
async fn client_events_are_not_cached() {
    let server = spawn_server(config());
    let mut alice = server.connect().await;
    alice.subscribe("private-cache-room").await;
    alice.expect("pusher:cache_miss").await;
    alice
        .send(json!({"event": "client-x", "channel": "private-cache-room", "data": {}}))
        .await;
    alice.expect_nothing_pending().await;
    let mut bob = server.connect().await;
    bob.subscribe("private-cache-room").await;
    bob.expect("pusher:cache_miss").await;
}

#[actix_rt::test]
async fn cached_events_expire_after_the_ttl() {
    let server = spawn_server(config_with("", "[apps.1.limits]\ncache_ttl = \"1s\"", ""));
    let rest = server.rest();
    rest.trigger(&["cache-prices"], "price", "1").await;
    let info = rest
        .get("/channels/cache-prices", &[("info", "cache")])
        .await
        .json();
    assert_eq!(info["cache"]["data"], "1");
    // Wait for expiry by observing it, with a bound: the TTL is 1 s.
    let started = std::time::Instant::now();
    loop {
        let info = rest
            .get("/channels/cache-prices", &[("info", "cache")])
            .await
            .json();
        if info["cache"].is_null() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "cache never expired"
        );
        actix_rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut client = server.connect().await;
    client.subscribe("cache-prices").await;
    client.expect("pusher:cache_miss").await;
}

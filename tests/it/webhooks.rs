//! Webhooks: every event with its exact body and signature, the grace window, at-least-once delivery
//! through receiver outages and restarts, dead letters and the operator API (spec §10).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    KEY, SECRET, TestServer,
    binary::BinaryServer,
    config_with,
    receiver::{Hook, Receiver},
    spawn_server,
    ws::sign,
};

/// A server whose app 1 sends every webhook to `receiver`, with a short grace and quick retries.
fn server_for(
    receiver: &Receiver,
    store: &std::path::Path,
    app_extra: &str,
    webhooks_extra: &str,
) -> TestServer {
    spawn_server(config_with(
        "",
        &format!(
            "{app_extra}\n[[apps.1.webhooks]]\nurl = \"{}\"\n",
            receiver.url()
        ),
        &format!(
            "[webhooks]\nstore = {:?}\ngrace = \"300ms\"\ninitial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\n{webhooks_extra}\n",
            store.to_str().unwrap()
        ),
    ))
}

fn check_signed(hook: &Hook) {
    assert_eq!(
        hook.header_exact("Content-Type"),
        Some("application/json"),
        "{hook:?}"
    );
    assert_eq!(hook.header_exact("X-Pusher-Key"), Some(KEY), "{hook:?}");
    assert_eq!(
        hook.header_exact("X-Pusher-Signature"),
        Some(sign(&hook.body).as_str()),
        "{hook:?}"
    );
    let body = hook.json();
    assert!(body["time_ms"].as_u64().unwrap() > 1_700_000_000_000);
}

/// The single event of a non-batched webhook.
fn event(hook: &Hook) -> Value {
    check_signed(hook);
    let events = hook.json()["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{}", hook.body);
    events[0].clone()
}

#[actix_rt::test]
async fn every_event_type_arrives_signed_with_its_exact_body() {
    let mut receiver = Receiver::start();
    let store = tempfile::tempdir().unwrap();
    let server = server_for(
        &receiver,
        &store.path().join("outbox.redb"),
        "subscription_count = true",
        "",
    );

    let mut alice = server.connect().await;
    alice.join("presence-room", "{\"user_id\":\"u-42\"}").await;
    assert_eq!(
        event(&receiver.next().await),
        json!({"name": "channel_occupied", "channel": "presence-room"})
    );
    assert_eq!(
        event(&receiver.next().await),
        json!({"name": "member_added", "channel": "presence-room", "user_id": "u-42"})
    );

    let mut bob = server.connect().await;
    bob.join("presence-room", "{\"user_id\":\"u-7\"}").await;
    assert_eq!(
        event(&receiver.next().await),
        json!({"name": "member_added", "channel": "presence-room", "user_id": "u-7"})
    );
    alice.expect("pusher_internal:member_added").await;

    bob.send(
        json!({"event": "client-typing", "channel": "presence-room", "data": {"typing": true}}),
    )
    .await;
    assert_eq!(
        event(&receiver.next().await),
        json!({"name": "client_event", "channel": "presence-room", "event": "client-typing",
               "data": "{\"typing\":true}", "socket_id": bob.socket_id, "user_id": "u-7"})
    );
    alice.expect("client-typing").await;

    alice.subscribe("cache-prices").await;
    assert_eq!(
        event(&receiver.next().await),
        json!({"name": "channel_occupied", "channel": "cache-prices"})
    );
    assert_eq!(
        event(&receiver.next().await),
        json!({"name": "cache_miss", "channel": "cache-prices"})
    );
    assert_eq!(
        event(&receiver.next().await),
        json!({"name": "subscription_count", "channel": "cache-prices", "subscription_count": 1})
    );

    drop(bob);
    // After the grace: member_removed; then the channel empties: member_removed, then channel_vacated.
    assert_eq!(
        event(&receiver.next().await),
        json!({"name": "member_removed", "channel": "presence-room", "user_id": "u-7"})
    );
    drop(alice);
    let mut rest: Vec<Value> = Vec::new();
    for _ in 0..3 {
        rest.push(event(&receiver.next().await));
    }
    let presence: Vec<_> = rest
        .iter()
        .filter(|e| e["channel"] == "presence-room")
        .cloned()
        .collect();
    assert_eq!(
        presence,
        [
            json!({"name": "member_removed", "channel": "presence-room", "user_id": "u-42"}),
            json!({"name": "channel_vacated", "channel": "presence-room"}),
        ]
    );
    // A vacated channel has no subscribers left to count: channel_vacated says it all.
    assert!(rest.contains(&json!({"name": "channel_vacated", "channel": "cache-prices"})));
}

#[actix_rt::test]
async fn a_quick_return_sends_neither_the_leave_nor_the_rejoin() {
    let mut receiver = Receiver::start();
    let store = tempfile::tempdir().unwrap();
    let server = server_for(&receiver, &store.path().join("outbox.redb"), "", "");
    let mut client = server.connect().await;
    client.join("presence-room", "{\"user_id\":\"u\"}").await;
    assert_eq!(event(&receiver.next().await)["name"], "channel_occupied");
    assert_eq!(event(&receiver.next().await)["name"], "member_added");

    // A page reload: the socket goes and a new one joins within the grace window.
    drop(client);
    let mut reloaded = server.connect().await;
    reloaded.join("presence-room", "{\"user_id\":\"u\"}").await;
    // A marker that goes through the same grace window: leaving another channel. Had the reload's
    // vacate or removal been scheduled, it would have come first.
    reloaded.subscribe("marker").await;
    assert_eq!(
        event(&receiver.next().await),
        json!({"name": "channel_occupied", "channel": "marker"})
    );
    reloaded
        .send(json!({"event": "pusher:unsubscribe", "data": {"channel": "marker"}}))
        .await;
    assert_eq!(
        event(&receiver.next().await),
        json!({"name": "channel_vacated", "channel": "marker"})
    );
}

#[actix_rt::test]
async fn leaving_for_good_is_reported_after_the_grace_window() {
    let mut receiver = Receiver::start();
    let store = tempfile::tempdir().unwrap();
    let server = server_for(&receiver, &store.path().join("outbox.redb"), "", "");
    let mut client = server.connect().await;
    client.subscribe("room").await;
    assert_eq!(event(&receiver.next().await)["name"], "channel_occupied");
    let left_at = Instant::now();
    client
        .send(json!({"event": "pusher:unsubscribe", "data": {"channel": "room"}}))
        .await;
    assert_eq!(
        event(&receiver.next().await),
        json!({"name": "channel_vacated", "channel": "room"})
    );
    assert!(
        left_at.elapsed() >= Duration::from_millis(300),
        "vacated came before the grace window ended"
    );
}

#[actix_rt::test]
async fn webhooks_wait_out_a_receiver_outage_and_arrive_in_order() {
    let receiver = Receiver::start();
    let url = receiver.url();
    let port = receiver.stop();
    let store = tempfile::tempdir().unwrap();
    let server = spawn_server(config_with(
        "",
        &format!(
            "[[apps.1.webhooks]]\nurl = \"{url}\"\nevents = [\"channel_occupied\", \"channel_vacated\"]\n"
        ),
        &format!(
            "[webhooks]\nstore = {:?}\ngrace = \"10ms\"\ninitial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\n",
            store.path().join("outbox.redb").to_str().unwrap()
        ),
    ));
    let mut client = server.connect().await;
    for round in 0..3 {
        let channel = format!("room-{round}");
        client.subscribe(&channel).await;
        client
            .send(json!({"event": "pusher:unsubscribe", "data": {"channel": channel}}))
            .await;
    }
    // Wait until the outbox holds all six, and the first has failed at least twice.
    let rest = server.rest();
    let started = Instant::now();
    loop {
        let pending = rest.get("/webhooks", &[("state", "pending")]).await.json();
        let deliveries = pending["deliveries"].as_array().unwrap();
        if deliveries.len() == 6 && deliveries[0]["n_attempts"].as_u64().unwrap() >= 2 {
            assert!(deliveries[0]["attempts"][0]["error"].is_string());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "outbox never filled: {pending}"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let mut receiver = Receiver::on(std::net::TcpListener::bind(port).unwrap());
    let mut received = Vec::new();
    for _ in 0..6 {
        received.push(event(&receiver.next().await));
    }
    let expected: Vec<Value> = (0..3)
        .flat_map(|round| {
            let channel = format!("room-{round}");
            [
                json!({"name": "channel_occupied", "channel": channel}),
                json!({"name": "channel_vacated", "channel": channel}),
            ]
        })
        .collect();
    assert_eq!(received, expected);
    // The last delivery leaves the outbox once Herald has read the receiver's answer.
    let started = Instant::now();
    loop {
        let pending = rest.get("/webhooks", &[("state", "pending")]).await.json();
        if pending["deliveries"] == json!([]) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "outbox never emptied: {pending}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn failures_past_the_maximum_age_are_dead_lettered_and_can_be_replayed() {
    let mut receiver = Receiver::start();
    receiver.answer(500);
    let store = tempfile::tempdir().unwrap();
    let server = server_for(
        &receiver,
        &store.path().join("outbox.redb"),
        "",
        "max_age = \"500ms\"\n",
    );
    let mut client = server.connect().await;
    client.subscribe("room").await;
    let failed = receiver.next().await;
    assert_eq!(event(&failed)["name"], "channel_occupied");
    let rest = server.rest();
    let started = Instant::now();
    let dead = loop {
        let dead = rest.get("/webhooks", &[("state", "dead")]).await.json();
        if dead["deliveries"].as_array().unwrap().len() == 1 {
            break dead["deliveries"][0].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never dead-lettered"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead["state"], "dead");
    assert_eq!(dead["attempts"][0]["status"], 500);
    assert!(dead["attempts"][0]["latency_ms"].is_u64());
    assert_eq!(dead["body"].as_str().unwrap(), failed.body);

    receiver.answer(200);
    let id = dead["id"].as_u64().unwrap();
    let response = rest
        .post_bytes(&format!("/webhooks/{id}/retry"), &[], b"{}")
        .await;
    assert_eq!(
        (response.status, response.json()),
        (200, json!({"retried": 1}))
    );
    let replayed = loop {
        let hook = receiver.next().await;
        if hook.body == failed.body {
            break hook;
        }
    };
    check_signed(&replayed);
    assert_eq!(
        rest.post_bytes("/webhooks/999999/retry", &[], b"{}")
            .await
            .status,
        404
    );
    assert_eq!(
        rest.post_bytes("/webhooks/999999/drop", &[], b"{}")
            .await
            .status,
        404
    );
    let metrics = rest.send_raw("GET", "/metrics", b"").await.body;
    for metric in [
        "herald_webhooks_produced_total",
        "herald_webhooks_dead_lettered_total 1",
        "herald_webhooks_delivered_total",
    ] {
        assert!(metrics.contains(metric), "{metric} missing from\n{metrics}");
    }
}

#[actix_rt::test]
async fn dead_letters_can_be_dropped_or_all_retried() {
    let mut receiver = Receiver::start();
    receiver.answer(503);
    let store = tempfile::tempdir().unwrap();
    let server = server_for(
        &receiver,
        &store.path().join("outbox.redb"),
        "",
        "max_age = \"200ms\"\n",
    );
    let mut client = server.connect().await;
    client.subscribe("a").await;
    client.subscribe("b").await;
    let rest = server.rest();
    let started = Instant::now();
    let ids: Vec<u64> = loop {
        let dead = rest.get("/webhooks", &[("state", "dead")]).await.json();
        let deliveries = dead["deliveries"].as_array().unwrap();
        if deliveries.len() == 2 {
            break deliveries
                .iter()
                .map(|d| d["id"].as_u64().unwrap())
                .collect();
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        rest.post_bytes(&format!("/webhooks/{}/drop", ids[0]), &[], b"{}")
            .await
            .status,
        200
    );
    receiver.answer(200);
    let response = rest.post_bytes("/webhooks/retry", &[], b"{}").await;
    assert_eq!(response.json(), json!({"retried": 1}));
    loop {
        let hook = receiver.next().await;
        if hook.header_exact("X-Pusher-Key").is_some() && event(&hook)["channel"] == "b" {
            break;
        }
    }
    // The operator API is signed like the rest of the API.
    let unsigned = rest.send_raw("GET", "/apps/1/webhooks", b"").await;
    assert_eq!(unsigned.status, 401);
}

#[actix_rt::test]
async fn batching_sends_several_events_per_request() {
    let mut receiver = Receiver::start();
    let store = tempfile::tempdir().unwrap();
    let server = server_for(
        &receiver,
        &store.path().join("outbox.redb"),
        "webhook_batching = true",
        "batch_interval = \"200ms\"\n",
    );
    let mut client = server.connect().await;
    client.subscribe("a").await;
    client.subscribe("b").await;
    client.subscribe("c").await;
    let hook = receiver.next().await;
    check_signed(&hook);
    let names: Vec<_> = hook.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["channel"].clone())
        .collect();
    assert_eq!(names, [json!("a"), json!("b"), json!("c")]);
}

#[actix_rt::test]
async fn targets_receive_only_the_events_they_list() {
    let mut everything = Receiver::start();
    let mut members_only = Receiver::start();
    let store = tempfile::tempdir().unwrap();
    let server = spawn_server(config_with(
        "",
        &format!(
            "[[apps.1.webhooks]]\nurl = \"{}\"\n[[apps.1.webhooks]]\nurl = \"{}\"\nevents = [\"member_added\"]\nheaders = {{ \"X-Tenant\" = \"acme\" }}\n",
            everything.url(),
            members_only.url()
        ),
        &format!(
            "[webhooks]\nstore = {:?}\n",
            store.path().join("outbox.redb").to_str().unwrap()
        ),
    ));
    let mut client = server.connect().await;
    client.join("presence-room", "{\"user_id\":\"u\"}").await;
    assert_eq!(event(&everything.next().await)["name"], "channel_occupied");
    assert_eq!(event(&everything.next().await)["name"], "member_added");
    let hook = members_only.next().await;
    assert_eq!(event(&hook)["name"], "member_added");
    assert_eq!(hook.header_exact("X-Tenant"), Some("acme"));
    let _ = SECRET;
}

#[actix_rt::test]
async fn a_killed_server_delivers_its_outbox_after_restart() {
    // The real binary, killed with SIGKILL while webhooks wait for a receiver that is down.
    let receiver = Receiver::start();
    let url = receiver.url();
    let receiver_port = receiver.stop();
    let store = tempfile::tempdir().unwrap();
    let mut herald = BinaryServer::start(&format!(
        "[webhooks]\nstore = {:?}\ngrace = \"10ms\"\ninitial_backoff = \"50ms\"\nmax_backoff = \"100ms\"\n\
         [apps.1]\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\n[[apps.1.webhooks]]\nurl = \"{url}\"\n",
        store.path().join("outbox.redb").to_str().unwrap()
    ));
    let mut client = herald.connect().await;
    client.subscribe("before-the-crash").await;
    let rest = herald.rest();
    let started = Instant::now();
    loop {
        let pending = rest.get("/webhooks", &[]).await.json();
        if pending["deliveries"].as_array().unwrap().len() == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never stored: {pending}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    herald.kill();
    drop(client);

    let mut receiver = Receiver::on(std::net::TcpListener::bind(receiver_port).unwrap());
    herald.restart();
    herald.wait_until_ready().await;
    let hook = receiver.next().await;
    assert_eq!(
        event(&hook),
        json!({"name": "channel_occupied", "channel": "before-the-crash"})
    );
}

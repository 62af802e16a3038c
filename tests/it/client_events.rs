//! Client events: relay rules, `user_id` on presence, rate and size limits (spec §7).

use serde_json::json;

use crate::support::{config, config_with, spawn_server};

#[actix_rt::test]
async fn client_events_reach_others_but_never_the_sender() {
    let server = spawn_server(config());
    let mut alice = server.connect().await;
    let mut bob = server.connect().await;
    alice.subscribe("private-chat").await;
    bob.subscribe("private-chat").await;
    alice
        .send(
            json!({"event": "client-typing", "channel": "private-chat", "data": {"typing": true}}),
        )
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"event": "client-typing", "channel": "private-chat", "data": {"typing": true}})
    );
    alice.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn presence_client_events_carry_the_sender_user_id() {
    let server = spawn_server(config());
    let mut alice = server.connect().await;
    let mut bob = server.connect().await;
    alice.join("presence-room", "{\"user_id\":\"u-42\"}").await;
    bob.join("presence-room", "{\"user_id\":\"u-7\"}").await;
    alice.expect("pusher_internal:member_added").await;
    alice
        .send(json!({"event": "client-typing", "channel": "presence-room", "data": "raw string"}))
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"event": "client-typing", "channel": "presence-room", "data": "raw string", "user_id": "u-42"})
    );
}

#[actix_rt::test]
async fn client_events_are_refused_where_not_allowed() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    client.subscribe("public-room").await;
    client.subscribe("private-encrypted-vault").await;
    let cases = [
        (
            "public-room",
            "Client events are only allowed on private and presence channels, not on public-room",
        ),
        (
            "private-encrypted-vault",
            "Client events are only allowed on private and presence channels, not on private-encrypted-vault",
        ),
        (
            "private-elsewhere",
            "Client event rejected: not subscribed to channel private-elsewhere",
        ),
    ];
    for (channel, expected) in cases {
        client
            .send(json!({"event": "client-x", "channel": channel, "data": {}}))
            .await;
        assert_eq!(client.expect_error(None).await, expected);
    }
}

#[actix_rt::test]
async fn client_events_need_the_app_setting() {
    let mut config = config();
    config.apps[0].client_events = false;
    let server = spawn_server(config);
    let mut client = server.connect().await;
    client.subscribe("private-chat").await;
    client
        .send(json!({"event": "client-x", "channel": "private-chat", "data": {}}))
        .await;
    assert_eq!(
        client.expect_error(None).await,
        "To send client events, you must enable this feature in the Settings page of your dashboard."
    );
}

#[actix_rt::test]
async fn client_events_over_the_rate_limit_get_4301() {
    let server = spawn_server(config_with(
        "",
        "[apps.1.limits]\nclient_events_per_second = 3",
        "",
    ));
    let mut alice = server.connect().await;
    let mut bob = server.connect().await;
    alice.subscribe("private-chat").await;
    bob.subscribe("private-chat").await;
    for n in 0..4 {
        alice
            .send(json!({"event": "client-n", "channel": "private-chat", "data": {"n": n}}))
            .await;
    }
    assert_eq!(
        alice.expect_error(Some(4301)).await,
        "Client event rejected due to rate limit"
    );
    for n in 0..3 {
        assert_eq!(bob.recv().await["data"]["n"], n);
    }
    bob.expect_nothing_pending().await;
    // The socket stays open.
    alice.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn client_events_over_the_size_limit_are_refused() {
    let server = spawn_server(config_with(
        "",
        "[apps.1.limits]\nmax_event_data_bytes = 100\nmax_event_name_length = 20",
        "",
    ));
    let mut alice = server.connect().await;
    alice.subscribe("private-chat").await;
    alice
        .send(json!({"event": "client-big", "channel": "private-chat", "data": "x".repeat(200)}))
        .await;
    assert!(alice.expect_error(None).await.contains("the limit is 100"));
    alice.send(json!({"event": format!("client-{}", "x".repeat(30)), "channel": "private-chat", "data": {}})).await;
    assert!(alice.expect_error(None).await.contains("the limit is 20"));
}

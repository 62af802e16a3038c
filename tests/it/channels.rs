//! Subscribing to every channel type, signature checks and name rules (spec §3, §4).

use serde_json::json;

use crate::support::{
    KEY, config, config_with, spawn_server,
    ws::{sign, subscribe_frame},
};

#[actix_rt::test]
async fn public_channel_receives_rest_events() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    let reply = client.subscribe("my-channel").await;
    assert_eq!(
        reply,
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "my-channel", "data": "{}"})
    );
    let response = server
        .rest()
        .trigger(&["my-channel"], "my-event", "{\"hello\":\"world\"}")
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json(), json!({}));
    assert_eq!(
        client.recv().await,
        json!({"event": "my-event", "channel": "my-channel", "data": "{\"hello\":\"world\"}"})
    );
}

#[actix_rt::test]
async fn private_encrypted_and_private_cache_channels_need_a_valid_signature() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    for channel in [
        "private-chat",
        "private-encrypted-vault",
        "private-cache-prices",
    ] {
        client.subscribe(channel).await;
    }
    client.expect("pusher:cache_miss").await;
    let response = server
        .rest()
        .trigger(
            &["private-encrypted-vault"],
            "secret",
            "{\"nonce\":\"n\",\"ciphertext\":\"c\"}",
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        client.recv().await["data"],
        "{\"nonce\":\"n\",\"ciphertext\":\"c\"}"
    );
}

#[actix_rt::test]
async fn bad_signatures_are_refused_with_hosted_messages() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    let socket_id = client.socket_id.clone();
    client
        .send(json!({"event": "pusher:subscribe", "data": {"auth": format!("{KEY}:deadbeef"), "channel": "private-chat"}}))
        .await;
    let message = client.expect_error(None).await;
    assert_eq!(
        message,
        format!(
            "Invalid signature: Expected HMAC SHA256 hex digest of {socket_id}:private-chat, but got deadbeef"
        )
    );
    client
        .send(json!({"event": "pusher:subscribe", "data": {"auth": "other-key:abc", "channel": "private-chat"}}))
        .await;
    assert_eq!(
        client.expect_error(None).await,
        "Invalid key in subscription auth data: 'other-key'"
    );
    client
        .send(json!({"event": "pusher:subscribe", "data": {"auth": "nocolon", "channel": "private-chat"}}))
        .await;
    assert_eq!(
        client.expect_error(None).await,
        "Invalid key in subscription auth data: 'nocolon'"
    );
    client
        .send(json!({"event": "pusher:subscribe", "data": {"channel": "private-chat"}}))
        .await;
    client.expect_error(None).await;
    // A signature made for another socket id is a replay and fails.
    let replayed = format!("{KEY}:{}", sign("1.2:private-chat"));
    client
        .send(json!({"event": "pusher:subscribe", "data": {"auth": replayed, "channel": "private-chat"}}))
        .await;
    client.expect_error(None).await;
    // Still not subscribed: a REST event to the channel does not arrive, and the socket is usable.
    server.rest().trigger(&["private-chat"], "e", "x").await;
    client.expect_nothing_pending().await;
    client.subscribe("private-chat").await;
}

#[actix_rt::test]
async fn subscribing_twice_is_an_error_and_keeps_the_subscription() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    client.subscribe("my-channel").await;
    client
        .send(subscribe_frame(&client.socket_id, "my-channel", None))
        .await;
    assert_eq!(
        client.expect_error(None).await,
        "Existing subscription to channel my-channel"
    );
    server.rest().trigger(&["my-channel"], "e", "x").await;
    assert_eq!(client.recv().await["event"], "e");
}

#[actix_rt::test]
async fn channel_names_are_checked() {
    let server = spawn_server(config_with(
        "",
        "[apps.1.limits]\nmax_channel_name_length = 20",
        "",
    ));
    let mut client = server.connect().await;
    for name in [
        "",
        "has space",
        "#secret",
        "caf\u{e9}",
        "#server-to-user-",
        "a-very-long-channel-name-indeed",
    ] {
        client
            .send(json!({"event": "pusher:subscribe", "data": {"auth": "", "channel": name}}))
            .await;
        let message = client.expect_error(None).await;
        assert!(
            message.starts_with("Invalid channel name"),
            "{name}: {message}"
        );
    }
    client.subscribe("A-Za-z0-9_-=@,.;").await;
}

#[actix_rt::test]
async fn unsubscribed_sockets_stop_receiving() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    client.subscribe("my-channel").await;
    client
        .send(json!({"event": "pusher:unsubscribe", "data": {"channel": "my-channel"}}))
        .await;
    // Unsubscribing from something never joined is ignored.
    client
        .send(json!({"event": "pusher:unsubscribe", "data": {"channel": "never"}}))
        .await;
    client.expect_nothing_pending().await;
    server.rest().trigger(&["my-channel"], "e", "x").await;
    client.expect_nothing_pending().await;
    let channels = server.rest().get("/channels", &[]).await.json();
    assert_eq!(channels, json!({"channels": {}}));
}

#[actix_rt::test]
async fn subscription_count_is_broadcast_when_enabled() {
    let server = spawn_server(config_with("", "subscription_count = true", ""));
    let mut first = server.connect().await;
    first.subscribe("my-channel").await;
    let count = first.expect("pusher_internal:subscription_count").await;
    assert_eq!(
        count,
        json!({"event": "pusher_internal:subscription_count", "channel": "my-channel", "data": "{\"subscription_count\":1}"})
    );
    let mut second = server.connect().await;
    second.subscribe("my-channel").await;
    for client in [&mut first, &mut second] {
        assert_eq!(
            client.expect("pusher_internal:subscription_count").await["data"],
            "{\"subscription_count\":2}"
        );
    }
    second
        .send(json!({"event": "pusher:unsubscribe", "data": {"channel": "my-channel"}}))
        .await;
    assert_eq!(
        first.expect("pusher_internal:subscription_count").await["data"],
        "{\"subscription_count\":1}"
    );
    // Presence channels never get it.
    let mut third = server.connect().await;
    third.join("presence-room", "{\"user_id\":\"u\"}").await;
    third.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn subscription_count_is_off_by_default() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    client.subscribe("my-channel").await;
    client.expect_nothing_pending().await;
}

//! Presence channels: member lists, join/leave events per user across several sockets, limits (spec §6).

use serde_json::json;

use crate::support::{config, config_with, spawn_server, ws::subscribe_frame};

const ALICE: &str = "{\"user_id\":\"u-42\",\"user_info\":{\"name\":\"Alice\"}}";
const BOB: &str = "{\"user_id\":7,\"user_info\":{\"name\":\"Bob\"}}";

#[actix_rt::test]
async fn the_first_member_gets_itself_in_the_list() {
    let server = spawn_server(config());
    let mut alice = server.connect().await;
    let data = alice.join("presence-room", ALICE).await;
    assert_eq!(
        data,
        json!({"presence": {"ids": ["u-42"], "hash": {"u-42": {"name": "Alice"}}, "count": 1}})
    );
}

#[actix_rt::test]
async fn member_added_and_removed_only_on_first_join_and_last_leave() {
    let server = spawn_server(config());
    let mut alice = server.connect().await;
    alice.join("presence-room", ALICE).await;

    let mut bob = server.connect().await;
    let data = bob.join("presence-room", BOB).await;
    assert_eq!(data["presence"]["count"], 2);
    assert_eq!(data["presence"]["ids"], json!(["u-42", "7"]));
    assert_eq!(data["presence"]["hash"]["7"], json!({"name": "Bob"}));
    assert_eq!(
        alice.recv().await,
        json!({"event": "pusher_internal:member_added", "channel": "presence-room", "data": "{\"user_id\":\"7\",\"user_info\":{\"name\":\"Bob\"}}"})
    );

    // Bob's second socket: no member_added, count stays 2.
    let mut bob_again = server.connect().await;
    let data = bob_again.join("presence-room", BOB).await;
    assert_eq!(data["presence"]["count"], 2);
    alice.expect_nothing_pending().await;
    bob.expect_nothing_pending().await;

    // Bob's first socket leaves: nothing; the last one leaves: member_removed.
    bob.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}}))
        .await;
    bob.expect_nothing_pending().await;
    alice.expect_nothing_pending().await;
    drop(bob_again);
    assert_eq!(
        alice.recv().await,
        json!({"event": "pusher_internal:member_removed", "channel": "presence-room", "data": "{\"user_id\":\"7\"}"})
    );

    let users = server
        .rest()
        .get("/channels/presence-room/users", &[])
        .await
        .json();
    assert_eq!(users, json!({"users": [{"id": "u-42"}]}));
}

#[actix_rt::test]
async fn a_member_without_user_info_keeps_its_key() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    let data = client.join("presence-room", "{\"user_id\":\"x\"}").await;
    assert_eq!(
        data,
        json!({"presence": {"ids": ["x"], "hash": {"x": null}, "count": 1}})
    );
}

#[actix_rt::test]
async fn presence_limits_are_enforced() {
    let server = spawn_server(config_with(
        "",
        "[apps.1.limits]\nmax_presence_members = 2\nmax_presence_user_bytes = 100\nmax_presence_user_id_length = 10",
        "",
    ));
    let mut a = server.connect().await;
    a.join("presence-room", "{\"user_id\":\"a\"}").await;
    let mut b = server.connect().await;
    b.join("presence-room", "{\"user_id\":\"b\"}").await;
    let mut c = server.connect().await;
    c.send(subscribe_frame(
        &c.socket_id,
        "presence-room",
        Some("{\"user_id\":\"c\"}"),
    ))
    .await;
    let message = c.expect_error(None).await;
    assert_eq!(
        message,
        "Presence channel presence-room is full: it has 2 members"
    );
    // An existing member may still add a socket.
    let mut a2 = server.connect().await;
    a2.join("presence-room", "{\"user_id\":\"a\"}").await;

    let big = format!(
        "{{\"user_id\":\"d\",\"user_info\":{{\"bio\":\"{}\"}}}}",
        "x".repeat(100)
    );
    c.send(subscribe_frame(&c.socket_id, "presence-other", Some(&big)))
        .await;
    assert!(c.expect_error(None).await.contains("the limit is 100"));
    c.send(subscribe_frame(
        &c.socket_id,
        "presence-other",
        Some("{\"user_id\":\"eleven-char\"}"),
    ))
    .await;
    assert!(c.expect_error(None).await.contains("the limit is 10"));
    c.send(subscribe_frame(
        &c.socket_id,
        "presence-other",
        Some("{\"name\":\"no id\"}"),
    ))
    .await;
    assert!(
        c.expect_error(None)
            .await
            .starts_with("Invalid presence channel_data")
    );
    c.send(subscribe_frame(&c.socket_id, "presence-other", None))
        .await;
    assert!(
        c.expect_error(None)
            .await
            .contains("channel_data is required")
    );
}

#[actix_rt::test]
async fn channel_data_must_match_the_signature_byte_for_byte() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    let mut frame = subscribe_frame(&client.socket_id, "presence-room", Some(ALICE));
    frame["data"]["channel_data"] =
        json!("{\"user_id\": \"u-42\", \"user_info\": {\"name\": \"Alice\"}}");
    client.send(frame).await;
    assert!(
        client
            .expect_error(None)
            .await
            .starts_with("Invalid signature")
    );
}

#[actix_rt::test]
async fn presence_cache_channels_are_presence_channels() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    let data = client.join("presence-cache-room", ALICE).await;
    assert_eq!(data["presence"]["count"], 1);
    client.expect("pusher:cache_miss").await;
}

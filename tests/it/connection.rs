//! Connection-time checks in the spec's order, handshake, heartbeats and frame limits (spec §2).

use awc::ws;
use serde_json::json;

use crate::support::{KEY, WsClient, config, config_with, spawn_server, ws::Received};

#[actix_rt::test]
async fn connection_established_carries_a_socket_id_and_activity_timeout() {
    let server = spawn_server(config());
    let mut client = WsClient::raw(&server.ws_url(&format!(
        "/app/{KEY}?protocol=7&client=js&version=8.4.0&flash=false"
    )))
    .await;
    let frame = client.expect("pusher:connection_established").await;
    let data: serde_json::Value = serde_json::from_str(frame["data"].as_str().unwrap()).unwrap();
    let socket_id = data["socket_id"].as_str().unwrap();
    let (high, low) = socket_id.split_once('.').unwrap();
    assert!(high.bytes().all(|b| b.is_ascii_digit()) && low.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(data["activity_timeout"], 120);
    let other = server.connect().await;
    assert_ne!(other.socket_id, socket_id);
}

async fn refused(url: &str) -> (u16, String) {
    let mut client = WsClient::raw(url).await;
    let error = client.expect("pusher:error").await;
    let code = error["data"]["code"].as_u64().unwrap() as u16;
    match client.receive().await {
        Received::Close(Some(closed), _) => assert_eq!(closed, code),
        other => panic!("expected a close, got {other:?}"),
    }
    (code, error["data"]["message"].as_str().unwrap().to_owned())
}

#[actix_rt::test]
async fn bad_connections_are_refused_with_the_spec_codes() {
    let server = spawn_server(config_with(
        "",
        "",
        "[apps.2]\nkey = \"off-key\"\nsecret = \"s\"\nenabled = false\n",
    ));
    let cases = [
        (
            "/app/nope?protocol=7",
            4001,
            "App key nope does not exist in this cluster.",
        ),
        ("/app/off-key?protocol=7", 4003, "Application disabled"),
        ("/app/test-key", 4008, "No protocol version supplied"),
        (
            "/app/test-key?protocol=seven",
            4006,
            "Invalid version string format",
        ),
        (
            "/app/test-key?protocol=3",
            4007,
            "Unsupported protocol version",
        ),
        (
            "/app/test-key?protocol=8",
            4007,
            "Unsupported protocol version",
        ),
        ("/apps/test-key?protocol=7", 4005, "Path not found"),
        ("/app/test-key/extra?protocol=7", 4005, "Path not found"),
        ("/socket", 4005, "Path not found"),
    ];
    for (path, code, message) in cases {
        let got = refused(&server.ws_url(path)).await;
        assert_eq!(got, (code, message.to_owned()), "{path}");
    }
    // The key check comes before the protocol check.
    assert_eq!(refused(&server.ws_url("/app/nope")).await.0, 4001);
}

#[actix_rt::test]
async fn protocols_5_6_and_7_are_accepted() {
    let server = spawn_server(config());
    for version in [5, 6, 7] {
        WsClient::connect(&server.ws_url(&format!("/app/{KEY}?protocol={version}"))).await;
    }
}

#[actix_rt::test]
async fn app_connection_quota_refuses_with_4004_and_node_capacity_with_4100() {
    let server = spawn_server(config_with("", "max_connections = 2", ""));
    let _a = server.connect().await;
    let b = server.connect().await;
    let url = server.ws_url(&format!("/app/{KEY}?protocol=7"));
    assert_eq!(refused(&url).await.0, 4004);
    drop(b);
    // The closed socket's slot is freed once the server sees the close.
    let mut freed = false;
    for _ in 0..50 {
        let mut client = WsClient::raw(&url).await;
        if client.recv().await["event"] == "pusher:connection_established" {
            freed = true;
            break;
        }
    }
    assert!(freed, "the quota slot of a closed socket was never freed");

    let server = spawn_server(config_with("max_connections = 1", "", ""));
    let _a = server.connect().await;
    assert_eq!(
        refused(&server.ws_url(&format!("/app/{KEY}?protocol=7"))).await,
        (4100, "Over capacity".to_owned())
    );
}

#[actix_rt::test]
async fn pusher_ping_gets_pusher_pong_and_ws_ping_gets_ws_pong() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    client
        .send(json!({"event": "pusher:ping", "data": {}}))
        .await;
    assert_eq!(
        client.recv().await,
        json!({"event": "pusher:pong", "data": {}})
    );
    client.send(json!({"event": "pusher:ping"})).await;
    client.expect("pusher:pong").await;
    client.send_message(ws::Message::Ping("hi".into())).await;
    client.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn idle_sockets_are_pinged_then_closed_with_4201() {
    let server = spawn_server(config_with(
        "activity_timeout = \"1s\"\npong_timeout = \"1s\"",
        "",
        "",
    ));
    let mut client = server.connect().await;
    assert_eq!(
        client.recv().await,
        json!({"event": "pusher:ping", "data": {}})
    );
    client.expect_closed_with(4201).await;
}

#[actix_rt::test]
async fn answering_the_ping_keeps_the_socket_open() {
    let server = spawn_server(config_with(
        "activity_timeout = \"1s\"\npong_timeout = \"1s\"",
        "",
        "",
    ));
    let mut client = server.connect().await;
    for _ in 0..3 {
        client.expect("pusher:ping").await;
        client
            .send(json!({"event": "pusher:pong", "data": {}}))
            .await;
    }
    client.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn malformed_and_unknown_frames_get_errors_and_the_socket_stays_open() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    for text in [
        "not json",
        "[]",
        "{\"event\":42}",
        "{\"data\":{}}",
        "{\"event\":\"pusher:subscribe\",\"data\":[]}",
    ] {
        client.send_text(text).await;
        client.expect_error(None).await;
    }
    client
        .send(json!({"event": "my-event", "channel": "a", "data": {}}))
        .await;
    let message = client.expect_error(None).await;
    assert_eq!(message, "Unsupported event received on socket my-event");
    // Unknown pusher: events are ignored.
    client
        .send(json!({"event": "pusher:unknown", "data": {}}))
        .await;
    client
        .send_message(ws::Message::Binary("{\"event\":\"pusher:ping\"}".into()))
        .await;
    client.expect("pusher:pong").await;
    client.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn frames_over_the_size_limit_close_with_1009() {
    let server = spawn_server(config_with("max_frame_bytes = 1000", "", ""));
    let mut client = server.connect().await;
    let mut bystander = server.connect().await;
    client
        .send_text(&format!(
            "{{\"event\":\"pusher:ping\",\"data\":\"{}\"}}",
            "x".repeat(2000)
        ))
        .await;
    client.expect_closed_with(1009).await;
    bystander.expect_nothing_pending().await;
}

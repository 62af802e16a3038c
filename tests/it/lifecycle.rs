//! Probes, drain on shutdown, and slow consumers.

use serde_json::json;

use crate::support::{config, config_with, spawn_server, ws::Received};

#[actix_rt::test]
async fn root_and_ready_answer_for_load_balancers() {
    let server = spawn_server(config());
    let rest = server.rest();
    let root = rest.send_raw("GET", "/", b"").await;
    assert_eq!(root.status, 200);
    let ready = rest.send_raw("GET", "/ready", b"").await;
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
}

#[actix_rt::test]
async fn shutdown_closes_every_socket_with_4200_and_stops() {
    let server = spawn_server(config());
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.subscribe("my-channel").await;
    server.start_shutdown();
    for client in [&mut a, &mut b] {
        let message = client.expect_closed_with(4200).await;
        assert_eq!(message, "Server is shutting down; reconnect");
    }
    server.join().expect("the server stops cleanly");
}

#[actix_rt::test]
async fn a_socket_that_cannot_keep_up_is_closed_with_4100() {
    let server = spawn_server(config_with(
        "outbound_queue_bytes = 1048576\nmax_request_bytes = 4194304",
        "[apps.1.limits]\nmax_event_data_bytes = 1048576",
        "",
    ));
    let mut slow = server.connect().await;
    slow.subscribe("firehose").await;
    let mut healthy = server.connect().await;
    healthy.subscribe("other").await;
    // Publish far more than the queue and the kernel's socket buffers hold, without reading;
    // the slow socket must be dropped rather than buffered without bound.
    let rest = server.rest();
    let payload = "x".repeat(512 * 1024);
    for _ in 0..128 {
        rest.trigger(&["firehose"], "e", &payload).await;
    }
    let mut closed_with = None;
    loop {
        match slow.receive().await {
            Received::Event(event) if event["event"] == "e" => continue,
            Received::Event(event) => {
                assert_eq!(event["event"], "pusher:error", "{event}");
                assert_eq!(event["data"]["code"], 4100);
            }
            Received::Close(code, _) => {
                closed_with = code;
                break;
            }
            Received::Ended => break,
        }
    }
    assert_eq!(closed_with, Some(4100));
    healthy.expect_nothing_pending().await;
    rest.trigger(&["other"], "still", "fine").await;
    assert_eq!(
        healthy.recv().await,
        json!({"event": "still", "channel": "other", "data": "fine"})
    );
}

#[actix_rt::test]
async fn a_static_directory_is_served_with_its_page_settings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<p>offers</p>").unwrap();
    let server = spawn_server(config_with(
        "",
        "",
        &format!(
            "[static]\ndir = {:?}\n[static.client]\nchannel = \"deals\"\n",
            dir.path().to_str().unwrap()
        ),
    ));
    let rest = server.rest();
    let page = rest.send_raw("GET", "/offers/", b"").await;
    assert_eq!((page.status, page.body.as_str()), (200, "<p>offers</p>"));
    let script = rest.send_raw("GET", "/offers/herald-config.js", b"").await;
    assert_eq!(script.status, 200);
    let json = script
        .body
        .strip_prefix("window.HERALD_CONFIG = ")
        .unwrap()
        .trim_end()
        .trim_end_matches(';');
    let settings: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        settings,
        json!({"appKey": "test-key", "wsHost": "", "wsPort": 0, "forceTLS": false, "wsPath": "", "channel": "deals", "event": "new_offer"})
    );
    let bare = rest.send_raw("GET", "/offers", b"").await;
    assert!((300..400).contains(&bare.status), "{bare:?}");
    assert_eq!(
        rest.send_raw("GET", "/offers/missing.js", b"").await.status,
        404
    );
    // The API still answers next to it.
    assert_eq!(rest.get("/channels", &[]).await.status, 200);
}

#[actix_rt::test]
async fn nothing_is_served_without_a_static_directory() {
    let server = spawn_server(config());
    assert_eq!(
        server.rest().send_raw("GET", "/offers/", b"").await.status,
        404
    );
}

#[actix_rt::test]
async fn idle_keep_alive_connections_do_not_hold_up_shutdown() {
    use std::io::{Read, Write};
    let mut config = config();
    config.server.shutdown_timeout = std::time::Duration::from_secs(60);
    let server = spawn_server(config);
    // An HTTP client that keeps its connection open after a request, as SDK agents do.
    let mut idle = std::net::TcpStream::connect(server.addr).unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: herald\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut response = [0u8; 256];
    let n = idle.read(&mut response).unwrap();
    assert!(String::from_utf8_lossy(&response[..n]).starts_with("HTTP/1.1 200"));
    let started = std::time::Instant::now();
    server.start_shutdown();
    server.join().expect("the server stops cleanly");
    // The idle connection was closed at once, not waited for until it timed out (HTTP keep-alive: 5 s).
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let n = idle.read(&mut response).unwrap_or(0);
    assert_eq!(n, 0, "the idle connection was closed");
}

#[actix_rt::test]
async fn paced_writes_deliver_every_frame_in_order_and_still_close() {
    // A long interval, so that most of these frames wait for the pacer and go out together.
    let server = spawn_server(config_with("write_batch_interval = \"100ms\"", "", ""));
    let mut subscriber = server.connect().await;
    subscriber.subscribe("paced").await;
    let rest = server.rest();
    for n in 0..30 {
        rest.trigger(&["paced"], "tick", &n.to_string()).await;
    }
    for n in 0..30 {
        assert_eq!(
            subscriber.recv().await,
            json!({"event": "tick", "channel": "paced", "data": n.to_string()})
        );
    }
    // The client's own ping is answered even while its writes are being paced.
    subscriber
        .send(json!({"event": "pusher:ping", "data": {}}))
        .await;
    assert_eq!(
        subscriber.expect("pusher:pong").await["event"],
        "pusher:pong"
    );
    // A close requested while frames wait for the pacer still comes after them.
    rest.trigger(&["paced"], "last", "x").await;
    server.start_shutdown();
    assert_eq!(subscriber.expect("last").await["data"], "x");
    subscriber.expect_closed_with(4200).await;
}

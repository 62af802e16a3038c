//! Sign-in, the user channel, watchlists, terminate_connections and authorized connections (spec §5).

use serde_json::{Value, json};

use crate::support::{KEY, config, config_with, spawn_server, ws::subscribe_frame};

const ALICE: &str =
    "{\"id\":\"u-42\",\"user_info\":{\"name\":\"Alice\"},\"watchlist\":[\"u-1\",\"u-2\"]}";

#[actix_rt::test]
async fn signin_succeeds_and_only_that_user_may_join_its_channel() {
    let server = spawn_server(config());
    let mut alice = server.connect().await;
    let reply = alice.signin(ALICE).await;
    assert_eq!(
        reply,
        json!({"event": "pusher:signin_success", "data": {"user_data": ALICE}})
    );
    alice.subscribe("#server-to-user-u-42").await;

    let mut mallory = server.connect().await;
    mallory
        .send(subscribe_frame(
            &mallory.socket_id,
            "#server-to-user-u-42",
            None,
        ))
        .await;
    assert_eq!(
        mallory.expect_error(None).await,
        "Only the user u-42 may subscribe to #server-to-user-u-42"
    );
    mallory.signin("{\"id\":\"u-666\"}").await;
    mallory
        .send(subscribe_frame(
            &mallory.socket_id,
            "#server-to-user-u-42",
            None,
        ))
        .await;
    mallory.expect_error(None).await;

    // sendToUser is a trigger on the user channel.
    let response = server
        .rest()
        .trigger(&["#server-to-user-u-42"], "note", "{\"x\":1}")
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        alice.recv().await,
        json!({"event": "note", "channel": "#server-to-user-u-42", "data": "{\"x\":1}"})
    );
    mallory.expect_nothing_pending().await;
    // User channels are not listed.
    assert_eq!(
        server.rest().get("/channels", &[]).await.json(),
        json!({"channels": {}})
    );
}

#[actix_rt::test]
async fn bad_signins_get_4009_errors_and_stay_open() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    client.send(json!({"event": "pusher:signin", "data": {"auth": format!("{KEY}:bad"), "user_data": "{\"id\":\"x\"}"}})).await;
    assert!(
        client
            .expect_error(Some(4009))
            .await
            .starts_with("Sign-in failed")
    );
    let signed = format!("{}::user::{{}}", client.socket_id);
    let auth = format!("{KEY}:{}", crate::support::ws::sign(&signed));
    client
        .send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": "{}"}}))
        .await;
    assert!(
        client
            .expect_error(Some(4009))
            .await
            .contains("invalid user_data")
    );
    client.signin("{\"id\":\"a\"}").await;
    let signed = format!("{}::user::{{\"id\":\"b\"}}", client.socket_id);
    let auth = format!("{KEY}:{}", crate::support::ws::sign(&signed));
    client.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": "{\"id\":\"b\"}"}})).await;
    assert!(
        client
            .expect_error(Some(4009))
            .await
            .contains("already signed in as a")
    );
    client.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn presence_without_channel_data_uses_the_signed_in_user() {
    let server = spawn_server(config());
    let mut alice = server.connect().await;
    alice.signin(ALICE).await;
    alice
        .send(subscribe_frame(&alice.socket_id, "presence-room", None))
        .await;
    let reply = alice.expect("pusher_internal:subscription_succeeded").await;
    let data: Value = serde_json::from_str(reply["data"].as_str().unwrap()).unwrap();
    assert_eq!(
        data,
        json!({"presence": {"ids": ["u-42"], "hash": {"u-42": {"name": "Alice"}}, "count": 1}})
    );
}

fn watchlist(frame: &Value) -> Vec<(String, Vec<String>)> {
    assert_eq!(
        frame["event"], "pusher_internal:watchlist_events",
        "{frame}"
    );
    frame["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            let ids = event["user_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect();
            (event["name"].as_str().unwrap().to_owned(), ids)
        })
        .collect()
}

#[actix_rt::test]
async fn watchlists_report_online_and_offline() {
    let server = spawn_server(config_with("", "watchlist_events = true", ""));
    let mut one = server.connect().await;
    one.signin("{\"id\":\"u-1\"}").await;

    let mut alice = server.connect().await;
    alice.signin(ALICE).await;
    let initial = watchlist(&alice.recv().await);
    assert_eq!(
        initial,
        [
            ("online".into(), vec!["u-1".into()]),
            ("offline".into(), vec!["u-2".into()])
        ]
    );

    let mut two = server.connect().await;
    two.signin("{\"id\":\"u-2\"}").await;
    assert_eq!(
        watchlist(&alice.recv().await),
        [("online".into(), vec!["u-2".into()])]
    );

    // A second socket of u-2 changes nothing; closing the last one reports offline.
    let mut two_again = server.connect().await;
    two_again.signin("{\"id\":\"u-2\"}").await;
    alice.expect_nothing_pending().await;
    drop(two);
    alice.expect_nothing_pending().await;
    drop(two_again);
    assert_eq!(
        watchlist(&alice.recv().await),
        [("offline".into(), vec!["u-2".into()])]
    );
}

#[actix_rt::test]
async fn watchlists_over_the_limit_are_truncated_with_4302() {
    let server = spawn_server(config_with(
        "",
        "watchlist_events = true\n[apps.1.limits]\nmax_watchlist = 2",
        "",
    ));
    let mut client = server.connect().await;
    client
        .signin("{\"id\":\"me\",\"watchlist\":[\"a\",\"b\",\"c\"]}")
        .await;
    assert_eq!(
        watchlist(&client.recv().await),
        [("offline".into(), vec!["a".into(), "b".into()])]
    );
    client.expect_error(Some(4302)).await;
}

#[actix_rt::test]
async fn terminate_connections_closes_every_signed_in_socket_of_the_user() {
    let server = spawn_server(config());
    let mut first = server.connect().await;
    first.signin("{\"id\":\"u-42\"}").await;
    let mut second = server.connect().await;
    second.signin("{\"id\":\"u-42\"}").await;
    // Joining presence as u-42 without signing in is not affected.
    let mut presence_only = server.connect().await;
    presence_only
        .join("presence-room", "{\"user_id\":\"u-42\"}")
        .await;

    let response = server
        .rest()
        .post("/users/u-42/terminate_connections", &json!({}))
        .await;
    assert_eq!((response.status, response.json()), (200, json!({})));
    for client in [&mut first, &mut second] {
        let message = client.expect_closed_with(4009).await;
        assert_eq!(message, "You got disconnected by the app.");
    }
    presence_only.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn terminate_connections_on_the_python_sdk_path() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    client.signin("{\"id\":\"u-9\"}").await;
    let rest = server.rest();
    let path = "/users/u-9/terminate_connections";
    let query = rest.signed_query("POST", path, &[], b"{}", crate::support::rest::now());
    let response = rest
        .send_raw("POST", &format!("{path}?{query}"), b"{}")
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
    client.expect_closed_with(4009).await;
}

#[actix_rt::test]
async fn authorized_connections_close_idle_anonymous_sockets_with_4009() {
    let server = spawn_server(config_with(
        "",
        "require_authorization = true\nauthorization_timeout = \"1s\"",
        "",
    ));
    let mut anonymous = server.connect().await;
    let mut signed_in = server.connect().await;
    signed_in.signin("{\"id\":\"u\"}").await;
    let mut private = server.connect().await;
    private.subscribe("private-chat").await;
    let mut public_only = server.connect().await;
    public_only.subscribe("public").await;
    assert_eq!(
        anonymous.expect_closed_with(4009).await,
        "Connection not authorized within timeout"
    );
    assert_eq!(
        public_only.expect_closed_with(4009).await,
        "Connection not authorized within timeout"
    );
    // Sign-in failures close the socket on such apps.
    let mut failing = server.connect().await;
    failing.send(json!({"event": "pusher:signin", "data": {"auth": format!("{KEY}:bad"), "user_data": "{\"id\":\"x\"}"}})).await;
    failing.expect_closed_with(4009).await;
    signed_in.expect_nothing_pending().await;
    private.expect_nothing_pending().await;
}

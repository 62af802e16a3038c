//! The REST API: every endpoint, every error status, signatures as the SDKs make them (spec §9).

use serde_json::{Value, json};

use crate::support::{Rest, config, config_with, rest::now, spawn_server};

#[actix_rt::test]
async fn trigger_publishes_to_many_channels_and_excludes_socket_id() {
    let server = spawn_server(config());
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.subscribe("one").await;
    b.subscribe("one").await;
    b.subscribe("two").await;
    let response = server
        .rest()
        .post("/events", &json!({"name": "e", "channels": ["one", "two"], "data": "d", "socket_id": a.socket_id}))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        b.recv().await,
        json!({"event": "e", "channel": "one", "data": "d"})
    );
    assert_eq!(
        b.recv().await,
        json!({"event": "e", "channel": "two", "data": "d"})
    );
    a.expect_nothing_pending().await;
    // The single-channel form, as the PHP SDK sends it; non-string data is sent as JSON text.
    let response = server
        .rest()
        .post(
            "/events",
            &json!({"name": "e", "channel": "two", "data": {"k": [1, 2]}}),
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(b.recv().await["data"], "{\"k\":[1,2]}");
}

#[actix_rt::test]
async fn trigger_info_reports_counts_per_unique_channel() {
    let server = spawn_server(config());
    let mut alice = server.connect().await;
    alice.join("presence-room", "{\"user_id\":\"a\"}").await;
    let mut alice2 = server.connect().await;
    alice2.join("presence-room", "{\"user_id\":\"a\"}").await;
    let mut bob = server.connect().await;
    bob.subscribe("my-channel").await;
    let body = json!({"name": "e", "channels": ["presence-room", "my-channel", "my-channel"], "data": "x", "info": "subscription_count"});
    let response = server.rest().post("/events", &body).await;
    assert_eq!(
        response.json(),
        json!({"channels": {"presence-room": {"subscription_count": 2}, "my-channel": {"subscription_count": 1}}})
    );
    let body = json!({"name": "e", "channels": ["presence-room"], "data": "x", "info": "user_count,subscription_count"});
    assert_eq!(
        server.rest().post("/events", &body).await.json(),
        json!({"channels": {"presence-room": {"user_count": 1, "subscription_count": 2}}})
    );
    // user_count is left out where it does not apply, as in the HTTP API reference's example.
    let body = json!({"name": "e", "channels": ["presence-room", "my-channel"], "data": "x", "info": "user_count,subscription_count"});
    assert_eq!(
        server.rest().post("/events", &body).await.json(),
        json!({"channels": {"presence-room": {"user_count": 1, "subscription_count": 2}, "my-channel": {"subscription_count": 1}}})
    );
}

#[actix_rt::test]
async fn trigger_refuses_bad_requests_with_400_and_413() {
    let server = spawn_server(config_with(
        "",
        "[apps.1.limits]\nmax_channels_per_event = 3",
        "",
    ));
    let rest = server.rest();
    let too_many: Vec<String> = (0..4).map(|n| format!("c{n}")).collect();
    let cases: Vec<(Value, u16)> = vec![
        (json!({"channels": ["a"], "data": "x"}), 400),
        (json!({"name": "e", "channels": ["a"]}), 400),
        (json!({"name": "e", "data": "x"}), 400),
        (json!({"name": "e", "channels": [], "data": "x"}), 400),
        (json!({"name": "e", "channels": too_many, "data": "x"}), 400),
        (
            json!({"name": "e", "channels": ["bad name"], "data": "x"}),
            400,
        ),
        (
            json!({"name": "e", "channels": ["a"], "data": "x", "socket_id": "123"}),
            400,
        ),
        (
            json!({"name": "e".repeat(201), "channels": ["a"], "data": "x"}),
            400,
        ),
        (
            json!({"name": "pusher:subscribe", "channels": ["a"], "data": "x"}),
            400,
        ),
        (
            json!({"name": "pusher_internal:x", "channels": ["a"], "data": "x"}),
            400,
        ),
        (
            json!({"name": "e", "channels": ["private-encrypted-a", "b"], "data": "x"}),
            400,
        ),
        (
            json!({"name": "e", "channels": ["a"], "data": "x", "info": "colour"}),
            400,
        ),
        (
            json!({"name": "e", "channels": ["a"], "data": "x".repeat(10 * 1024 + 1)}),
            413,
        ),
    ];
    for (body, status) in cases {
        let response = rest.post("/events", &body).await;
        assert_eq!(response.status, status, "{body}: {}", response.body);
        assert!(!response.body.is_empty());
    }
    let response = rest.post_bytes("/events", &[], b"{not json").await;
    assert_eq!(response.status, 400);
    // Exactly 10 KB is allowed.
    let response = rest
        .post(
            "/events",
            &json!({"name": "e", "channels": ["a"], "data": "x".repeat(10 * 1024)}),
        )
        .await;
    assert_eq!(response.status, 200);
}

#[actix_rt::test]
async fn batch_events_publish_all_or_nothing() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    client.subscribe("one").await;
    client.join("presence-room", "{\"user_id\":\"u\"}").await;
    let rest = server.rest();
    let batch = json!({"batch": [
        {"channel": "one", "name": "ev1", "data": "1"},
        {"channel": "presence-room", "name": "ev2", "data": "2", "info": "user_count"}
    ]});
    let response = rest.post("/batch_events", &batch).await;
    assert_eq!(response.json(), json!({"batch": [{}, {"user_count": 1}]}));
    assert_eq!(client.recv().await["event"], "ev1");
    assert_eq!(client.recv().await["event"], "ev2");
    let batch = json!({"batch": [{"channel": "one", "name": "a", "data": "1"}]});
    assert_eq!(rest.post("/batch_events", &batch).await.json(), json!({}));
    client.expect("a").await;

    let eleven: Vec<Value> = (0..11)
        .map(|n| json!({"channel": "one", "name": "e", "data": n.to_string()}))
        .collect();
    let invalid = [
        json!({"batch": eleven}),
        json!({"batch": [{"channel": "one", "name": "ok", "data": "1"}, {"name": "no-channel", "data": "2"}]}),
        json!({"batch": [{"channel": "one", "name": "ok", "data": "1"}, {"channels": ["one"], "name": "e", "data": "2"}]}),
        json!({"batch": [{"channel": "one", "name": "ok", "data": "1"}, {"channel": "bad name", "name": "e", "data": "2"}]}),
        json!({}),
    ];
    for body in invalid {
        assert_eq!(
            rest.post("/batch_events", &body).await.status,
            400,
            "{body}"
        );
    }
    let oversize = json!({"batch": [{"channel": "one", "name": "ok", "data": "1"}, {"channel": "one", "name": "big", "data": "x".repeat(10241)}]});
    assert_eq!(rest.post("/batch_events", &oversize).await.status, 413);
    // Nothing from the refused batches was published.
    client.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn channel_queries_answer_from_live_state() {
    let server = spawn_server(config());
    let rest = server.rest();
    let mut a = server.connect().await;
    a.join("presence-room", "{\"user_id\":\"a\"}").await;
    a.subscribe("public-one").await;
    let mut b = server.connect().await;
    b.join("presence-room", "{\"user_id\":\"b\"}").await;
    b.signin("{\"id\":\"b\"}").await;
    b.subscribe("#server-to-user-b").await;

    assert_eq!(
        rest.get("/channels", &[]).await.json(),
        json!({"channels": {"presence-room": {}, "public-one": {}}})
    );
    assert_eq!(
        rest.get(
            "/channels",
            &[("filter_by_prefix", "presence-"), ("info", "user_count")]
        )
        .await
        .json(),
        json!({"channels": {"presence-room": {"user_count": 2}}})
    );
    assert_eq!(
        rest.get("/channels", &[("info", "user_count")])
            .await
            .status,
        400
    );
    assert_eq!(
        rest.get(
            "/channels",
            &[
                ("filter_by_prefix", "public-"),
                ("info", "subscription_count")
            ]
        )
        .await
        .json(),
        json!({"channels": {"public-one": {"subscription_count": 1}}})
    );
    assert_eq!(
        rest.get(
            "/channels/presence-room",
            &[("info", "user_count,subscription_count")]
        )
        .await
        .json(),
        json!({"occupied": true, "user_count": 2, "subscription_count": 2})
    );
    assert_eq!(
        rest.get("/channels/public-one", &[]).await.json(),
        json!({"occupied": true})
    );
    assert_eq!(
        rest.get("/channels/empty", &[("info", "subscription_count")])
            .await
            .json(),
        json!({"occupied": false, "subscription_count": 0})
    );
    assert_eq!(
        rest.get("/channels/public-one", &[("info", "user_count")])
            .await
            .status,
        400
    );
    assert_eq!(rest.get("/channels/bad%20name", &[]).await.status, 400);
    assert_eq!(
        rest.get("/channels/presence-room/users", &[]).await.json(),
        json!({"users": [{"id": "a"}, {"id": "b"}]})
    );
    assert_eq!(
        rest.get("/channels/public-one/users", &[]).await.status,
        400
    );
}

#[actix_rt::test]
async fn signature_failures_are_401_and_unknown_apps_404() {
    let server = spawn_server(config_with(
        "",
        "",
        "[apps.2]\nkey = \"off\"\nsecret = \"off-secret\"\nenabled = false\n",
    ));
    let rest = server.rest();
    let path = "/apps/1/channels";
    let good = rest.signed_query("GET", path, &[], b"", now());
    assert_eq!(
        rest.send_raw("GET", &format!("{path}?{good}"), b"")
            .await
            .status,
        200
    );

    let wrong_secret = Rest::new(server.http_url(""), "1", "test-key", "not-the-secret");
    let stale = rest.signed_query("GET", path, &[], b"", now() - 601);
    let future = rest.signed_query("GET", path, &[], b"", now() + 601);
    let version = good.replace("auth_version=1.0", "auth_version=2.0");
    let unsigned = good.split("&auth_signature").next().unwrap().to_owned();
    let cases = [
        (
            format!(
                "{path}?{}",
                wrong_secret.signed_query("GET", path, &[], b"", now())
            ),
            401,
        ),
        (format!("{path}?{stale}"), 401),
        (format!("{path}?{future}"), 401),
        (format!("{path}?{version}"), 401),
        (format!("{path}?{unsigned}"), 401),
        (
            format!(
                "{path}?{}",
                good.replace("auth_key=test-key", "auth_key=other")
            ),
            401,
        ),
        (format!("/apps/99/channels?{good}"), 404),
    ];
    for (url, status) in cases {
        let response = rest.send_raw("GET", &url, b"").await;
        assert_eq!(response.status, status, "{url}: {}", response.body);
    }
    let expired = rest.send_raw("GET", &format!("{path}?{stale}"), b"").await;
    assert!(
        expired
            .body
            .starts_with("Timestamp expired: Given timestamp ("),
        "{}",
        expired.body
    );
    // A body that does not match body_md5.
    let body = b"{\"name\":\"e\",\"channels\":[\"a\"],\"data\":\"x\"}";
    let query = rest.signed_query("POST", "/apps/1/events", &[], body, now());
    let response = rest
        .send_raw(
            "POST",
            &format!("/apps/1/events?{query}"),
            b"{\"name\":\"e\",\"channels\":[\"b\"],\"data\":\"x\"}",
        )
        .await;
    assert_eq!(response.status, 401);
    // A disabled app is 403 once the request is authentic.
    let disabled = Rest::new(server.http_url(""), "2", "off", "off-secret");
    assert_eq!(disabled.get("/channels", &[]).await.status, 403);
    // An unknown route is 404.
    assert_eq!(
        rest.send_raw("GET", "/apps/1/nothing-here", b"")
            .await
            .status,
        404
    );
}

#[actix_rt::test]
async fn python_style_get_with_body_md5_and_php_style_encoded_query_are_accepted() {
    let server = spawn_server(config());
    let rest = server.rest();
    let path = "/apps/1/channels/presence-room";
    let timestamp = now();
    // Python adds body_md5 of the empty body to GETs and signs it.
    let python = rest.signed_query(
        "GET",
        path,
        &[
            ("body_md5", "d41d8cd98f00b204e9800998ecf8427e"),
            ("info", "user_count"),
        ],
        b"",
        timestamp,
    );
    assert_eq!(
        rest.send_raw("GET", &format!("{path}?{python}"), b"")
            .await
            .status,
        200
    );
    // PHP percent-encodes the comma but signs the raw value.
    let signed = rest.signed_query(
        "GET",
        path,
        &[("info", "user_count,subscription_count")],
        b"",
        timestamp,
    );
    let php = signed.replace(
        "user_count,subscription_count",
        "user_count%2Csubscription_count",
    );
    let response = rest.send_raw("GET", &format!("{path}?{php}"), b"").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.json(),
        json!({"occupied": false, "user_count": 0, "subscription_count": 0})
    );
}

#[actix_rt::test]
async fn legacy_channel_events_endpoint_publishes_the_raw_body_with_202() {
    let server = spawn_server(config());
    let mut client = server.connect().await;
    client.subscribe("my-channel").await;
    let mut excluded = server.connect().await;
    excluded.subscribe("my-channel").await;
    let socket_id = excluded.socket_id.clone();
    let rest = server.rest();
    let response = rest
        .post_bytes(
            "/channels/my-channel/events",
            &[("name", "my-event"), ("socket_id", &socket_id)],
            b"{\"hello\":\"world\"}",
        )
        .await;
    assert_eq!((response.status, response.json()), (202, json!({})));
    assert_eq!(
        client.recv().await,
        json!({"event": "my-event", "channel": "my-channel", "data": "{\"hello\":\"world\"}"})
    );
    excluded.expect_nothing_pending().await;
    assert_eq!(
        rest.post_bytes("/channels/my-channel/events", &[], b"x")
            .await
            .status,
        400
    );
    assert_eq!(
        rest.post_bytes(
            "/channels/my-channel/events",
            &[("name", "e")],
            &[0xff, 0xfe]
        )
        .await
        .status,
        400
    );
    assert_eq!(
        rest.post_bytes(
            "/channels/my-channel/events",
            &[("name", "e")],
            "x".repeat(10241).as_bytes()
        )
        .await
        .status,
        413
    );
}

#[actix_rt::test]
async fn apex_fixture_requests_are_accepted_byte_for_byte() {
    let fixtures: Value =
        serde_json::from_str(include_str!("../fixtures/apex-pusher-rest-vectors.json")).unwrap();
    let mut toml = String::from("[server]\ntimestamp_window = \"100000days\"\n");
    let mut seen = std::collections::HashSet::new();
    for vector in fixtures["vectors"].as_array().unwrap() {
        let id = vector["app_id"].as_str().unwrap();
        if seen.insert(id.to_owned()) {
            toml += &format!(
                "[apps.{id}]\nkey = {}\nsecret = {}\n",
                vector["key"], vector["secret"]
            );
        }
    }
    let server = spawn_server(herald::config::Config::from_toml(&toml).unwrap());
    for vector in fixtures["vectors"].as_array().unwrap() {
        let key = vector["key"].as_str().unwrap();
        let mut subscriber =
            crate::support::WsClient::connect(&server.ws_url(&format!("/app/{key}?protocol=7")))
                .await;
        subscriber.subscribe("test_channel").await;
        let path = vector["path"].as_str().unwrap();
        let query = match vector["query_sent"].as_str() {
            Some(query) => query.to_owned(),
            None => {
                let signed = vector["string_to_sign"]
                    .as_str()
                    .unwrap()
                    .lines()
                    .nth(2)
                    .unwrap()
                    .to_owned();
                format!(
                    "{signed}&auth_signature={}",
                    vector["auth_signature"].as_str().unwrap()
                )
            }
        };
        let body = vector["body"].as_str().unwrap().as_bytes();
        let rest = Rest::new(server.http_url(""), "", "", "");
        let response = rest
            .send_raw("POST", &format!("{path}?{query}"), body)
            .await;
        assert_eq!(
            response.status as u64,
            vector["expected_status"].as_u64().unwrap(),
            "{}: {}",
            vector["name"],
            response.body
        );
        if let Some(expected) = vector.get("expected_ws_event") {
            assert_eq!(&subscriber.recv().await, expected);
        } else if vector["body"].as_str().unwrap().contains("test_channel") {
            let event = subscriber.recv().await;
            let sent: Value = serde_json::from_str(vector["body"].as_str().unwrap()).unwrap();
            assert_eq!(event["data"], sent["data"]);
        }
    }
}

const TOKEN: &str = "a-bearer-token-of-some-length";

async fn bearer_post(
    server: &crate::support::TestServer,
    path: &str,
    token: &str,
    body: &[u8],
    idempotency_key: Option<&str>,
) -> (u16, String) {
    let mut request = awc::Client::new()
        .post(server.http_url(path))
        .insert_header(("authorization", format!("Bearer {token}")))
        .insert_header(("content-type", "application/json"));
    if let Some(key) = idempotency_key {
        request = request.insert_header(("idempotency-key", key));
    }
    let mut response = request.send_body(body.to_vec()).await.unwrap();
    let body = response.body().await.unwrap();
    (
        response.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[actix_rt::test]
async fn bearer_tokens_publish_when_configured_for_the_app() {
    let server = spawn_server(config_with(
        "",
        &format!("bearer_tokens = [\"{TOKEN}\"]"),
        "[apps.2]\nkey = \"k2\"\nsecret = \"s2\"\n",
    ));
    let mut client = server.connect().await;
    client.subscribe("offers").await;
    let body = br#"{"name":"new_offer","channels":["offers"],"data":"{\"text\":\"OFF-1\"}"}"#;
    assert_eq!(
        bearer_post(&server, "/apps/1/events", TOKEN, body, None)
            .await
            .0,
        200
    );
    assert_eq!(client.recv().await["data"], "{\"text\":\"OFF-1\"}");
    let (status, _) = bearer_post(
        &server,
        "/apps/1/channels/offers/events?name=new_offer",
        TOKEN,
        b"{\"text\":\"OFF-2\"}",
        None,
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(client.recv().await["data"], "{\"text\":\"OFF-2\"}");
    let batch = br#"{"batch":[{"name":"new_offer","channel":"offers","data":"3"}]}"#;
    assert_eq!(
        bearer_post(&server, "/apps/1/batch_events", TOKEN, batch, None)
            .await
            .0,
        200
    );
    assert_eq!(client.recv().await["data"], "3");

    let (status, message) = bearer_post(
        &server,
        "/apps/1/events",
        "wrong-token-wrong-token",
        body,
        None,
    )
    .await;
    assert_eq!((status, message.as_str()), (401, "Invalid bearer token\n"));
    // Another app without tokens refuses bearer auth; queries never accept it.
    assert_eq!(
        bearer_post(&server, "/apps/2/events", TOKEN, body, None)
            .await
            .0,
        401
    );
    let mut response = awc::Client::new()
        .get(server.http_url("/apps/1/channels"))
        .insert_header(("authorization", format!("Bearer {TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let _ = response.body().await;
    client.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn bearer_tokens_must_be_long() {
    let error = herald::config::Config::from_toml(
        "[apps.1]\nkey = \"k\"\nsecret = \"s\"\nbearer_tokens = [\"short\"]\n",
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("apps.1.bearer_tokens[0]"),
        "{error}"
    );
}

#[actix_rt::test]
async fn a_repeated_idempotency_key_is_acknowledged_without_publishing_again() {
    let server = spawn_server(config_with(
        "",
        &format!("bearer_tokens = [\"{TOKEN}\"]"),
        "",
    ));
    let mut client = server.connect().await;
    client.subscribe("offers").await;
    let body = br#"{"name":"new_offer","channels":["offers"],"data":"once"}"#;
    for _ in 0..3 {
        assert_eq!(
            bearer_post(
                &server,
                "/apps/1/events",
                TOKEN,
                body,
                Some("offer-a0B-1700000000000")
            )
            .await
            .0,
            200
        );
    }
    assert_eq!(client.recv().await["data"], "once");
    client.expect_nothing_pending().await;
    // Another key publishes; the legacy endpoint honours keys too.
    assert_eq!(
        bearer_post(
            &server,
            "/apps/1/events",
            TOKEN,
            body,
            Some("offer-a0B-1700000000001")
        )
        .await
        .0,
        200
    );
    assert_eq!(client.recv().await["data"], "once");
    for _ in 0..2 {
        let (status, _) = bearer_post(
            &server,
            "/apps/1/channels/offers/events?name=e",
            TOKEN,
            b"legacy",
            Some("legacy-1"),
        )
        .await;
        assert_eq!(status, 202);
    }
    assert_eq!(client.recv().await["data"], "legacy");
    client.expect_nothing_pending().await;
    // A request refused by validation does not use up its key.
    let bad = br#"{"name":"new_offer","channels":["bad name"],"data":"x"}"#;
    assert_eq!(
        bearer_post(&server, "/apps/1/events", TOKEN, bad, Some("k-retry"))
            .await
            .0,
        400
    );
    assert_eq!(
        bearer_post(&server, "/apps/1/events", TOKEN, body, Some("k-retry"))
            .await
            .0,
        200
    );
    assert_eq!(client.recv().await["data"], "once");
    let long = "k".repeat(256);
    assert_eq!(
        bearer_post(&server, "/apps/1/events", TOKEN, body, Some(&long))
            .await
            .0,
        400
    );
}

#[actix_rt::test]
async fn apex_fixture_requests_with_a_wrong_signature_or_a_stale_timestamp_are_refused() {
    let fixtures: Value =
        serde_json::from_str(include_str!("../fixtures/apex-pusher-rest-vectors.json")).unwrap();
    let legacy = fixtures["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["endpoint_style"] == "legacy_channel_events")
        .unwrap()
        .clone();
    let app = format!(
        "[apps.424242]\nkey = {}\nsecret = {}\n",
        legacy["key"], legacy["secret"]
    );
    let path = legacy["path"].as_str().unwrap();
    let query = legacy["query_sent"].as_str().unwrap();
    let body = legacy["body"].as_str().unwrap().as_bytes();

    // The recorded timestamp (2023) is far outside the normal ±600 s window: 401 "Timestamp expired".
    let server = spawn_server(herald::config::Config::from_toml(&app).unwrap());
    let rest = Rest::new(server.http_url(""), "", "", "");
    let stale = rest
        .send_raw("POST", &format!("{path}?{query}"), body)
        .await;
    assert_eq!(stale.status, 401);
    assert!(
        stale.body.starts_with("Timestamp expired"),
        "{}",
        stale.body
    );

    // Within a wide window, a tampered signature, body or channel is still refused.
    let server = spawn_server(
        herald::config::Config::from_toml(&format!(
            "[server]\ntimestamp_window = \"100000days\"\n{app}"
        ))
        .unwrap(),
    );
    let rest = Rest::new(server.http_url(""), "", "", "");
    let signature = legacy["auth_signature"].as_str().unwrap();
    let wrong_signature = query.replace(signature, &"0".repeat(64));
    let tampered_body = String::from_utf8_lossy(body).replace("OFF-000123", "OFF-999999");
    let cases: [(String, &[u8]); 3] = [
        (format!("{path}?{wrong_signature}"), body),
        (format!("{path}?{query}"), tampered_body.as_bytes()),
        (
            format!("{}?{query}", path.replace("test_channel", "other_channel")),
            body,
        ),
    ];
    for (url, body) in cases {
        let response = rest.send_raw("POST", &url, body).await;
        assert_eq!(response.status, 401, "{url}: {}", response.body);
    }
    assert_eq!(
        rest.send_raw("POST", &format!("{path}?{query}"), body)
            .await
            .status,
        202
    );
}

//! Several nodes sharing a real Redis behave as one Pusher server: delivery, presence, queries,
//! users and cache across nodes; dead nodes leave no ghosts; a Redis outage is survived.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    KEY, SECRET, TestServer,
    binary::BinaryServer,
    config_with,
    redis::{RedisCluster, RedisServer},
    spawn_server,
    ws::{Received, subscribe_frame},
};

/// A node of the cluster on `redis_url` (or the cluster seeds), with a unique key prefix per test.
fn node(redis: &str, prefix: &str, app_extra: &str) -> TestServer {
    spawn_server(config_with(
        "",
        &format!("watchlist_events = true\n{app_extra}"),
        &format!(
            "[adapter]\ndriver = \"redis\"\n{redis}\nkey_prefix = \"{prefix}\"\nheartbeat_interval = \"200ms\"\nnode_timeout = \"1s\"\n"
        ),
    ))
}

fn single(redis: &RedisServer) -> String {
    format!("redis_url = \"{}\"", redis.url())
}

fn pair(redis: &RedisServer, prefix: &str) -> (TestServer, TestServer) {
    (
        node(&single(redis), prefix, ""),
        node(&single(redis), prefix, ""),
    )
}

#[actix_rt::test]
async fn events_published_on_one_node_reach_subscribers_on_the_other() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis, "delivery");
    let mut on_a = a.connect().await;
    let mut excluded_on_a = a.connect().await;
    let channels = [
        "public-room",
        "private-room",
        "private-encrypted-room",
        "cache-room",
    ];
    for channel in channels {
        on_a.subscribe(channel).await;
        excluded_on_a.subscribe(channel).await;
    }
    on_a.expect("pusher:cache_miss").await;
    excluded_on_a.expect("pusher:cache_miss").await;
    on_a.join("presence-room", "{\"user_id\":\"a\"}").await;
    for channel in channels.iter().chain(&["presence-room"]) {
        let body = json!({"name": "e", "channel": channel, "data": "d", "socket_id": excluded_on_a.socket_id});
        let response = b.rest().post("/events", &body).await;
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(
            on_a.recv().await,
            json!({"event": "e", "channel": channel, "data": "d"})
        );
    }
    excluded_on_a.expect_nothing_pending().await;
    // The cache is cluster-wide too.
    let mut late_on_a = a.connect().await;
    late_on_a.subscribe("cache-room").await;
    assert_eq!(
        late_on_a.recv().await,
        json!({"event": "e", "channel": "cache-room", "data": "d"})
    );
    // So is the legacy endpoint.
    let response = b
        .rest()
        .post_bytes(
            "/channels/public-room/events",
            &[("name", "legacy")],
            b"raw",
        )
        .await;
    assert_eq!(response.status, 202);
    assert_eq!(on_a.recv().await["event"], "legacy");
}

#[actix_rt::test]
async fn client_events_cross_nodes_and_skip_the_sender() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis, "client-events");
    let mut alice = a.connect().await;
    let mut bob = b.connect().await;
    alice.join("presence-chat", "{\"user_id\":\"alice\"}").await;
    bob.join("presence-chat", "{\"user_id\":\"bob\"}").await;
    alice.expect("pusher_internal:member_added").await;
    alice
        .send(json!({"event": "client-hi", "channel": "presence-chat", "data": {"x": 1}}))
        .await;
    assert_eq!(
        bob.recv().await,
        json!({"event": "client-hi", "channel": "presence-chat", "data": {"x": 1}, "user_id": "alice"})
    );
    alice.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn presence_is_cluster_wide() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis, "presence");
    let mut alice = a.connect().await;
    alice
        .join(
            "presence-room",
            "{\"user_id\":\"alice\",\"user_info\":{\"n\":1}}",
        )
        .await;
    let mut bob = b.connect().await;
    let data = bob.join("presence-room", "{\"user_id\":\"bob\"}").await;
    assert_eq!(data["presence"]["count"], 2);
    assert_eq!(data["presence"]["hash"]["alice"], json!({"n": 1}));
    assert_eq!(alice.recv().await["data"], "{\"user_id\":\"bob\"}");
    // Alice's second socket, on the other node: no member_added anywhere.
    let mut alice_on_b = b.connect().await;
    assert_eq!(
        alice_on_b
            .join(
                "presence-room",
                "{\"user_id\":\"alice\",\"user_info\":{\"n\":1}}"
            )
            .await["presence"]["count"],
        2
    );
    bob.expect_nothing_pending().await;
    alice.expect_nothing_pending().await;
    // Queries on either node see the whole cluster.
    for node in [&a, &b] {
        let info = node
            .rest()
            .get(
                "/channels/presence-room",
                &[("info", "user_count,subscription_count")],
            )
            .await
            .json();
        assert_eq!(
            info,
            json!({"occupied": true, "user_count": 2, "subscription_count": 3})
        );
        let users = node
            .rest()
            .get("/channels/presence-room/users", &[])
            .await
            .json();
        assert_eq!(users, json!({"users": [{"id": "alice"}, {"id": "bob"}]}));
        let list = node
            .rest()
            .get(
                "/channels",
                &[("filter_by_prefix", "presence-"), ("info", "user_count")],
            )
            .await
            .json();
        assert_eq!(
            list,
            json!({"channels": {"presence-room": {"user_count": 2}}})
        );
    }
    // Alice leaves node A: still present through node B; then for good.
    drop(alice);
    bob.expect_nothing_pending().await;
    drop(alice_on_b);
    assert_eq!(
        bob.recv().await,
        json!({"event": "pusher_internal:member_removed", "channel": "presence-room", "data": "{\"user_id\":\"alice\"}"})
    );
}

#[actix_rt::test]
async fn the_member_limit_counts_every_node() {
    let redis = RedisServer::start();
    let a = node(
        &single(&redis),
        "limit",
        "[apps.1.limits]\nmax_presence_members = 2",
    );
    let b = node(
        &single(&redis),
        "limit",
        "[apps.1.limits]\nmax_presence_members = 2",
    );
    let mut one = a.connect().await;
    one.join("presence-full", "{\"user_id\":\"1\"}").await;
    let mut two = b.connect().await;
    two.join("presence-full", "{\"user_id\":\"2\"}").await;
    let mut three = a.connect().await;
    three
        .send(subscribe_frame(
            &three.socket_id,
            "presence-full",
            Some("{\"user_id\":\"3\"}"),
        ))
        .await;
    assert!(three.expect_error(None).await.contains("is full"));
    // The refused socket left no trace: the count stays right.
    let info = b
        .rest()
        .get(
            "/channels/presence-full",
            &[("info", "subscription_count,user_count")],
        )
        .await
        .json();
    assert_eq!(
        info,
        json!({"occupied": true, "subscription_count": 2, "user_count": 2})
    );
}

#[actix_rt::test]
async fn users_can_be_reached_and_terminated_on_any_node() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis, "users");
    let mut watcher = a.connect().await;
    watcher.signin("{\"id\":\"w\",\"watchlist\":[\"u\"]}").await;
    watcher.expect("pusher_internal:watchlist_events").await;
    let mut user_on_b = b.connect().await;
    user_on_b.signin("{\"id\":\"u\"}").await;
    user_on_b.subscribe("#server-to-user-u").await;
    assert_eq!(
        watcher.recv().await["data"],
        json!({"events": [{"name": "online", "user_ids": ["u"]}]})
    );
    let response = a
        .rest()
        .post(
            "/events",
            &json!({"name": "note", "channel": "#server-to-user-u", "data": "hi"}),
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(user_on_b.recv().await["event"], "note");
    let response = a
        .rest()
        .post("/users/u/terminate_connections", &json!({}))
        .await;
    assert_eq!(response.status, 200);
    user_on_b.expect_closed_with(4009).await;
    assert_eq!(
        watcher.recv().await["data"],
        json!({"events": [{"name": "offline", "user_ids": ["u"]}]})
    );
}

#[actix_rt::test]
async fn idempotency_keys_are_shared_by_the_cluster() {
    let redis = RedisServer::start();
    let (a, b) = pair(&redis, "idempotency");
    let mut client = a.connect().await;
    client.subscribe("offers").await;
    for node in [&a, &b, &a] {
        let body = b"{\"name\":\"e\",\"channel\":\"offers\",\"data\":\"once\"}";
        let query = node.rest().signed_query(
            "POST",
            "/apps/1/events",
            &[],
            body,
            crate::support::rest::now(),
        );
        let mut response = awc::Client::new()
            .post(node.http_url(&format!("/apps/1/events?{query}")))
            .insert_header(("Idempotency-Key", "k-1"))
            .send_body(body.to_vec())
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let _ = response.body().await;
    }
    assert_eq!(client.recv().await["data"], "once");
    client.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn clusters_with_different_prefixes_do_not_mix() {
    let redis = RedisServer::start();
    let one = node(&single(&redis), "first", "");
    let other = node(&single(&redis), "second", "");
    let mut client = one.connect().await;
    client.subscribe("shared-name").await;
    other.rest().trigger(&["shared-name"], "e", "x").await;
    assert_eq!(
        other.rest().get("/channels", &[]).await.json(),
        json!({"channels": {}})
    );
    client.expect_nothing_pending().await;
}

/// The real binary as a cluster node, to kill it with SIGKILL.
fn binary_node(redis: &RedisServer, prefix: &str, extra: &str) -> BinaryServer {
    BinaryServer::start(&format!(
        "[adapter]\ndriver = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"{prefix}\"\n\
         heartbeat_interval = \"200ms\"\nnode_timeout = \"1s\"\n{extra}\n\
         [apps.1]\nkey = \"{KEY}\"\nsecret = \"{SECRET}\"\nwatchlist_events = true\n",
        redis.url()
    ))
}

#[actix_rt::test]
async fn a_killed_node_leaves_no_ghosts() {
    let redis = RedisServer::start();
    let survivor = node(&single(&redis), "ghosts", "");
    let other_survivor = node(&single(&redis), "ghosts", "");
    let mut watcher = survivor.connect().await;
    watcher
        .join("presence-room", "{\"user_id\":\"watcher\"}")
        .await;
    watcher
        .signin("{\"id\":\"watcher\",\"watchlist\":[\"doomed\"]}")
        .await;
    watcher.expect("pusher_internal:watchlist_events").await;

    let mut doomed_node = binary_node(&redis, "ghosts", "");
    let mut doomed = doomed_node.connect().await;
    doomed
        .join("presence-room", "{\"user_id\":\"doomed\"}")
        .await;
    doomed.subscribe("public-room").await;
    doomed.signin("{\"id\":\"doomed\"}").await;
    assert_eq!(
        watcher.recv().await["event"],
        "pusher_internal:member_added"
    );
    assert_eq!(
        watcher.recv().await["data"],
        json!({"events": [{"name": "online", "user_ids": ["doomed"]}]})
    );
    let rest = survivor.rest();
    let counts = rest
        .get(
            "/channels/presence-room",
            &[("info", "user_count,subscription_count")],
        )
        .await
        .json();
    assert_eq!(
        counts,
        json!({"occupied": true, "user_count": 2, "subscription_count": 2})
    );

    doomed_node.kill();
    let killed_at = Instant::now();
    let mut events = Vec::new();
    while events.len() < 2 {
        match watcher.receive().await {
            Received::Event(event) => events.push(event),
            other => panic!("{other:?}"),
        }
    }
    let cleanup = killed_at.elapsed();
    assert!(events.contains(&json!({"event": "pusher_internal:member_removed", "channel": "presence-room", "data": "{\"user_id\":\"doomed\"}"})), "{events:?}");
    assert!(events.contains(&json!({"event": "pusher_internal:watchlist_events", "data": {"events": [{"name": "offline", "user_ids": ["doomed"]}]}})), "{events:?}");
    assert!(cleanup < Duration::from_secs(5), "cleanup took {cleanup:?}");
    eprintln!("crash cleanup took {cleanup:?} (node_timeout 1s, heartbeat 200ms)");
    for node in [&survivor, &other_survivor] {
        let counts = node
            .rest()
            .get(
                "/channels/presence-room",
                &[("info", "user_count,subscription_count")],
            )
            .await
            .json();
        assert_eq!(
            counts,
            json!({"occupied": true, "user_count": 1, "subscription_count": 1})
        );
        assert_eq!(
            node.rest().get("/channels", &[]).await.json(),
            json!({"channels": {"presence-room": {}}})
        );
    }
    // Only one survivor announced it.
    watcher.expect_nothing_pending().await;
}

#[actix_rt::test]
async fn nodes_survive_a_redis_restart_and_resynchronise() {
    let mut redis = RedisServer::start();
    let (a, b) = pair(&redis, "outage");
    let mut alice = a.connect().await;
    alice.join("presence-room", "{\"user_id\":\"alice\"}").await;
    let mut bob = b.connect().await;
    bob.join("presence-room", "{\"user_id\":\"bob\"}").await;
    alice.expect("pusher_internal:member_added").await;
    let mut local_peer = a.connect().await;
    local_peer.subscribe("private-local").await;
    alice.subscribe("private-local").await;

    redis.kill();
    // Local sockets keep working: a client event on node A reaches node A's subscribers.
    alice
        .send(json!({"event": "client-during-outage", "channel": "private-local", "data": {}}))
        .await;
    assert_eq!(local_peer.recv().await["event"], "client-during-outage");
    let started = Instant::now();
    loop {
        let ready = a.rest().send_raw("GET", "/ready", b"").await;
        if ready.status == 503 {
            assert!(ready.body.contains("redis"), "{}", ready.body);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "/ready never reported the outage"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    // A member joins node B during the outage.
    let mut carol = b.connect().await;
    carol.join("presence-room", "{\"user_id\":\"carol\"}").await;

    redis.restart();
    let started = Instant::now();
    for node in [&a, &b] {
        loop {
            if node.rest().send_raw("GET", "/ready", b"").await.status == 200 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "node never recovered"
            );
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // After resynchronising, the cluster state is whole again and delivery crosses nodes.
    let started = Instant::now();
    loop {
        let users: Value = a
            .rest()
            .get("/channels/presence-room/users", &[])
            .await
            .json();
        if users == json!({"users": [{"id": "alice"}, {"id": "bob"}, {"id": "carol"}]}) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "state never resynchronised: {users}"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    let response = b.rest().trigger(&["presence-room"], "after", "x").await;
    assert_eq!(response.status, 200, "{}", response.body);
    loop {
        let event = alice.recv().await;
        if event["event"] == "after" {
            break;
        }
        // Carol joined while Redis was down; node A learns of her on resync.
        assert_eq!(event["event"], "pusher_internal:member_added", "{event}");
    }
}

#[actix_rt::test]
async fn a_redis_cluster_works_like_a_single_redis() {
    let cluster = RedisCluster::start();
    let seeds = format!(
        "redis_cluster_urls = [{}]",
        cluster
            .urls()
            .iter()
            .map(|url| format!("\"{url}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let a = node(&seeds, "sharded", "");
    let b = node(&seeds, "sharded", "");
    let mut alice = a.connect().await;
    alice.join("presence-room", "{\"user_id\":\"alice\"}").await;
    let mut bob = b.connect().await;
    assert_eq!(
        bob.join("presence-room", "{\"user_id\":\"bob\"}").await["presence"]["count"],
        2
    );
    assert_eq!(alice.recv().await["event"], "pusher_internal:member_added");
    let response = b.rest().trigger(&["presence-room"], "e", "d").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(alice.recv().await["event"], "e");
    let info = a
        .rest()
        .get("/channels/presence-room", &[("info", "user_count")])
        .await
        .json();
    assert_eq!(info, json!({"occupied": true, "user_count": 2}));
}

/// A node whose app sends every webhook to `url`, with a short grace window.
fn webhook_node(redis: &RedisServer, prefix: &str, url: &str) -> TestServer {
    spawn_server(config_with(
        "",
        &format!("[[apps.1.webhooks]]\nurl = \"{url}\"\n"),
        &format!(
            "[adapter]\ndriver = \"redis\"\nredis_url = \"{}\"\nkey_prefix = \"{prefix}\"\nheartbeat_interval = \"200ms\"\nnode_timeout = \"1s\"\n\
             [webhooks]\ngrace = \"300ms\"\ninitial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\nrequest_timeout = \"1s\"\n",
            redis.url()
        ),
    ))
}

fn webhook_event(hook: &crate::support::receiver::Hook) -> Value {
    let body = hook.json();
    assert_eq!(body["events"].as_array().unwrap().len(), 1, "{}", hook.body);
    body["events"][0].clone()
}

#[actix_rt::test]
async fn a_cluster_sends_each_webhook_once() {
    let redis = RedisServer::start();
    let mut receiver = crate::support::receiver::Receiver::start();
    let a = webhook_node(&redis, "hooks-once", &receiver.url());
    let b = webhook_node(&redis, "hooks-once", &receiver.url());
    let mut on_a = a.connect().await;
    let mut on_b = b.connect().await;
    on_a.join("presence-room", "{\"user_id\":\"u\"}").await;
    on_b.join("presence-room", "{\"user_id\":\"u\"}").await;
    assert_eq!(
        webhook_event(&receiver.next().await),
        json!({"name": "channel_occupied", "channel": "presence-room"})
    );
    assert_eq!(
        webhook_event(&receiver.next().await),
        json!({"name": "member_added", "channel": "presence-room", "user_id": "u"})
    );
    drop(on_a);
    drop(on_b);
    assert_eq!(
        webhook_event(&receiver.next().await),
        json!({"name": "member_removed", "channel": "presence-room", "user_id": "u"})
    );
    assert_eq!(
        webhook_event(&receiver.next().await),
        json!({"name": "channel_vacated", "channel": "presence-room"})
    );
    // A marker through the same path proves nothing was sent twice.
    let mut marker = b.connect().await;
    marker.subscribe("marker").await;
    assert_eq!(
        webhook_event(&receiver.next().await),
        json!({"name": "channel_occupied", "channel": "marker"})
    );
}

#[actix_rt::test]
async fn a_reload_onto_another_node_sends_no_webhooks() {
    let redis = RedisServer::start();
    let mut receiver = crate::support::receiver::Receiver::start();
    let a = webhook_node(&redis, "hooks-reload", &receiver.url());
    let b = webhook_node(&redis, "hooks-reload", &receiver.url());
    let mut on_a = a.connect().await;
    on_a.join("presence-room", "{\"user_id\":\"u\"}").await;
    assert_eq!(
        webhook_event(&receiver.next().await)["name"],
        "channel_occupied"
    );
    assert_eq!(
        webhook_event(&receiver.next().await)["name"],
        "member_added"
    );
    // The page reloads and its new socket lands on node B within the grace window. Node A may announce
    // the old socket's removal to the new one before its subscription reply: pusher-js ignores that.
    drop(on_a);
    let mut on_b = b.connect().await;
    on_b.send(subscribe_frame(
        &on_b.socket_id,
        "presence-room",
        Some("{\"user_id\":\"u\"}"),
    ))
    .await;
    loop {
        let frame = on_b.recv().await;
        if frame["event"] == "pusher_internal:subscription_succeeded" {
            break;
        }
        assert_eq!(frame["event"], "pusher_internal:member_removed", "{frame}");
    }
    // A marker left on node A goes through the same grace window: had the reload's removal or vacate
    // been reported, it would come first.
    let mut marker = a.connect().await;
    marker.subscribe("marker").await;
    assert_eq!(
        webhook_event(&receiver.next().await),
        json!({"name": "channel_occupied", "channel": "marker"})
    );
    marker
        .send(json!({"event": "pusher:unsubscribe", "data": {"channel": "marker"}}))
        .await;
    assert_eq!(
        webhook_event(&receiver.next().await),
        json!({"name": "channel_vacated", "channel": "marker"})
    );
}

#[actix_rt::test]
async fn a_dead_nodes_webhooks_are_delivered_by_a_survivor() {
    let redis = RedisServer::start();
    let receiver = crate::support::receiver::Receiver::start();
    let url = receiver.url();
    let receiver_port = receiver.stop();
    let survivor = webhook_node(&redis, "hooks-handover", &url);
    // The doomed node is the real binary, killed with SIGKILL while its webhooks wait.
    let mut doomed = binary_node(
        &redis,
        "hooks-handover",
        &format!(
            "[webhooks]\ngrace = \"300ms\"\ninitial_backoff = \"50ms\"\nmax_backoff = \"200ms\"\nrequest_timeout = \"1s\"\n\
             [[apps.1.webhooks]]\nurl = \"{url}\"\n"
        ),
    );
    let mut client = doomed.connect().await;
    client.subscribe("produced-on-the-doomed-node").await;
    let rest = survivor.rest();
    let started = Instant::now();
    loop {
        let pending = rest.get("/webhooks", &[]).await.json();
        if pending["deliveries"]
            .as_array()
            .is_some_and(|d| d.len() == 1 && d[0]["n_attempts"].as_u64() >= Some(1))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never stored: {pending}"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    doomed.kill();
    drop(client);
    let mut receiver =
        crate::support::receiver::Receiver::on(std::net::TcpListener::bind(receiver_port).unwrap());
    let hook = receiver.next().await;
    assert_eq!(
        webhook_event(&hook),
        json!({"name": "channel_occupied", "channel": "produced-on-the-doomed-node"})
    );
}

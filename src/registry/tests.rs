use super::*;

fn app(max_connections: Option<usize>) -> Arc<App> {
    let mut app = App::new("1", "key", "secret");
    app.max_connections = max_connections;
    Arc::new(app)
}

fn channel(name: &str) -> ChannelName {
    ChannelName::parse(name, 200).unwrap()
}

fn member(user_id: &str) -> Member {
    crate::protocol::user::parse_channel_data(&format!(
        r#"{{"user_id":"{user_id}","user_info":{{"n":1}}}}"#
    ))
    .unwrap()
}

fn frames(conn: &ConnHandle) -> Vec<String> {
    conn.outbox
        .take()
        .frames
        .into_iter()
        .map(|f| f.to_string())
        .collect()
}

#[test]
fn connection_limits_are_enforced_and_released() {
    let app = app(Some(2));
    let registry = Registry::new([&app]);
    let a = registry.connect(&app, None, 1024).unwrap();
    let _b = registry.connect(&app, None, 1024).unwrap();
    assert_eq!(
        registry.connect(&app, None, 1024).err(),
        Some(SocketError::OverQuota)
    );
    registry.disconnect(&app.id, a.socket_id);
    assert!(registry.connect(&app, None, 1024).is_ok());
    assert_eq!(
        registry.connect(&app, Some(2), 1024).err(),
        Some(SocketError::OverCapacity)
    );
    assert_eq!(registry.connection_count(), 2);
    assert_eq!(registry.app_connection_count(&app.id), 2);
}

#[test]
fn subscribers_get_broadcasts_except_the_excluded_socket() {
    let app = app(None);
    let registry = Registry::new([&app]);
    let a = registry.connect(&app, None, 1024).unwrap();
    let b = registry.connect(&app, None, 1024).unwrap();
    let room = channel("room");
    let joined = registry
        .subscribe(&room, &a, None, 100, Reply::Now)
        .unwrap();
    assert_eq!(
        joined,
        Joined {
            occupied: true,
            member_added: false,
            member_resumed: false,
            subscription_count: 1
        }
    );
    let joined = registry
        .subscribe(&room, &b, None, 100, Reply::Now)
        .unwrap();
    assert!(!joined.occupied);
    frames(&a);
    frames(&b);
    let frame: ByteString = "hello".into();
    assert_eq!(
        registry.broadcast(&app.id, &room, &frame, Some(a.socket_id)),
        1
    );
    assert_eq!(frames(&a), Vec::<String>::new());
    assert_eq!(frames(&b), ["hello"]);
    assert_eq!(registry.channels(&app.id).len(), 1);
}

#[test]
fn channels_disappear_when_vacated() {
    let app = app(None);
    let registry = Registry::new([&app]);
    let a = registry.connect(&app, None, 1024).unwrap();
    let room = channel("room");
    registry
        .subscribe(&room, &a, None, 100, Reply::Now)
        .unwrap();
    let left = registry.unsubscribe(&app.id, &room, a.socket_id).unwrap();
    assert_eq!(
        left,
        Left {
            user_id: None,
            vacated: true,
            member_removed: None,
            subscription_count: 0
        }
    );
    assert!(registry.channels(&app.id).is_empty());
    assert_eq!(registry.unsubscribe(&app.id, &room, a.socket_id), None);
}

#[test]
fn presence_members_are_counted_per_user() {
    let app = app(None);
    let registry = Registry::new([&app]);
    let room = channel("presence-room");
    let a1 = registry.connect(&app, None, 4096).unwrap();
    let a2 = registry.connect(&app, None, 4096).unwrap();
    let b = registry.connect(&app, None, 4096).unwrap();
    assert!(
        registry
            .subscribe(&room, &a1, Some(member("a")), 2, Reply::Now)
            .unwrap()
            .member_added
    );
    assert!(
        !registry
            .subscribe(&room, &a2, Some(member("a")), 2, Reply::Now)
            .unwrap()
            .member_added
    );
    assert!(
        registry
            .subscribe(&room, &b, Some(member("b")), 2, Reply::Now)
            .unwrap()
            .member_added
    );
    let reply = frames(&b).pop().unwrap();
    assert!(reply.contains(r#"\"ids\":[\"a\",\"b\"]"#), "{reply}");
    assert!(reply.contains(r#"\"count\":2"#), "{reply}");
    let c = registry.connect(&app, None, 4096).unwrap();
    assert_eq!(
        registry.subscribe(&room, &c, Some(member("c")), 2, Reply::Now),
        Err(ChannelFull)
    );
    assert_eq!(
        registry.counts(&app.id, &room),
        ChannelCounts {
            subscription_count: 3,
            user_count: 2
        }
    );
    assert_eq!(
        registry
            .unsubscribe(&app.id, &room, a1.socket_id)
            .unwrap()
            .member_removed,
        None
    );
    let left = registry.unsubscribe(&app.id, &room, a2.socket_id).unwrap();
    assert_eq!(left.member_removed, Some(UserId::new("a")));
    assert_eq!(registry.presence_users(&app.id, &room), [UserId::new("b")]);
}

#[test]
fn signed_in_users_track_first_and_last_socket() {
    let app = app(None);
    let registry = Registry::new([&app]);
    let user = UserId::new("u");
    let a = registry.connect(&app, None, 1024).unwrap();
    let b = registry.connect(&app, None, 1024).unwrap();
    assert!(registry.sign_in(&user, &a));
    assert!(!registry.sign_in(&user, &b));
    assert_eq!(registry.user_connections(&app.id, &user).len(), 2);
    assert!(!registry.sign_out(&app.id, &user, a.socket_id));
    assert!(registry.is_signed_in(&app.id, &user));
    assert!(registry.sign_out(&app.id, &user, b.socket_id));
    assert!(!registry.is_signed_in(&app.id, &user));
}

#[test]
fn cached_events_expire() {
    let app = app(None);
    let registry = Registry::new([&app]);
    let prices = channel("cache-prices");
    let now = Instant::now();
    let event = CachedEvent {
        event: "e".into(),
        data: "d".into(),
        expires_at: now + Duration::from_secs(10),
    };
    registry.cache_store(&app.id, &prices, event.clone());
    assert_eq!(registry.cache_lookup(&app.id, &prices, now), Some(event));
    assert_eq!(
        registry.cache_lookup(&app.id, &prices, now + Duration::from_secs(10)),
        None
    );
}

#[test]
fn busy_channels_throttle_count_updates() {
    let app = app(None);
    let registry = Registry::new([&app]);
    let room = channel("room");
    let a = registry.connect(&app, None, 1024).unwrap();
    let b = registry.connect(&app, None, 1024).unwrap();
    registry
        .subscribe(&room, &a, None, 100, Reply::Now)
        .unwrap();
    registry
        .subscribe(&room, &b, None, 100, Reply::Now)
        .unwrap();
    let now = Instant::now();
    let five = Duration::from_secs(5);
    let update = |at, threshold| {
        registry
            .count_update(&app.id, &room, at, threshold, five)
            .unwrap()
    };
    assert_eq!(update(now, 1), CountUpdate::Now);
    assert_eq!(
        update(now + Duration::from_secs(1), 1),
        CountUpdate::At(now + five)
    );
    assert_eq!(
        update(now + Duration::from_secs(2), 1),
        CountUpdate::Pending
    );
    registry.count_sent(&app.id, &room, now + five);
    assert_eq!(update(now + Duration::from_secs(11), 1), CountUpdate::Now);
    // Quiet channels are never throttled.
    assert_eq!(update(now + Duration::from_secs(11), 100), CountUpdate::Now);
}

#[test]
fn slow_consumers_are_marked_to_close() {
    let app = app(None);
    let registry = Registry::new([&app]);
    let room = channel("room");
    let slow = registry.connect(&app, None, 100).unwrap();
    registry
        .subscribe(&room, &slow, None, 100, Reply::Now)
        .unwrap();
    let frame: ByteString = "x".repeat(60).into();
    assert_eq!(registry.broadcast(&app.id, &room, &frame, None), 0);
    assert_eq!(slow.outbox.take().close, Some(SocketError::SlowConsumer));
}

#[test]
fn keys_are_seen_once_until_they_expire_or_are_forgotten() {
    let app = app(None);
    let registry = Registry::new([&app]);
    let now = Instant::now();
    let later = now + Duration::from_secs(10);
    assert!(registry.first_seen(&app.id, "k", now, later));
    assert!(!registry.first_seen(&app.id, "k", now, later));
    assert!(registry.first_seen(&app.id, "k", later, later + Duration::from_secs(10)));
    registry.forget(&app.id, "k");
    assert!(registry.first_seen(&app.id, "k", now, later));
    registry.sweep(later + Duration::from_secs(20));
    assert!(registry.first_seen(&app.id, "k", now, later));
}

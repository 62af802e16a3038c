use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn error_of(result: Result<Config, ConfigError>) -> String {
    result
        .expect_err("configuration should be refused")
        .to_string()
}

#[test]
fn defaults_use_the_development_app_on_port_6001() {
    let config = Config::load_from(None, env(&[])).unwrap();
    assert_eq!(config.server.port, 6001);
    assert_eq!(config.server.host.to_string(), "0.0.0.0");
    assert!(config.dev_credentials);
    assert_eq!(config.apps.len(), 1);
    assert_eq!(config.apps[0].id.as_str(), "1");
    assert_eq!(config.apps[0].key, "app-key");
    assert_eq!(config.apps[0].secret, "app-secret");
    assert_eq!(config.server.activity_timeout, Duration::from_secs(120));
}

#[test]
fn environment_overrides_and_defines_apps() {
    let config = Config::load_from(
        None,
        env(&[
            ("HERALD__SERVER__ACTIVITY_TIMEOUT", "30s"),
            ("HERALD__APPS__42__KEY", "k42"),
            ("HERALD__APPS__42__SECRET", "12345"),
            ("HERALD__APPS__42__CLIENT_EVENTS", "true"),
            ("HERALD__APPS__42__LIMITS__MAX_PRESENCE_MEMBERS", "7"),
            ("PORT", "7001"),
        ]),
    )
    .unwrap();
    assert_eq!(config.server.port, 7001);
    assert_eq!(config.server.activity_timeout, Duration::from_secs(30));
    assert!(!config.dev_credentials);
    let app = &config.apps[0];
    assert_eq!(
        (app.id.as_str(), app.key.as_str(), app.secret.as_str()),
        ("42", "k42", "12345")
    );
    assert!(app.client_events);
    assert_eq!(app.limits.max_presence_members, 7);
}

#[test]
fn file_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.toml");
    std::fs::write(
        &path,
        "[server]\nport = 7100\n[apps.7]\nkey = \"file-key\"\nsecret = \"s\"\n",
    )
    .unwrap();
    let config = Config::load_from(Some(&path), env(&[("HERALD__SERVER__PORT", "7200")])).unwrap();
    assert_eq!(config.server.port, 7200);
    assert_eq!(config.apps[0].key, "file-key");
}

#[test]
fn bad_keys_and_values_name_themselves() {
    let cases = [
        ("[server]\nprot = 1\n", "prot"),
        ("[serve]\nport = 1\n", "serve"),
        ("[server]\nport = \"x\"\n", "port"),
        (
            "[server]\nactivity_timeout = \"soon\"\n",
            "server.activity_timeout",
        ),
        (
            "[server]\nactivity_timeout = \"0s\"\n",
            "server.activity_timeout",
        ),
        ("[server]\nhost = \"localhost:1\"\n", "server.host"),
        ("[apps.1]\nkey = \"k\"\n", "secret"),
        (
            "[apps.1]\nkey = \"k\"\nsecret = \"s\"\ncolour = 1\n",
            "colour",
        ),
        (
            "[apps.1]\nkey = \"k\"\nsecret = \"s\"\n[apps.2]\nkey = \"k\"\nsecret = \"t\"\n",
            "apps.2.key",
        ),
        (
            "[apps.1]\nkey = \"k\"\nsecret = \"s\"\n[apps.1.limits]\nmax_batch_events = 0\n",
            "apps.1.limits.max_batch_events",
        ),
        (
            "[apps.1]\nkey = \"k\"\nsecret = \"s\"\n[[apps.1.webhooks]]\nurl = \"ftp://x\"\n",
            "apps.1.webhooks[0].url",
        ),
    ];
    for (toml, named) in cases {
        let message = error_of(Config::from_toml(toml));
        assert!(
            message.contains(named),
            "{toml:?} gave {message:?}, which does not name {named:?}"
        );
    }
    let message = error_of(Config::load_from(
        None,
        env(&[("HERALD__SERVER__NOPE", "1")]),
    ));
    assert!(message.contains("nope"), "{message}");
    let message = error_of(Config::load_from(None, env(&[("PORT", "http")])));
    assert!(message.contains("PORT"), "{message}");
}

#[test]
fn the_example_config_documents_every_key_and_parses() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/herald.example.toml"
    ))
    .unwrap();
    let config = Config::from_toml(&text).unwrap();
    assert!(!config.dev_credentials);
    // Every key RawConfig knows appears in the example, so the example stays complete.
    for key in [
        "host",
        "port",
        "path_prefix",
        "workers",
        "shutdown_timeout",
        "max_connections",
        "activity_timeout",
        "pong_timeout",
        "max_frame_bytes",
        "outbound_queue_bytes",
        "max_request_bytes",
        "timestamp_window",
        "level",
        "key",
        "secret",
        "enabled",
        "client_events",
        "require_authorization",
        "authorization_timeout",
        "subscription_count",
        "watchlist_events",
        "max_event_data_bytes",
        "max_channel_name_length",
        "max_event_name_length",
        "max_channels_per_event",
        "max_batch_events",
        "max_presence_members",
        "max_presence_user_bytes",
        "max_presence_user_id_length",
        "client_events_per_second",
        "max_watchlist",
        "cache_ttl",
        "url",
        "events",
        "headers",
    ] {
        assert!(
            text.lines()
                .any(|line| line.trim_start().starts_with(&format!("{key} ="))),
            "deploy/herald.example.toml does not set {key}"
        );
    }
}

#[test]
fn static_serving_is_off_unless_a_directory_is_given() {
    assert!(Config::from_toml("").unwrap().static_files.is_none());
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("[static]\ndir = {:?}\n", dir.path().to_str().unwrap());
    let served = Config::from_toml(&toml).unwrap().static_files.unwrap();
    assert_eq!(served.mount, "/offers");
    assert_eq!(served.client.app_key, "app-key");
    assert_eq!(
        (served.client.channel.as_str(), served.client.event.as_str()),
        ("offers", "new_offer")
    );
    let message = error_of(Config::from_toml("[static]\ndir = \"/no/such/dir\"\n"));
    assert!(message.contains("static.dir"), "{message}");
    let toml = format!(
        "[static]\ndir = {:?}\n[static.client]\napp_key = \"nope\"\n",
        dir.path().to_str().unwrap()
    );
    assert!(error_of(Config::from_toml(&toml)).contains("static.client.app_key"));
}

use std::collections::BTreeMap;

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

/// Every key path of a TOML value, with app ids, object names and header names folded to `*`.
fn key_paths(value: &toml::Value, prefix: &str, paths: &mut std::collections::BTreeSet<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, child) in table {
                let folded = if ["apps", "objects", "headers"]
                    .iter()
                    .any(|parent| prefix.ends_with(parent))
                {
                    "*"
                } else {
                    key.as_str()
                };
                let path = if prefix.is_empty() {
                    folded.to_owned()
                } else {
                    format!("{prefix}.{folded}")
                };
                if !prefix.ends_with("headers") {
                    paths.insert(path.clone());
                }
                key_paths(child, &path, paths);
            }
        }
        toml::Value::Array(items) => {
            for item in items.iter().filter(|item| item.is_table()) {
                key_paths(item, &format!("{prefix}[]"), paths);
            }
        }
        _ => {}
    }
}

/// A configuration with every optional part present, so serializing it names every key.
fn everything() -> RawConfig {
    let mut raw = RawConfig::default();
    let limits = RawLimits {
        max_event_data_bytes: Some(1),
        max_channel_name_length: Some(1),
        max_event_name_length: Some(1),
        max_channels_per_event: Some(1),
        max_batch_events: Some(1),
        max_presence_members: Some(1),
        max_presence_user_bytes: Some(1),
        max_presence_user_id_length: Some(1),
        client_events_per_second: Some(1),
        max_watchlist: Some(1),
        cache_ttl: Some("1s".into()),
    };
    let object = RawObjectMapping {
        channel: "c".into(),
        event: "e".into(),
        text_field: "Name".into(),
        description_field: String::new(),
    };
    let app = RawApp {
        key: "k".into(),
        secret: "s".into(),
        enabled: true,
        client_events: true,
        require_authorization: true,
        authorization_timeout: "1s".into(),
        subscription_count: true,
        watchlist_events: true,
        max_connections: 1,
        limits,
        webhooks: vec![RawWebhook {
            url: "http://x".into(),
            events: vec![],
            headers: BTreeMap::new(),
        }],
        webhook_batching: true,
        bearer_tokens: vec![],
        salesforce: Some(RawSalesforce {
            token: "t".into(),
            organization_ids: vec![],
            allowed_ips: vec![],
            objects: BTreeMap::from([("Offer__c".to_owned(), object)]),
        }),
    };
    raw.apps.insert("1".into(), app);
    raw
}

#[test]
fn the_example_config_documents_every_key_and_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/herald.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let config = Config::from_toml(&text).unwrap();
    assert!(!config.dev_credentials);
    let mut documented = std::collections::BTreeSet::new();
    key_paths(&toml::from_str(&text).unwrap(), "", &mut documented);
    let mut known = std::collections::BTreeSet::new();
    key_paths(
        &toml::Value::try_from(everything()).unwrap(),
        "",
        &mut known,
    );
    let missing: Vec<_> = known.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "deploy/herald.example.toml does not set {missing:?}"
    );
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

#[test]
fn the_redis_adapter_needs_a_url_and_sane_timing() {
    assert_eq!(Config::from_toml("").unwrap().adapter, AdapterConfig::Local);
    let config = Config::from_toml(
        "[adapter]\ndriver = \"redis\"\nredis_url = \"redis://127.0.0.1:6379\"\n",
    )
    .unwrap();
    let AdapterConfig::Redis(redis) = config.adapter else {
        panic!("redis expected")
    };
    assert_eq!(
        redis.target,
        RedisTarget::Single("redis://127.0.0.1:6379".into())
    );
    assert_eq!(redis.key_prefix, "herald");
    for (toml, named) in [
        ("[adapter]\ndriver = \"memcached\"\n", "adapter.driver"),
        ("[adapter]\ndriver = \"redis\"\n", "adapter.redis_url"),
        (
            "[adapter]\ndriver = \"redis\"\nredis_url = \"http://x\"\n",
            "adapter.redis_url",
        ),
        (
            "[adapter]\ndriver = \"redis\"\nredis_url = \"redis://x\"\nnode_timeout = \"1s\"\n",
            "adapter.node_timeout",
        ),
        (
            "[adapter]\ndriver = \"redis\"\nredis_url = \"redis://x\"\nkey_prefix = \"a{b}\"\n",
            "adapter.key_prefix",
        ),
    ] {
        let message = error_of(Config::from_toml(toml));
        assert!(message.contains(named), "{toml:?}: {message}");
    }
}

/// `KEY: value` pairs of HERALD__ variables written in a deployment file (YAML `name: value` or
/// `- name: …` / `value: …` pairs).
fn deployment_environment(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut pairs = Vec::new();
    let mut pending_name: Option<String> = None;
    for line in text.lines().map(str::trim) {
        let line = line.trim_start_matches("- ");
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_owned();
        if key.starts_with("HERALD__") {
            pairs.push((key.to_owned(), value));
        } else if key == "name" && value.starts_with("HERALD__") {
            pending_name = Some(value);
        } else if key == "value"
            && let Some(name) = pending_name.take()
        {
            pairs.push((name, value));
        }
    }
    assert!(!pairs.is_empty(), "{path} sets no HERALD__ variables");
    pairs
}

#[test]
fn the_deployment_files_configure_a_valid_cluster() {
    let offers = tempfile::tempdir().unwrap();
    for path in ["deploy/docker-compose.yml", "deploy/kubernetes/herald.yaml"] {
        let env = deployment_environment(path)
            .into_iter()
            .map(|(key, value)| {
                if key == "HERALD__STATIC__DIR" {
                    (key, offers.path().to_str().unwrap().to_owned())
                } else {
                    (key, value)
                }
            });
        let config = Config::load_from(None, env).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            matches!(config.adapter, AdapterConfig::Redis(_)),
            "{path} runs a cluster"
        );
        assert!(!config.dev_credentials, "{path} configures an app");
    }
}

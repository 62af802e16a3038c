//! An HTTP client that signs requests like the official server SDKs (auth_version 1.0, spec §9.2).

use std::time::{SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use serde_json::Value;

pub struct Rest {
    base: String,
    pub app_id: String,
    pub key: String,
    pub secret: String,
}

/// Status and body of a response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Rest {
    pub fn new(base: String, app_id: &str, key: &str, secret: &str) -> Rest {
        Rest {
            base,
            app_id: app_id.into(),
            key: key.into(),
            secret: secret.into(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The signed query for `method path` with `params` and `body`, as the Node SDK builds it.
    pub fn signed_query(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        body: &[u8],
        timestamp: u64,
    ) -> String {
        let mut pairs: Vec<(String, String)> = vec![
            ("auth_key".into(), self.key.clone()),
            ("auth_timestamp".into(), timestamp.to_string()),
            ("auth_version".into(), "1.0".into()),
        ];
        if !body.is_empty() {
            pairs.push(("body_md5".into(), hex::encode(Md5::digest(body))));
        }
        pairs.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        pairs.sort();
        let canonical: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let canonical = canonical.join("&");
        let signature = herald::auth::sign(
            &self.secret,
            format!("{method}\n{path}\n{canonical}").as_bytes(),
        );
        format!("{canonical}&auth_signature={signature}")
    }

    pub async fn send_raw(&self, method: &str, path_and_query: &str, body: &[u8]) -> Response {
        let client = awc::Client::builder().disable_redirects().finish();
        let url = format!("{}{path_and_query}", self.base);
        let request = match method {
            "GET" => client.get(&url),
            "POST" => client
                .post(&url)
                .insert_header(("content-type", "application/json")),
            other => panic!("unsupported method {other}"),
        };
        let mut response = request
            .send_body(body.to_vec())
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let bytes = response
            .body()
            .limit(16 << 20)
            .await
            .expect("response body");
        Response {
            status: response.status().as_u16(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A signed GET of `/apps/{id}{path}`.
    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Response {
        let full = format!("/apps/{}{path}", self.app_id);
        let query = self.signed_query("GET", &full, params, b"", now());
        self.send_raw("GET", &format!("{full}?{query}"), b"").await
    }

    /// A signed POST of a JSON body to `/apps/{id}{path}`.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.post_bytes(path, &[], body.to_string().as_bytes())
            .await
    }

    pub async fn post_bytes(&self, path: &str, params: &[(&str, &str)], body: &[u8]) -> Response {
        let full = format!("/apps/{}{path}", self.app_id);
        let query = self.signed_query("POST", &full, params, body, now());
        self.send_raw("POST", &format!("{full}?{query}"), body)
            .await
    }

    /// `POST /events` publishing `data` to `channels`.
    pub async fn trigger(&self, channels: &[&str], event: &str, data: &str) -> Response {
        self.post(
            "/events",
            &serde_json::json!({"name": event, "channels": channels, "data": data}),
        )
        .await
    }
}

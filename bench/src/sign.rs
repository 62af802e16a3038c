//! Signing of REST requests as Pusher's server SDKs do it (spec §9.2, `auth_version=1.0`).
//! Pure: the timestamp is a parameter.

use hmac::{KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The credentials of one app, as a server SDK holds them.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub app_id: String,
    pub key: String,
    pub secret: String,
}

/// Lowercase hex MD5 of a request body.
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// Lowercase hex HMAC-SHA256 of `message` under `secret`.
pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// The string Pusher signs: method, path and the sorted, unescaped query without `auth_signature`.
pub fn string_to_sign(method: &str, path: &str, params: &[(&str, &str)]) -> String {
    let mut sorted: Vec<(String, &str)> = params
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), *value))
        .collect();
    sorted.sort();
    let canonical_query = sorted
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    format!("{method}\n{path}\n{canonical_query}")
}

/// The query string of a signed request with a body, `auth_signature` last.
///
/// `signed_path` starts at `/apps/`: SDKs never sign a mount prefix (spec §9.2).
pub fn signed_query(
    credentials: &Credentials,
    method: &str,
    signed_path: &str,
    body: &[u8],
    auth_timestamp: u64,
) -> String {
    let timestamp = auth_timestamp.to_string();
    let md5 = body_md5(body);
    let params = [
        ("auth_key", credentials.key.as_str()),
        ("auth_timestamp", timestamp.as_str()),
        ("auth_version", "1.0"),
        ("body_md5", md5.as_str()),
    ];
    let signature = hmac_hex(
        &credentials.secret,
        string_to_sign(method, signed_path, &params).as_bytes(),
    );
    let mut query = String::with_capacity(200);
    for (name, value) in params {
        query.push_str(name);
        query.push('=');
        push_percent_encoded(&mut query, value);
        query.push('&');
    }
    query.push_str("auth_signature=");
    query.push_str(&signature);
    query
}

/// Appends `value` with everything but RFC 3986 unreserved characters percent-encoded.
fn push_percent_encoded(out: &mut String, value: &str) {
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's own credentials (§15.2).
    fn credentials() -> Credentials {
        Credentials {
            app_id: "4242".to_owned(),
            key: "my-app-key-123".to_owned(),
            secret: "my-app-secret-456".to_owned(),
        }
    }

    const V5_BODY: &str = r#"{"name":"my-event","channels":["my-channel","presence-room"],"data":"{\"hello\":\"world\"}","info":"user_count,subscription_count"}"#;

    #[test]
    fn v5_body_md5_matches_spec() {
        assert_eq!(
            body_md5(V5_BODY.as_bytes()),
            "a06088935474035548d534f5931ad68c"
        );
    }

    #[test]
    fn v5_string_to_sign_matches_spec() {
        let params = [
            ("auth_version", "1.0"),
            ("body_md5", "a06088935474035548d534f5931ad68c"),
            ("auth_key", "my-app-key-123"),
            ("auth_timestamp", "1700000000"),
        ];
        assert_eq!(
            string_to_sign("POST", "/apps/4242/events", &params),
            "POST\n/apps/4242/events\nauth_key=my-app-key-123&auth_timestamp=1700000000&auth_version=1.0&body_md5=a06088935474035548d534f5931ad68c"
        );
    }

    #[test]
    fn v5_signed_query_matches_spec() {
        let query = signed_query(
            &credentials(),
            "POST",
            "/apps/4242/events",
            V5_BODY.as_bytes(),
            1_700_000_000,
        );
        assert_eq!(
            query,
            "auth_key=my-app-key-123&auth_timestamp=1700000000&auth_version=1.0\
             &body_md5=a06088935474035548d534f5931ad68c\
             &auth_signature=e1669cda36150619de3045267f47910d160140cbdc7d945e74197910c2559797"
        );
    }

    #[test]
    fn official_doc_example_signature() {
        let credentials = Credentials {
            app_id: "3".to_owned(),
            key: "278d425bdf160c739803".to_owned(),
            secret: "7ad3773142a6692b25b8".to_owned(),
        };
        let body = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let query = signed_query(
            &credentials,
            "POST",
            "/apps/3/events",
            body.as_bytes(),
            1353088179,
        );
        assert!(query.ends_with(
            "auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        ));
    }

    #[test]
    fn query_values_are_percent_encoded_but_signed_raw() {
        let mut out = String::new();
        push_percent_encoded(&mut out, "a b/c,d-e_f.g~");
        assert_eq!(out, "a%20b%2Fc%2Cd-e_f.g~");
    }
}

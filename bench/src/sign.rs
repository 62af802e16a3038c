//! Signing of REST requests as Pusher's server SDKs do it (spec §9.2, `auth_version=1.0`).
//! Pure: the timestamp is a parameter. The tests check the fast signer against the spec's
//! vectors and against a plain, step-by-step signature.

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

/// Signs requests with a body for one app, method and path, writing the signed query straight
/// into the request: the HMAC key schedule and the fixed parts are prepared once, so a signature
/// costs one MD5 of the body, one HMAC-SHA256, and no allocation.
#[derive(Clone)]
pub struct Signer {
    /// Keyed with the app secret; cloned for each signature.
    mac: HmacSha256,
    /// The string to sign up to the timestamp: `METHOD\nPATH\nauth_key=KEY&auth_timestamp=`.
    signed_head: Vec<u8>,
    /// The query up to the timestamp: `auth_key=KEY&auth_timestamp=`, percent-encoded.
    query_head: Vec<u8>,
}

/// What follows the timestamp in both the signed string and the query, before the body's MD5.
/// The parameters are already in the sorted order the signature needs (spec §9.2).
const AFTER_TIMESTAMP: &[u8] = b"&auth_version=1.0&body_md5=";

impl Signer {
    /// `signed_path` starts at `/apps/`: SDKs never sign a mount prefix (spec §9.2).
    pub fn new(credentials: &Credentials, method: &str, signed_path: &str) -> Self {
        let mac =
            HmacSha256::new_from_slice(credentials.secret.as_bytes()).expect("HMAC takes any key");
        let signed_head = format!(
            "{method}\n{signed_path}\nauth_key={}&auth_timestamp=",
            credentials.key
        );
        let mut query_head = String::from("auth_key=");
        push_percent_encoded(&mut query_head, &credentials.key);
        query_head.push_str("&auth_timestamp=");
        Self {
            mac,
            signed_head: signed_head.into_bytes(),
            query_head: query_head.into_bytes(),
        }
    }

    /// Appends the query string of a request carrying `body`, `auth_signature` last.
    pub fn push_query(&self, out: &mut Vec<u8>, body: &[u8], auth_timestamp: u64) {
        let mut timestamp = itoa::Buffer::new();
        let timestamp = timestamp.format(auth_timestamp).as_bytes();
        let md5 = hex_digits::<32>(&Md5::digest(body));
        let mut mac = self.mac.clone();
        mac.update(&self.signed_head);
        mac.update(timestamp);
        mac.update(AFTER_TIMESTAMP);
        mac.update(&md5);
        let signature = hex_digits::<64>(&mac.finalize().into_bytes());
        out.extend_from_slice(&self.query_head);
        out.extend_from_slice(timestamp);
        out.extend_from_slice(AFTER_TIMESTAMP);
        out.extend_from_slice(&md5);
        out.extend_from_slice(b"&auth_signature=");
        out.extend_from_slice(&signature);
    }
}

/// The `M` lowercase hex digits of a digest, on the stack.
fn hex_digits<const M: usize>(bytes: &[u8]) -> [u8; M] {
    let mut out = [0u8; M];
    hex::encode_to_slice(bytes, &mut out).expect("M is twice the digest length");
    out
}

/// The query string of a signed request with a body, `auth_signature` last.
#[cfg(test)]
pub fn signed_query(
    credentials: &Credentials,
    method: &str,
    signed_path: &str,
    body: &[u8],
    auth_timestamp: u64,
) -> String {
    let mut query = Vec::new();
    Signer::new(credentials, method, signed_path).push_query(&mut query, body, auth_timestamp);
    String::from_utf8(query).expect("the query is ASCII")
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

    /// Lowercase hex MD5 of a request body.
    fn body_md5(body: &[u8]) -> String {
        hex::encode(Md5::digest(body))
    }

    /// Lowercase hex HMAC-SHA256 of `message` under `secret`.
    fn hmac_hex(secret: &str, message: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    /// The string Pusher signs: method, path and the sorted, unescaped query without
    /// `auth_signature`.
    fn string_to_sign(method: &str, path: &str, params: &[(&str, &str)]) -> String {
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

    #[test]
    fn signer_matches_a_step_by_step_signature() {
        let credentials = Credentials {
            app_id: "1".to_owned(),
            key: "key with/odd,chars".to_owned(),
            secret: "s3cret".to_owned(),
        };
        let body = br#"{"name":"e","channel":"c","data":"{\"bench_ts\":1}"}"#;
        let md5 = body_md5(body);
        let params = [
            ("auth_key", credentials.key.as_str()),
            ("auth_timestamp", "1700000001"),
            ("auth_version", "1.0"),
            ("body_md5", md5.as_str()),
        ];
        let signature = hmac_hex(
            &credentials.secret,
            string_to_sign("POST", "/apps/1/events", &params).as_bytes(),
        );
        assert_eq!(
            signed_query(&credentials, "POST", "/apps/1/events", body, 1_700_000_001),
            format!(
                "auth_key=key%20with%2Fodd%2Cchars&auth_timestamp=1700000001&auth_version=1.0\
                 &body_md5={md5}&auth_signature={signature}"
            )
        );
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(&hex_digits::<6>(&[0x00, 0xab, 0x9f]), b"00ab9f");
    }

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

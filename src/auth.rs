//! HMAC signatures: channel authorization, sign-in, REST requests and webhooks (spec §4, §9.2, §10.1).
//! Pure: no IO; the current time is a parameter. Every comparison of a signature runs in constant time.

use std::{collections::BTreeMap, time::Duration};

use hmac::{KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Lower-case hex HMAC-SHA256 of `message` keyed by `secret`.
pub fn sign(secret: &str, message: &[u8]) -> String {
    hex::encode(mac(secret, message).finalize().into_bytes())
}

fn mac(secret: &str, message: &[u8]) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac
}

/// Whether `signature_hex` (either case) is the HMAC of `message`; constant time in the signature.
pub fn verify(secret: &str, message: &[u8], signature_hex: &str) -> bool {
    match hex::decode(signature_hex) {
        Ok(signature) => mac(secret, message).verify_slice(&signature).is_ok(),
        Err(_) => false,
    }
}

/// Lower-case hex MD5, as `body_md5` carries it.
pub fn md5_hex(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// Why a socket's `auth` string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("invalid key in auth data: '{0}'")]
    InvalidKey(String),
    #[error("signature {got} does not match {signed}")]
    InvalidSignature { signed: String, got: String },
}

/// The string a channel subscription signs (spec §4). `channel_data` is used only when non-empty.
pub fn channel_string_to_sign(
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
) -> String {
    match channel_data {
        Some(data) if !data.is_empty() => format!("{socket_id}:{channel}:{data}"),
        _ => format!("{socket_id}:{channel}"),
    }
}

/// The string a sign-in signs (spec §4).
pub fn signin_string_to_sign(socket_id: &str, user_data: &str) -> String {
    format!("{socket_id}::user::{user_data}")
}

/// Checks an `auth` field (`<key>:<hex>`) against `string_to_sign`, built from the connection's own socket id.
pub fn check_socket_auth(
    app_key: &str,
    secret: &str,
    auth: &str,
    string_to_sign: &str,
) -> Result<(), AuthError> {
    let Some((key, signature)) = auth.split_once(':') else {
        return Err(AuthError::InvalidKey(auth.to_owned()));
    };
    if key != app_key {
        return Err(AuthError::InvalidKey(key.to_owned()));
    }
    if verify(secret, string_to_sign.as_bytes(), signature) {
        Ok(())
    } else {
        Err(AuthError::InvalidSignature {
            signed: string_to_sign.to_owned(),
            got: signature.to_owned(),
        })
    }
}

/// Why a signed REST request was refused; every variant is a 401.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestAuthError {
    #[error("Missing parameter {0}")]
    MissingParameter(&'static str),
    #[error("Invalid auth_key {0}")]
    UnknownKey(String),
    #[error("Invalid auth_timestamp {0:?}: expected Unix seconds")]
    BadTimestamp(String),
    #[error(
        "Timestamp expired: Given timestamp ({given}) not within {window}s of server time ({now})"
    )]
    TimestampExpired {
        given: String,
        now: String,
        window: u64,
    },
    #[error("Unsupported auth_version {0:?}: expected 1.0")]
    BadVersion(String),
    #[error("Missing body_md5 for a request with a body")]
    MissingBodyMd5,
    #[error("body_md5 {got} does not match the body, whose MD5 is {expected}")]
    BodyMd5Mismatch { expected: String, got: String },
    #[error(
        "Invalid signature: you should have sent HmacSHA256Hex({string_to_sign:?}, your_secret_key), but you sent {got:?}"
    )]
    InvalidSignature { string_to_sign: String, got: String },
    #[error(
        "Bearer tokens are not enabled for this app; sign the request with auth_signature instead"
    )]
    BearerDisabled,
    #[error("Invalid bearer token")]
    InvalidBearerToken,
}

/// A REST request as received, before any of it is trusted.
pub struct RestRequest<'a> {
    /// Upper-case method, e.g. `POST`.
    pub method: &'a str,
    /// The path as the SDK signed it: starting at `/apps/` (any mount prefix already removed).
    pub path: &'a str,
    /// The raw query string, still percent-encoded.
    pub query: &'a str,
    pub body: &'a [u8],
}

/// The decoded query: lower-cased keys, repeated keys joined with `,` in the order sent (spec §9.2).
pub type Query = BTreeMap<String, String>;

/// Decodes a query string the way the canonical string needs it; `plus_is_space` picks form decoding of `+`.
pub fn decode_query(raw: &str, plus_is_space: bool) -> Query {
    // Form decoding reads '+' as a space; encoding it first keeps it literal.
    let literal;
    let raw = if plus_is_space || !raw.contains('+') {
        raw
    } else {
        literal = raw.replace('+', "%2B");
        &literal
    };
    let mut query = Query::new();
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let key = if key.bytes().any(|b| b.is_ascii_uppercase()) {
            key.to_lowercase()
        } else {
            key.into_owned()
        };
        query
            .entry(key)
            .and_modify(|joined: &mut String| {
                joined.push(',');
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    query
}

/// `METHOD\nPATH\nkey=value&…` over every parameter but `auth_signature`, sorted by key.
pub fn rest_string_to_sign(method: &str, path: &str, query: &Query) -> String {
    let mut signed = String::with_capacity(method.len() + path.len() + 160);
    signed.push_str(method);
    signed.push('\n');
    signed.push_str(path);
    signed.push('\n');
    let mut first = true;
    for (key, value) in query
        .iter()
        .filter(|(key, _)| key.as_str() != "auth_signature")
    {
        if !first {
            signed.push('&');
        }
        first = false;
        signed.push_str(key);
        signed.push('=');
        signed.push_str(value);
    }
    signed
}

/// Verifies a REST request's signature for one app (spec §9.2) and returns its decoded query.
/// `now` is the server's Unix time; `window` the accepted clock skew (600 s on hosted Pusher).
pub fn verify_rest(
    request: &RestRequest<'_>,
    app_key: &str,
    secret: &str,
    now: Duration,
    window: Duration,
) -> Result<Query, RestAuthError> {
    let query = decode_query(request.query, true);
    let param = |name: &'static str| query.get(name).ok_or(RestAuthError::MissingParameter(name));
    let key = param("auth_key")?;
    if key != app_key {
        return Err(RestAuthError::UnknownKey(key.clone()));
    }
    check_timestamp(param("auth_timestamp")?, now, window)?;
    let version = param("auth_version")?;
    if version != "1.0" {
        return Err(RestAuthError::BadVersion(version.clone()));
    }
    match query.get("body_md5") {
        Some(given) => {
            let expected = md5_hex(request.body);
            if !given.eq_ignore_ascii_case(&expected) {
                return Err(RestAuthError::BodyMd5Mismatch {
                    expected,
                    got: given.clone(),
                });
            }
        }
        None if !request.body.is_empty() => return Err(RestAuthError::MissingBodyMd5),
        None => {}
    }
    let signature = param("auth_signature")?;
    let string_to_sign = rest_string_to_sign(request.method, request.path, &query);
    if verify(secret, string_to_sign.as_bytes(), signature) {
        return Ok(query);
    }
    // Node and Go send '+' unencoded and sign it as '+'; retry once reading it literally (spec §9.2).
    if request.query.contains('+') {
        let literal = decode_query(request.query, false);
        let literal_string = rest_string_to_sign(request.method, request.path, &literal);
        if verify(secret, literal_string.as_bytes(), signature) {
            return Ok(literal);
        }
    }
    Err(RestAuthError::InvalidSignature {
        string_to_sign,
        got: signature.clone(),
    })
}

fn check_timestamp(given: &str, now: Duration, window: Duration) -> Result<(), RestAuthError> {
    let seconds: u64 = given
        .parse()
        .map_err(|_| RestAuthError::BadTimestamp(given.to_owned()))?;
    let given_time = Duration::from_secs(seconds);
    let skew = given_time.abs_diff(now);
    if skew <= window {
        return Ok(());
    }
    let rfc3339 = |at: Duration| {
        // Past year 9999 there is no RFC 3339 form (and SystemTime may overflow): show the number.
        if at.as_secs() >= 253_402_300_800 {
            return at.as_secs().to_string();
        }
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + at).to_string()
    };
    Err(RestAuthError::TimestampExpired {
        given: rfc3339(given_time),
        now: rfc3339(now),
        window: window.as_secs(),
    })
}

/// SHA-256 of a bearer token; tokens are kept and compared only as digests.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `presented` is one of the tokens whose digests are given; constant time per comparison.
pub fn token_matches(presented: &str, digests: &[[u8; 32]]) -> bool {
    let presented = token_digest(presented);
    digests
        .iter()
        .fold(subtle::Choice::from(0), |found, digest| {
            found | presented.ct_eq(digest)
        })
        .into()
}

/// `X-Pusher-Signature` for a webhook body (spec §10.1).
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    sign(secret, body)
}

#[cfg(test)]
mod tests;

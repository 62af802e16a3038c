//! Signature vectors from Pusher's docs and spec §15, plus the negative checks the spec names.

use super::*;

const KEY: &str = "my-app-key-123";
const SECRET: &str = "my-app-secret-456";
const SOCKET: &str = "123456.7890123";
const NOW: Duration = Duration::from_secs(1_700_000_000);
const WINDOW: Duration = Duration::from_secs(600);

fn check_sign(secret: &str, message: &str, expected: &str) {
    assert_eq!(sign(secret, message.as_bytes()), expected, "{message}");
}

#[test]
fn official_doc_vectors() {
    let secret = "7ad3773142a6692b25b8";
    check_sign(
        secret,
        "1234.1234:private-foobar",
        "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4",
    );
    check_sign(
        secret,
        r#"1234.1234::user::{"id":"12345"}"#,
        "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba",
    );
    check_sign(
        secret,
        r#"1234.1234:presence-foobar:{"user_id":10,"user_info":{"name":"Mr. Pusher"}}"#,
        "afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c",
    );
}

#[test]
fn websocket_vectors_v1_to_v4() {
    let cases = [
        (
            channel_string_to_sign(SOCKET, "private-chat", None),
            "022000ad6b425512b5045e0aea826f80a9f6711f483576ea75f197bc0244357e",
        ),
        (
            channel_string_to_sign(
                SOCKET,
                "presence-room",
                Some(r#"{"user_id":"u-42","user_info":{"name":"Alice"}}"#),
            ),
            "a8c2850f40be55177c44db22c1d8706222e7a92826ad694ab8287e5161783b93",
        ),
        (
            channel_string_to_sign(SOCKET, "presence-room", Some(r#"{"user_id":7}"#)),
            "f98e7587613e0cf98f7c09ca9af8e974f00c71d9e6184327e98f203b3b3fdc17",
        ),
        (
            channel_string_to_sign(SOCKET, "presence-room", Some("")),
            "ab00d5e782090921660010bf557a77adec8be6730b0c8c9927bb47636dc3ed29",
        ),
        (
            signin_string_to_sign(
                SOCKET,
                r#"{"id":"u-42","user_info":{"name":"Alice"},"watchlist":["u-1","u-2"]}"#,
            ),
            "b42f9628a0fe158cbc0cbe7e87c15165f8ed74004bd1fdf92e942bb27b755e2c",
        ),
        (
            channel_string_to_sign(SOCKET, "private-encrypted-vault", None),
            "0ca557abca988e2bd99432056d9d23d63f892ce92d445459956c83ed729fcd05",
        ),
        (
            channel_string_to_sign(SOCKET, "private-cache-prices", None),
            "cd9e10e31d76ae2d425ea5991e8f323a19f1c7b5f18505d0498e4009a1b929a1",
        ),
    ];
    for (string_to_sign, hex) in cases {
        check_sign(SECRET, &string_to_sign, hex);
        let auth = format!("{KEY}:{hex}");
        assert_eq!(
            check_socket_auth(KEY, SECRET, &auth, &string_to_sign),
            Ok(())
        );
        let upper = format!("{KEY}:{}", hex.to_uppercase());
        assert_eq!(
            check_socket_auth(KEY, SECRET, &upper, &string_to_sign),
            Ok(())
        );
    }
}

#[test]
fn socket_auth_negative_checks() {
    let v1 = "my-app-key-123:022000ad6b425512b5045e0aea826f80a9f6711f483576ea75f197bc0244357e";
    let other_socket = channel_string_to_sign("1.2", "private-chat", None);
    assert!(matches!(
        check_socket_auth(KEY, SECRET, v1, &other_socket),
        Err(AuthError::InvalidSignature { .. })
    ));
    assert_eq!(
        check_socket_auth(KEY, SECRET, "no-colon", "x"),
        Err(AuthError::InvalidKey("no-colon".into()))
    );
    let wrong_key = v1.replace(KEY, "other-key");
    assert_eq!(
        check_socket_auth(
            KEY,
            SECRET,
            &wrong_key,
            &channel_string_to_sign(SOCKET, "private-chat", None)
        ),
        Err(AuthError::InvalidKey("other-key".into()))
    );
    let v2 = "my-app-key-123:a8c2850f40be55177c44db22c1d8706222e7a92826ad694ab8287e5161783b93";
    let reserialized = channel_string_to_sign(
        SOCKET,
        "presence-room",
        Some(r#"{"user_id": "u-42", "user_info": {"name": "Alice"}}"#),
    );
    assert!(check_socket_auth(KEY, SECRET, v2, &reserialized).is_err());
    assert!(check_socket_auth(KEY, SECRET, "my-app-key-123:zz", "x").is_err());
    assert!(check_socket_auth(KEY, SECRET, "my-app-key-123:", "x").is_err());
}

fn query(pairs: &str, signature: &str) -> String {
    format!("{pairs}&auth_signature={signature}")
}

fn check_rest(method: &str, path: &str, query: &str, body: &str, expected: Result<(), ()>) {
    let request = RestRequest {
        method,
        path,
        query,
        body: body.as_bytes(),
    };
    let got = verify_rest(&request, KEY, SECRET, NOW, WINDOW).map(|_| ());
    assert_eq!(
        got.map_err(|_| ()),
        expected,
        "{method} {path}?{query}: {:?}",
        verify_rest(&request, KEY, SECRET, NOW, WINDOW).err()
    );
}

#[test]
fn rest_vectors_v5_to_v10() {
    let base = "auth_key=my-app-key-123&auth_timestamp=1700000000&auth_version=1.0";
    let v5_body = r#"{"name":"my-event","channels":["my-channel","presence-room"],"data":"{\"hello\":\"world\"}","info":"user_count,subscription_count"}"#;
    assert_eq!(
        md5_hex(v5_body.as_bytes()),
        "a06088935474035548d534f5931ad68c"
    );
    check_rest(
        "POST",
        "/apps/4242/events",
        &query(
            &format!("{base}&body_md5=a06088935474035548d534f5931ad68c"),
            "e1669cda36150619de3045267f47910d160140cbdc7d945e74197910c2559797",
        ),
        v5_body,
        Ok(()),
    );
    check_rest(
        "GET",
        "/apps/4242/channels",
        &query(
            &format!("filter_by_prefix=presence-&info=user_count&{base}"),
            "65efb9e0a58edfa1562e17e872c2c5e16976d272510e37e4e760826a29c61488",
        ),
        "",
        Ok(()),
    );
    check_rest(
        "GET",
        "/apps/4242/channels/presence-room",
        &query(
            &format!(
                "{base}&body_md5=d41d8cd98f00b204e9800998ecf8427e&info=subscription_count,user_count"
            ),
            "21ab27a1f8455d51119e6adc5b5cf6991249ea110a11f571e726e193d90e0d54",
        ),
        "",
        Ok(()),
    );
    check_rest(
        "GET",
        "/apps/4242/channels/presence-room",
        &query(
            &format!("{base}&info=user_count%2Csubscription_count"),
            "368cfc85a94c4e4290d9c2caaf4da01c962f9fc47122ec83432d01e03d661f77",
        ),
        "",
        Ok(()),
    );
    check_rest(
        "POST",
        "/apps/4242/batch_events",
        &query(
            &format!("{base}&body_md5=ac63cf81508e40389e64cf3007290cf9"),
            "ce58c42522abf2ac4caacc601a03a3b99489452d60a149c0b77ef7ba04d1dcc5",
        ),
        r#"{"batch":[{"channel":"my-channel","name":"ev1","data":"1"},{"channel":"presence-room","name":"ev2","data":"2","info":"user_count"}]}"#,
        Ok(()),
    );
    check_rest(
        "POST",
        "/apps/4242/users/u-42/terminate_connections",
        &query(
            &format!("{base}&body_md5=99914b932bd37a50b983c5e7c90ae93b"),
            "642048cb03e86fec9d4422ad636b3239eb303e53462f99b2189c5511731a2520",
        ),
        "{}",
        Ok(()),
    );
    check_rest(
        "POST",
        "/apps/4242/channels/my-channel/events",
        &query(
            &format!(
                "name=my-event&socket_id=123456.7890123&{base}&body_md5=fbc24bcc7a1794758fc1327fcfebdaf6"
            ),
            "9d8cdc5e38921d029a0127c7408bb2431e7dae15d1064e950cf464a2edd88802",
        ),
        r#"{"hello":"world"}"#,
        Ok(()),
    );
}

#[test]
fn rest_docs_worked_example() {
    let body = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    let request = RestRequest {
        method: "POST",
        path: "/apps/3/events",
        query: "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
        body: body.as_bytes(),
    };
    let result = verify_rest(
        &request,
        "278d425bdf160c739803",
        "7ad3773142a6692b25b8",
        Duration::from_secs(1_353_088_179),
        WINDOW,
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn rest_negative_checks() {
    let body = "{}";
    let md5 = "99914b932bd37a50b983c5e7c90ae93b";
    let path = "/apps/4242/users/u-42/terminate_connections";
    let good = "642048cb03e86fec9d4422ad636b3239eb303e53462f99b2189c5511731a2520";
    let sign_with = |ts: u64| {
        let q = format!("auth_key={KEY}&auth_timestamp={ts}&auth_version=1.0&body_md5={md5}");
        let string = rest_string_to_sign("POST", path, &decode_query(&q, true));
        query(&q, &sign(SECRET, string.as_bytes()))
    };
    // Within ±600 s both ways, outside fails.
    check_rest("POST", path, &sign_with(1_700_000_600), body, Ok(()));
    check_rest("POST", path, &sign_with(1_699_999_400), body, Ok(()));
    check_rest("POST", path, &sign_with(1_700_000_601), body, Err(()));
    check_rest("POST", path, &sign_with(1_699_999_399), body, Err(()));
    check_rest("POST", path, &sign_with(u64::MAX), body, Err(()));
    let base = "auth_key=my-app-key-123&auth_timestamp=1700000000&auth_version=1.0";
    // Body changed: body_md5 mismatch.
    check_rest(
        "POST",
        path,
        &query(&format!("{base}&body_md5={md5}"), good),
        "{ }",
        Err(()),
    );
    // Body without body_md5.
    check_rest("POST", path, &query(base, good), body, Err(()));
    // Wrong key, wrong version, missing signature, wrong path.
    check_rest(
        "POST",
        path,
        &query(
            &format!("auth_key=x&auth_timestamp=1700000000&auth_version=1.0&body_md5={md5}"),
            good,
        ),
        body,
        Err(()),
    );
    check_rest(
        "POST",
        path,
        &query(
            &format!(
                "auth_key=my-app-key-123&auth_timestamp=1700000000&auth_version=2.0&body_md5={md5}"
            ),
            good,
        ),
        body,
        Err(()),
    );
    check_rest(
        "POST",
        path,
        &format!("{base}&body_md5={md5}"),
        body,
        Err(()),
    );
    check_rest(
        "POST",
        "/apps/4242/users/u-43/terminate_connections",
        &query(&format!("{base}&body_md5={md5}"), good),
        body,
        Err(()),
    );
    check_rest(
        "GET",
        path,
        &query(&format!("{base}&body_md5={md5}"), good),
        body,
        Err(()),
    );
    let expired = verify_rest(
        &RestRequest {
            method: "POST",
            path,
            query: &sign_with(1_000_000_000),
            body: body.as_bytes(),
        },
        KEY,
        SECRET,
        NOW,
        WINDOW,
    );
    assert_eq!(
        expired.unwrap_err().to_string(),
        "Timestamp expired: Given timestamp (2001-09-09T01:46:40Z) not within 600s of server time (2023-11-14T22:13:20Z)"
    );
}

#[test]
fn queries_decode_case_fold_and_join() {
    let query = decode_query(
        "B=2&a=1+2&channels%5B%5D=x&channels[]=y&Info=user_count%2Cx",
        true,
    );
    let pairs: Vec<_> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        pairs,
        ["a=1 2", "b=2", "channels[]=x,y", "info=user_count,x"]
    );
    let literal = decode_query("a=1+2", false);
    assert_eq!(literal["a"], "1+2");
}

#[test]
fn plus_signs_are_tried_both_ways() {
    let path = "/apps/4242/channels";
    let signed_literal = format!(
        "{}&filter_by_prefix=a+b",
        "auth_key=my-app-key-123&auth_timestamp=1700000000&auth_version=1.0"
    );
    let literal_string = rest_string_to_sign("GET", path, &decode_query(&signed_literal, false));
    check_rest(
        "GET",
        path,
        &query(&signed_literal, &sign(SECRET, literal_string.as_bytes())),
        "",
        Ok(()),
    );
    let space_string = rest_string_to_sign("GET", path, &decode_query(&signed_literal, true));
    check_rest(
        "GET",
        path,
        &query(&signed_literal, &sign(SECRET, space_string.as_bytes())),
        "",
        Ok(()),
    );
}

#[test]
fn webhook_vectors_v11() {
    let cases = [
        (
            r#"{"time_ms":1700000000123,"events":[{"name":"channel_occupied","channel":"my-channel"}]}"#,
            "11f6f273bd1203e60e4c1540978ce37d777772df161c2055f399db59e3d162e6",
        ),
        (
            r#"{"time_ms":1700000000456,"events":[{"name":"client_event","channel":"private-chat","event":"client-typing","data":"{\"typing\":true}","socket_id":"123456.7890123"}]}"#,
            "25c5429e95b5f073b97bc926ae3d024a440e6bd51218d064b03f54d7a2501e75",
        ),
        (
            r#"{"time_ms":1700000000789,"events":[{"name":"member_added","channel":"presence-room","user_id":"u-42"},{"name":"member_removed","channel":"presence-room","user_id":"u-7"}]}"#,
            "05265c9151c5e025d93f5801f1022bf2242d264f4c17984316293cf6f25e7f6d",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(webhook_signature(SECRET, body.as_bytes()), expected);
    }
}

#[test]
fn bearer_tokens_match_only_their_digests() {
    let digests = [token_digest("first-token"), token_digest("second-token")];
    assert!(token_matches("first-token", &digests));
    assert!(token_matches("second-token", &digests));
    assert!(!token_matches("first-token ", &digests));
    assert!(!token_matches("", &digests));
    assert!(!token_matches("first-token", &[]));
}

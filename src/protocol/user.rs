//! User ids and the JSON a client sends about its user: presence `channel_data` and sign-in `user_data`.
//! Pure: no IO. The strings are parsed only after their signature has been checked on the exact bytes.

use std::{fmt, sync::Arc};

use serde::Deserialize;
use serde_json::value::RawValue;

/// A user id, always handled as a string; numeric ids from `channel_data` are stringified (spec §3.4).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Arc<str>);

impl UserId {
    pub fn new(id: &str) -> UserId {
        UserId(Arc::from(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// A presence channel member: who, and the `user_info` JSON as the app wrote it.
#[derive(Debug)]
pub struct Member {
    pub user_id: UserId,
    pub user_info: Option<Box<RawValue>>,
}

impl Clone for Member {
    fn clone(&self) -> Member {
        Member {
            user_id: self.user_id.clone(),
            user_info: self.user_info.as_ref().map(|raw| raw.to_owned()),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum IdValue {
    Text(String),
    Number(serde_json::Number),
}

impl IdValue {
    fn into_user_id(self) -> Result<UserId, String> {
        let id = match self {
            IdValue::Text(text) => text,
            IdValue::Number(number) => number.to_string(),
        };
        if id.is_empty() {
            return Err("user_id must not be empty".into());
        }
        Ok(UserId::new(&id))
    }
}

#[derive(Deserialize)]
struct ChannelData {
    user_id: Option<IdValue>,
    #[serde(default)]
    user_info: Option<Box<RawValue>>,
}

/// Reads presence `channel_data`: an object with a string or number `user_id` and optional `user_info`.
pub fn parse_channel_data(text: &str) -> Result<Member, String> {
    let data: ChannelData = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let user_id = data
        .user_id
        .ok_or("channel_data has no user_id")?
        .into_user_id()?;
    Ok(Member {
        user_id,
        user_info: data.user_info.filter(|raw| raw.get() != "null"),
    })
}

/// A signed-in user, from sign-in `user_data` (spec §5.1).
#[derive(Debug)]
pub struct SignedInUser {
    pub id: UserId,
    pub user_info: Option<Box<RawValue>>,
    pub watchlist: Vec<UserId>,
}

#[derive(Deserialize)]
struct UserData {
    id: Option<String>,
    #[serde(default)]
    user_info: Option<Box<RawValue>>,
    #[serde(default)]
    watchlist: Vec<String>,
}

/// Reads sign-in `user_data`: an object with a non-empty string `id`, optional `user_info` and `watchlist`.
pub fn parse_user_data(text: &str) -> Result<SignedInUser, String> {
    let data: UserData = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let id = data
        .id
        .filter(|id| !id.is_empty())
        .ok_or("user_data needs a non-empty string id")?;
    Ok(SignedInUser {
        id: UserId::new(&id),
        user_info: data.user_info.filter(|raw| raw.get() != "null"),
        watchlist: data.watchlist.iter().map(|id| UserId::new(id)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_data_ids_become_strings() {
        let member = parse_channel_data(r#"{"user_id":7}"#).unwrap();
        assert_eq!(member.user_id.as_str(), "7");
        assert!(member.user_info.is_none());
        let member =
            parse_channel_data(r#"{"user_id":"u-42","user_info":{"name":"Alice"}}"#).unwrap();
        assert_eq!(member.user_id.as_str(), "u-42");
        assert_eq!(member.user_info.unwrap().get(), r#"{"name":"Alice"}"#);
    }

    #[test]
    fn bad_channel_data_is_refused() {
        for text in [
            "",
            "{}",
            "[]",
            r#"{"user_id":""}"#,
            r#"{"user_id":null}"#,
            r#"{"user_id":{"a":1}}"#,
            "not json",
        ] {
            assert!(parse_channel_data(text).is_err(), "{text}");
        }
    }

    #[test]
    fn user_data_is_read() {
        let user = parse_user_data(
            r#"{"id":"u-42","user_info":{"name":"Alice"},"watchlist":["u-1","u-2"]}"#,
        )
        .unwrap();
        assert_eq!(user.id.as_str(), "u-42");
        assert_eq!(user.watchlist, [UserId::new("u-1"), UserId::new("u-2")]);
        for text in [
            "{}",
            r#"{"id":""}"#,
            r#"{"id":5}"#,
            r#"{"id":"a","watchlist":"x"}"#,
            "[]",
        ] {
            assert!(parse_user_data(text).is_err(), "{text}");
        }
    }
}

//! Channel names and their kinds (spec §3.1, §3.2).
//! Pure: no IO.

use std::{fmt, sync::Arc};

/// Prefix of the per-user channel that only the signed-in user may join (spec §5.3).
pub const USER_CHANNEL_PREFIX: &str = "#server-to-user-";

/// What a channel's prefix says about how it is joined and what it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    Public,
    Private,
    PrivateEncrypted,
    Presence,
    /// `#server-to-user-{id}`: joined only by a connection signed in as `id`.
    User,
    /// Herald's own `#watchlist-{id}` channels, which carry a user's online status to its watchers;
    /// never joined by a client.
    Internal,
}

/// Prefix of the internal channel that carries a user's online/offline changes to its watchers.
const WATCHLIST_PREFIX: &str = "#watchlist-";

/// Why a channel name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelNameError {
    #[error("channel name is empty")]
    Empty,
    #[error("channel name is {length} characters long; the limit is {limit}")]
    TooLong { length: usize, limit: usize },
    #[error("channel name {0:?} contains characters outside A-Z a-z 0-9 _ - = @ , . ;")]
    BadCharacters(String),
}

/// A validated channel name. Cheap to clone: the text is shared.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '@' | ',' | '.' | ';')
}

impl ChannelName {
    /// Validates `name` against the character set and `max_length` (spec §3.2).
    /// The one `#` form allowed is the user channel, whose user id follows the same character rule.
    pub fn parse(name: &str, max_length: usize) -> Result<ChannelName, ChannelNameError> {
        if name.is_empty() {
            return Err(ChannelNameError::Empty);
        }
        let length = name.chars().count();
        if length > max_length {
            return Err(ChannelNameError::TooLong {
                length,
                limit: max_length,
            });
        }
        let rest = name.strip_prefix(USER_CHANNEL_PREFIX).unwrap_or(name);
        if rest.is_empty() || !rest.chars().all(is_name_char) {
            return Err(ChannelNameError::BadCharacters(name.to_owned()));
        }
        Ok(ChannelName(Arc::from(name)))
    }

    /// The user channel of `user_id`, used to deliver `sendToUser` events.
    pub fn for_user(user_id: &str) -> ChannelName {
        ChannelName(Arc::from(format!("{USER_CHANNEL_PREFIX}{user_id}")))
    }

    /// The internal channel whose subscribers are the sockets watching `user_id` (spec §5.4).
    pub fn watchlist_of(user_id: &str) -> ChannelName {
        ChannelName(Arc::from(format!("{WATCHLIST_PREFIX}{user_id}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Classifies by prefix; `private-encrypted-` is tested before `private-` (spec §3.1).
    pub fn kind(&self) -> ChannelKind {
        let name = self.as_str();
        if name.starts_with(USER_CHANNEL_PREFIX) {
            ChannelKind::User
        } else if name.starts_with('#') {
            ChannelKind::Internal
        } else if name.starts_with("private-encrypted-") {
            ChannelKind::PrivateEncrypted
        } else if name.starts_with("private-") {
            ChannelKind::Private
        } else if name.starts_with("presence-") {
            ChannelKind::Presence
        } else {
            ChannelKind::Public
        }
    }

    /// Cache channels keep their last event; detected by anchored prefix only (spec §3.1, §13).
    pub fn is_cache(&self) -> bool {
        let name = self.as_str();
        [
            "cache-",
            "private-cache-",
            "private-encrypted-cache-",
            "presence-cache-",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
    }

    /// The user id of a `#server-to-user-{id}` channel.
    pub fn user_channel_owner(&self) -> Option<&str> {
        self.as_str().strip_prefix(USER_CHANNEL_PREFIX)
    }

    /// Whether subscribing needs a signature (private, encrypted and presence channels).
    pub fn needs_signature(&self) -> bool {
        matches!(
            self.kind(),
            ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence
        )
    }

    /// Reserved channels (`#…`) get no webhooks and are not listed by `GET /channels` (spec §5.3).
    pub fn is_reserved(&self) -> bool {
        self.as_str().starts_with('#')
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: Result<(ChannelKind, bool), ChannelNameError>) {
        let got = ChannelName::parse(name, 200).map(|c| (c.kind(), c.is_cache()));
        assert_eq!(got, expected, "{name}");
    }

    #[test]
    fn names_are_classified_by_prefix() {
        use ChannelKind::*;
        check("my-channel", Ok((Public, false)));
        check("private-chat", Ok((Private, false)));
        check("private-encrypted-vault", Ok((PrivateEncrypted, false)));
        check("presence-room", Ok((Presence, false)));
        check("cache-prices", Ok((Public, true)));
        check("private-cache-prices", Ok((Private, true)));
        check("private-encrypted-cache-x", Ok((PrivateEncrypted, true)));
        check("presence-cache-room", Ok((Presence, true)));
        check("foo-cache-bar", Ok((Public, false)));
        check("#server-to-user-u-42", Ok((User, false)));
        check("A-Za-z0-9_-=@,.;", Ok((Public, false)));
    }

    #[test]
    fn bad_names_are_refused() {
        check("", Err(ChannelNameError::Empty));
        check(
            "has space",
            Err(ChannelNameError::BadCharacters("has space".into())),
        );
        check(
            "#other",
            Err(ChannelNameError::BadCharacters("#other".into())),
        );
        check(
            "#server-to-user-",
            Err(ChannelNameError::BadCharacters("#server-to-user-".into())),
        );
        check(
            "caf\u{e9}",
            Err(ChannelNameError::BadCharacters("caf\u{e9}".into())),
        );
        let long = "a".repeat(201);
        check(
            &long,
            Err(ChannelNameError::TooLong {
                length: 201,
                limit: 200,
            }),
        );
        assert!(ChannelName::parse(&"a".repeat(200), 200).is_ok());
        assert!(ChannelName::parse(&"a".repeat(165), 164).is_err());
    }

    #[test]
    fn user_channel_names_its_owner() {
        let channel = ChannelName::for_user("u-42");
        assert_eq!(channel.as_str(), "#server-to-user-u-42");
        assert_eq!(channel.user_channel_owner(), Some("u-42"));
        assert!(channel.is_reserved());
        let watch = ChannelName::watchlist_of("u-1");
        assert_eq!(watch.kind(), ChannelKind::Internal);
        assert!(watch.is_reserved());
    }
}

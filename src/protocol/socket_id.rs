//! Socket ids: two decimal integers joined by a dot (spec §2.3).
//! Pure: no IO.

use std::{fmt, str::FromStr};

use rand::RngExt;

/// Each half of a generated id stays below this bound, like the ids hosted Pusher hands out.
const HALF_BOUND: u64 = 10_000_000_000;

/// Identifies one connection; unique among the live connections of the cluster.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId {
    high: u64,
    low: u64,
}

/// A string that is not `digits.digits`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("socket_id {0:?} is not of the form 123.456")]
pub struct SocketIdError(pub String);

impl SocketId {
    /// Makes an id from two random numbers; callers retry on the rare collision.
    pub fn random(rng: &mut impl RngExt) -> SocketId {
        SocketId {
            high: rng.random_range(1..HALF_BOUND),
            low: rng.random_range(1..HALF_BOUND),
        }
    }
}

impl FromStr for SocketId {
    type Err = SocketIdError;

    /// Accepts exactly `^\d+\.\d+$`, the form the SDKs validate before signing.
    fn from_str(text: &str) -> Result<SocketId, SocketIdError> {
        let error = || SocketIdError(text.to_owned());
        let (high, low) = text.split_once('.').ok_or_else(error)?;
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(high) || !digits(low) {
            return Err(error());
        }
        Ok(SocketId {
            high: high.parse().map_err(|_| error())?,
            low: low.parse().map_err(|_| error())?,
        })
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.high, self.low)
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, ok: bool) {
        let parsed = text.parse::<SocketId>();
        assert_eq!(parsed.is_ok(), ok, "{text}");
        if let Ok(id) = parsed {
            assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn socket_ids_parse_only_digits_dot_digits() {
        check("123456.7890123", true);
        check("1.2", true);
        check("1234", false);
        check("1.2.3", false);
        check(".2", false);
        check("1.", false);
        check("-1.2", false);
        check("1.2 ", false);
        check("a.b", false);
        check("99999999999999999999999.1", false);
    }

    #[test]
    fn random_ids_round_trip() {
        let mut rng = rand::rng();
        for _ in 0..100 {
            let id = SocketId::random(&mut rng);
            assert_eq!(id.to_string().parse::<SocketId>(), Ok(id));
        }
    }
}

//! Where load may go: `ws://` and `http://` URLs parsed into addresses, refused unless they are
//! loopback (127.0.0.0/8, `localhost`, `[::1]`) or `--allow-remote` was given.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// A server endpoint the generator talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// The `Host` header value: the authority as written in the URL.
    pub host_header: String,
    /// Mount prefix without a trailing slash (`""` or `/pusher`), prepended to request paths.
    pub prefix: String,
}

/// Parses `url`, whose scheme must be `scheme` (`ws` or `http`; TLS is not supported).
pub fn parse_endpoint(url: &str, scheme: &str, allow_remote: bool) -> Result<Endpoint, String> {
    let (given_scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url}: expected {scheme}://host:port"))?;
    if given_scheme != scheme {
        return Err(format!(
            "{url}: expected a {scheme}:// URL (TLS is not supported; benchmark plain sockets)"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(authority).ok_or_else(|| format!("{url}: bad host:port"))?;
    let ip = resolve(host, port, allow_remote).map_err(|reason| format!("{url}: {reason}"))?;
    Ok(Endpoint {
        addr: SocketAddr::new(ip, port),
        host_header: authority.to_owned(),
        prefix: path.trim_end_matches('/').to_owned(),
    })
}

fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => 80,
            None => return None,
        };
        return Some((host, port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, port.parse().ok()?)),
        None => Some((authority, 80)),
    }
}

fn resolve(host: &str, port: u16, allow_remote: bool) -> Result<IpAddr, String> {
    if host.is_empty() {
        return Err("empty host".to_owned());
    }
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        ip
    } else if allow_remote {
        (host, port)
            .to_socket_addrs()
            .map_err(|error| format!("cannot resolve {host}: {error}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?
            .ip()
    } else {
        return Err(format!(
            "{host} is not a loopback address; load goes to 127.0.0.0/8 or [::1] unless --allow-remote is given"
        ));
    };
    check_loopback(ip, allow_remote)?;
    Ok(ip)
}

/// Refuses a non-loopback address unless remote targets are allowed.
pub fn check_loopback(ip: IpAddr, allow_remote: bool) -> Result<(), String> {
    if ip.is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(format!(
            "{ip} is not a loopback address; load goes to 127.0.0.0/8 or [::1] unless --allow-remote is given"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, scheme: &str, expected: Result<(&str, &str, &str), ()>) {
        let parsed = parse_endpoint(url, scheme, false);
        match (parsed, expected) {
            (Ok(endpoint), Ok((addr, host_header, prefix))) => {
                assert_eq!(endpoint.addr, addr.parse::<SocketAddr>().unwrap(), "{url}");
                assert_eq!(endpoint.host_header, host_header, "{url}");
                assert_eq!(endpoint.prefix, prefix, "{url}");
            }
            (Err(_), Err(())) => {}
            (got, expected) => panic!("{url}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn loopback_urls_are_accepted() {
        check(
            "ws://127.0.0.1:6001",
            "ws",
            Ok(("127.0.0.1:6001", "127.0.0.1:6001", "")),
        );
        check(
            "ws://127.0.0.7:6001/",
            "ws",
            Ok(("127.0.0.7:6001", "127.0.0.7:6001", "")),
        );
        check(
            "http://localhost:7000/pusher/",
            "http",
            Ok(("127.0.0.1:7000", "localhost:7000", "/pusher")),
        );
        check(
            "ws://[::1]:6001",
            "ws",
            Ok(("[::1]:6001", "[::1]:6001", "")),
        );
        check(
            "http://127.0.0.1",
            "http",
            Ok(("127.0.0.1:80", "127.0.0.1", "")),
        );
    }

    #[test]
    fn other_hosts_and_schemes_are_refused() {
        check("ws://10.0.0.1:6001", "ws", Err(()));
        check("ws://192.168.1.2:6001", "ws", Err(()));
        check("ws://example.com:6001", "ws", Err(()));
        check("wss://127.0.0.1:6001", "ws", Err(()));
        check("http://127.0.0.1:6001", "ws", Err(()));
        check("127.0.0.1:6001", "ws", Err(()));
        check("ws://127.0.0.1:notaport", "ws", Err(()));
    }

    #[test]
    fn remote_addresses_pass_only_when_allowed() {
        let remote: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(check_loopback(remote, false).is_err());
        assert!(check_loopback(remote, true).is_ok());
        assert!(check_loopback("127.0.0.2".parse().unwrap(), false).is_ok());
    }
}

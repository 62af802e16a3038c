//! Signed REST publishing over kept-alive HTTP/1.1 connections, and the publisher that sends
//! stamped events at a set rate from several such connections (spec §9.2, §9.3).
//!
//! Each request is written by hand into a reused buffer and sent with one write; the response
//! head is parsed with `httparse`, and only the body's framing (`Content-Length`, chunked, or
//! until close) is looked at, so a publish costs no allocation.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fleet::Fleet;
use crate::sign::{Credentials, Signer};
use crate::socket;
use crate::stats::{self, now_ns};
use crate::target::Endpoint;
use crate::wire;

/// Where and as whom events are published, with the parts of every request prepared once.
pub struct PublishTarget {
    pub endpoint: Endpoint,
    pub source_ip: Option<IpAddr>,
    pub event_name: String,
    pub payload_bytes: usize,
    signer: Signer,
    /// `POST {prefix}/apps/{id}/events?`
    request_head: Vec<u8>,
    /// From after the query to the `Content-Length` value.
    headers_head: Vec<u8>,
}

impl PublishTarget {
    pub fn new(
        endpoint: Endpoint,
        source_ip: Option<IpAddr>,
        credentials: &Credentials,
        event_name: String,
        payload_bytes: usize,
    ) -> Self {
        let signed_path = format!("/apps/{}/events", credentials.app_id);
        let request_head = format!("POST {}{signed_path}?", endpoint.prefix).into_bytes();
        let headers_head = format!(
            " HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: ",
            endpoint.host_header
        )
        .into_bytes();
        Self {
            signer: Signer::new(credentials, "POST", &signed_path),
            endpoint,
            source_ip,
            event_name,
            payload_bytes,
            request_head,
            headers_head,
        }
    }

    /// Writes the whole request publishing `body` into `out` (cleared first).
    fn write_request(&self, out: &mut Vec<u8>, body: &[u8], auth_timestamp: u64) {
        out.clear();
        out.extend_from_slice(&self.request_head);
        self.signer.push_query(out, body, auth_timestamp);
        out.extend_from_slice(&self.headers_head);
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
    }
}

/// Longest response head or body read before giving up on the server.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// One kept-alive HTTP/1.1 connection that publishes one event per request.
pub struct RestClient {
    stream: TcpStream,
    body: Vec<u8>,
    request: Vec<u8>,
    response: Vec<u8>,
    /// Set once the connection failed or the server said it will close it.
    closed: bool,
    /// When the connection last carried a request (or was opened).
    last_used: std::time::Instant,
}

/// A connection idle this long is replaced before its next request: servers close idle connections
/// (actix-web after 5 s, answering 408 on one that never sent a request), and a request sent into
/// that race fails for reasons that have nothing to do with the load being measured.
const IDLE_REOPEN: Duration = Duration::from_secs(2);

impl RestClient {
    pub async fn connect(target: &PublishTarget) -> anyhow::Result<Self> {
        let stream = socket::connect_tcp(target.endpoint.addr, target.source_ip).await?;
        Ok(Self {
            stream,
            body: Vec::with_capacity(target.payload_bytes + 256),
            request: Vec::with_capacity(target.payload_bytes + 1024),
            response: Vec::with_capacity(4096),
            closed: false,
            last_used: std::time::Instant::now(),
        })
    }

    /// Publishes one event stamped `sent_at` to `channel`; returns the HTTP status and, for a
    /// failure, the start of the response body.
    pub async fn publish(
        &mut self,
        target: &PublishTarget,
        channel: &str,
        sent_at: u64,
    ) -> anyhow::Result<(u16, Option<String>)> {
        wire::publish_body(
            &mut self.body,
            &target.event_name,
            channel,
            sent_at,
            target.payload_bytes,
        );
        let auth_timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        target.write_request(&mut self.request, &self.body, auth_timestamp);
        let exchanged = self.exchange().await;
        self.last_used = std::time::Instant::now();
        if exchanged.is_err() {
            self.closed = true;
        }
        let response = exchanged?;
        if response.close {
            self.closed = true;
        }
        let failure = (!(200..300).contains(&response.status)).then(|| {
            let mut body = Vec::new();
            response.body.copy_to(&self.response, &mut body);
            String::from_utf8_lossy(&body).chars().take(200).collect()
        });
        Ok((response.status, failure))
    }

    /// Sends the request and reads its whole response into `self.response`.
    async fn exchange(&mut self) -> anyhow::Result<Response> {
        self.stream
            .write_all(&self.request)
            .await
            .context("sending")?;
        self.response.clear();
        loop {
            let eof = if self.response.len() < MAX_RESPONSE_BYTES {
                self.response.reserve(4096);
                self.stream
                    .read_buf(&mut self.response)
                    .await
                    .context("reading the response")?
                    == 0
            } else {
                bail!("response over {MAX_RESPONSE_BYTES} bytes");
            };
            if let Some(response) = parse_response(&self.response, eof)? {
                return Ok(response);
            }
            if eof {
                bail!("connection closed before the whole response");
            }
        }
    }

    /// The connection is unusable (failed, or closed by the server) or has sat idle long enough
    /// that the server may have closed it: the next request goes on a new one.
    pub fn needs_new_connection(&self) -> bool {
        self.closed || self.last_used.elapsed() > IDLE_REOPEN
    }
}

/// What the generator needs of a response.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: u16,
    body: Body,
    /// The server will close the connection after this response.
    close: bool,
}

/// Where the body lies in the bytes read.
#[derive(Debug, PartialEq, Eq)]
enum Body {
    Plain(std::ops::Range<usize>),
    /// Chunked, starting at this offset.
    Chunked(usize),
}

impl Body {
    /// Appends the body's bytes, decoded, to `out`.
    fn copy_to(&self, bytes: &[u8], out: &mut Vec<u8>) {
        match self {
            Self::Plain(range) => out.extend_from_slice(&bytes[range.clone()]),
            Self::Chunked(start) => {
                let _ = walk_chunks(&bytes[*start..], |data| out.extend_from_slice(data));
            }
        }
    }
}

/// Most header fields read from one response.
const MAX_HEADERS: usize = 32;

/// Parses a whole response from `bytes`, or `None` while more must be read. `eof` says the
/// server closed the connection after these bytes. The head is parsed by `httparse`.
fn parse_response(bytes: &[u8], eof: bool) -> anyhow::Result<Option<Response>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Response::new(&mut headers);
    let head_len = match head.parse(bytes).context("bad response head")? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = head.code.context("response without a status")?;
    let mut content_length = None;
    let mut chunked = false;
    let mut close = head.version == Some(0);
    for header in head.headers.iter() {
        let (name, value) = (header.name, header.value.trim_ascii());
        if name.eq_ignore_ascii_case("content-length") {
            let length = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok());
            content_length = Some(length.context("bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = has_token(value, b"chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            if has_token(value, b"close") {
                close = true;
            } else if has_token(value, b"keep-alive") {
                close = false;
            }
        }
    }
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Body::Plain(head_len..head_len)
    } else if chunked {
        match walk_chunks(&bytes[head_len..], |_| {})? {
            Some(_) => Body::Chunked(head_len),
            None => return Ok(None),
        }
    } else if let Some(length) = content_length {
        if bytes.len() < head_len + length {
            return Ok(None);
        }
        Body::Plain(head_len..head_len + length)
    } else if eof {
        close = true;
        Body::Plain(head_len..bytes.len())
    } else {
        // No length: the body ends when the server closes the connection.
        return Ok(None);
    };
    Ok(Some(Response {
        status,
        body,
        close,
    }))
}

/// Whether a header value mentions `token`, ignoring case.
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .windows(token.len())
        .any(|window| window.eq_ignore_ascii_case(token))
}

/// Walks a chunked body, handing each chunk's data to `on_data`; returns the length of the whole
/// body with its trailer, or `None` while it is incomplete. Chunk-size lines are parsed by
/// `httparse`.
fn walk_chunks(bytes: &[u8], mut on_data: impl FnMut(&[u8])) -> anyhow::Result<Option<usize>> {
    let mut at = 0;
    loop {
        let (line_len, size) = match httparse::parse_chunk_size(&bytes[at..]) {
            Ok(httparse::Status::Complete(parsed)) => parsed,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => anyhow::bail!("bad chunk size"),
        };
        let size = usize::try_from(size).context("chunk too large")?;
        at += line_len;
        if size == 0 {
            // Trailer fields, each ending in CRLF, then an empty line.
            let rest = &bytes[at..];
            let trailer_len = if rest.starts_with(b"\r\n") {
                Some(2)
            } else {
                memchr::memmem::find(rest, b"\r\n\r\n").map(|end| end + 4)
            };
            return Ok(trailer_len.map(|len| at + len));
        }
        if bytes.len() < at + size + 2 {
            return Ok(None);
        }
        on_data(&bytes[at..at + size]);
        at += size + 2;
    }
}

/// What the publisher does: which channels, how fast, until when.
pub struct Plan {
    pub channels: Arc<Vec<String>>,
    /// Events per second over all workers; `0.0` means as fast as the workers can go.
    pub rate: f64,
    pub start_ns: u64,
    pub end_ns: u64,
    /// The measured fleet, whose per-channel subscribers make the expected deliveries.
    pub subscribers: Option<Arc<Fleet>>,
}

/// The outcome of a publishing run, over all workers.
pub struct Tally {
    pub sent: u64,
    pub ok: u64,
    pub failed_status: u64,
    pub transport_errors: u64,
    /// Successful publishes stamped inside the measurement window.
    pub ok_in_window: u64,
    /// Deliveries expected from `ok_in_window`: each event times its channel's subscribers.
    pub expected_deliveries: u64,
    /// How far behind its schedule a send started, at worst.
    pub max_lag_ns: u64,
    /// Request round trips of in-window publishes, in nanoseconds.
    pub latency: Histogram<u64>,
    pub first_failure: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            sent: 0,
            ok: 0,
            failed_status: 0,
            transport_errors: 0,
            ok_in_window: 0,
            expected_deliveries: 0,
            max_lag_ns: 0,
            latency: stats::new_histogram(),
            first_failure: None,
        }
    }

    fn absorb(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        self.failed_status += other.failed_status;
        self.transport_errors += other.transport_errors;
        self.ok_in_window += other.ok_in_window;
        self.expected_deliveries += other.expected_deliveries;
        self.max_lag_ns = self.max_lag_ns.max(other.max_lag_ns);
        self.latency
            .add(&other.latency)
            .expect("histograms share bounds");
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }
}

/// Live progress of a publisher, for the progress line.
#[derive(Default)]
pub struct Progress {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

/// Opens `count` kept-alive REST connections.
pub async fn connect_clients(
    target: &PublishTarget,
    count: usize,
) -> anyhow::Result<Vec<RestClient>> {
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        clients.push(
            RestClient::connect(target)
                .await
                .context("opening a REST connection")?,
        );
    }
    Ok(clients)
}

/// Publishes from every client along one schedule: event `i` is due at `start + i / rate`, and
/// whichever client is free takes it. Returns the clients, for the next step, and the tally.
pub async fn run_publishers(
    clients: Vec<RestClient>,
    target: &Arc<PublishTarget>,
    plan: &Arc<Plan>,
    progress: &Arc<Progress>,
) -> anyhow::Result<(Vec<RestClient>, Tally)> {
    let next_ticket = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let (target, plan, progress) = (Arc::clone(target), Arc::clone(plan), Arc::clone(progress));
        let next_ticket = Arc::clone(&next_ticket);
        tasks.spawn(async move {
            publish_worker(client, &target, &plan, &next_ticket, &progress).await
        });
    }
    let mut clients = Vec::with_capacity(tasks.len());
    let mut tally = Tally::new();
    while let Some(joined) = tasks.join_next().await {
        let (client, worker_tally) = joined.context("publisher worker panicked")?;
        clients.push(client);
        tally.absorb(worker_tally);
    }
    if tally.ok == 0 && tally.sent > 0 {
        bail!(
            "no publish succeeded ({} sent); first failure: {}",
            tally.sent,
            tally.first_failure.as_deref().unwrap_or("none")
        );
    }
    Ok((clients, tally))
}

async fn publish_worker(
    mut client: RestClient,
    target: &PublishTarget,
    plan: &Plan,
    next_ticket: &AtomicU64,
    progress: &Progress,
) -> (RestClient, Tally) {
    let mut tally = Tally::new();
    loop {
        let ticket = next_ticket.fetch_add(1, Ordering::Relaxed);
        let due = if plan.rate > 0.0 {
            plan.start_ns + (ticket as f64 * 1e9 / plan.rate) as u64
        } else {
            now_ns()
        };
        if due >= plan.end_ns {
            break;
        }
        if due > now_ns() {
            tokio::time::sleep_until(stats::instant_of(due).into()).await;
        }
        if client.needs_new_connection() {
            match RestClient::connect(target).await {
                Ok(reconnected) => client = reconnected,
                Err(error) => {
                    tally.transport_errors += 1;
                    tally
                        .first_failure
                        .get_or_insert_with(|| format!("{error:#}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let channel_index = (ticket % plan.channels.len() as u64) as usize;
        let sent_at = now_ns();
        tally.max_lag_ns = tally.max_lag_ns.max(sent_at.saturating_sub(due));
        let measured = stats::in_window(sent_at);
        let subscribers = plan
            .subscribers
            .as_ref()
            .map_or(0, |fleet| fleet.subscribers(channel_index));
        tally.sent += 1;
        match client
            .publish(target, &plan.channels[channel_index], sent_at)
            .await
        {
            Ok((_, None)) => {
                tally.ok += 1;
                progress.ok.fetch_add(1, Ordering::Relaxed);
                if measured {
                    tally.ok_in_window += 1;
                    tally.expected_deliveries += subscribers;
                    tally
                        .latency
                        .saturating_record(now_ns().saturating_sub(sent_at).max(1));
                }
            }
            Ok((status, Some(body))) => {
                tally.failed_status += 1;
                progress.failed.fetch_add(1, Ordering::Relaxed);
                tally
                    .first_failure
                    .get_or_insert_with(|| format!("HTTP {status}: {body}"));
            }
            Err(error) => {
                tally.transport_errors += 1;
                progress.failed.fetch_add(1, Ordering::Relaxed);
                tally
                    .first_failure
                    .get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    (client, tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Option<Response> {
        parse_response(text.as_bytes(), false).unwrap()
    }

    #[test]
    fn a_response_with_a_length_is_complete_once_its_body_is() {
        let text =
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}";
        for cut in 0..text.len() {
            assert_eq!(parse(&text[..cut]), None, "cut at {cut}");
        }
        let response = parse(text).unwrap();
        assert_eq!(response.status, 200);
        assert!(!response.close);
        assert_eq!(response.body, Body::Plain(text.len() - 2..text.len()));
    }

    #[test]
    fn failures_keep_their_body_and_close_is_noticed() {
        let text =
            "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 5\r\n\r\nnope!";
        let response = parse(text).unwrap();
        assert_eq!(response.status, 401);
        assert!(response.close);
        let mut body = Vec::new();
        response.body.copy_to(text.as_bytes(), &mut body);
        assert_eq!(body, b"nope!");
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let text = "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbad \r\n3;x=y\r\nreq\r\n0\r\n\r\n";
        for cut in 0..text.len() {
            assert_eq!(parse(&text[..cut]), None, "cut at {cut}");
        }
        let response = parse(text).unwrap();
        let mut body = Vec::new();
        response.body.copy_to(text.as_bytes(), &mut body);
        assert_eq!(body, b"bad req");
    }

    #[test]
    fn a_body_without_length_ends_at_close() {
        let text = "HTTP/1.0 200 OK\r\n\r\n{}";
        assert_eq!(parse(text), None);
        let response = parse_response(text.as_bytes(), true).unwrap().unwrap();
        assert!(response.close);
        assert_eq!(response.body, Body::Plain(text.len() - 2..text.len()));
        assert!(parse("HTTP/1.1 204 No Content\r\n\r\n").is_some());
        assert!(parse_response(b"SSH-2.0\r\n\r\n", false).is_err());
        assert!(parse_response(b"HTTP/1.1 2000 OK\r\n\r\n", false).is_err());
    }

    #[test]
    fn requests_are_signed_http() {
        let credentials = Credentials {
            app_id: "7".to_owned(),
            key: "k".to_owned(),
            secret: "s".to_owned(),
        };
        let endpoint =
            crate::target::parse_endpoint("http://127.0.0.1:6001/pusher", "http", false).unwrap();
        let target = PublishTarget::new(endpoint, None, &credentials, "e".to_owned(), 50);
        let mut request = Vec::new();
        target.write_request(&mut request, b"{}", 1_700_000_000);
        let text = String::from_utf8(request).unwrap();
        let query =
            crate::sign::signed_query(&credentials, "POST", "/apps/7/events", b"{}", 1_700_000_000);
        assert_eq!(
            text,
            format!(
                "POST /pusher/apps/7/events?{query} HTTP/1.1\r\nHost: 127.0.0.1:6001\r\n\
                 Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
            )
        );
    }
}

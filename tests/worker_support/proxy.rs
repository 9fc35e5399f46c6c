//! A loopback HTTP forwarder that tags each request with who sent it, so that the vendor
//! simulators' own request logs say which worker (and which of its runs) made each call; and,
//! where asked, checks the simulator after every write.
//!
//! The simulators log every request's query but not its key or user agent; every worker talks to
//! them through a forwarder of its own that appends `oncall_worker=<name>` to the query of each
//! request, and leaves everything else as it was (the answers are copied back byte for byte). A
//! base URL with a path prefix `/run-<n>` (a provider built for one run) is forwarded without the
//! prefix and tagged `oncall_run=<n>` too. The attribution is then the simulator's record, in the
//! order the simulator handled the requests, not the workers' word.
//!
//! Each request is also numbered (`oncall_sent=<n>`) in the order the forwarders, all of the test
//! process, received it: the order in which the requests left their senders. The simulator's
//! log is the order they landed in, which can differ: a write waits in its forwarder for the
//! tap (below), as a request can wait in any network.
//!
//! A [`WriteTap`] shared by the forwarders of one simulator lets one write through at a time, and
//! runs its check once the write's answer is back, before the next write is sent: the check sees
//! every state the simulator's overrides ever were in (reads change nothing).
//!
//! Plain threads and blocking sockets: HTTP/1.1 requests with a `Content-Length` body (what the
//! adapters send), answers with a `Content-Length` or chunked body, keep-alive connections, one
//! upstream connection per client connection, one request at a time on each.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// The query parameter that names the sender.
pub const TAG: &str = "oncall_worker";
/// The query parameter that names the sender's run (from a `/run-<n>` base URL).
pub const RUN_TAG: &str = "oncall_run";
/// The query parameter that numbers the requests in the order they left their senders.
pub const SENT_TAG: &str = "oncall_sent";

/// The requests the forwarders of this process received so far.
static SENT: AtomicU64 = AtomicU64::new(0);

/// How many requests had left their senders (and reached a forwarder) so far: every request
/// numbered after this one left later.
pub fn sent_so_far() -> u64 {
    SENT.load(Ordering::SeqCst)
}

/// A check run after each write through the forwarders that share it, one write at a time.
pub struct WriteTap {
    /// Held from sending a write until its check has run; counts the writes checked.
    checked: Mutex<u64>,
    /// Called with the path of each write (without a run prefix) and its request line as sent
    /// on (tagged), once its answer is back.
    check: Box<Check>,
}

/// A write tap's check: called with a write's path and its tagged request line.
type Check = dyn Fn(&str, &str) + Send + Sync;

impl WriteTap {
    pub fn new(check: impl Fn(&str, &str) + Send + Sync + 'static) -> Arc<WriteTap> {
        Arc::new(WriteTap {
            checked: Mutex::new(0),
            check: Box::new(check),
        })
    }

    /// How many writes were checked.
    pub fn writes(&self) -> u64 {
        *self.checked.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts a forwarder to `upstream` (`http://127.0.0.1:port`) tagging requests with `name`, and
/// checking writes with `tap`; returns its base URL. It runs until the test process ends.
pub fn start(upstream: &str, name: &str, tap: Option<Arc<WriteTap>>) -> String {
    let upstream: SocketAddr = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the simulator's URI is http://127.0.0.1:port");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let uri = format!("http://{}", listener.local_addr().expect("local address"));
    let name = name.to_owned();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (name, tap) = (name.clone(), tap.clone());
            thread::spawn(move || {
                let _ = forward(client, upstream, &name, tap.as_deref());
            });
        }
    });
    uri
}

fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    name: &str,
    tap: Option<&WriteTap>,
) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let mut to_client = client.try_clone()?;
    let mut to_server = server.try_clone()?;
    let (mut from_client, mut from_server) = (BufReader::new(client), BufReader::new(server));
    while let Some(request) = read_request(&mut from_client, name)? {
        let request = request.numbered(SENT.fetch_add(1, Ordering::SeqCst) + 1);
        let write = !matches!(request.method.as_str(), "GET" | "HEAD");
        // A write holds the tap from before it is sent until its check has run.
        let mut checked = match (tap, write) {
            (Some(tap), true) => Some((tap, tap.checked.lock().unwrap_or_else(|e| e.into_inner()))),
            _ => None,
        };
        to_server.write_all(&request.bytes)?;
        to_server.flush()?;
        let answer = read_answer(&mut from_server, request.method == "HEAD");
        if let Some((tap, count)) = checked.as_mut() {
            // Whatever became of the answer, the write may have landed: check.
            let line = String::from_utf8_lossy(&request.bytes[..request.line]);
            (tap.check)(&request.path, line.trim_end());
            **count += 1;
        }
        drop(checked);
        to_client.write_all(&answer?)?;
        to_client.flush()?;
    }
    Ok(())
}

/// One request, tagged, as it is sent on.
struct Request {
    method: String,
    /// The path without its run prefix or query.
    path: String,
    bytes: Vec<u8>,
    /// The length of the request line in `bytes`.
    line: usize,
}

impl Request {
    /// The request with `&oncall_sent=<sent>` appended to its query.
    fn numbered(self, sent: u64) -> Request {
        let line = String::from_utf8_lossy(&self.bytes[..self.line]).into_owned();
        let (target, version) = line
            .rsplit_once(' ')
            .unwrap_or((line.as_str(), "HTTP/1.1\r\n"));
        let numbered = format!("{target}&{SENT_TAG}={sent} {version}");
        let mut bytes = numbered.clone().into_bytes();
        bytes.extend_from_slice(&self.bytes[self.line..]);
        Request {
            line: numbered.len(),
            bytes,
            ..self
        }
    }
}

fn read_request(from: &mut impl BufRead, name: &str) -> std::io::Result<Option<Request>> {
    let mut request_line = String::new();
    if from.read_line(&mut request_line)? == 0 {
        return Ok(None);
    }
    let (line, method, path) = tag(&request_line, name);
    let mut bytes = line.into_bytes();
    let line_length = bytes.len();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if from.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        assert!(
            !lower.starts_with("transfer-encoding:"),
            "the forwarder handles Content-Length request bodies only"
        );
        bytes.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            break;
        }
    }
    let start = bytes.len();
    bytes.resize(start + length, 0);
    from.read_exact(&mut bytes[start..])?;
    Ok(Some(Request {
        method,
        path,
        bytes,
        line: line_length,
    }))
}

/// One answer, byte for byte: its head, then a `Content-Length` body, a chunked body, or none.
fn read_answer(from: &mut impl BufRead, head_request: bool) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut status_line = String::new();
    if from.read_line(&mut status_line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    bytes.extend_from_slice(status_line.as_bytes());
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut line = String::new();
        if from.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
        bytes.extend_from_slice(line.as_bytes());
        if line == "\r\n" {
            break;
        }
    }
    let bodiless = head_request || status < 200 || status == 204 || status == 304;
    if bodiless {
        return Ok(bytes);
    }
    if chunked {
        read_chunks(from, &mut bytes)?;
    } else if let Some(length) = length {
        let start = bytes.len();
        bytes.resize(start + length, 0);
        from.read_exact(&mut bytes[start..])?;
    } else {
        from.read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

/// A chunked body, copied as it is: sized chunks, the last one empty, then trailers.
fn read_chunks(from: &mut impl BufRead, bytes: &mut Vec<u8>) -> std::io::Result<()> {
    loop {
        let mut size_line = String::new();
        from.read_line(&mut size_line)?;
        bytes.extend_from_slice(size_line.as_bytes());
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        if size == 0 {
            loop {
                let mut trailer = String::new();
                if from.read_line(&mut trailer)? == 0 || trailer == "\r\n" {
                    bytes.extend_from_slice(trailer.as_bytes());
                    return Ok(());
                }
                bytes.extend_from_slice(trailer.as_bytes());
            }
        }
        let start = bytes.len();
        bytes.resize(start + size + 2, 0); // the data and its CRLF
        from.read_exact(&mut bytes[start..])?;
    }
}

/// `GET /run-7/a?b=c HTTP/1.1` → (`GET /a?b=c&oncall_worker=name&oncall_run=7 HTTP/1.1`, `GET`,
/// `/a`).
fn tag(request_line: &str, name: &str) -> (String, String, String) {
    let mut parts = request_line.trim_end().splitn(3, ' ');
    let (method, target, version) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("/"),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let (target, run) = match target
        .strip_prefix("/run-")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((run, rest)) => (format!("/{rest}"), Some(run)),
        None => (target.to_owned(), None),
    };
    let path = target.split('?').next().unwrap_or("").to_owned();
    let joiner = if target.contains('?') { '&' } else { '?' };
    let mut line = format!("{method} {target}{joiner}{TAG}={name}");
    if let Some(run) = run {
        line.push_str(&format!("&{RUN_TAG}={run}"));
    }
    line.push_str(&format!(" {version}\r\n"));
    (line, method.to_owned(), path)
}

#[test]
fn tags_the_query_with_the_sender_and_its_run() {
    assert_eq!(
        tag("GET /v2/schedules/x/overrides?a=b HTTP/1.1\r\n", "w1").0,
        "GET /v2/schedules/x/overrides?a=b&oncall_worker=w1 HTTP/1.1\r\n"
    );
    assert_eq!(
        tag("DELETE /schedules/P/overrides/Q HTTP/1.1\r\n", "w2"),
        (
            "DELETE /schedules/P/overrides/Q?oncall_worker=w2 HTTP/1.1\r\n".to_owned(),
            "DELETE".to_owned(),
            "/schedules/P/overrides/Q".to_owned()
        )
    );
    assert_eq!(
        tag("POST /run-12/v2/schedules/x/overrides HTTP/1.1\r\n", "w3"),
        (
            "POST /v2/schedules/x/overrides?oncall_worker=w3&oncall_run=12 HTTP/1.1\r\n".to_owned(),
            "POST".to_owned(),
            "/v2/schedules/x/overrides".to_owned()
        )
    );
}

#[test]
fn numbers_a_tagged_request() {
    let (line, method, path) = tag("POST /run-3/v2/x HTTP/1.1\r\n", "w1");
    let mut bytes = line.clone().into_bytes();
    bytes.extend_from_slice(b"content-length: 2\r\n\r\n{}");
    let request = Request {
        method,
        path,
        line: line.len(),
        bytes,
    }
    .numbered(42);
    assert_eq!(
        String::from_utf8(request.bytes).unwrap(),
        "POST /v2/x?oncall_worker=w1&oncall_run=3&oncall_sent=42 HTTP/1.1\r\n\
         content-length: 2\r\n\r\n{}"
    );
    assert_eq!(request.line, 66);
}

#[test]
fn copies_answers_with_a_length_chunks_or_no_body() {
    let mut with_length = &b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}HTTP/1.1"[..];
    assert_eq!(
        read_answer(&mut with_length, false).unwrap(),
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    );
    let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    assert_eq!(read_answer(&mut &chunked[..], false).unwrap(), chunked);
    let mut empty = &b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1"[..];
    assert_eq!(
        read_answer(&mut empty, false).unwrap(),
        b"HTTP/1.1 204 No Content\r\n\r\n"
    );
}

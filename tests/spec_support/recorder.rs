//! A loopback HTTP proxy that records every exchange between a client (an adapter, the `oncall`
//! CLI, a replay of an official client's calls) and a vendor simulator, and changes nothing: the
//! request goes on byte for byte, the answer comes back byte for byte.
//!
//! Point a provider's base URL (or a CLI config's `base_url`) at [`Recorder::uri`]; read what
//! crossed with [`Recorder::exchanges`], which waits for the answers still under way (a slow one
//! is recorded when it arrives, even after its client gave up). A connection the simulator closes
//! without an answer is recorded with no answer, and closed on the client too.
//!
//! Plain threads and blocking sockets (as `tests/worker_support/proxy.rs`): HTTP/1.1 with
//! `Content-Length` or chunked bodies, keep-alive, one upstream connection per client connection,
//! one request at a time on each.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::exchange::{Answer, Exchange};

/// How long an answer may take before the proxy (or [`Recorder::send`]) gives up on it.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Log {
    /// Finished exchanges with the order their requests arrived in.
    done: Vec<(u64, Exchange)>,
    next: u64,
    in_flight: usize,
}

#[derive(Default)]
struct Shared {
    log: Mutex<Log>,
    idle: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self) -> u64 {
        let mut log = self.lock();
        log.next += 1;
        log.in_flight += 1;
        log.next
    }

    fn finish(&self, seq: u64, exchange: Exchange) {
        let mut log = self.lock();
        log.done.push((seq, exchange));
        log.in_flight -= 1;
        self.idle.notify_all();
    }
}

/// A recording proxy in front of one upstream server. It runs until the test process ends.
pub struct Recorder {
    uri: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:port`) on a free loopback port.
    pub fn start(upstream: &str) -> Recorder {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the simulator's URI is http://127.0.0.1:port");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let uri = format!("http://{}", listener.local_addr().expect("local address"));
        let shared = Arc::new(Shared::default());
        let for_thread = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let shared = Arc::clone(&for_thread);
                thread::spawn(move || {
                    let _ = relay(client, upstream, &shared);
                });
            }
        });
        Recorder { uri, shared }
    }

    /// The base URL to give a client.
    pub fn uri(&self) -> String {
        self.uri.clone()
    }

    /// Every exchange so far, in the order the requests arrived, once no answer is under way (at
    /// most 10 s).
    pub fn exchanges(&self) -> Vec<Exchange> {
        let deadline = Instant::now() + UPSTREAM_TIMEOUT;
        let mut log = self.shared.lock();
        while log.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "an answer is still under way after 10 s");
            log = self
                .shared
                .idle
                .wait_timeout(log, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let mut done = log.done.clone();
        done.sort_by_key(|(seq, _)| *seq);
        done.into_iter().map(|(_, e)| e).collect()
    }

    /// Sends one request through the proxy on a connection of its own (`Connection: close`, a
    /// `Host` and, with a body, a `Content-Length` added to `headers`), and returns the exchange
    /// as the proxy recorded it. For replaying other clients' calls exactly.
    pub fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Exchange {
        let before = self.exchanges().len();
        let address = self.uri.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).expect("connect to the recorder");
        stream
            .set_read_timeout(Some(UPSTREAM_TIMEOUT))
            .expect("a read timeout");
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {address}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).expect("send the request");
        stream.write_all(body).expect("send the body");
        stream.flush().expect("send");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let exchanges = self.exchanges();
        assert_eq!(exchanges.len(), before + 1, "one exchange per request sent");
        exchanges
            .into_iter()
            .next_back()
            .expect("the exchange just made")
    }
}

/// Relays one client connection, recording each exchange on it.
fn relay(client: TcpStream, upstream: SocketAddr, shared: &Shared) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    server.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    let mut to_client = client.try_clone()?;
    let mut to_server = server.try_clone()?;
    let (mut from_client, mut from_server) = (BufReader::new(client), BufReader::new(server));
    while let Some(request) = read_message(&mut from_client, None)? {
        let seq = shared.begin();
        let closing = wants_close(&request.headers);
        let mut exchange = Exchange {
            method: request
                .first_line
                .split(' ')
                .next()
                .unwrap_or("")
                .to_owned(),
            target: request
                .first_line
                .split(' ')
                .nth(1)
                .unwrap_or("")
                .to_owned(),
            headers: request.headers,
            body: request.body,
            answer: None,
        };
        let sent = to_server
            .write_all(&request.raw)
            .and_then(|()| to_server.flush());
        let answer = match sent {
            Ok(()) => read_message(&mut from_server, Some(&exchange.method)),
            Err(e) => Err(e),
        };
        let Ok(Some(answer)) = answer else {
            // No answer: the simulator closed the connection (or it broke). Say so to the client
            // the same way, by closing.
            shared.finish(seq, exchange);
            return Ok(());
        };
        let closing = closing || wants_close(&answer.headers);
        exchange.answer = Some(Answer {
            status: answer
                .first_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            headers: answer.headers,
            body: answer.body,
        });
        shared.finish(seq, exchange);
        to_client.write_all(&answer.raw)?;
        to_client.flush()?;
        if closing {
            break;
        }
    }
    Ok(())
}

/// Whether a message's `Connection` header closes the connection after it.
fn wants_close(headers: &[(String, String)]) -> bool {
    headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"))
}

/// One HTTP/1.1 message: its first line, headers, de-chunked body, and the bytes as read.
struct Message {
    first_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    raw: Vec<u8>,
}

/// Reads a request (`request_method` `None`) or the answer to a request of that method. `None`
/// when the peer closed before a first line.
fn read_message(
    from: &mut impl BufRead,
    request_method: Option<&str>,
) -> std::io::Result<Option<Message>> {
    let mut first_line = String::new();
    if from.read_line(&mut first_line)? == 0 {
        return Ok(None);
    }
    let mut raw = first_line.as_bytes().to_vec();
    let mut headers = Vec::new();
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut line = String::new();
        if from.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(line.as_bytes());
        if line == "\r\n" || line == "\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            }
            if name.eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
            headers.push((name, value));
        }
    }
    let status: u16 = first_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let bodiless = match request_method {
        None => false,
        Some(method) => method == "HEAD" || status < 200 || status == 204 || status == 304,
    };
    let mut body = Vec::new();
    if !bodiless {
        if chunked {
            read_chunks(from, &mut raw, &mut body)?;
        } else if let Some(length) = length {
            body.resize(length, 0);
            from.read_exact(&mut body)?;
            raw.extend_from_slice(&body);
        } else if request_method.is_some() {
            // An answer with neither: its body runs to the end of the connection.
            from.read_to_end(&mut body)?;
            raw.extend_from_slice(&body);
        }
    }
    Ok(Some(Message {
        first_line: first_line.trim_end().to_owned(),
        headers,
        body,
        raw,
    }))
}

/// A chunked body: copied as it is into `raw`, its data into `body`.
fn read_chunks(
    from: &mut impl BufRead,
    raw: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> std::io::Result<()> {
    loop {
        let mut size_line = String::new();
        if from.read_line(&mut size_line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.extend_from_slice(size_line.as_bytes());
        let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
        if size == 0 {
            loop {
                let mut trailer = String::new();
                let n = from.read_line(&mut trailer)?;
                raw.extend_from_slice(trailer.as_bytes());
                if n == 0 || trailer == "\r\n" {
                    return Ok(());
                }
            }
        }
        let mut chunk = vec![0; size + 2]; // the data and its CRLF
        from.read_exact(&mut chunk)?;
        raw.extend_from_slice(&chunk);
        body.extend_from_slice(&chunk[..size]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lengths_chunks_and_bodiless_answers() {
        let mut with_length = &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1"[..];
        let m = read_message(&mut with_length, Some("GET"))
            .unwrap()
            .unwrap();
        assert_eq!((m.body.as_slice(), m.raw.len()), (&b"{}"[..], 40));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let m = read_message(&mut &chunked[..], Some("GET"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (m.body.as_slice(), m.raw.as_slice()),
            (&b"abc"[..], &chunked[..])
        );
        let mut empty = &b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1"[..];
        let m = read_message(&mut empty, Some("DELETE")).unwrap().unwrap();
        assert!(m.body.is_empty());
        let mut request = &b"POST /a?b=c HTTP/1.1\r\nContent-Length: 3\r\nX: y\r\n\r\nabc"[..];
        let m = read_message(&mut request, None).unwrap().unwrap();
        assert_eq!(m.first_line, "POST /a?b=c HTTP/1.1");
        assert_eq!(m.headers[1], ("X".to_owned(), "y".to_owned()));
        assert_eq!(m.body, b"abc");
    }
}

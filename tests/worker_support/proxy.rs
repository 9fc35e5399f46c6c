//! A loopback HTTP forwarder that tags each request with who sent it, so that the vendor
//! simulators' own request logs say which worker made each call.
//!
//! The simulators log every request's query but not its key or user agent; every worker talks to
//! them through a forwarder of its own that appends `oncall_worker=<name>` to the query of each
//! request, and leaves everything else as it was (the answers are copied back byte for byte). The
//! attribution is then the simulator's record, in the order the simulator handled the requests,
//! not the workers' word.
//!
//! Plain threads and blocking sockets: HTTP/1.1 requests with a `Content-Length` body (what the
//! adapters send), keep-alive connections, one upstream connection per client connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;

/// The query parameter that names the sender.
pub const TAG: &str = "oncall_worker";

/// Starts a forwarder to `upstream` (`http://127.0.0.1:port`) tagging requests with `name`;
/// returns its base URL. It runs until the test process ends.
pub fn start(upstream: &str, name: &str) -> String {
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
            let name = name.clone();
            thread::spawn(move || {
                let _ = forward(client, upstream, &name);
            });
        }
    });
    uri
}

fn forward(client: TcpStream, upstream: SocketAddr, name: &str) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    // Answers go back untouched.
    let (mut from_server, mut to_client) = (server.try_clone()?, client.try_clone()?);
    thread::spawn(move || {
        let _ = std::io::copy(&mut from_server, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Both);
    });
    let mut reader = BufReader::new(client);
    let mut to_server = server;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            break;
        }
        let mut head = tag(&request_line, name);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            assert!(
                !lower.starts_with("transfer-encoding:"),
                "the forwarder handles Content-Length bodies only"
            );
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        to_server.write_all(head.as_bytes())?;
        to_server.write_all(&body)?;
        to_server.flush()?;
    }
    let _ = to_server.shutdown(Shutdown::Write);
    Ok(())
}

/// `GET /a?b=c HTTP/1.1` → `GET /a?b=c&oncall_worker=name HTTP/1.1`.
fn tag(request_line: &str, name: &str) -> String {
    let mut parts = request_line.trim_end().splitn(3, ' ');
    let (method, target, version) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("/"),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let joiner = if target.contains('?') { '&' } else { '?' };
    format!("{method} {target}{joiner}{TAG}={name} {version}\r\n")
}

#[test]
fn tags_the_query() {
    assert_eq!(
        tag("GET /v2/schedules/x/overrides?a=b HTTP/1.1\r\n", "w1"),
        "GET /v2/schedules/x/overrides?a=b&oncall_worker=w1 HTTP/1.1\r\n"
    );
    assert_eq!(
        tag("DELETE /schedules/P/overrides/Q HTTP/1.1\r\n", "w2"),
        "DELETE /schedules/P/overrides/Q?oncall_worker=w2 HTTP/1.1\r\n"
    );
}

//! A loopback TCP forwarder in front of PostgreSQL whose "restart" drops every connection
//! through it and refuses new ones for a while: what a database restart looks like from the
//! workers' side (their connections die mid-query, their transactions roll back, connecting fails
//! until it is back), without stopping the cluster the other tests share. Its "freeze" is a
//! network partition: nothing more is forwarded either way and new connections hang, so every
//! call waits for its own timeout.
//!
//! Plain threads and blocking sockets; bytes are copied as they are (TLS passes through).

use std::io::Read;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The forwarder: its port, and its restart switch.
pub struct PgProxy {
    pub port: u16,
    state: Arc<State>,
}

struct State {
    /// Until when new connections are refused.
    down_until: Mutex<Option<Instant>>,
    /// Both ends of every live connection, to cut at a restart.
    live: Mutex<Vec<TcpStream>>,
    restarts: AtomicUsize,
    /// Nothing is forwarded, and new connections are held without an answer.
    frozen: AtomicBool,
    /// Connections accepted while frozen, kept open.
    held: Mutex<Vec<TcpStream>>,
}

impl PgProxy {
    /// Starts a forwarder to `upstream`; it runs until the test process ends.
    pub fn start(upstream: SocketAddr) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let state = Arc::new(State {
            down_until: Mutex::new(None),
            live: Mutex::new(Vec::new()),
            restarts: AtomicUsize::new(0),
            frozen: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
        });
        let shared = state.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let down = shared
                    .down_until
                    .lock()
                    .unwrap()
                    .is_some_and(|until| Instant::now() < until);
                if down {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                if shared.frozen.load(Ordering::SeqCst) {
                    shared.held.lock().unwrap().push(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                {
                    let mut live = shared.live.lock().unwrap();
                    live.extend(client.try_clone().ok());
                    live.extend(server.try_clone().ok());
                }
                pipe(&client, &server, shared.clone());
                pipe(&server, &client, shared.clone());
            }
        });
        PgProxy { port, state }
    }

    /// Cuts every connection and refuses new ones for `down`.
    pub fn restart(&self, down: Duration) {
        *self.state.down_until.lock().unwrap() = Some(Instant::now() + down);
        for stream in self.state.live.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        self.state.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// A network partition from now on: nothing more is forwarded either way, and new
    /// connections hang.
    pub fn freeze(&self) {
        self.state.frozen.store(true, Ordering::SeqCst);
    }

    /// How many restarts there were.
    pub fn restarts(&self) -> usize {
        self.state.restarts.load(Ordering::Relaxed)
    }
}

/// Copies `from` to `to` on a thread of its own until either closes, then closes both; once
/// the proxy is frozen, what arrives is dropped.
fn pipe(from: &TcpStream, to: &TcpStream, state: Arc<State>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buffer) {
            if n == 0 {
                break;
            }
            if state.frozen.load(Ordering::SeqCst) {
                continue;
            }
            if to.write_all(&buffer[..n]).is_err() {
                break;
            }
            let _ = to.flush();
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

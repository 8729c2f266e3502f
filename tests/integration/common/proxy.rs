//! A TCP forwarder between a client under test and a real service, that can play the service going away and
//! coming back without touching the service itself: `down` severs every open connection and answers new ones by
//! closing them at once (counted), `up` forwards again (counted too).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

struct State {
    up: AtomicBool,
    refused: AtomicUsize,
    forwarded: AtomicUsize,
    live: Mutex<Vec<AbortHandle>>,
}

pub struct Proxy {
    port: u16,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

/// `host:port` of a service URL (`scheme://user:pass@host:port/path`), with the scheme's default port.
fn authority(url: &str) -> (&str, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host_port = rest.split(['/', '?']).next().unwrap_or(rest);
    let target = if host_port.contains(':') {
        host_port.to_string()
    } else if url.starts_with("amqp") {
        format!("{host_port}:5672")
    } else {
        format!("{host_port}:5432")
    };
    (host_port, target)
}

impl Proxy {
    /// A forwarder to the service of `url`, up or down from the start.
    pub async fn start(url: &str, up: bool) -> Self {
        let (_, target) = authority(url);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a local port");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            up: AtomicBool::new(up),
            refused: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
            live: Mutex::default(),
        });
        let s = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !s.up.load(Ordering::SeqCst) {
                    s.refused.fetch_add(1, Ordering::SeqCst);
                    drop(inbound);
                    continue;
                }
                s.forwarded.fetch_add(1, Ordering::SeqCst);
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                s.live.lock().unwrap().push(task.abort_handle());
            }
        });
        Self { port, state, accept }
    }

    /// `url` pointed at this forwarder.
    pub fn url(&self, url: &str) -> String {
        let (host_port, _) = authority(url);
        url.replacen(host_port, &format!("127.0.0.1:{}", self.port), 1)
    }

    /// The service "comes back": new connections are forwarded.
    pub fn up(&self) {
        self.state.up.store(true, Ordering::SeqCst);
    }

    /// The service "goes away": open connections are cut, new ones closed at once.
    pub fn down(&self) {
        self.state.up.store(false, Ordering::SeqCst);
        for task in self.state.live.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Connections closed at once while down.
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// Connections forwarded to the service while up.
    pub fn forwarded(&self) -> usize {
        self.state.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.down();
    }
}

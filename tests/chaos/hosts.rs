//! Separate hosts on one machine: each is a network namespace joined to this one by a veth pair with its own
//! /30, and reaches PostgreSQL and RabbitMQ (which listen on 127.0.0.1 only) through a TCP forwarder this test
//! runs on the host side of its link. Cutting a host off stops its forwarders relaying anything, both ways and
//! on new connections too: its TCP connections stay open and stall, as on a real partition where packets are
//! lost, with no reset and no error, so whatever the host was writing arrives late, after the cut, and the test
//! controls exactly when. Everything is removed when the host is dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

fn ip(args: &[&str]) {
    super::farm::control("ip", args);
}

/// A network namespace with a link to this one.
pub struct Host {
    pub netns: String,
    link: String,
    /// The host side's address: where the forwarders listen.
    pub gateway: Ipv4Addr,
    forwarders: Vec<tokio::task::JoinHandle<()>>,
    cut: watch::Sender<bool>,
}

impl Host {
    /// Host `n` (1..=250) of this test process: namespace `sq<pid>h<n>`, addresses 10.213.<n>.1 (this side) and
    /// .2 (the namespace's side), forwarding `ports` to 127.0.0.1. Hosts a killed run left behind go first.
    pub async fn new(n: u8, ports: &[u16]) -> Self {
        remove_leftovers();
        let tag = format!("sq{}h{n}", std::process::id());
        let (netns, link, peer) = (tag.clone(), format!("{tag}a"), format!("{tag}b"));
        let gateway = Ipv4Addr::new(10, 213, n, 1);
        let inside = format!("10.213.{n}.2/30");
        ip(&["netns", "add", &netns]);
        let host = Self {
            netns: netns.clone(),
            link: link.clone(),
            gateway,
            forwarders: Vec::new(),
            cut: watch::channel(false).0,
        };
        ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &netns]);
        ip(&["addr", "add", &format!("{gateway}/30"), "dev", &link]);
        ip(&["link", "set", &link, "up"]);
        ip(&["netns", "exec", &netns, "ip", "addr", "add", &inside, "dev", &peer]);
        ip(&["netns", "exec", &netns, "ip", "link", "set", &peer, "up"]);
        ip(&["netns", "exec", &netns, "ip", "link", "set", "lo", "up"]);
        let mut host = host;
        for &port in ports {
            let listener = TcpListener::bind(SocketAddr::from((gateway, port))).await.expect("forwarder listens");
            host.forwarders.push(tokio::spawn(forward(listener, port, host.cut.subscribe())));
        }
        host
    }

    /// Runs `program` inside the namespace.
    pub fn command(&self, program: &std::ffi::OsStr) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns]).arg(program);
        c
    }

    /// Cuts the host off (nothing relayed either way) or joins it again.
    pub fn set_link(&self, up: bool) {
        self.cut.send_replace(!up);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for f in &self.forwarders {
            f.abort();
        }
        let _ = Command::new("ip").args(["link", "del", &self.link]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.netns]).status();
    }
}

/// Removes the namespaces (and their links) of test processes that no longer run.
fn remove_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name.strip_prefix("sq").and_then(|r| r.split_once('h')).map(|(pid, _)| pid) else { continue };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["link", "del", &format!("{name}a")]).status();
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

async fn forward(listener: TcpListener, port: u16, cut: watch::Receiver<bool>) {
    while let Ok((inbound, _)) = listener.accept().await {
        let cut = cut.clone();
        tokio::spawn(async move {
            if let Ok(outbound) = TcpStream::connect(("127.0.0.1", port)).await {
                let ((ri, wi), (ro, wo)) = (inbound.into_split(), outbound.into_split());
                tokio::join!(pump(ri, wo, cut.clone()), pump(ro, wi, cut));
            }
        });
    }
}

/// Waits while the host is cut off; false once the host is gone.
async fn while_cut(cut: &mut watch::Receiver<bool>) -> bool {
    while *cut.borrow_and_update() {
        if cut.changed().await.is_err() {
            return false;
        }
    }
    true
}

/// Relays one direction of a connection, holding everything while the host is cut off.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut cut: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !while_cut(&mut cut).await {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !while_cut(&mut cut).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

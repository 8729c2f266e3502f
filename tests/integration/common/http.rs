//! A minimal HTTP/1.1 client for the API tests: one request per connection, the answer read by its length (or to
//! the end), within a deadline.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer: status code, headers (lower-case names) and body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

pub async fn request(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the server");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let body = body.unwrap_or("");
    if method != "GET" {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).await.unwrap();
    let read = async {
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse::<usize>().ok());
                if length.is_some_and(|len| body.len() >= len) {
                    return raw;
                }
            }
            if n == 0 {
                return raw;
            }
        }
    };
    let raw = tokio::time::timeout(std::time::Duration::from_secs(60), read).await.expect("an answer within a minute");
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("status line");
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string())).collect();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Answer { status, headers, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, None, None).await
}

pub async fn post(addr: SocketAddr, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
    request(addr, "POST", path, token, body).await
}

/// A server-sent event stream read as it comes: the chunked body decoded as bytes arrive, split into events.
pub struct EventStream {
    stream: tokio::net::TcpStream,
    /// Raw bytes not yet decoded.
    raw: Vec<u8>,
    /// Decoded body not yet split into events.
    body: String,
    headers_done: bool,
}

impl EventStream {
    pub async fn open(addr: SocketAddr, path: &str) -> Self {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the server");
        let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        Self { stream, raw: Vec::new(), body: String::new(), headers_done: false }
    }

    /// Decodes the complete chunks in `raw` into `body`.
    fn decode(&mut self) {
        if !self.headers_done {
            let Some(end) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") else { return };
            let head = String::from_utf8_lossy(&self.raw[..end]).to_string();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert!(head.to_lowercase().contains("transfer-encoding: chunked"), "{head}");
            self.raw.drain(..end + 4);
            self.headers_done = true;
        }
        while let Some(line) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&self.raw[..line]).trim(), 16).unwrap();
            if self.raw.len() < line + 2 + size + 2 {
                return;
            }
            self.body.push_str(&String::from_utf8_lossy(&self.raw[line + 2..line + 2 + size]));
            self.raw.drain(..line + 2 + size + 2);
        }
    }

    /// The next event: its name and its data.
    pub async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.body.find("\n\n") {
                let block: String = self.body.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .filter_map(|l| l.strip_prefix(name))
                        .map(str::trim_start)
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                let (event, data) = (field("event:"), field("data:"));
                // Keep-alive comments carry neither.
                if !event.is_empty() || !data.is_empty() {
                    return (event, data);
                }
                continue;
            }
            let mut buf = [0u8; 8192];
            let n = self.stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the event stream ended");
            self.raw.extend_from_slice(&buf[..n]);
            self.decode();
        }
    }
}

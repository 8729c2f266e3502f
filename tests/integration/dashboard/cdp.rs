//! A small Chrome DevTools Protocol client for the dashboard test, driving Debian's headless `chromium`: open a
//! page, evaluate JavaScript, collect console errors and exceptions, take screenshots.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Chromium, killed when dropped.
pub struct Browser {
    _child: Child,
    port: u16,
    _profile: super::common::TempDir,
}

impl Browser {
    pub async fn launch() -> Self {
        let profile = super::common::TempDir::new("dashboard", "chromium-profile");
        let mut child = Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0"])
            .arg("--window-size=1400,1000")
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("Debian's chromium is installed (apt-get install chromium)");
        let stderr = child.stderr.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let port = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("DevTools listening on ws://127.0.0.1:") {
                    return rest.split('/').next().unwrap().parse::<u16>().unwrap();
                }
            }
            panic!("chromium exited without a DevTools address");
        })
        .await
        .expect("chromium starts within a minute");
        // Keep draining its stderr so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { _child: child, port, _profile: profile }
    }

    /// A new tab, attached.
    pub async fn tab(&self) -> Tab {
        let addr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let target = super::http::request(addr, "PUT", "/json/new?about:blank", None, None).await.json();
        let ws = target["webSocketDebuggerUrl"].as_str().expect("a tab's DevTools address").to_string();
        let (socket, _) = tokio_tungstenite::connect_async(ws).await.expect("attach to the tab");
        let mut tab = Tab { socket, next_id: 0, errors: Vec::new() };
        for domain in ["Runtime.enable", "Log.enable", "Page.enable"] {
            tab.call(domain, json!({})).await;
        }
        tab
    }
}

/// One tab.
pub struct Tab {
    socket: Socket,
    next_id: u64,
    /// Console errors, uncaught exceptions and error log entries seen so far.
    pub errors: Vec<String>,
}

impl Tab {
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(Message::Text(message.into())).await.unwrap();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(60), self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("{method} answered within a minute"))
                .expect("the tab is open")
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["id"] == id {
                assert!(value["error"].is_null(), "{method}: {}", value["error"]);
                return value["result"].clone();
            }
            self.note(&value);
        }
    }

    fn note(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.errors.push(format!("console.error: {}", params["args"]));
            }
            Some("Runtime.exceptionThrown") => self.errors.push(format!("exception: {}", params["exceptionDetails"])),
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.errors.push(format!("log: {}", params["entry"]["text"]));
            }
            _ => {}
        }
    }

    /// Evaluates `expression` (awaiting a promise) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }))
            .await;
        assert!(result["exceptionDetails"].is_null(), "{expression}: {}", result["exceptionDetails"]);
        result["result"]["value"].clone()
    }

    /// Opens `url` and waits until the document has loaded.
    pub async fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'").await;
    }

    /// Polls `condition` (a JavaScript expression) until it is true, failing after a minute.
    pub async fn wait_for(&mut self, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.eval(&format!("!!({condition})")).await != Value::Bool(true) {
            assert!(Instant::now() < deadline, "timed out waiting until {condition}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, base64(shot["data"].as_str().unwrap())).unwrap();
    }
}

fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= u32::from(value(c)) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

//! `scenequeue probe`: the health check of a container or pod, without a shell, curl or a database query. A
//! worker is healthy while its alive file (rewritten on every heartbeat) is recent; a scheduler or `serve` while
//! its HTTP server answers `/metrics` with 200.

use crate::args::ProbeArgs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long the HTTP probe waits to connect and for the answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    match &args.alive_file {
        Some(path) => alive(path, Duration::from_secs(args.max_age_s)),
        None => http(args.http_addr),
    }
}

/// Healthy when `path` was written less than `max_age` ago.
fn alive(path: &Path, max_age: Duration) -> anyhow::Result<()> {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| anyhow::anyhow!("no alive file {}: {e} (has the worker started?)", path.display()))?;
    let age = SystemTime::now().duration_since(modified).unwrap_or_default();
    if age > max_age {
        anyhow::bail!(
            "{} was last written {} s ago (more than {} s)",
            path.display(),
            age.as_secs(),
            max_age.as_secs()
        );
    }
    Ok(())
}

/// Healthy when the server at `addr` (a wildcard address is asked on loopback) answers `/metrics` with 200.
fn http(addr: SocketAddr) -> anyhow::Result<()> {
    let target = local(addr);
    let mut stream = TcpStream::connect_timeout(&target, HTTP_TIMEOUT)
        .map_err(|e| anyhow::anyhow!("nothing answers on {target}: {e}"))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    stream.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {target}\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut head = [0u8; 32];
    let n = stream.read(&mut head)?;
    let status = String::from_utf8_lossy(&head[..n]);
    let line = status.lines().next().unwrap_or_default();
    if !(line.starts_with("HTTP/1.") && line.split_whitespace().nth(1) == Some("200")) {
        anyhow::bail!("{target}/metrics answered {line:?}");
    }
    Ok(())
}

/// `addr`, with an unspecified IP (0.0.0.0 or ::) replaced by loopback.
fn local(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
        SocketAddr::V6(a) if a.ip().is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port())),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_address_is_probed_on_loopback() {
        assert_eq!(local("0.0.0.0:8080".parse().unwrap()), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(local("[::]:8080".parse().unwrap()), "[::1]:8080".parse().unwrap());
        assert_eq!(local("10.0.0.5:80".parse().unwrap()), "10.0.0.5:80".parse().unwrap());
    }
}

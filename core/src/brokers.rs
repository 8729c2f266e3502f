//! The broker nodes a process may connect to: `SCENEQUEUE_AMQP_URL` names one node or a comma-separated list of
//! a cluster's nodes. Each process tries them in an order of its own (shuffled once, so a farm's connections
//! spread over the nodes), starting after the node it last connected to, so a process that lost its node goes
//! to the next one first. A node that does not answer within [`CONNECT_TIMEOUT`] is passed over.
//!
//! With an expected cluster name ([`expect_cluster`], `SCENEQUEUE_AMQP_CLUSTER`), a node is asked for the
//! `cluster_name` it announces when a connection opens, and one that names another cluster (a stray
//! single broker left in the list) is refused and passed over: jobs published there would reach no worker of
//! this farm.

use crate::mq::MqError;
use lapin::protocol::{AMQPClass, connection::AMQPMethod};
use lapin::types::{AMQPValue, ShortString};
use lapin::{Connection, ConnectionProperties};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::warn;

/// Longest a node may take to accept a connection before the next one is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static EXPECTED_CLUSTER: OnceLock<String> = OnceLock::new();
/// Position in this process's order of the node to try first.
static NEXT: AtomicUsize = AtomicUsize::new(0);
static SEED: OnceLock<u64> = OnceLock::new();

/// Sets, once per process, the cluster name every node must announce. Later calls change nothing.
pub fn expect_cluster(name: &str) {
    let _ = EXPECTED_CLUSTER.set(name.to_string());
}

/// The node URLs of `urls`, in the order given.
pub fn nodes(urls: &str) -> Vec<&str> {
    urls.split(',').map(str::trim).filter(|u| !u.is_empty()).collect()
}

/// This process's order of `n` nodes: a permutation fixed for the process's life.
fn order(n: usize) -> Vec<usize> {
    let mut state = *SEED.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        order.swap(i, (z % (i as u64 + 1)) as usize);
    }
    order
}

/// Connects to the first node of `urls` (in this process's order, after the one it last connected to) that
/// accepts, and belongs to the expected cluster when one is set. Every node passed over is logged with its
/// reason; when none accepts, the last node's error.
pub async fn connect(urls: &str) -> Result<Connection, MqError> {
    let nodes = nodes(urls);
    let order = order(nodes.len());
    let start = NEXT.load(Ordering::Relaxed);
    // An empty list is a connection that was never opened.
    let mut last = MqError::Connect {
        url: String::new(),
        source: lapin::Error::InvalidConnectionState(lapin::ConnectionState::Closed),
    };
    for k in 0..nodes.len() {
        let position = (start + k) % nodes.len();
        let url = nodes[order[position]];
        match connect_checked(url).await {
            Ok(connection) => {
                NEXT.store((position + 1) % nodes.len(), Ordering::Relaxed);
                return Ok(connection);
            }
            Err(e) => {
                if nodes.len() > 1 {
                    warn!(node = %crate::db::redact(url), error = %e, "broker node passed over");
                }
                last = e;
            }
        }
    }
    Err(last)
}

async fn connect_checked(url: &str) -> Result<Connection, MqError> {
    let redacted = || crate::db::redact(url);
    if let Some(expected) = EXPECTED_CLUSTER.get() {
        match tokio::time::timeout(CONNECT_TIMEOUT, cluster_name(url)).await {
            Ok(Ok(Some(name))) if name != *expected => {
                return Err(MqError::ForeignNode { url: redacted(), found: name, expected: expected.clone() });
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(MqError::Connect { url: redacted(), source: lapin::Error::IOError(e.into()) }),
            Err(_) => return Err(timed_out(url)),
        }
    }
    let properties = ConnectionProperties::default().with_connection_name("scenequeue".into());
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties)).await {
        Ok(result) => result.map_err(|source| MqError::Connect { url: redacted(), source }),
        Err(_) => Err(timed_out(url)),
    }
}

fn timed_out(url: &str) -> MqError {
    let e = std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer within {CONNECT_TIMEOUT:?}"));
    MqError::Connect { url: crate::db::redact(url), source: lapin::Error::IOError(e.into()) }
}

/// The `cluster_name` a node announces in its `connection.start`, read by opening the protocol and closing it
/// again. None for a TLS URL (not probed) or a node that announces no name.
async fn cluster_name(url: &str) -> std::io::Result<Option<String>> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let uri: lapin::uri::AMQPUri = url.parse().map_err(invalid)?;
    if uri.scheme != lapin::uri::AMQPScheme::AMQP {
        return Ok(None);
    }
    let mut stream = tokio::net::TcpStream::connect((uri.authority.host.as_str(), uri.authority.port)).await?;
    stream.write_all(b"AMQP\x00\x00\x09\x01").await?;
    let mut header = [0u8; 7];
    stream.read_exact(&mut header).await?;
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    if header[0] != 1 || size > 64 * 1024 {
        return Err(invalid(format!("not an AMQP 0-9-1 connection.start (frame type {}, {size} bytes)", header[0])));
    }
    let mut payload = vec![0u8; size + 1];
    stream.read_exact(&mut payload).await?;
    let (_, class) = lapin::protocol::parse_class(&payload[..size]).map_err(|e| invalid(format!("{e:?}")))?;
    let AMQPClass::Connection(AMQPMethod::Start(start)) = class else {
        return Err(invalid("the first frame is not connection.start".into()));
    };
    Ok(match start.server_properties.inner().get(&ShortString::from("cluster_name")) {
        Some(AMQPValue::LongString(name)) => Some(String::from_utf8_lossy(name.as_bytes()).into_owned()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::{nodes, order};

    #[test]
    fn a_list_is_split_and_trimmed() {
        assert_eq!(nodes("amqp://a/%2f, amqp://b/%2f,,amqp://c/%2f"), ["amqp://a/%2f", "amqp://b/%2f", "amqp://c/%2f"]);
        assert_eq!(nodes("amqp://a/%2f"), ["amqp://a/%2f"]);
    }

    #[test]
    fn the_order_is_a_permutation_fixed_for_the_process() {
        let first = order(5);
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3, 4]);
        assert_eq!(order(5), first);
    }
}

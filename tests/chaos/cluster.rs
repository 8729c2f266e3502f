//! The many-node topology of `scripts/cluster.sh` for the chaos suite: three RabbitMQ nodes and a PostgreSQL
//! failover pair, each node in a network namespace of its own, started for the test and destroyed after it
//! (also when it fails: a drop guard).

use std::path::PathBuf;
use std::process::Command;

/// Namespace prefix and subnet of the test's cluster (not the defaults, so a cluster an operator runs on the
/// same machine is left alone).
const TAG: &str = "sqct";
const NET: &str = "10.216.0";

pub struct Cluster {
    dir: PathBuf,
    pub database_url: String,
    pub amqp_url: String,
    pub amqp_cluster: String,
}

impl Cluster {
    /// Starts every node (a leftover cluster of an interrupted run is removed first) and reads the client
    /// settings the script prints.
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join("scenequeue-cluster-test");
        let mut cluster =
            Self { dir, database_url: String::new(), amqp_url: String::new(), amqp_cluster: String::new() };
        let _ = cluster.command(&["destroy"]).output();
        let settings = cluster.ctl(&["start"]);
        for line in settings.lines() {
            match line.split_once('=') {
                Some(("SCENEQUEUE_DATABASE_URL", v)) => cluster.database_url = v.into(),
                Some(("SCENEQUEUE_AMQP_URL", v)) => cluster.amqp_url = v.into(),
                Some(("SCENEQUEUE_AMQP_CLUSTER", v)) => cluster.amqp_cluster = v.into(),
                _ => {}
            }
        }
        assert!(!cluster.database_url.is_empty() && !cluster.amqp_url.is_empty(), "cluster.sh printed: {settings}");
        cluster
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(super::shared::root().join("scripts/cluster.sh"));
        c.args(args)
            .env("SCENEQUEUE_CLUSTER_DIR", &self.dir)
            .env("SCENEQUEUE_CLUSTER_TAG", TAG)
            .env("SCENEQUEUE_CLUSTER_NET", NET);
        c
    }

    /// Runs `scripts/cluster.sh ARGS`, failing the test with its output; returns what it printed.
    pub fn ctl(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("scripts/cluster.sh");
        assert!(
            out.status.success(),
            "cluster.sh {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The URL of broker node `n` alone.
    pub fn amqp_node(&self, n: &str) -> String {
        format!("amqp://guest:guest@{NET}.1{n}:5672/%2f")
    }

    /// An address in the cluster's subnet where nothing listens.
    pub fn nowhere(&self) -> String {
        format!("amqp://guest:guest@{NET}.19:5672/%2f")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.command(&["destroy"]).output();
    }
}

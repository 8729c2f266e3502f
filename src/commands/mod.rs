//! One module per subcommand; each turns parsed flags into library calls and prints the outcome.

pub mod config;
mod demo;
mod enhance_options;
mod probe;
mod retry;
mod scheduler;
mod serve;
mod status;
mod submit;
mod terminal;
mod transcribe;
mod transcripts;
mod watch;
mod worker;

use crate::args::{Cli, Command, ServiceArgs};
use scenequeue_core::config::Services;
use scenequeue_core::outage::Patience;
use scenequeue_core::{db, mq};
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let services = services(&cli.services);
    match cli.command {
        Command::Submit(args) => submit::run(&services, &args).await,
        Command::Worker(args) => worker::run(&services, &args).await,
        Command::Scheduler(args) => scheduler::run(&services, &args).await,
        Command::Serve(args) => serve::run(&services, &args).await,
        Command::Retry { id, json } => retry::run(&services, id, json).await,
        Command::Status { batch, json: false, watch: false } => status::run(&services, batch).await,
        Command::Status { batch, json, watch } => watch::run(&services, batch, json, watch).await,
        Command::Workers { json } => watch::workers(&services, json).await,
        Command::Scenes { batch, format } => status::scenes(&services, batch, format).await,
        Command::Transcripts { batch, format, out } => transcripts::run(&services, batch, format, out).await,
        Command::Migrate => scheduler::migrate(&services).await,
        Command::Probe(args) => tokio::task::spawn_blocking(move || probe::run(&args)).await?,
        // Printed by `main` before the runtime starts: it needs the configuration file and the flags as given.
        Command::Config => Ok(()),
        Command::Demo(args) => demo::run(&services, &args).await,
        Command::Transcribe(args) => tokio::task::spawn_blocking(move || transcribe::run(&args)).await?,
        Command::InferenceChild => {
            tokio::task::spawn_blocking(scenequeue_worker::child_main).await?.map_err(anyhow::Error::msg)
        }
    }
}

fn services(args: &ServiceArgs) -> Services {
    if let Some(name) = &args.amqp_cluster {
        scenequeue_core::brokers::expect_cluster(name);
    }
    Services {
        database_url: args.database_url.clone(),
        amqp_url: args.amqp_url.clone(),
        queue: args.queue.clone(),
        max_queued: args.max_queued,
        prefetch: args.prefetch,
    }
}

/// A one-shot command's pool: Postgres is waited for while it starts (`Patience::starting`), then its error is
/// the command's.
pub async fn connect_db(services: &Services, connections: u32) -> anyhow::Result<PgPool> {
    let never = CancellationToken::new();
    let pool = db::connect_when_up(&services.database_url, connections, &Patience::starting(), &never).await?;
    pool.ok_or_else(|| anyhow::anyhow!("stopped while waiting for Postgres"))
}

/// Longest wait for the broker to answer before a command goes on without it.
const BROKER_WAIT: Duration = Duration::from_secs(10);

/// A connection to the broker and a confirm-mode publisher on the farm's queue; the reason, when the broker does
/// not answer within `BROKER_WAIT`.
pub async fn open_publisher(services: &Services) -> Result<(lapin::Connection, mq::Publisher), String> {
    let open = async {
        let connection = mq::connect(&services.amqp_url).await?;
        let publisher = mq::Publisher::new(&connection, &mq::Topology::new(&services.queue)).await?;
        Ok::<_, mq::MqError>((connection, publisher))
    };
    match tokio::time::timeout(BROKER_WAIT, open).await {
        Ok(Ok(opened)) => Ok(opened),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer from {} within {BROKER_WAIT:?}", db::redact(&services.amqp_url))),
    }
}

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("shutdown requested: finishing the current job");
        t.cancel();
    });
    token
}

/// For workers: the first SIGTERM or Ctrl-C stops taking jobs and gives the job in progress its grace period; a
/// second one hands it back at once.
pub fn shutdown_twice() -> scenequeue_worker::Shutdown {
    let shutdown = scenequeue_worker::Shutdown::default();
    let (stop, now) = (shutdown.stop.clone(), shutdown.now.clone());
    tokio::spawn(async move {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return;
        };
        for (token, what) in
            [(stop, "finishing the current job within the grace period"), (now, "handing the job back now")]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutdown requested: {what}");
            token.cancel();
        }
    });
    shutdown
}

//! The `herald` binary: reads the configuration, sets up logging, binds, and runs until SIGINT/SIGTERM.

use std::{net::TcpListener, path::PathBuf};

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use herald::config::Config;

/// mimalloc rather than the system allocator: a publish allocates a few dozen small, short-lived
/// buffers, and with glibc's malloc those cost about 7 % of a REST-bound core (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A self-hosted, Pusher Channels-compatible real-time server.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file; environment variables HERALD__SECTION__KEY override it.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref()).context("invalid configuration")?;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .context("invalid log level")?;
    tracing_subscriber::fmt().with_env_filter(filter).init();
    if config.dev_credentials {
        tracing::warn!(
            "no app configured: using the DEVELOPMENT app (id 1, key app-key, secret app-secret); \
             anyone who knows these can publish, so configure your own apps before going to production"
        );
    }
    let address = std::net::SocketAddr::from((config.server.host, config.server.port));
    let listener = listen(address).with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(
        address = %listener.local_addr()?,
        apps = config.apps.len(),
        "Herald is listening: WebSocket at {0}/app/{{key}}, REST API at {0}/apps/{{id}}/…",
        config.server.path_prefix
    );
    actix_web::rt::System::new().block_on(async move {
        let shutdown = CancellationToken::new();
        actix_web::rt::spawn(wait_for_signal(shutdown.clone()));
        herald::server::run(config, listener, shutdown).await
    })?;
    tracing::info!("stopped");
    Ok(())
}

/// Binds with a deep accept backlog: the default of 128 drops connection attempts when thousands of
/// clients reconnect at once (after a restart, say), which costs each of them a one-second retry.
fn listen(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn wait_for_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
    shutdown.cancel();
}

//! `portcullis`: a transparent L7 policy proxy that speaks Cilium's wire
//! protocols. This crate owns sockets, runtimes and wiring; policy lives in
//! `npds`, HTTP rules in `l7-http`, CNP translation in `cnp`.

mod access_log;
mod admin;
mod config;
mod conn;
mod http;
mod listeners;
mod metrics;
mod orig_dst;
mod scanned;
mod standalone;
mod state;
mod tcp;
mod upstream;

// The proxy allocates a few small buffers per request on every worker;
// mimalloc's thread-local free lists beat glibc's arenas there (measured
// with perf: malloc/free were ~7% of the proxy's cycles under load).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use tokio::net::TcpListener;
use tracing::info;

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::state::Shared;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Transparent L7 policy proxy for Cilium"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy. With --config, policy comes from CiliumNetworkPolicy
    /// files (standalone mode).
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Standalone configuration file (docs/config.md).
    #[arg(long, env = "PORTCULLIS_CONFIG")]
    config: PathBuf,
    /// Log format for diagnostics (the access log is always JSON lines).
    #[arg(long, value_enum, default_value_t = LogFormat::Plain, env = "PORTCULLIS_LOG_FORMAT")]
    log_format: LogFormat,
    /// Worker threads, each accepting on its own SO_REUSEPORT socket
    /// (default: one per core).
    #[arg(long, env = "PORTCULLIS_WORKERS")]
    workers: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(args),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    init_tracing(args.log_format);
    let config = Config::load(&args.config)?;
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // The control side (admin, policy loading, access-log writer) runs on
    // this thread; connections run on the workers.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(serve(config, workers))
}

async fn serve(config: Config, workers: usize) -> anyhow::Result<()> {
    let access_log = match &config.access_log {
        Some(path) => AccessLog::start(path)
            .with_context(|| format!("opening access log {}", path.display()))?,
        None => AccessLog::start(&PathBuf::from("-"))?,
    };
    let shared = Arc::new(Shared::new(access_log));

    let bound = listeners::bind_all(&config.listeners, workers)?;
    let dump: Vec<_> = config
        .listeners
        .iter()
        .map(|lc| {
            json!({
                "name": lc.name(), "address": SocketAddr::new(lc.address, lc.port).to_string(),
                "direction": npds::Direction::from(lc.direction).as_str(),
                "protocol": format!("{:?}", lc.protocol).to_lowercase(),
                "upstream": lc.upstream.map(|u| u.to_string()),
                "transparent": lc.transparent,
            })
        })
        .collect();

    let admin = admin::bind_addr(config.admin)
        .with_context(|| format!("admin: binding {}", config.admin))?;
    info!(addr = %config.admin, "admin listening");
    tokio::spawn(admin::serve(
        TcpListener::from_std(admin)?,
        shared.clone(),
        Arc::new(json!(dump)),
    ));

    tokio::spawn(standalone::Standalone::new(config, shared.clone()).run());
    listeners::spawn_workers(bound, workers, shared)?;

    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    info!("shutting down");
    Ok(())
}

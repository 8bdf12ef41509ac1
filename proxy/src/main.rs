//! `portcullis`: a transparent L7 policy proxy that speaks Cilium's wire
//! protocols. This crate owns sockets, runtimes and wiring; policy lives in
//! `npds`, HTTP rules in `l7-http`, CNP translation in `cnp`.

mod access_log;
mod admin;
mod config;
mod conn;
mod http;
mod metrics;
mod orig_dst;
mod scanned;
mod standalone;
mod state;
mod tcp;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use tokio::net::{TcpListener, TcpSocket};
use tracing::{info, warn};

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::conn::Listener;
use crate::orig_dst::{FixedUpstream, OrigDst, SocketOrigDst};
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
    /// Worker threads (default: one per core).
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    init_tracing(args.log_format);
    let config = Config::load(&args.config)?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.enable_all().build().context("starting the runtime")?;
    rt.block_on(serve(config))
}

fn bind(addr: SocketAddr, transparent: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if transparent {
        let sock = socket2::SockRef::from(&socket);
        if addr.is_ipv4() {
            sock.set_ip_transparent_v4(true)?;
        } else {
            sock.set_ip_transparent_v6(true)?;
        }
    }
    socket.bind(addr)?;
    socket.listen(4096)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let access_log = match &config.access_log {
        Some(path) => AccessLog::start(path)
            .with_context(|| format!("opening access log {}", path.display()))?,
        None => AccessLog::start(&PathBuf::from("-"))?,
    };
    let shared = Arc::new(Shared::new(access_log));

    let mut dump = Vec::new();
    for lc in &config.listeners {
        let addr = SocketAddr::new(lc.address, lc.port);
        let socket =
            bind(addr, lc.transparent).with_context(|| format!("listener {}: binding {addr}", lc.name()))?;
        let orig_dst: Box<dyn OrigDst> = match lc.upstream {
            Some(up) => Box::new(FixedUpstream(up)),
            None => Box::new(SocketOrigDst { listen: addr }),
        };
        let listener = Arc::new(Listener {
            name: lc.name().into(),
            direction: lc.direction.into(),
            protocol: lc.protocol,
            proxy_id: u32::from(lc.port),
            orig_dst,
        });
        dump.push(json!({
            "name": lc.name(), "address": addr.to_string(), "direction": listener.direction.as_str(),
            "protocol": format!("{:?}", lc.protocol).to_lowercase(),
            "upstream": lc.upstream.map(|u| u.to_string()),
        }));
        info!(name = %listener.name, %addr, direction = listener.direction.as_str(), "listening");
        tokio::spawn(accept_loop(socket, listener, shared.clone()));
    }

    let admin = admin::bind_addr(config.admin)
        .with_context(|| format!("admin: binding {}", config.admin))?;
    info!(addr = %config.admin, "admin listening");
    tokio::spawn(admin::serve(
        TcpListener::from_std(admin)?,
        shared.clone(),
        Arc::new(json!(dump)),
    ));

    tokio::spawn(standalone::Standalone::new(config, shared.clone()).run());

    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    info!("shutting down");
    Ok(())
}

async fn accept_loop(socket: TcpListener, listener: Arc<Listener>, shared: Arc<Shared>) {
    loop {
        match socket.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(conn::handle(stream, peer, listener.clone(), shared.clone()));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(listener = %listener.name, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

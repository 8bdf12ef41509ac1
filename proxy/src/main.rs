//! `portcullis`: a transparent L7 policy proxy that speaks Cilium's wire
//! protocols. This crate owns sockets, runtimes and wiring; policy lives in
//! `npds`, HTTP rules in `l7-http`, CNP translation in `cnp`.

mod accept;
mod access_log;
mod admin;
mod config;
mod conn;
mod dns;
mod http;
mod kafka;
mod listeners;
mod metrics;
mod orig_dst;
mod parser;
mod policy;
mod request_body;
mod scanned;
mod splice;
mod standalone;
mod state;
mod tcp;
mod upstream;
mod xds;

// The proxy allocates a few small buffers per request on every worker;
// mimalloc's thread-local free lists beat glibc's arenas there (measured
// with perf: malloc/free were ~7% of the proxy's cycles under load).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::net::TcpListener;
use tracing::info;

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::state::Shared;
use portcullis_xds::server::{self, XdsCache, XdsListener};

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
    /// Run the proxy. Policy comes over xDS: from the Cilium agent with
    /// --xds, or from CiliumNetworkPolicy files named by --config
    /// (standalone mode, served by an in-process control plane).
    Run(RunArgs),
    /// Serve the standalone control plane only (NPDS and NPHDS from the
    /// config's policy files), for several proxies to share.
    ControlPlane(ControlPlaneArgs),
    /// The FQDN cache of a running proxy.
    Fqdn {
        #[command(subcommand)]
        command: FqdnCommand,
    },
}

#[derive(Subcommand)]
enum FqdnCommand {
    /// Every cached name with its addresses and remaining TTL, per endpoint.
    List {
        /// The proxy's admin address.
        #[arg(long, default_value = "127.0.0.1:9901", env = "PORTCULLIS_ADMIN")]
        admin: std::net::SocketAddr,
        /// Print the JSON the admin endpoint returns instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Configuration file (docs/config.md): listeners, admin address,
    /// access log; and, without --xds, endpoints, identities and policies.
    #[arg(long, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    /// The agent's xDS server: `unix:/var/run/cilium/envoy/sockets/xds.sock`
    /// or `http://host:port`.
    #[arg(long, env = "PORTCULLIS_XDS")]
    xds: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
    /// Worker threads, each accepting on its own SO_REUSEPORT socket
    /// (default: one per core).
    #[arg(long, env = "PORTCULLIS_WORKERS")]
    workers: Option<usize>,
}

#[derive(clap::Args)]
struct ControlPlaneArgs {
    /// Configuration file with endpoints, identities and policies.
    #[arg(long, env = "PORTCULLIS_CONFIG")]
    config: PathBuf,
    /// Where to serve xDS: `unix:/path/xds.sock` or `host:port`.
    #[arg(long)]
    listen: String,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(clap::Args)]
struct CommonArgs {
    /// Log format for diagnostics (the access log is always JSON lines).
    #[arg(long, value_enum, default_value_t = LogFormat::Plain, env = "PORTCULLIS_LOG_FORMAT")]
    log_format: LogFormat,
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
        Command::ControlPlane(args) => control_plane(args),
        Command::Fqdn {
            command: FqdnCommand::List { admin, json },
        } => control_runtime()?.block_on(fqdn_list(admin, json)),
    }
}

/// `portcullis fqdn list`: fetches `/fqdn` from the admin listener.
async fn fqdn_list(admin: std::net::SocketAddr, json: bool) -> anyhow::Result<()> {
    use http_body_util::{BodyExt, Empty};
    let stream = tokio::net::TcpStream::connect(admin)
        .await
        .with_context(|| format!("connecting to the admin listener at {admin}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = ::http::Request::get("/fqdn")
        .header(::http::header::HOST, admin.to_string())
        .body(Empty::<bytes::Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "{admin}/fqdn answered {}",
        resp.status()
    );
    let body = resp.into_body().collect().await?.to_bytes();
    if json {
        print!("{}", String::from_utf8_lossy(&body));
        return Ok(());
    }
    let entries: Vec<l7_dns::cache::Entry> =
        serde_json::from_slice(&body).context("reading the FQDN cache")?;
    let now = dns::fqdn::unix_now();
    println!("{:<10} {:<40} {:<8} IP", "ENDPOINT", "NAME", "TTL");
    for e in entries {
        for c in e.ips {
            println!(
                "{:<10} {:<40} {:<8} {}",
                e.endpoint,
                e.name,
                c.expires.saturating_sub(now),
                c.ip
            );
        }
    }
    Ok(())
}

fn init_tracing(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // `Targets` takes RUST_LOG's `level,target=level` directives without
    // regexes. (tracing-subscriber's EnvFilter would switch on regex-automata's
    // full-DFA build for every regex in the process, policy regexes included:
    // measured at 6x the compile time and 2x the memory per HTTP rule.)
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let filter: tracing_subscriber::filter::Targets = directives.parse().unwrap_or_else(|e| {
        eprintln!("RUST_LOG={directives:?} is not understood ({e}); logging at info");
        tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
    });
    let ansi = std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Plain => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

fn control_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    init_tracing(args.common.log_format);
    let config = match (&args.config, &args.xds) {
        (Some(path), _) => Config::load(path)?,
        (None, Some(_)) => Config::default(),
        (None, None) => {
            anyhow::bail!("give --config FILE (standalone) or --xds TARGET (Cilium agent), or both")
        }
    };
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // The control side (admin, xDS, access-log writer) runs on this thread;
    // connections run on the workers.
    control_runtime()?.block_on(serve(config, args.xds, workers))
}

fn control_plane(args: ControlPlaneArgs) -> anyhow::Result<()> {
    init_tracing(args.common.log_format);
    let config = Config::load(&args.config)?;
    control_runtime()?.block_on(async move {
        let cache = Arc::new(XdsCache::new());
        let listener = bind_xds(&args.listen).await?;
        info!(listen = %args.listen, "control plane serving xDS");
        let on_load: standalone::LoadSink = Box::new(|_| {});
        tokio::spawn(standalone::Standalone::new(config, cache.clone(), on_load, None).run());
        let shutdown = async {
            let _ = wait_for_shutdown().await;
        };
        server::serve(cache, listener, shutdown)
            .await
            .context("serving xDS")
    })
}

/// `unix:/path` or `host:port`.
async fn bind_xds(listen: &str) -> anyhow::Result<XdsListener> {
    Ok(match listen.strip_prefix("unix:") {
        Some(path) => server::bind_unix(std::path::Path::new(path))
            .with_context(|| format!("binding {listen}"))?
            .into(),
        None => TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?
            .into(),
    })
}

/// The embedded control plane's private socket directory.
fn embedded_socket_dir() -> PathBuf {
    std::env::temp_dir().join(format!("portcullis-{}", std::process::id()))
}

/// Starts the in-process control plane on a unix socket in a private
/// directory and returns the xDS target to subscribe to.
async fn start_embedded_control_plane(
    config: Config,
    shared: Arc<Shared>,
) -> anyhow::Result<String> {
    let dir = embedded_socket_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let socket = dir.join("xds.sock");
    let listener =
        server::bind_unix(&socket).with_context(|| format!("binding {}", socket.display()))?;
    let cache = Arc::new(XdsCache::new());
    // DNS rules from the files, unless the agent's FQDNData stream owns them.
    let on_dns: Option<standalone::DnsSink> = match config.dns.fqdn_data {
        Some(_) => None,
        None => {
            let shared = shared.clone();
            Some(Box::new(move |u: standalone::DnsUpdate| {
                shared.publish(policy::Change::Dns(Arc::new(u.policy)));
                shared.fqdn.set_selectors(u.selectors);
            }))
        }
    };
    let on_load: standalone::LoadSink = Box::new(move |loaded| {
        shared.metrics.policy_file_load(loaded.is_ok());
        if let Err(e) = loaded {
            shared.reject("control plane", e.to_string());
        }
    });
    tokio::spawn(standalone::Standalone::new(config, cache.clone(), on_load, on_dns).run());
    tokio::spawn(async move {
        if let Err(e) =
            server::serve(cache, XdsListener::from(listener), std::future::pending()).await
        {
            tracing::error!(error = %e, "embedded control plane stopped");
        }
    });
    Ok(format!("unix:{}", socket.display()))
}

async fn serve(config: Config, xds_target: Option<String>, workers: usize) -> anyhow::Result<()> {
    let access_log = match &config.access_log {
        Some(path) => AccessLog::start(path)
            .with_context(|| format!("opening access log {}", path.display()))?,
        None => AccessLog::start(&PathBuf::from("-"))?,
    };
    let mut needs = vec![xds::NPDS, xds::NPHDS];
    if config.dns.fqdn_data.is_some() {
        needs.push(dns::agent::READY);
    }
    let shared = Arc::new(Shared::new(access_log, &needs));

    shared.set_max_connections(config.max_connections);
    shared.publish(policy::Change::Limits(Arc::new(policy::Limits {
        http: policy::HttpSettings::from(&config.http),
        kafka: policy::KafkaLimits::from(&config.kafka),
        dns: config.dns.clone(),
    })));
    shared.fqdn.configure(
        l7_dns::CacheLimits {
            max_ips_per_hostname: config.dns.max_ips_per_hostname,
            max_names: config.dns.max_names,
            min_ttl: config.dns.min_ttl,
        },
        config.dns.cache_file.as_deref(),
    );
    if let Some(target) = &config.dns.fqdn_data {
        info!(%target, "DNS policy from the agent's FQDNData service");
        dns::agent::start(target, shared.clone())
            .with_context(|| format!("dns.fqdnData: {target}"))?;
    }
    {
        let shared = shared.clone();
        tokio::spawn(async move { shared.fqdn.maintain().await });
    }
    let listeners = listeners::Listeners::start(workers, shared.clone())?;
    listeners::open_config_listeners(&listeners, &config.listeners)?;

    let admin_addr = config.admin;
    let target = match xds_target {
        Some(t) => t,
        None => start_embedded_control_plane(config, shared.clone()).await?,
    };
    info!(%target, "subscribing to policy over xDS");
    let _ = shared
        .metrics
        .xds
        .set(xds::start(&target, &shared, &listeners));

    let admin =
        admin::bind_addr(admin_addr).with_context(|| format!("admin: binding {admin_addr}"))?;
    info!(addr = %admin_addr, "admin listening");
    tokio::spawn(admin::serve(
        TcpListener::from_std(admin)?,
        shared.clone(),
        listeners,
    ));

    wait_for_shutdown().await?;
    info!("shutting down");
    if let Err(e) = shared.fqdn.save() {
        tracing::warn!(error = %e, "cannot save the FQDN cache");
    }
    let _ = std::fs::remove_dir_all(embedded_socket_dir());
    Ok(())
}

/// Ctrl-C or SIGTERM (what a DaemonSet's pod gets).
async fn wait_for_shutdown() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}

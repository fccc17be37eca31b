//! The command line. `main.rs` parses it and calls [`Cli::run`]; errors map to exit codes there.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

mod ca;
mod warnings;

pub use self::ca::ca_files;

/// pacer keeps a load test inside a SaaS API's rate limits: it queues, paces and retries
/// requests so the API sees traffic it accepts, and the load tool sees slower 200s instead of 429s.
#[derive(Debug, Parser)]
#[command(name = "pacer", version, about, long_about = None)]
pub struct Cli {
    /// Log filter in RUST_LOG syntax (for example `info`, `pacer=debug`).
    #[arg(
        long,
        global = true,
        env = "RUST_LOG",
        default_value = "info",
        help_heading = "Global options"
    )]
    pub log: String,

    /// Log line format: `text` for people, `json` (one object per line) for log pipelines.
    #[arg(long, global = true, env = "PACER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, help_heading = "Global options")]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy. Point the load tool at it (`jmeter -H 127.0.0.1 -P 8080`, or use it as the
    /// base URL) and it forwards to the upstreams in the config, shaped by its limits.
    Proxy {
        /// The YAML config file: config/genesys.yaml (Genesys Cloud, every key commented) or
        /// config/quickstart.yaml (in front of `pacer mock`) are the ones to start from.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Threads that serve proxy connections, each with a runtime of its own (0: one per
        /// CPU core). Limits are shared by all of them.
        #[arg(long, env = "PACER_WORKERS", default_value_t = 0)]
        workers: usize,
        /// Record what the API shows about its limits (rate-limit headers, 429s, Retry-After,
        /// in-flight counts) per route, serve it at the admin listener's `/discovered`, and on
        /// shutdown write this config file: the running one with the discovered `limits:` and
        /// `routes:` in place of its own.
        #[arg(long, value_name = "FILE")]
        discover_out: Option<PathBuf>,
    },
    /// Validate a config file and print what it sets up, without binding or starting anything.
    /// Exits 0 when valid, 2 with every problem (field path and line) when not.
    Check {
        /// The YAML config file to validate.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a mock of the Genesys Cloud API that enforces its rate limits (300 requests per 60 s
    /// per token by default) and answers 429 exactly like the platform. For rehearsals and tests.
    Mock {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Optional mock config (per-route limits, Retry-After misbehaviour, TLS).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Rate-limit headers sent: genesys, x, ietf, ietf-structured or none
        // Overrides the config's `ratelimit_headers`; genesys (`inin-ratelimit-*`) is what the
        // platform sends. Kept short and the values unlisted by clap: a longer help, or values
        // with help of their own, would push every option's help onto the next line.
        #[arg(long, value_enum, hide_possible_values = true, value_name = "FAMILY")]
        ratelimit_headers: Option<crate::mock::HeaderFamily>,
    },
    /// Manage the CA pacer signs intercepted HTTPS with (the config's `intercept:` section).
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Generate load from a scenario file (phases of open- or closed-model load, a weighted mix
    /// of requests, optional OAuth), print a summary table, and write JSON and HTML reports.
    /// See examples/scenarios/ for scenario files.
    Generate {
        /// The YAML scenario file.
        #[arg(long, short)]
        scenario: PathBuf,
        /// Send every request through this forward proxy (pacer, or any other), e.g.
        /// http://127.0.0.1:8080.
        #[arg(long)]
        proxy: Option<String>,
        /// Write the report as JSON here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the report as a self-contained HTML page with charts here.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// See what pacer does, with nothing to set up: starts the mock API (with a scaled-down
    /// rate limit) and pacer in front of it on free loopback ports, runs the same short load
    /// straight at the mock and then through pacer, and prints both side by side.
    Demo {
        /// How long each of the two runs sends requests (more than 0, e.g. 6s or 1m).
        #[arg(long, default_value = "6s", value_parser = parse_positive_duration)]
        duration: std::time::Duration,
    },
}

/// A duration with a unit, more than zero: an invalid one is a usage error (exit 2).
fn parse_positive_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = crate::config::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("must be more than 0, e.g. 6s".into());
    }
    Ok(duration)
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the CA files if they do not exist (the key readable by its owner only), and print
    /// where they are.
    Init {
        /// The proxy's config file: its intercept section names the CA files; without one,
        /// pacer's own CA in its state directory.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the CA certificate (PEM), for `curl --cacert` or a Java truststore
    /// (`keytool -importcert`).
    Show {
        /// The proxy's config file: its intercept section names the CA files; without one,
        /// pacer's own CA in its state directory.
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// Why a command failed, and so which exit code it ends with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("invalid config {path}:\n{errors}")]
    Config {
        path: PathBuf,
        errors: crate::config::ConfigErrors,
    },
    #[error("invalid scenario {path}:\n{errors}")]
    Scenario {
        path: PathBuf,
        errors: crate::config::ConfigErrors,
    },
    #[error("{0}")]
    Usage(String),
    /// `pacer generate` ran, and crossed thresholds of its scenario.
    #[error("{0}")]
    Thresholds(String),
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config { .. } | CliError::Scenario { .. } | CliError::Usage(_) => 2,
            CliError::Runtime(_) => 1,
            CliError::Thresholds(_) => 3,
        }
    }
}

fn load_config(path: &std::path::Path) -> Result<crate::Config, CliError> {
    crate::Config::load(path).map_err(|errors| CliError::Config {
        path: path.to_owned(),
        errors,
    })
}

async fn bind(addr: SocketAddr, what: &str) -> Result<tokio::net::TcpListener, CliError> {
    bound(addr, what, tokio::net::TcpListener::bind(addr).await)
}

fn bound(
    addr: SocketAddr,
    what: &str,
    result: std::io::Result<tokio::net::TcpListener>,
) -> Result<tokio::net::TcpListener, CliError> {
    result.map_err(|e| {
        CliError::Runtime(anyhow::anyhow!(
            "cannot bind the {what} listener on {addr}: {e}"
        ))
    })
}

// === impl Command ===

impl Command {
    pub async fn run(self) -> Result<(), CliError> {
        match self {
            Command::Proxy {
                config: path,
                workers,
                discover_out,
            } => {
                let path = path.ok_or_else(|| {
                    CliError::Usage(
                        "pacer proxy needs a config: `pacer proxy --config FILE`. Start from \
                         config/genesys.yaml (Genesys Cloud, every key commented) or \
                         config/quickstart.yaml (in front of `pacer mock`)"
                            .into(),
                    )
                })?;
                let mut config = load_config(&path)?;
                ca::use_default_ca(&mut config, &path);
                for warning in warnings::warnings(&config) {
                    tracing::warn!("{warning}");
                }
                let listeners = crate::app::Listeners {
                    proxy: bound(
                        config.listen,
                        "proxy",
                        crate::proxy::listen(config.listen, config.server.backlog),
                    )?,
                    admin: match config.admin {
                        Some(addr) => Some(bind(addr, "admin").await?),
                        None => None,
                    },
                };
                // The bound address, not the configured one: with port 0 it says which port.
                let listen = listeners.proxy.local_addr().unwrap_or(config.listen);
                let workers = match workers {
                    0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                    n => n,
                };
                let app = match discover_out {
                    Some(file) => {
                        let base = std::fs::read_to_string(&path)
                            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                        let out = crate::app::DiscoverOut {
                            file: Some(file),
                            base,
                        };
                        crate::app::App::discovering(config, out)?
                    }
                    None => crate::app::App::new(config)?,
                }
                .with_workers(workers);
                // Handlers first: from the start line on, SIGTERM drains.
                let shutdown = crate::shutdown::signal();
                tracing::info!(%listen, workers, "pacer proxy started");
                app.serve(listeners, shutdown).await?;
                Ok(())
            }
            Command::Check { config: path } => {
                let config = load_config(&path)?;
                println!("{} is valid", path.display());
                print!("{}", crate::app::describe(&config));
                // On stderr, so the description stays the same whatever the machine.
                for warning in warnings::warnings(&config) {
                    eprintln!("warning: {warning}");
                }
                Ok(())
            }
            Command::Mock {
                listen,
                config,
                ratelimit_headers,
            } => {
                let mut mock_config = match config {
                    Some(path) => crate::mock::MockConfig::load(&path).map_err(|e| {
                        CliError::Usage(format!("invalid mock config {}: {e:#}", path.display()))
                    })?,
                    None => crate::mock::MockConfig::default(),
                };
                if let Some(family) = ratelimit_headers {
                    mock_config.ratelimit_headers = family;
                }
                let scheme = if mock_config.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                let listener = bind(listen, "mock").await?;
                // The bound address (port 0 picks one), with the scheme clients must use: a
                // mock with `tls:` answers nothing over plain HTTP.
                let url = format!("{scheme}://{}", listener.local_addr().unwrap_or(listen));
                let shutdown = crate::shutdown::signal();
                tracing::info!(%url, "pacer mock started");
                crate::mock::serve(listener, mock_config, shutdown).await?;
                Ok(())
            }
            Command::Ca { command } => command.run(),
            Command::Generate {
                scenario,
                proxy,
                out,
                html,
            } => generate(scenario, proxy, out, html).await,
            Command::Demo { duration } => {
                let options = crate::demo::DemoOptions {
                    duration,
                    ..Default::default()
                };
                eprintln!(
                    "pacer demo: the mock API and pacer on loopback; the same load twice, {}s each \
                     (straight at the mock, then through pacer)",
                    options.duration.as_secs_f64()
                );
                let demo = crate::demo::run(&options).await?;
                print!("{}", demo.table());
                Ok(())
            }
        }
    }
}

async fn generate(
    path: PathBuf,
    proxy: Option<String>,
    out: Option<PathBuf>,
    html: Option<PathBuf>,
) -> Result<(), CliError> {
    use crate::generate::GenerateError;
    let scenario = crate::generate::Scenario::load(&path).map_err(|errors| CliError::Scenario {
        path: path.clone(),
        errors,
    })?;
    let options = crate::generate::Options {
        proxy,
        progress: true,
    };
    let report = match crate::generate::run(scenario, &options).await {
        Ok(report) => report,
        Err(e @ GenerateError::Client(_)) => return Err(CliError::Usage(e.to_string())),
        Err(e) => return Err(CliError::Runtime(e.into())),
    };
    print!("{}", report.table());
    crate::generate::write_reports(&report, out.as_deref(), html.as_deref())?;
    for (what, file) in [("JSON report", &out), ("HTML report", &html)] {
        if let Some(file) = file {
            println!("{what} written to {}", file.display());
        }
    }
    use crate::generate::verdict::Failure;
    match report.failure() {
        None => Ok(()),
        Some(Failure::AllFailed(why)) => Err(CliError::Runtime(anyhow::anyhow!(why))),
        Some(Failure::Crossed(why)) => Err(CliError::Thresholds(why)),
    }
}

/// Sets up logging to stderr with a RUST_LOG-style filter, as text or JSON lines.
///
/// No log line at any level carries a credential: pacer's own events never record request
/// headers, bodies, queries or key material, and its dependencies' events (hyper, rustls) do
/// not either; `tests/it/observe/logs.rs` checks this with every target at `trace`.
pub fn init_tracing(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: escape codes in a log file break grep and log shippers.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

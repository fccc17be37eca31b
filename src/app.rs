//! Wires a validated config to bound listeners and runs until shutdown.
use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::Admin;
use crate::config::Config;
use crate::discover::Discovery;
use crate::metrics::Metrics;
use crate::proxy::connect::Connect;
use crate::proxy::frontdoor::Admission;
use crate::shape::layer::Limits;
use crate::shutdown::DrainDeadline;
use crate::tls::{Ca, Leaves};

/// The already-bound sockets pacer serves on. Binding is the caller's job, so tests can pass
/// listeners on port 0 and the binary can report bind errors before anything starts.
pub struct Listeners {
    pub proxy: TcpListener,
    pub admin: Option<TcpListener>,
}

/// Runs pacer until `shutdown` resolves, then drains in-flight requests.
pub async fn run(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    App::new(config)?.serve(listeners, shutdown).await
}

/// pacer's runtime parts, built from a config. Tests build one to look at its limits while
/// traffic flows.
pub struct App {
    config: Config,
    limits: Arc<Limits>,
    metrics: Arc<Metrics>,
    stack: crate::proxy::stack::Stack,
    connect: Arc<Connect>,
    /// Passed by the listener when `server.drain_timeout` runs out; the stack answers what is
    /// still queued then.
    deadline: DrainDeadline,
    workers: usize,
    discovery: Option<(Arc<Discovery>, DiscoverOut)>,
}

/// Discovery's output: where to write the config it found at shutdown, and the running
/// config's text it is written from (its `limits:` and `routes:` replaced).
#[derive(Debug, Clone)]
pub struct DiscoverOut {
    pub file: Option<std::path::PathBuf>,
    pub base: String,
}

// === impl App ===

impl App {
    pub fn new(config: Config) -> anyhow::Result<App> {
        App::build(config, None)
    }

    /// An app that records what the API shows about its limits ([`crate::discover`]): served
    /// at `/discovered`, logged at shutdown and, with `out.file`, written there as a config.
    pub fn discovering(config: Config, out: DiscoverOut) -> anyhow::Result<App> {
        let discovery = Discovery::new(&config);
        App::build(config, Some((discovery, out)))
    }

    fn build(
        config: Config,
        discovery: Option<(Arc<Discovery>, DiscoverOut)>,
    ) -> anyhow::Result<App> {
        let admission = Arc::new(Admission::new(&config)?);
        let limits = Arc::new(Limits::new(&config));
        let metrics = Arc::new(Metrics::new(&config));
        limits.register_metrics(metrics.registry());
        let leaves = interception(&config)?;
        let connect = Arc::new(Connect::new(&config, admission.clone(), leaves));
        let deadline = DrainDeadline::default();
        let stack = crate::proxy::stack::build(
            admission,
            limits.clone(),
            metrics.clone(),
            config.retry,
            deadline.clone(),
            discovery.as_ref().map(|(d, _)| d.clone()),
        );
        Ok(App {
            config,
            limits,
            metrics,
            stack,
            connect,
            deadline,
            workers: 1,
            discovery,
        })
    }

    /// Serves proxy connections on `workers` threads of their own (thread-per-core; see
    /// [`crate::proxy::workers`]) instead of on the runtime that calls [`App::serve`].
    pub fn with_workers(mut self, workers: usize) -> App {
        self.workers = workers;
        self
    }

    pub fn limits(&self) -> &Arc<Limits> {
        &self.limits
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// What discovery recorded so far, when it is on.
    pub fn discovery(&self) -> Option<&Arc<Discovery>> {
        self.discovery.as_ref().map(|(d, _)| d)
    }

    /// Serves until `shutdown` resolves, then drains.
    ///
    /// The admin listener stops with the proxy but not before it: while the proxy drains,
    /// `/readyz` answers 503 and `/metrics` still shows the drain. Both run in this one future
    /// (no detached tasks), so dropping it stops everything; with worker threads, dropping it
    /// stops accepting and the workers drain and end on their own.
    pub async fn serve(
        mut self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let discovery = self.discovery.take();
        let recorded = discovery.as_ref().map(|(d, _)| d.clone());
        let served = self.serve_until(listeners, shutdown, recorded).await;
        match discovery {
            Some((discovery, out)) => served.and(finish_discovery(&discovery, &out)),
            None => served,
        }
    }

    async fn serve_until(
        self,
        listeners: Listeners,
        shutdown: impl Future<Output = ()> + Send + 'static,
        discovery: Option<Arc<Discovery>>,
    ) -> anyhow::Result<()> {
        let draining = CancellationToken::new();
        let shutdown = {
            let draining = draining.clone();
            async move {
                shutdown.await;
                draining.cancel();
            }
        };
        let server = self.config.server;
        let proxy = crate::proxy::workers::serve(
            listeners.proxy,
            self.stack,
            self.connect,
            server,
            shutdown,
            self.deadline,
            self.workers,
        );
        let Some(admin_listener) = listeners.admin else {
            return proxy.await;
        };
        if let Ok(addr) = admin_listener.local_addr() {
            tracing::info!(%addr, "admin listener started");
        }
        let stop_admin = CancellationToken::new();
        let admin = Admin::new(self.metrics, self.limits, draining)
            .with_configured(&self.config.limits)
            .with_discovery(discovery);
        let admin =
            crate::admin::serve(admin_listener, admin, stop_admin.clone().cancelled_owned());
        let proxy = async move {
            let result = proxy.await;
            stop_admin.cancel();
            result
        };
        let (proxy, admin) = tokio::join!(proxy, admin);
        proxy.and(admin)
    }
}

/// At shutdown: a log line per discovered limit, and the config written when asked for.
fn finish_discovery(discovery: &Discovery, out: &DiscoverOut) -> anyhow::Result<()> {
    let report = discovery.report();
    crate::discover::log_findings(&report);
    let Some(file) = &out.file else {
        return Ok(());
    };
    let text = crate::discover::write_config(&report, &out.base);
    std::fs::write(file, text).map_err(|e| {
        anyhow::anyhow!(
            "cannot write the discovered limits to {}: {e}",
            file.display()
        )
    })?;
    tracing::info!(file = %file.display(), "discovered limits written");
    Ok(())
}

/// The CA that signs interception leaves, loaded (or created, on first start) when the config
/// has an `intercept:` section.
fn interception(config: &Config) -> anyhow::Result<Option<Arc<Leaves>>> {
    let Some(files) = &config.intercept else {
        return Ok(None);
    };
    let (ca, origin) = Ca::load_or_create(files)?;
    let created = origin == crate::tls::Origin::Created;
    tracing::info!(cert = %files.ca_cert.display(), created, "TLS interception on");
    Ok(Some(Arc::new(Leaves::new(ca)?)))
}

/// A short human summary of what a config sets up, for `pacer check`: in the config's own
/// words (`token`, `queue`, `300/min`), never Rust's debug notation.
pub fn describe(config: &Config) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "listen: {}", config.listen);
    for (i, u) in config.upstreams.iter().enumerate() {
        let default = if config.default_upstream == Some(i) {
            " (default)"
        } else {
            ""
        };
        let connect = if u.intercept {
            "intercepted"
        } else {
            "tunnelled"
        };
        let _ = writeln!(
            out,
            "upstream {}{default}: {}, hosts {}, CONNECT {connect}",
            u.name,
            u.base_url,
            u.hosts.join(", ")
        );
    }
    if let Some(s) = &config.shared {
        let _ = writeln!(
            out,
            "shared: redis {} prefix {} timeout {:?} on_unavailable {} instances {} limits {}",
            s.redis_redacted(),
            s.key_prefix,
            s.timeout,
            s.on_unavailable,
            s.instances,
            s.limits.join(", ")
        );
    }
    for l in &config.limits {
        let cap = l
            .concurrency
            .map(|c| format!(", concurrency {c}"))
            .unwrap_or_default();
        let cap = match config.learn_for(&l.name) {
            Some(learn) => format!("{cap}, {}", crate::shape::describe_learn(l, learn)),
            None => cap,
        };
        let _ = writeln!(
            out,
            "limit {}: {}{cap}, key {}, mode {}",
            l.name,
            crate::shape::describe_pace(l),
            l.key,
            l.mode
        );
    }
    for r in &config.routes {
        let names: Vec<&str> = r
            .limits
            .iter()
            .map(|&i| config.limit_at(i).name.as_str())
            .collect();
        let names = if names.is_empty() {
            "none (unshaped)".to_owned()
        } else {
            names.join(", ")
        };
        let _ = writeln!(out, "route {}: limits {names}", r.name);
    }
    out
}

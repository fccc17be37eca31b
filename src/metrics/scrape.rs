//! Scrape time: the text exposition of every series in the registry.
//!
//! The gauges of a limit's live state are not kept here: shaping registers a collector of its
//! own that reads them from the limiters when Prometheus asks (`shape/gauges.rs`).

use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

use super::{register, Metrics};

/// The Content-Type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// `pacer_build_info{version}`, always 1.
pub(super) fn register_build_info(registry: &Registry) {
    let build = IntGaugeVec::new(
        Opts::new(
            "pacer_build_info",
            "Always 1; the labels say which pacer runs.",
        ),
        &["version"],
    )
    .expect("a valid metric definition");
    register(registry, build.clone());
    build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
}

// === impl Metrics ===

impl Metrics {
    /// The Prometheus text exposition of every series, collectors registered by other modules
    /// (the limits' gauges) read just now.
    pub fn render(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        // `gather` drops empty families, the only input the encoder refuses; should it fail
        // anyway, a partial page plus a log line beats a failed scrape.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

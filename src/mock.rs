//! A Genesys-like mock API for rehearsals and tests. (Stub: to be completed.)
use std::future::Future;
use std::path::Path;

use tokio::net::TcpListener;

/// What the mock enforces and how it misbehaves on purpose.
#[derive(Debug, Clone, Default)]
pub struct MockConfig {}

impl MockConfig {
    pub fn load(_path: &Path) -> anyhow::Result<MockConfig> {
        Ok(MockConfig::default())
    }
}

/// Serves the mock on `listener` until `shutdown` resolves.
pub async fn serve(
    _listener: TcpListener,
    _config: MockConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    shutdown.await;
    Ok(())
}

//! The proxy listener. (Skeleton: to be completed.)
use std::future::Future;

use tokio::net::TcpListener;

use crate::config::Config;

pub async fn serve(
    _listener: TcpListener,
    _config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    shutdown.await;
    Ok(())
}

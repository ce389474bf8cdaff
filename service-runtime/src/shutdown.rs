//! The shutdown signal: resolves on SIGTERM (what Kubernetes and Compose send) or Ctrl-C.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal as listen};

/// Starts listening for SIGTERM and SIGINT (Ctrl-C) at once, and returns a future that resolves
/// on whichever comes first.
///
/// The handlers are installed by this call, not when the future is first polled: a process
/// that already answers health checks must not die of a SIGTERM's default action because its
/// shutdown future had not been polled yet. Call it before binding anything.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    let terminate = listen(SignalKind::terminate());
    let interrupt = listen(SignalKind::interrupt());
    async move {
        let (mut terminate, mut interrupt) = match (terminate, interrupt) {
            (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "cannot listen for SIGTERM / Ctrl-C; only a kill stops this process");
                return std::future::pending().await;
            }
        };
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("Ctrl-C received, shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
    }
}

//! Counting gRPC calls in flight, so a graceful shutdown ends as soon as the last one is done
//! instead of waiting for every client to hang up.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use tokio::sync::Notify;

/// A shared count of calls in flight; also the tower layer that maintains it.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// The number of calls running now.
    pub fn count(&self) -> usize {
        self.state.count.load(Ordering::Acquire)
    }

    /// Resolves once no call is running (at once if none is).
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.state.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a call finishing in between still wakes us.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }

    fn enter(&self) -> CallGuard {
        self.state.count.fetch_add(1, Ordering::AcqRel);
        CallGuard { state: Arc::clone(&self.state) }
    }
}

/// Decrements the count when the call's future completes or is dropped.
struct CallGuard {
    state: Arc<State>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if self.state.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.state.idle.notify_waiters();
        }
    }
}

impl<S> tower::Layer<S> for InFlight {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Tracked { inner, in_flight: self.clone() }
    }
}

/// A service whose calls are counted in an [`InFlight`].
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    in_flight: InFlight,
}

impl<S, Request> tower::Service<Request> for Tracked<S>
where
    S: tower::Service<Request>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let guard = self.in_flight.enter();
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await;
            drop(guard);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn wait_idle_returns_when_the_last_call_ends() {
        let in_flight = InFlight::default();
        in_flight.wait_idle().await;
        let first = in_flight.enter();
        let second = in_flight.enter();
        let waiter = tokio::spawn({
            let in_flight = in_flight.clone();
            async move { in_flight.wait_idle().await }
        });
        drop(first);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "one call is still running");
        drop(second);
        tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("idle").expect("join");
        assert_eq!(in_flight.count(), 0);
    }
}

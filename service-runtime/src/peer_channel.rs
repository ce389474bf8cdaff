//! The channel every client of a peer service uses: a call that could not even connect to the
//! replica it was given (connection refused: the replica died a moment ago) is sent again, after
//! the prober of [`crate::balance`] has been told to take that replica out of the rotation.
//!
//! Only a refused connection is retried: the request never left this process, so sending it
//! again cannot apply anything twice, whatever the method does. A call that reached a replica
//! and then lost its connection may have been applied, and fails as it did. The request body is
//! held as bytes to be sent again, which suits unary calls (every method of these services);
//! a streaming request would be read to its end first.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http_body_util::{BodyExt as _, Full};
use tokio::sync::Notify;
use tonic::{body::Body, codegen::http, transport::Channel};
use tower::ServiceExt as _;

/// How long to wait before each new attempt of a call whose connection was refused: long
/// enough for the prober to take the replica out, short against a call's timeout.
const RETRY_AFTER: [Duration; 2] = [Duration::from_millis(25), Duration::from_millis(100)];

/// The error a call through a [`PeerChannel`] fails with (tonic turns it into a `Status`).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client channel to a peer; cheap to clone, like tonic's [`Channel`] inside it.
#[derive(Debug, Clone)]
pub struct PeerChannel {
    channel: Channel,
    /// Tells the prober a replica refused a connection, when there is one (several replicas).
    refused: Option<Arc<Notify>>,
}

impl PeerChannel {
    pub(crate) fn new(channel: Channel, refused: Option<Arc<Notify>>) -> Self {
        Self { channel, refused }
    }
}

impl tower::Service<http::Request<Body>> for PeerChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.channel.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The caller's trace goes with the call (`traceparent`), when traces are exported.
        crate::trace_context::inject_into_headers(request.headers_mut());
        // The channel that was made ready goes with this call; a clone stays for the next.
        let fresh = self.channel.clone();
        let mut channel = std::mem::replace(&mut self.channel, fresh);
        let refused = self.refused.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let rebuild = || http::Request::from_parts(parts.clone(), Body::new(Full::new(body.clone())));
            let mut result = channel.call(rebuild()).await;
            for pause in RETRY_AFTER {
                match &result {
                    Err(error) if was_refused(error) => {
                        if let Some(refused) = &refused {
                            refused.notify_one();
                        }
                        tokio::time::sleep(pause).await;
                        result = channel.ready().await?.call(rebuild()).await;
                    }
                    _ => break,
                }
            }
            result.map_err(Into::into)
        })
    }
}

/// Whether `error` says the connection was refused, anywhere in its chain of sources.
fn was_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("tcp connect error")
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn only_a_refused_connection_counts_as_refused() {
        let refused = Wrapper(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let reset = Wrapper(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(was_refused(&refused));
        assert!(!was_refused(&reset), "a reset connection may have carried the call");
    }
}

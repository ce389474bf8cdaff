//! Client channels to a peer service, spread over every replica of it.
//!
//! A tonic channel to one address holds one HTTP/2 connection, so behind a Kubernetes ClusterIP
//! Service (or Docker's one name for a scaled service) every call of a process goes to the same
//! replica. Here a peer's setting may list several URLs (comma-separated), and a host name is
//! resolved to all of its addresses (a headless Service: `clusterIP: None`) and again every
//! [`RESOLVE_EVERY`], so replicas that come and go are followed; calls are spread over all of
//! them by tonic's balanced channel. Every replica is probed (a TCP connect) every
//! [`PROBE_EVERY`]; one that does not answer leaves the rotation until it answers again, so a
//! crashed replica costs the calls in flight to it and those of the next second, not half of
//! all calls until it is gone from DNS. A single URL with an IP address stays a plain channel:
//! there is nowhere else to send its calls.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::Arc,
    time::Duration,
};

use tokio::sync::{Notify, mpsc::Sender};
use tonic::transport::{Channel, Endpoint, channel::Change};

pub use crate::peer_channel::PeerChannel;
use crate::{startup::StartupError, tls::GrpcTls};

/// How often host names are resolved again.
pub const RESOLVE_EVERY: Duration = Duration::from_secs(10);

/// How often every known replica is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

/// The shortest time between two probes, however often calls report a refused connection.
const PROBE_AGAIN_AFTER: Duration = Duration::from_millis(10);

/// How long a probe's connection may take before the replica counts as gone.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// How many calls may wait for a ready replica.
const BUFFER: usize = 1024;

/// How long connecting to a peer may take before the call fails as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A channel to the peer at `urls` (one URL, or several separated by commas), connecting on
/// first use so a service can start before its peers; a call refused a connection is sent
/// again ([`PeerChannel`]). An `https://` URL is reached over TLS with `tls`, the peer's
/// certificate checked against the configured CA for the URL's host name. `setting` names the
/// env var in the error when a URL is malformed.
pub fn client_channel(
    setting: &'static str,
    urls: &str,
    call_timeout: Duration,
    tls: &GrpcTls,
) -> Result<PeerChannel, StartupError> {
    let targets = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| Target::parse(setting, url))
        .collect::<Result<Vec<_>, _>>()?;
    for target in &targets {
        tls.check_peer_url(setting, &target.url, &target.host)?;
    }
    let tls = tls.clone();
    let configure = move |endpoint: Endpoint, domain: &str| {
        let endpoint = endpoint.connect_timeout(CONNECT_TIMEOUT).timeout(call_timeout);
        match tls.client_config(domain) {
            // `check_peer_url` made this configuration once at start, so it does not fail here;
            // an http:// URL ignores it.
            Some(config) => endpoint.clone().tls_config(config).unwrap_or(endpoint),
            None => endpoint,
        }
    };
    match targets.as_slice() {
        [] => Err(StartupError::config(setting, "must look like http://host:port")),
        [single] if single.host.parse::<IpAddr>().is_ok() => {
            Ok(PeerChannel::new(configure(single.endpoint.clone(), &single.host).connect_lazy(), None))
        }
        _ => {
            let (channel, changes) = Channel::balance_channel::<String>(BUFFER);
            // Until a name resolves, its URL itself is the endpoint: a call then fails at once
            // (the name does not resolve) instead of waiting for a replica that never comes.
            for target in &targets {
                let _ = changes
                    .try_send(Change::Insert(target.url.clone(), configure(target.endpoint.clone(), &target.host)));
            }
            let refused = Arc::new(Notify::new());
            tokio::spawn(follow(targets, changes, configure, Arc::clone(&refused)));
            Ok(PeerChannel::new(channel, Some(refused)))
        }
    }
}

/// One URL of a peer.
#[derive(Debug, Clone)]
struct Target {
    url: String,
    scheme: String,
    host: String,
    port: u16,
    endpoint: Endpoint,
}

impl Target {
    fn parse(setting: &'static str, url: &str) -> Result<Self, StartupError> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|error| StartupError::config(setting, format!("`{url}` is not a valid URL: {error}")))?;
        let uri = endpoint.uri();
        let scheme = match uri.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme.to_owned(),
            _ => return Err(StartupError::config(setting, format!("`{url}` must look like http://host:port"))),
        };
        let host = uri
            .host()
            .ok_or_else(|| StartupError::config(setting, format!("`{url}` must look like http://host:port")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
        Ok(Self { url: url.to_owned(), scheme, host, port, endpoint })
    }
}

/// Resolves every target now and every [`RESOLVE_EVERY`], probes every address found every
/// [`PROBE_EVERY`], and keeps the channel's replicas to those that answer. Ends when the
/// channel is gone.
async fn follow(
    targets: Vec<Target>,
    changes: Sender<Change<String, Endpoint>>,
    configure: impl Fn(Endpoint, &str) -> Endpoint,
    refused: Arc<Notify>,
) {
    // What each target resolved to last: its addresses, or its URL itself while none resolved.
    let mut resolved: BTreeMap<String, BTreeSet<Replica>> =
        targets.iter().map(|target| (target.url.clone(), BTreeSet::from([Replica::unresolved(target)]))).collect();
    // What the channel has now (the unresolved URLs, put there by `client_channel`).
    let mut in_channel: BTreeSet<Replica> = resolved.values().flatten().cloned().collect();
    let mut last_resolved: Option<tokio::time::Instant> = None;
    loop {
        if last_resolved.is_none_or(|at| at.elapsed() >= RESOLVE_EVERY) {
            last_resolved = Some(tokio::time::Instant::now());
            for target in &targets {
                let found = resolve(target).await;
                // Nothing resolved: keep what was known rather than leave the peer empty.
                if found.is_empty() {
                    continue;
                }
                let known = resolved.entry(target.url.clone()).or_default();
                if *known != found {
                    tracing::info!(url = %target.url, replicas = found.len(), "peer addresses changed");
                    *known = found;
                }
            }
        }
        let all: BTreeSet<Replica> = resolved.values().flatten().cloned().collect();
        let answering = probe(&all).await;
        // When none answers, keep them all: a call then fails at once as unavailable instead of
        // waiting for a replica that may never come.
        let wanted = if answering.is_empty() { all } else { answering };
        for gone in in_channel.difference(&wanted) {
            tracing::info!(replica = %gone.key, "peer replica left the rotation");
            if changes.send(Change::Remove(gone.key.clone())).await.is_err() {
                return;
            }
        }
        for new in wanted.difference(&in_channel) {
            let Ok(endpoint) = Endpoint::from_shared(new.key.clone()) else { continue };
            if changes.send(Change::Insert(new.key.clone(), configure(endpoint, &new.domain))).await.is_err() {
                return;
            }
        }
        in_channel = wanted;
        // Probe again after the interval, or at once when a call found a replica refusing (at
        // most every PROBE_AGAIN_AFTER while calls keep failing, say with every replica down).
        tokio::time::sleep(PROBE_AGAIN_AFTER).await;
        tokio::select! {
            () = changes.closed() => return,
            () = tokio::time::sleep(PROBE_EVERY - PROBE_AGAIN_AFTER) => {}
            () = refused.notified() => {}
        }
    }
}

/// One replica of a peer: the key the channel knows it by (a URL), where to probe it, and the
/// host name its TLS certificate must name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Replica {
    key: String,
    probe: String,
    domain: String,
}

impl Replica {
    /// A target whose name has not resolved (yet): the URL itself.
    fn unresolved(target: &Target) -> Self {
        Self { key: target.url.clone(), probe: format!("{}:{}", target.host, target.port), domain: target.host.clone() }
    }
}

/// The addresses `target`'s host name resolves to now; none when it does not resolve.
async fn resolve(target: &Target) -> BTreeSet<Replica> {
    match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
        Ok(addresses) => one_family(addresses.collect())
            .into_iter()
            .map(|address| Replica {
                key: format!("{}://{address}", target.scheme),
                probe: address.to_string(),
                domain: target.host.clone(),
            })
            .collect(),
        Err(error) => {
            tracing::debug!(url = %target.url, %error, "peer name did not resolve; keeping what was known");
            BTreeSet::new()
        }
    }
}

/// The replicas that accept a TCP connection within [`PROBE_TIMEOUT`]. A crashed process
/// refuses at once and a lost host times out, so either leaves the rotation within about a
/// second instead of failing its share of calls until it is gone from DNS (with a fixed list
/// of URLs, for ever).
async fn probe(replicas: &BTreeSet<Replica>) -> BTreeSet<Replica> {
    let probes = replicas.iter().map(|replica| async move {
        let connect = tokio::net::TcpStream::connect(replica.probe.as_str());
        matches!(tokio::time::timeout(PROBE_TIMEOUT, connect).await, Ok(Ok(_))).then(|| replica.clone())
    });
    futures::future::join_all(probes).await.into_iter().flatten().collect()
}

/// The IPv4 addresses when there are any, else all. A name such as `localhost` often resolves
/// to both `127.0.0.1` and `::1` while the peer listens on one of them; a balanced channel keeps
/// sending a share of the calls to an address that refuses them, where a plain connection would
/// have tried the next address.
fn one_family(addresses: Vec<std::net::SocketAddr>) -> Vec<std::net::SocketAddr> {
    if addresses.iter().any(std::net::SocketAddr::is_ipv4) {
        addresses.into_iter().filter(std::net::SocketAddr::is_ipv4).collect()
    } else {
        addresses
    }
}

#[cfg(test)]
mod tests {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    use super::*;
    use crate::grpc::GrpcServer;

    async fn server(name: &'static str) -> crate::grpc::RunningServer {
        let addr = "127.0.0.1:0".parse().expect("addr");
        GrpcServer::bind(
            addr,
            tonic::service::Routes::default(),
            &[name],
            Duration::from_secs(1),
            &crate::tls::GrpcTls::default(),
        )
        .await
        .expect("bind")
        .spawn()
    }

    /// A channel to the peer at `urls`, without TLS.
    fn plaintext_channel(urls: &str) -> PeerChannel {
        client_channel("PEER_URL", urls, Duration::from_secs(5), &crate::tls::GrpcTls::default()).expect("channel")
    }

    /// Which of the two servers answered: each knows only its own service name.
    async fn answered_by_a(client: &mut HealthClient<PeerChannel>) -> bool {
        client.check(HealthCheckRequest { service: "a".into() }).await.is_ok()
    }

    #[tokio::test]
    async fn calls_are_spread_over_every_listed_url() {
        let (a, b) = (server("a").await, server("b").await);
        let channel = plaintext_channel(&format!("{}, {}", a.url(), b.url()));
        let mut client = HealthClient::new(channel);
        let mut by_a = 0;
        for _ in 0..40 {
            by_a += usize::from(answered_by_a(&mut client).await);
        }
        assert!((1..40).contains(&by_a), "{by_a} of 40 calls went to the first replica");
        a.stop().await.expect("stop a");
        b.stop().await.expect("stop b");
    }

    #[tokio::test]
    async fn a_replica_that_stops_answering_leaves_the_rotation_and_comes_back() {
        let (a, b) = (server("a").await, server("b").await);
        let a_addr = a.local_addr();
        let channel = plaintext_channel(&format!("{},{}", a.url(), b.url()));
        let mut client = HealthClient::new(channel);
        // Known to work before anything stops: both answer (the first probe has run).
        tokio::time::sleep(PROBE_EVERY / 2).await;
        a.stop().await.expect("stop a");
        tokio::time::sleep(PROBE_EVERY * 2).await;
        for call in 0..20 {
            let answer = client.check(HealthCheckRequest { service: "b".into() }).await;
            assert!(answer.is_ok(), "call {call} went to the stopped replica: {answer:?}");
        }

        // Back on the same address: it takes its share again.
        let a = GrpcServer::bind(
            a_addr,
            tonic::service::Routes::default(),
            &["a"],
            Duration::from_secs(1),
            &crate::tls::GrpcTls::default(),
        )
        .await
        .expect("bind a again")
        .spawn();
        tokio::time::sleep(PROBE_EVERY * 2).await;
        let mut by_a = 0;
        for _ in 0..40 {
            by_a += usize::from(answered_by_a(&mut client).await);
        }
        assert!(by_a > 0, "the replica that came back got no call");
        a.stop().await.expect("stop a");
        b.stop().await.expect("stop b");
    }

    #[tokio::test]
    async fn calls_right_after_a_replica_died_go_to_the_other() {
        let (a, b) = (server("a").await, server("b").await);
        let channel = plaintext_channel(&format!("{},{}", a.url(), b.url()));
        let mut client = HealthClient::new(channel);
        for _ in 0..10 {
            answered_by_a(&mut client).await;
        }
        // No time for a periodic probe: each call that meets the dead replica goes again.
        a.stop().await.expect("stop a");
        for call in 0..20 {
            let answer = client.check(HealthCheckRequest { service: "b".into() }).await;
            assert!(answer.is_ok(), "call {call} failed: {answer:?}");
        }
        b.stop().await.expect("stop b");
    }

    #[tokio::test]
    async fn a_host_name_is_resolved_to_its_addresses() {
        let a = server("a").await;
        let url = format!("http://localhost:{}", a.local_addr().port());
        let mut client = HealthClient::new(plaintext_channel(&url));
        assert!(answered_by_a(&mut client).await);
        a.stop().await.expect("stop");
    }

    #[test]
    fn a_name_with_both_families_keeps_its_ipv4_addresses() {
        let addresses = |list: &[&str]| list.iter().map(|a| a.parse().expect("address")).collect::<Vec<_>>();
        assert_eq!(one_family(addresses(&["[::1]:1", "127.0.0.1:1"])), addresses(&["127.0.0.1:1"]));
        assert_eq!(one_family(addresses(&["[::1]:1", "[::2]:1"])), addresses(&["[::1]:1", "[::2]:1"]));
    }

    #[test]
    fn malformed_urls_name_the_setting() {
        for bad in ["", " , ", "user-service:50051", "ftp://host:1", "http://"] {
            let error =
                client_channel("USER_SERVICE_URL", bad, Duration::from_secs(1), &crate::tls::GrpcTls::default())
                    .expect_err(bad);
            assert!(error.to_string().starts_with("USER_SERVICE_URL: "), "{bad}: {error}");
        }
    }
}

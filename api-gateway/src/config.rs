//! The gateway's configuration: where the services are, the JWT secret, and the limits.

use std::{
    net::SocketAddr,
    num::{NonZeroU32, NonZeroUsize},
    time::Duration,
};

use service_runtime::{
    config::{RuntimeArgs, Secret},
    startup::StartupError,
};

/// Flags with env fallbacks, per the configuration contract.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "api-gateway", version, about = "The GraphQL API gateway over the user, product and order services")]
pub struct Config {
    /// The HTTP listen address (`/graphql`, `/health`, `/metrics`).
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:3000")]
    pub listen_addr: SocketAddr,
    #[arg(long, env = "USER_SERVICE_URL", default_value = "http://127.0.0.1:50051")]
    pub user_service_url: String,
    #[arg(long, env = "PRODUCT_SERVICE_URL", default_value = "http://127.0.0.1:50052")]
    pub product_service_url: String,
    #[arg(long, env = "ORDER_SERVICE_URL", default_value = "http://127.0.0.1:50053")]
    pub order_service_url: String,
    /// The HMAC key that signs tokens: at least 32 bytes, kept secret.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// How long a token from `login` stays valid.
    #[arg(long, env = "JWT_TTL_SECS", default_value_t = 3600)]
    pub jwt_ttl_secs: u64,
    /// How long one call to a backend may take before the field fails as unavailable.
    #[arg(long, env = "BACKEND_TIMEOUT_MS", default_value_t = 5000)]
    pub backend_timeout_ms: u64,
    #[command(flatten)]
    pub limits: Limits,
    /// How long the event feed keeps reading the broker after the last subscription ended and
    /// the last cached read, in milliseconds; an idle gateway then costs the broker nothing.
    #[arg(long, env = "SUBSCRIPTION_FEED_IDLE_MS", default_value_t = 30_000)]
    pub subscription_feed_idle_ms: u64,
    /// How long the gateway serves a product or user it read again without asking the backend,
    /// in milliseconds, unless an event says it changed first (0: no caching). The caches work
    /// only with a broker; this bounds staleness if the broker stops delivering.
    #[arg(long, env = "CACHE_TTL_MS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub cache_ttl_ms: u64,
    /// The broker that feeds subscriptions (empty: subscriptions are unavailable).
    #[command(flatten)]
    pub kafka: events::KafkaArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// What one client may ask for.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Proxies (CIDRs or addresses, comma-separated) whose `Forwarded` / `X-Forwarded-For`
    /// headers say which client they forward for. Empty: none is trusted, and the TCP peer is
    /// the client.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Sustained GraphQL requests per second per client address.
    #[arg(long, env = "RATE_LIMIT_PER_SECOND", default_value = "50")]
    pub rate_limit_per_second: NonZeroU32,
    /// Requests a client may make in a burst above the sustained rate.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value = "100")]
    pub rate_limit_burst: NonZeroU32,
    /// The deepest selection nesting accepted.
    #[arg(long, env = "MAX_QUERY_DEPTH", default_value_t = 15)]
    pub max_query_depth: usize,
    /// The largest query complexity accepted (list fields count `limit` times their children).
    #[arg(long, env = "MAX_QUERY_COMPLEXITY", default_value_t = 5000)]
    pub max_query_complexity: usize,
    /// The most aliases one operation may use (fragments counted each time they are spread):
    /// each alias of a by-id field can be a backend call.
    #[arg(long, env = "MAX_ALIASES", default_value_t = 30)]
    pub max_aliases: usize,
    /// The most fields one operation may ask at its root (fragments expanded).
    #[arg(long, env = "MAX_ROOT_FIELDS", default_value_t = 30)]
    pub max_root_fields: usize,
    /// The largest request body accepted, and the largest WebSocket message, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// The most subscriptions one client address may have open at once.
    #[arg(long, env = "MAX_SUBSCRIPTIONS_PER_CLIENT", default_value = "100")]
    pub max_subscriptions_per_client: NonZeroUsize,
    /// The most subscriptions open at once in this gateway, all clients together.
    #[arg(long, env = "MAX_SUBSCRIPTIONS", default_value = "10000")]
    pub max_subscriptions: NonZeroUsize,
    /// The most GraphQL requests over HTTP this gateway works on at once, all clients together;
    /// one more is refused at once (503 with `Retry-After`) instead of waiting in memory.
    #[arg(long, env = "MAX_REQUESTS_IN_FLIGHT", default_value = "1024")]
    pub max_requests_in_flight: NonZeroUsize,
}

/// Shortest JWT secret accepted: HS256 wants a key at least as long as its output.
const MIN_SECRET_BYTES: usize = 32;

impl Config {
    /// The JWT secret, checked.
    pub fn jwt_secret(&self) -> Result<&Secret, StartupError> {
        let secret = self.jwt_secret.as_ref().ok_or_else(|| StartupError::config("JWT_SECRET", "must be set"))?;
        if secret.expose().len() < MIN_SECRET_BYTES {
            return Err(StartupError::config("JWT_SECRET", format!("must be at least {MIN_SECRET_BYTES} bytes")));
        }
        Ok(secret)
    }

    pub fn backend_timeout(&self) -> Duration {
        Duration::from_millis(self.backend_timeout_ms)
    }
}

/// A trusted proxy: a CIDR (`10.0.0.0/8`) or one address (`10.0.0.7`).
fn parse_proxy(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{value}` is not a CIDR (10.0.0.0/8) or an address (10.0.0.7)"))
}

//! Fixed-window rate limiting in the store, shared by the programs: every instance on the same
//! store counts together, and a counter dies with its window, so a flood leaves at most one
//! key per client behind.

use crate::store::{Store, StoreError};
use actix_web::HttpRequest;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

/// At most `max` events per `window`, per counter key.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    max: u32,
    window: Duration,
}

impl RateLimit {
    /// `max` events per `window_secs` (a zero window counts as one second).
    pub fn new(max: u32, window_secs: u64) -> Self {
        Self { max, window: Duration::from_secs(window_secs.max(1)) }
    }

    /// Counts one request under `key`. `Ok(None)`: admitted (at most `max` counted in this
    /// window, this one included). `Ok(Some(secs))`: refused; the window ends in `secs`.
    pub async fn admit(&self, store: &Store, key: &str) -> Result<Option<u64>, StoreError> {
        self.count_past(store, key, i64::from(self.max) + 1).await
    }

    /// Counts one event under `key` and reports whether that spent the window's budget
    /// (`max` events counted): `Ok(Some(secs))` with the seconds the window still runs. For
    /// limits that lock out once reached, such as failed logins.
    pub async fn spend(&self, store: &Store, key: &str) -> Result<Option<u64>, StoreError> {
        self.count_past(store, key, i64::from(self.max)).await
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    async fn count_past(&self, store: &Store, key: &str, threshold: i64) -> Result<Option<u64>, StoreError> {
        let n = store.incr(key, self.window).await?;
        if n < threshold {
            return Ok(None);
        }
        let left = store.ttl(key).await?.filter(|d| !d.is_zero()).unwrap_or(self.window).min(self.window);
        Ok(Some(left.as_secs().max(1)))
    }
}

/// The store-key part naming the client that sent `req`: a hash of [`client_bucket`]. A
/// forwarding header is not trusted (any client can send one); behind a reverse proxy every
/// client shares the proxy's address, so limits must be sized for that.
pub fn client_key(req: &HttpRequest) -> String {
    crate::crypto::sha256_b64(client_bucket(req).as_bytes())
}

/// What one client counts as for per-address limits (empty when unknown): the connection's
/// IPv4 address, or the /64 prefix of an IPv6 one — a single host is commonly given a whole
/// /64, and counting its addresses apart would give it 2^64 budgets.
pub fn client_bucket(req: &HttpRequest) -> String {
    req.peer_addr().map(|a| bucket_of(a.ip())).unwrap_or_default()
}

fn bucket_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_counts_as_its_64_prefix_and_a_mapped_ipv4_as_itself() {
        let v6 = |s: &str| bucket_of(s.parse().unwrap());
        assert_eq!(v6("2001:db8:1:2:aaaa::1"), v6("2001:db8:1:2:bbbb:cccc:dddd:eeee"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(v6("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(v6("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(v6("192.0.2.7"), "192.0.2.7");
        assert_ne!(v6("192.0.2.7"), v6("192.0.2.8"));
    }
}

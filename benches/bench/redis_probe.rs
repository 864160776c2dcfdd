//! What a Redis server reports about itself: per-command call counts and memory.

use anyhow::{Context, Result};
use redis::aio::MultiplexedConnection;
use std::collections::BTreeMap;

/// A connection for `INFO` queries (and the session-memory fill).
pub struct RedisProbe {
    conn: MultiplexedConnection,
}

/// Calls per command, from `INFO commandstats`.
pub type CommandCounts = BTreeMap<String, u64>;

impl RedisProbe {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> Result<Self> {
        let conn = redis::Client::open(url)?.get_multiplexed_async_connection().await?;
        Ok(Self { conn })
    }

    /// The connection.
    pub fn conn(&self) -> MultiplexedConnection {
        self.conn.clone()
    }

    async fn info(&self, section: &str) -> Result<String> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("INFO").arg(section).query_async(&mut conn).await?)
    }

    /// Calls of every command so far (`INFO` itself excluded: the probe sends it).
    pub async fn command_counts(&self) -> Result<CommandCounts> {
        let text = self.info("commandstats").await?;
        let mut counts = CommandCounts::new();
        for line in text.lines() {
            let Some((name, stats)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else {
                continue;
            };
            let calls = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("no calls in {line}"))?;
            if name != "info" {
                counts.insert(name.to_string(), calls);
            }
        }
        Ok(counts)
    }

    /// `used_memory` in bytes.
    pub async fn used_memory(&self) -> Result<u64> {
        let text = self.info("memory").await?;
        text.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .context("no used_memory in INFO memory")
    }
}

/// `after - before`, per command, leaving out commands that were not called.
pub fn delta(before: &CommandCounts, after: &CommandCounts) -> CommandCounts {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(before.get(k).copied().unwrap_or(0))))
        .filter(|(_, v)| *v > 0)
        .collect()
}

//! Redis memory per session: the keys one real login created in the BFF's namespace are copied
//! (`DUMP` / `RESTORE`: same type, encoding, size and TTL) under N fresh names of the same
//! length, pipelined, and `used_memory` grows by N × (one session). Whatever the BFF stores
//! per session — today or after a change of format — is what gets counted.

use crate::redis_probe::RedisProbe;
use anyhow::{Result, ensure};
use std::collections::BTreeSet;
use std::time::Instant;

/// Sessions per pipeline.
const BATCH: u64 = 1000;

/// One key of a session as stored.
pub struct KeyShape {
    /// The key without namespace and id (`session`, `tokens`, `idx:sub`, …).
    pub kind: String,
    /// Redis type.
    pub kind_type: String,
    /// `MEMORY USAGE` in bytes.
    pub memory_usage: u64,
    /// Length of the value for strings.
    pub value_bytes: Option<u64>,
}

/// The result.
pub struct MemoryResult {
    /// Sessions written.
    pub sessions: u64,
    /// `used_memory` growth per session, bytes.
    pub bytes_per_session: f64,
    /// The keys of one session.
    pub keys: Vec<KeyShape>,
    /// How long writing took.
    pub secs: f64,
}

/// Every key in `namespace`.
pub async fn keys(probe: &RedisProbe, namespace: &str) -> Result<BTreeSet<String>> {
    let mut conn = probe.conn();
    let mut out = BTreeSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{namespace}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        out.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(out)
}

struct Template {
    /// The key split at `:`; the longest part (the id) is replaced in the copies.
    parts: Vec<String>,
    id: usize,
    payload: Vec<u8>,
    pttl: i64,
}

impl Template {
    fn of(key: &str, payload: Vec<u8>, pttl: i64) -> Template {
        let parts: Vec<String> = key.split(':').map(str::to_string).collect();
        let id = (0..parts.len()).max_by_key(|i| parts[*i].len()).unwrap_or(0);
        Template { parts, id, payload, pttl }
    }

    /// Copy `n`'s key: the id replaced by `n`, zero-padded to the same length (inside `{…}` if
    /// the id is a hash tag), so every copy is as long as the original.
    fn key(&self, n: u64) -> String {
        let mut parts = self.parts.clone();
        let id = &parts[self.id];
        let tagged = id.len() >= 2 && id.starts_with('{') && id.ends_with('}');
        let width = if tagged { id.len() - 2 } else { id.len() };
        let new = format!("{n:0>width$}");
        parts[self.id] = if tagged { format!("{{{new}}}") } else { new };
        parts.join(":")
    }
}

/// Writes `n` copies of the session whose keys are `session_keys` (namespaced) and measures.
pub async fn measure(
    probe: &RedisProbe,
    namespace: &str,
    session_keys: &[String],
    n: u64,
) -> Result<MemoryResult> {
    ensure!(!session_keys.is_empty(), "the login created no keys in the BFF namespace");
    let mut conn = probe.conn();
    let mut templates = Vec::new();
    let mut shapes = Vec::new();
    for key in session_keys {
        let payload: Option<Vec<u8>> = redis::cmd("DUMP").arg(key).query_async(&mut conn).await?;
        let Some(payload) = payload else { continue };
        let pttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await?;
        let kind_type: String = redis::cmd("TYPE").arg(key).query_async(&mut conn).await?;
        let memory_usage: u64 =
            redis::cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0).query_async(&mut conn).await?;
        let value_bytes = if kind_type == "string" {
            Some(redis::cmd("STRLEN").arg(key).query_async(&mut conn).await?)
        } else {
            None
        };
        let template = Template::of(key, payload, pttl.max(0));
        let kind = {
            let mut parts = template.parts.clone();
            parts.remove(template.id);
            let joined = parts.join(":");
            joined.strip_prefix(namespace).unwrap_or(&joined).trim_start_matches(':').to_string()
        };
        // Per client address, not per session (the login rate limit's counter).
        if kind.starts_with("ratelimit") {
            continue;
        }
        shapes.push(KeyShape { kind, kind_type, memory_usage, value_bytes });
        templates.push(template);
    }
    let before = probe.used_memory().await?;
    let started = Instant::now();
    let mut next = 0u64;
    while next < n {
        let end = (next + BATCH).min(n);
        let mut pipe = redis::pipe();
        for i in next..end {
            for t in &templates {
                pipe.cmd("RESTORE").arg(t.key(i)).arg(t.pttl).arg(&t.payload).ignore();
            }
        }
        pipe.query_async::<()>(&mut conn).await?;
        next = end;
    }
    let secs = started.elapsed().as_secs_f64();
    let after = probe.used_memory().await?;
    Ok(MemoryResult {
        sessions: n,
        bytes_per_session: after.saturating_sub(before) as f64 / n.max(1) as f64,
        keys: shapes,
        secs,
    })
}

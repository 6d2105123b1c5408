//! Rate limits per token and per client address, and blocked addresses (docs/security.md).
//!
//! Token buckets: `--rate-limit-token N` requests per second per authenticated user (agents
//! excepted: many nodes may share one agent token) and `--rate-limit-client N` per client
//! address (people's routes; evidence ingest is bounded by load shedding instead), each
//! with a burst of twice the rate. Past it: 429 with `Retry-After`. Requests without a
//! valid token (when authentication is on) are limited separately and strictly, on every
//! route including ingest: `--rate-limit-unauthenticated N` per client address (default
//! 5, burst 10); a valid agent is never limited this way. The
//! bucket maps are bounded; the idlest entries are forgotten first.
//!
//! Blocked addresses come from the optional `blocked-clients` entry of the config
//! directory (the `tapio-config` ConfigMap): addresses or CIDR ranges, separated by
//! commas, spaces or new lines, re-read every second. A blocked client gets 403 on every
//! API route; health, readiness and the status page stay reachable.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Keys tracked per map; beyond it the idlest half is dropped.
const MAX_KEYS: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key.
pub struct Limiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    /// `per_second` 0 disables the limit.
    pub fn new(per_second: f64) -> Self {
        Self {
            per_second,
            burst: (per_second * 2.0).max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when `key` may make a request now; else the seconds until it may.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let Ok(mut map) = self.buckets.lock() else {
            return Ok(());
        };
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            let mut ages: Vec<(Instant, String)> =
                map.iter().map(|(k, b)| (b.at, k.clone())).collect();
            ages.sort();
            for (_, k) in ages.into_iter().take(MAX_KEYS / 2) {
                map.remove(&k);
            }
        }
        let b = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// The limits and the blocklist, shared by the request guard.
pub struct RateState {
    pub per_token: Limiter,
    pub per_client: Limiter,
    /// Requests without a valid token, per client address, on every route (ingest too):
    /// `--rate-limit-unauthenticated`, strict, so a flood of bad tokens gets 429s.
    pub unauthenticated: Limiter,
    pub blocklist: Blocklist,
}

/// An address or a CIDR range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix must be 0-{max}"))?,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Parse a `blocked-clients` value; every bad entry is named.
pub fn parse_blocklist(text: &str) -> Result<Vec<Net>, String> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for item in text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split(|c: char| c == ',' || c.is_whitespace()))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match Net::parse(item) {
            Ok(n) => out.push(n),
            Err(e) => bad.push(e),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(bad.join("; "))
    }
}

/// The blocklist in force. A file that does not parse keeps the previous list (logged).
#[derive(Default)]
pub struct Blocklist {
    nets: Mutex<Vec<Net>>,
    last_text: Mutex<Option<String>>,
}

pub const BLOCKED_CLIENTS_KEY: &str = "blocked-clients";

impl Blocklist {
    pub fn blocked(&self, ip: IpAddr) -> bool {
        self.nets
            .lock()
            .map(|n| n.iter().any(|x| x.contains(ip)))
            .unwrap_or(false)
    }

    /// Re-read `dir/blocked-clients` (absent = nobody blocked).
    pub fn reload(&self, dir: &Path) {
        let text = std::fs::read_to_string(dir.join(BLOCKED_CLIENTS_KEY)).unwrap_or_default();
        let Ok(mut last) = self.last_text.lock() else {
            return;
        };
        if last.as_deref() == Some(text.as_str()) {
            return;
        }
        *last = Some(text.clone());
        match parse_blocklist(&text) {
            Ok(nets) => {
                tracing::warn!(
                    component = "security-auditor",
                    entries = nets.len(),
                    "blocked-clients applied"
                );
                if let Ok(mut n) = self.nets.lock() {
                    *n = nets;
                }
            }
            Err(e) => tracing::error!(component = "security-auditor", error = %e,
                "blocked-clients refused; the previous list stays in force"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_allow_the_burst_then_say_when() {
        let l = Limiter::new(2.0);
        let t = Instant::now();
        for _ in 0..4 {
            assert!(l.check("alice", t).is_ok());
        }
        assert_eq!(l.check("alice", t), Err(1));
        assert!(l.check("bob", t).is_ok(), "per key");
        assert!(l.check("alice", t + Duration::from_millis(600)).is_ok());
        assert!(Limiter::new(0.0).check("x", t).is_ok(), "0 = off");
    }

    #[test]
    fn blocklists_match_addresses_and_ranges_and_name_bad_entries() {
        let b = parse_blocklist("203.0.113.7, 10.1.0.0/16\n2001:db8::/32 # comment").expect("ok");
        let has = |s: &str| b.iter().any(|n| n.contains(s.parse().expect("ip")));
        assert!(has("203.0.113.7") && has("10.1.200.3") && has("2001:db8::1"));
        assert!(has("::ffff:10.1.0.9"), "IPv4-mapped");
        assert!(!has("10.2.0.1") && !has("203.0.113.8"));
        let e = parse_blocklist("10.0.0.1, nope, 10.0.0.0/40").expect_err("bad");
        assert!(e.contains("\"nope\"") && e.contains("10.0.0.0/40"), "{e}");
    }
}

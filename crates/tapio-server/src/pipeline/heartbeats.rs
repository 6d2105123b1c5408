//! The latest self-report of each agent, in memory and bounded.
//!
//! - At most [`MAX_AGENTS`] reports and [`MAX_BYTES`] of them (their JSON size); beyond
//!   either, the report that *arrived* longest ago (server clock) is forgotten. A sender's
//!   own `sent_at` plays no part, so a clock in 2099 cannot pin its report.
//! - Each report is bounded field by field before it is kept
//!   ([`tapio_proto::AgentHeartbeat::bound`]) and its body by
//!   [`tapio_proto::HEARTBEAT_MAX_BODY_BYTES`].
//! - Readers get `Arc`s under a short lock: a read never copies the reports.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tapio_proto::AgentHeartbeat;

/// Agents whose reports are kept.
pub const MAX_AGENTS: usize = 10_000;
/// Total JSON size of the kept reports.
pub const MAX_BYTES: usize = 64 << 20;

struct Entry {
    arrival: u64,
    bytes: usize,
    hb: Arc<AgentHeartbeat>,
}

#[derive(Default)]
struct Inner {
    by_agent: BTreeMap<String, Entry>,
    /// Arrival number → agent, oldest first.
    by_arrival: BTreeMap<u64, String>,
    bytes: usize,
    next: u64,
}

/// See the module documentation.
pub struct Heartbeats {
    inner: Mutex<Inner>,
    max_agents: usize,
    max_bytes: usize,
}

impl Default for Heartbeats {
    fn default() -> Self {
        Self::with_limits(MAX_AGENTS, MAX_BYTES)
    }
}

impl Heartbeats {
    pub fn with_limits(max_agents: usize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_agents: max_agents.max(1),
            max_bytes,
        }
    }

    /// Keep `hb` (already bounded) as its agent's latest report; returns how many other
    /// agents' reports were forgotten to make room.
    pub fn put(&self, hb: AgentHeartbeat) -> usize {
        let bytes = serde_json::to_vec(&hb).map_or(0, |v| v.len());
        let Ok(mut g) = self.inner.lock() else {
            return 0;
        };
        let g = &mut *g;
        let arrival = g.next;
        g.next += 1;
        let id = hb.agent_id.clone();
        if let Some(old) = g.by_agent.remove(&id) {
            g.by_arrival.remove(&old.arrival);
            g.bytes -= old.bytes;
        }
        let mut evicted = 0;
        while !g.by_agent.is_empty()
            && (g.by_agent.len() >= self.max_agents || g.bytes + bytes > self.max_bytes)
        {
            let Some((_, oldest)) = g.by_arrival.pop_first() else {
                break;
            };
            if let Some(e) = g.by_agent.remove(&oldest) {
                g.bytes -= e.bytes;
                evicted += 1;
            }
        }
        g.bytes += bytes;
        g.by_arrival.insert(arrival, id.clone());
        g.by_agent.insert(
            id,
            Entry {
                arrival,
                bytes,
                hb: Arc::new(hb),
            },
        );
        evicted
    }

    /// The reports of these agents (those that have one).
    pub fn get_many<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> HashMap<String, Arc<AgentHeartbeat>> {
        let Ok(g) = self.inner.lock() else {
            return HashMap::new();
        };
        ids.filter_map(|id| g.by_agent.get(id).map(|e| (id.to_owned(), e.hb.clone())))
            .collect()
    }

    /// Up to `limit` reports of agents whose id sorts after `after`, in id order.
    pub fn page(&self, after: Option<&str>, limit: usize) -> Vec<Arc<AgentHeartbeat>> {
        let Ok(g) = self.inner.lock() else {
            return Vec::new();
        };
        let range = match after {
            Some(a) => g
                .by_agent
                .range::<str, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => g.by_agent.range::<str, _>(..),
        };
        range.take(limit).map(|(_, e)| e.hb.clone()).collect()
    }

    /// (reports kept, their JSON bytes).
    pub fn size(&self) -> (usize, usize) {
        self.inner
            .lock()
            .map(|g| (g.by_agent.len(), g.bytes))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn beat(id: &str, sent_year: i32, error_len: usize) -> AgentHeartbeat {
        let t = Utc
            .with_ymd_and_hms(sent_year, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        AgentHeartbeat {
            agent_id: id.into(),
            node: id.into(),
            version: "0.1.0".into(),
            started_at: t,
            sent_at: t,
            kernel: tapio_proto::KernelCapabilities {
                kernel_release: "6.1".into(),
                btf_present: true,
                bpf_allowed: true,
                programs: vec![],
                bpf_sources_sha256: String::new(),
            },
            sources: vec![],
            spool_pending_events: 0,
            spool_bytes: 0,
            dropped: Default::default(),
            kernel_drops: 0,
            last_error: "x".repeat(error_len),
        }
    }

    #[test]
    fn the_earliest_arrival_is_forgotten_whatever_its_clock_says() {
        let h = Heartbeats::with_limits(2, usize::MAX);
        h.put(beat("far-future", 2099, 0));
        h.put(beat("b", 2020, 0));
        assert_eq!(h.put(beat("c", 2021, 0)), 1);
        let ids: Vec<_> = h
            .page(None, 10)
            .iter()
            .map(|b| b.agent_id.clone())
            .collect();
        assert_eq!(
            ids,
            ["b", "c"],
            "the 2099 report arrived first and goes first"
        );
        // A newer report of a kept agent replaces it without evicting anyone.
        assert_eq!(h.put(beat("b", 2022, 0)), 0);
        assert_eq!(h.size().0, 2);
    }

    #[test]
    fn the_byte_budget_bounds_what_is_kept() {
        let h = Heartbeats::with_limits(1000, 10_000);
        for i in 0..100 {
            h.put(beat(&format!("a{i:03}"), 2024, 1000));
        }
        let (n, bytes) = h.size();
        assert!(bytes <= 10_000, "{bytes}");
        assert!(n < 10 && n > 0, "{n}");
        let page = h.page(Some("a095"), 2);
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].agent_id, "a096");
    }
}

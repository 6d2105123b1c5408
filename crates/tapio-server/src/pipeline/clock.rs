//! Time nobody outside can move.
//!
//! Every source's clock is estimated against the server's: an agent stamps each batch
//! with `sent_at`, so `received_at − sent_at` is its clock offset plus the network delay.
//! The median of its last few batches is the estimate; evidence from a source whose clock
//! is off by more than [`TRUSTED_SKEW_MS`] (and at most [`MAX_CORRECTED_SKEW_MS`]: beyond
//! that a batch is a recording sent again) is moved onto the server's time line (and
//! keeps what the source said in the `source_time` attribute). Whatever still lies in the
//! future after that (an alert's `startsAt`, a producer without `sent_at`) is placed at its
//! arrival. So no event time the engine sees is later than when the server received it,
//! and the engine's clock — the newest event time — cannot be pushed ahead by one node
//! whose clock runs fast: quiet-period resolution never fires early.
//!
//! The correlator bounds the engine's clock by the wall clock too (a second line of
//! defence, and the same rule for evidence stored before this existed).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use tapio_proto::{AttrValue, Event};

/// An offset within this is network and queueing delay, not a wrong clock.
pub const TRUSTED_SKEW_MS: i64 = 2_000;
/// An offset beyond this is not a clock running wrong but a recorded batch sent again (a
/// replay, the repository's examples): its times are what happened and are kept.
pub const MAX_CORRECTED_SKEW_MS: i64 = 3_600_000;
/// Batches per source whose offsets are kept for the median.
const SAMPLES: usize = 8;
/// Sources whose clocks are tracked; the one heard from longest ago is forgotten beyond.
pub const MAX_SOURCES: usize = 20_000;

struct Source {
    offsets: [i64; SAMPLES],
    n: usize,
    next: usize,
    last_heard: DateTime<Utc>,
}

impl Source {
    fn median(&self) -> i64 {
        let mut v: Vec<i64> = self.offsets[..self.n].to_vec();
        v.sort_unstable();
        v[v.len() / 2]
    }
}

/// The clock offsets of the sources the server hears from (bounded).
#[derive(Default)]
pub struct SourceClocks {
    inner: Mutex<HashMap<String, Source>>,
}

/// What [`adjust`] did to a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Adjusted {
    /// Events moved by the source's estimated clock offset.
    pub corrected: usize,
    /// Events still in the future after that, placed at their arrival.
    pub clamped: usize,
}

impl SourceClocks {
    /// Record one batch's `sent_at` as received at `received`; the source's estimated
    /// offset (server minus source, milliseconds) after it.
    pub fn observe(&self, source: &str, sent_at: DateTime<Utc>, received: DateTime<Utc>) -> i64 {
        let off = (received - sent_at).num_milliseconds();
        let Ok(mut map) = self.inner.lock() else {
            return off;
        };
        if !map.contains_key(source) && map.len() >= MAX_SOURCES {
            // Forget the 1 % heard from longest ago (amortised: one pass per 1 %).
            let mut by_age: Vec<(DateTime<Utc>, String)> =
                map.iter().map(|(k, s)| (s.last_heard, k.clone())).collect();
            let n = (MAX_SOURCES / 100).max(1);
            by_age.select_nth_unstable(n - 1);
            for (_, k) in by_age.into_iter().take(n) {
                map.remove(&k);
            }
        }
        let s = map.entry(source.to_owned()).or_insert(Source {
            offsets: [0; SAMPLES],
            n: 0,
            next: 0,
            last_heard: received,
        });
        s.offsets[s.next] = off;
        s.next = (s.next + 1) % SAMPLES;
        s.n = (s.n + 1).min(SAMPLES);
        s.last_heard = received;
        s.median()
    }

    /// The estimated offset of a source (milliseconds, server minus source), if heard from.
    pub fn offset(&self, source: &str) -> Option<i64> {
        self.inner.lock().ok()?.get(source).map(Source::median)
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Put a batch's events on the server's time line: shift them by the source's estimated
/// offset when it is beyond [`TRUSTED_SKEW_MS`], then place any still later than
/// `received` (plus the same allowance) at `received`. What the source said is kept in
/// the `source_time` attribute of each event that was moved.
pub fn adjust(events: &mut [Event], offset_ms: Option<i64>, received: DateTime<Utc>) -> Adjusted {
    let mut done = Adjusted::default();
    let latest = received + Duration::milliseconds(TRUSTED_SKEW_MS);
    for ev in events {
        let said = ev.time;
        if let Some(off) =
            offset_ms.filter(|o| o.abs() > TRUSTED_SKEW_MS && o.abs() <= MAX_CORRECTED_SKEW_MS)
            && let Some(t) = ev.time.checked_add_signed(Duration::milliseconds(off))
        {
            ev.time = t;
            done.corrected += 1;
        }
        if ev.time > latest {
            ev.time = received;
            done.clamped += 1;
        }
        if ev.time != said {
            ev.attributes.insert(
                "source_time".into(),
                AttrValue::String(said.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            );
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapio_proto::{Entity, EventSeverity, EventType};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn event(t: DateTime<Utc>) -> Event {
        Event {
            id: ulid::Ulid::new(),
            time: t,
            kind: EventType::parse("kernel.container.oom_kill").expect("type"),
            severity: EventSeverity::Critical,
            entity: Entity::default(),
            attributes: Default::default(),
            object: None,
        }
    }

    #[test]
    fn the_median_offset_ignores_one_delayed_batch() {
        let c = SourceClocks::default();
        let now = at("2026-12-07T10:00:00Z");
        // A clock 60 s slow: received − sent = +60 s; one batch delayed 30 s more.
        for (i, extra) in [0, 0, 30, 0, 0].into_iter().enumerate() {
            let recv = now + Duration::seconds(i as i64);
            let sent = recv - Duration::seconds(60 + extra);
            c.observe("a", sent, recv);
        }
        assert_eq!(c.offset("a"), Some(60_000));
        assert_eq!(c.offset("b"), None);
    }

    #[test]
    fn a_fast_source_is_moved_back_and_the_future_is_placed_at_arrival() {
        let recv = at("2026-12-07T10:00:00Z");
        let mut evs = vec![event(recv + Duration::seconds(298))];
        let d = adjust(&mut evs, Some(-298_000), recv);
        assert_eq!(d.corrected, 1);
        assert_eq!(d.clamped, 0);
        assert_eq!(evs[0].time, recv);
        assert!(evs[0].attributes.contains_key("source_time"));
        // No estimate (no sent_at): the future is still not believed.
        let mut evs = vec![event(recv + Duration::days(3650)), event(recv)];
        let d = adjust(&mut evs, None, recv);
        assert_eq!(
            d,
            Adjusted {
                corrected: 0,
                clamped: 1
            }
        );
        assert_eq!(evs[0].time, recv);
        assert!(!evs[1].attributes.contains_key("source_time"));
    }

    #[test]
    fn a_recorded_batch_sent_again_keeps_its_times() {
        let recv = at("2026-12-07T10:00:00Z");
        let then = at("2026-11-27T09:30:00Z");
        let mut evs = vec![event(then)];
        let d = adjust(&mut evs, Some((recv - then).num_milliseconds()), recv);
        assert_eq!(d, Adjusted::default());
        assert_eq!(evs[0].time, then);
    }

    #[test]
    fn small_offsets_are_delay_not_skew() {
        let recv = at("2026-12-07T10:00:00Z");
        let mut evs = vec![event(recv - Duration::milliseconds(800))];
        let d = adjust(&mut evs, Some(800), recv);
        assert_eq!(d, Adjusted::default());
        assert_eq!(evs[0].time, recv - Duration::milliseconds(800));
    }

    #[test]
    fn sources_are_bounded() {
        let c = SourceClocks::default();
        let now = at("2026-12-07T10:00:00Z");
        for i in 0..MAX_SOURCES + 10 {
            c.observe(
                &format!("s{i}"),
                now,
                now + Duration::milliseconds(i as i64),
            );
        }
        assert!(c.len() <= MAX_SOURCES);
        // The newest is kept.
        assert!(c.offset(&format!("s{}", MAX_SOURCES + 9)).is_some());
    }
}

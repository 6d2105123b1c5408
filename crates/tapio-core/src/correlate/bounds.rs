//! What keeps the engine bounded and calm under load, apart from its main loop: an
//! incident storm (one caller failing to many unknown addresses, or hundreds of new
//! incidents within minutes) grouped into one incident; the longest quiet incidents closed
//! at the cap; state-derived outages held for a grace period (a rollout's brief gap is
//! not a page); severity downgrades held for the quiet period.

use super::*;

impl CorrelationEngine {
    /// Whether a state-derived outage condition still holds.
    pub(super) fn outage_holds(&self, s: &Signal) -> bool {
        match s.symptom {
            Symptom::NoReadyEndpoints => self
                .state
                .ready_endpoints(&s.subject)
                .is_some_and(|(ready, _)| ready == 0),
            Symptom::WorkloadUnavailable => self
                .state
                .workloads
                .get(&s.subject)
                .is_some_and(|w| w.desired.unwrap_or(0) > 0 && w.available.unwrap_or(0) == 0),
            _ => true,
        }
    }

    /// Deferred outage signals whose grace period has passed at `now` and that still
    /// hold; the others that are due are dropped as damped.
    pub(super) fn release_deferred(&mut self, now: DateTime<Utc>) -> Vec<Derived> {
        let mut out = Vec::new();
        while self.deferred.front().is_some_and(|(due, _)| *due <= now) {
            let Some((_, s)) = self.deferred.pop_front() else {
                break;
            };
            if self.outage_holds(&s) {
                out.push(Derived::Signal(s));
            } else {
                self.damped += 1;
            }
        }
        out
    }

    /// Whether `s` is a state-derived outage that would open a new incident now: it waits.
    pub(super) fn defer(&mut self, s: &Signal) -> bool {
        if self.depth == CorrelationDepth::Basic
            || !s.strong
            || s.priority.is_some()
            || !matches!(
                s.symptom,
                Symptom::NoReadyEndpoints | Symptom::WorkloadUnavailable
            )
            || self.deferred.len() >= MAX_DEFERRED
        {
            return false;
        }
        let mut anchor = self.anchor(s);
        for _ in 0..8 {
            match self.alias.get(&anchor) {
                Some(a) if self.active.contains_key(a) => anchor = a.clone(),
                _ => break,
            }
        }
        if self.active.contains_key(&anchor) {
            return false;
        }
        self.deferred
            .push_back((s.at + Duration::seconds(OUTAGE_GRACE_SECONDS), s.clone()));
        true
    }

    /// Incidents whose held-back downgrade is due at `now`: the quiet period has passed
    /// since the higher level was last justified, and the incident is not about to
    /// resolve (a downgrade first would be one more notification saying nothing).
    pub(super) fn due_downgrades(&mut self, now: DateTime<Utc>) -> Vec<EntityKey> {
        let quiet = self.cfg.quiet;
        let mut due = Vec::new();
        let mut later = Vec::new();
        while self.downgrading.first().is_some_and(|(t, _)| *t <= now) {
            let Some((_, k)) = self.downgrading.pop_first() else {
                break;
            };
            let Some(w) = self.active.get(&k) else {
                continue;
            };
            if !w.pending_downgrade {
                continue;
            }
            let at = w.level_seen_at + quiet;
            if at > now {
                later.push((at, k));
            } else if now - w.last_symptom >= quiet && w.conditions.is_empty() {
                // It resolves in the next sweep instead; look again then.
                later.push((now + Duration::seconds(5), k));
            } else {
                due.push(k);
            }
        }
        self.downgrading.extend(later);
        due
    }

    /// Where a signal that would open a new incident on `anchor` goes instead during a
    /// storm, if anywhere (see `FANOUT_DESTINATIONS` and `STORM_OPENS`).
    pub(super) fn storm_anchor(&mut self, anchor: &EntityKey, s: &Signal) -> Option<EntityKey> {
        let now = self.clock.max(s.at);
        let storm_window = Duration::seconds(STORM_WINDOW_SECONDS);
        let recent_opens = match self.opened_at.get_mut(&s.symptom) {
            Some(q) => {
                while q.front().is_some_and(|t| now - *t > storm_window) {
                    q.pop_front();
                }
                q.len()
            }
            None => 0,
        };
        if anchor.kind == "Destination" && s.subject != *anchor && s.subject.kind != "Destination" {
            let window = self.cfg.window;
            if self.fanout.len() >= MAX_DEPS && !self.fanout.contains_key(&s.subject) {
                self.fanout.retain(|_, (t, _)| now - *t <= window);
            }
            if self.fanout.len() < MAX_DEPS || self.fanout.contains_key(&s.subject) {
                let e = self.fanout.entry(s.subject.clone()).or_insert((now, 0));
                if now - e.0 > window {
                    *e = (now, 0);
                }
                if e.1 >= FANOUT_DESTINATIONS {
                    return Some(s.subject.clone());
                }
                e.1 += 1;
            }
        }
        if recent_opens >= STORM_OPENS && !self.state.knows(anchor) {
            return Some(EntityKey::new(
                "Cluster",
                None,
                &format!("{STORM_ANCHOR}-{}", s.symptom.as_str()),
            ));
        }
        None
    }

    /// The keys of the `n` entries of `map` with the smallest `by` (ties by key), found
    /// in one pass: eviction at a cap removes a batch, so its cost is amortised.
    pub(super) fn oldest<T: Ord + Copy>(
        map: &FastMap<EntityKey, Working>,
        n: usize,
        by: impl Fn(&Working) -> T,
    ) -> Vec<EntityKey> {
        let mut v: Vec<(T, &EntityKey)> = map.iter().map(|(k, w)| (by(w), k)).collect();
        let n = n.min(v.len());
        if n == 0 {
            return Vec::new();
        }
        if n < v.len() {
            v.select_nth_unstable(n - 1);
            v.truncate(n);
        }
        v.into_iter().map(|(_, k)| k.clone()).collect()
    }

    /// At the active-incident cap: close the 1 % quiet longest, each resolved once with
    /// the reason (it is not forgotten while the store still shows it open).
    pub(super) fn evict_oldest(&mut self) {
        let n = (self.cfg.max_active / 100).max(1);
        let now = self.clock;
        for k in Self::oldest(&self.active, n, |w| (w.last_symptom, w.seq)) {
            let Some(mut w) = self.active.remove(&k) else {
                continue;
            };
            self.evicted += 1;
            w.inc.status = Status::Resolved;
            w.inc.resolved_at = Some(now.max(w.inc.updated_at));
            w.inc.updated_at = now.max(w.inc.updated_at);
            w.inc.timeline.push(TimelineEntry {
                at: now,
                kind: TimelineKind::StatusChanged,
                message: format!(
                    "closed: {} incidents were open (the cap); the longest quiet are closed so the newest can be tracked",
                    self.cfg.max_active
                ),
                count: 1,
                last_at: None,
                by: None,
            });
            self.closed.push(IncidentChange::Updated(w.inc));
        }
    }
}

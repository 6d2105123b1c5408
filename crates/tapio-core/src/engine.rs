//! The seam between the server and incident logic.
//!
//! The server owns one engine in a single task, feeds it stored evidence in storage order,
//! and persists every [`IncidentChange`] together with how far it has read. The live
//! implementation is [`crate::correlate::CorrelationEngine`].

use chrono::{DateTime, Duration, Utc};
use tapio_proto::Event;
use ulid::Ulid;

use crate::incident::*;

/// What processing one fact did to the incident set.
#[derive(Debug, Clone, PartialEq)]
pub enum IncidentChange {
    Opened(Incident),
    Updated(Incident),
}

impl IncidentChange {
    pub fn incident(&self) -> &Incident {
        match self {
            Self::Opened(i) | Self::Updated(i) => i,
        }
    }
}

pub trait IncidentEngine: Send {
    /// Load the incidents that are still active (after a restart).
    fn restore(&mut self, active: Vec<Incident>);
    /// After a warm-up (the partition's stored evidence replayed into a fresh engine, its
    /// output discarded): take the stored active incidents as the truth for what the
    /// engine rebuilt, and hold the others as `restore` does.
    fn resume(&mut self, stored: Vec<Incident>) {
        self.restore(stored);
    }
    /// Process one stored fact. Deterministic for the same facts, order and clock.
    /// Every incident the fact opened or changed (a fact may also let quiet incidents
    /// resolve).
    fn observe(&mut self, ev: &Event, now: DateTime<Utc>) -> Vec<IncidentChange>;
    /// Incidents held in memory (a gauge).
    fn active_count(&self) -> usize;
    /// `correlation-depth` changed (applied live).
    fn set_depth(&mut self, _depth: crate::config::CorrelationDepth) {}
    /// Time passes without evidence: incidents may resolve after their quiet period.
    fn tick(&mut self, _now: DateTime<Utc>) -> Vec<IncidentChange> {
        Vec::new()
    }
    /// A person acted on an incident the engine holds (acknowledge, resolve, note…): apply
    /// it to the engine's copy so later changes keep it. `None`: not held here (the caller
    /// applies it to the stored record).
    fn act(
        &mut self,
        _id: Ulid,
        _action: &crate::lifecycle::Action,
        _by: &str,
        _at: DateTime<Utc>,
    ) -> Option<Result<Incident, crate::lifecycle::ActionError>> {
        None
    }
    /// Incidents changed since they were last returned (evidence only; the engine may
    /// batch such updates): called after each chunk, before persisting.
    fn flush(&mut self) -> Vec<IncidentChange> {
        Vec::new()
    }
    /// Name shown in `/health`.
    fn name(&self) -> &'static str;
    /// The engine's clock (the newest event time it has seen or restored), if any: a new
    /// owner lets idle time pass from here, so what waits on time (a grace period, a
    /// quiet period) still comes due when no further evidence arrives.
    fn clock(&self) -> Option<DateTime<Utc>> {
        None
    }
}

/// Detection delay of an incident (first evidence to detection), never negative.
pub fn time_to_detect(inc: &Incident) -> Duration {
    (inc.detected_at - inc.started_at).max(Duration::zero())
}

//! The correlation engine: one incident per causal chain, an evidence-backed root cause,
//! the runbook's P1–P4.
//!
//! - [`state`]: the cluster as the evidence stream describes it (Kubernetes objects from
//!   `kubernetes.watch.*` events) and the entity graph.
//! - [`derive`]: evidence of every source → signals (symptoms), changes and recoveries.
//! - [`rules`]: causal knowledge as data (`rules/default.toml`, docs/rules.md).
//! - this module: the engine loop: routing each signal to the incident of its causal
//!   chain (per `correlation-depth`), merging chains, reporting changes; `route`, `group`,
//!   `rank` and `severity` hold the decisions it calls, `bounds` the storm grouping, the
//!   cap on open incidents and the held-back outages and downgrades.
//!
//! Event time is the clock: the same stream gives the same incidents, live or replayed.
//! State is bounded: objects per kind, incidents, signals per incident, changes per entity.

pub mod alerts;
mod bounds;
pub mod derive;
pub mod entity;
mod group;
mod rank;
mod route;
pub mod rules;
mod severity;
pub mod signal;
pub mod state;
mod text;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use tapio_proto::Event;
use ulid::Ulid;

use crate::config::CorrelationDepth;
use crate::engine::{IncidentChange, IncidentEngine};
use crate::incident::*;
use entity::{EntityKey, FastMap};
use group::*;
use rules::{On, Rule, render};
use signal::{Change, Derived, Signal, Symptom};
use state::ClusterState;
use text::*;

/// Tunables of the engine (documented in docs/correlation.md).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Symptoms this close in time to an incident's last one join it.
    pub window: Duration,
    /// An incident resolves after this long without a new symptom and with no condition
    /// still active (flap damping).
    pub quiet: Duration,
    /// A relapse within this long after resolution reopens the same incident.
    pub reopen: Duration,
    /// Requests/connects in a window below which an error ratio does not count (a service
    /// with almost no traffic must not page).
    pub min_traffic: f64,
    /// Below this confidence the engine says "no confident root cause".
    pub confident: f64,
    /// Weak signals of one kind on one subject within `window` that open an incident.
    pub weak_repeats: u32,
    pub max_active: usize,
    pub max_signals: usize,
    pub max_changes_per_entity: usize,
    /// Common onset (standard and deep): unexplained incidents of one namespace that began
    /// within this long of the group's first one are one incident (an alert storm).
    pub onset_window: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            window: Duration::minutes(10),
            quiet: Duration::minutes(5),
            reopen: Duration::minutes(30),
            min_traffic: 20.0,
            confident: 0.5,
            weak_repeats: 3,
            max_active: 50_000,
            max_signals: 300,
            max_changes_per_entity: 16,
            onset_window: Duration::seconds(60),
        }
    }
}

/// One incident being worked on.
struct Working {
    inc: Incident,
    anchor: EntityKey,
    signals: VecDeque<Signal>,
    /// Conditions still true (subject, symptom): an incident does not resolve while any is.
    conditions: BTreeSet<(EntityKey, Symptom)>,
    last_symptom: DateTime<Utc>,
    /// Latest error ratio per target (failed, attempts, at).
    ratios: BTreeMap<String, (f64, f64, DateTime<Utc>)>,
    ratio_intervals: BTreeMap<String, u32>,
    abstained: bool,
    /// Event time this incident was last reported as changed.
    last_emitted: DateTime<Utc>,
    /// The evidence justifies a lower severity, held back until the quiet period passes.
    pending_downgrade: bool,
    /// Last time the evidence still justified the current severity: a lower severity is
    /// applied only after the higher one has not been justified for the quiet period.
    level_seen_at: DateTime<Utc>,
    /// (symptom, subject) pairs already part of the chain: a repeat only adds evidence,
    /// it does not re-run severity and rules.
    seen: BTreeSet<(Symptom, EntityKey)>,
    /// Entities with strong symptoms in this incident: when each began failing and how
    /// hard it is hit (bounded; the common-onset hypothesis reads it).
    members: BTreeMap<EntityKey, Member>,
    /// Formed by common onset: several unexplained failures of one namespace at once.
    onset_group: bool,
    /// Order in which incidents were opened (processing order): in a common-onset merge
    /// the one reported first survives, so nobody hears of an incident twice.
    seq: u64,
    /// Several nodes failing together that share a node group or zone the healthy nodes
    /// do not: the common factor is the cause (one incident, not one per node).
    factor: Option<Factor>,
    /// Workloads whose pods ran on this chain's failed node (the node lifecycle
    /// controller's "Node is not ready" on their pods): they lost capacity to it, whether
    /// or not they show a symptom of their own (bounded).
    hosted: BTreeSet<EntityKey>,
}

#[derive(Debug, Clone)]
struct Factor {
    cause: &'static str,
    entity: EntityKey,
    nodes: Vec<String>,
    of: usize,
}

const NODE_GROUP_FAILURE: &str = "node_group_failure";
const ZONE_FAILURE: &str = "zone_failure";

/// Node failures that begin this close together can share a cause.
const FACTOR_WINDOW_MINUTES: i64 = 15;

/// One entity failing within an incident.
#[derive(Debug, Clone, Copy)]
struct Member {
    first: DateTime<Utc>,
    /// Highest error ratio seen (0..1), highest latency (s); 0 when unknown.
    ratio: f64,
    latency: f64,
    strong: u32,
}

impl Member {
    fn absorb(&mut self, o: &Member) {
        self.first = self.first.min(o.first);
        self.ratio = self.ratio.max(o.ratio);
        self.latency = self.latency.max(o.latency);
        self.strong = self.strong.saturating_add(o.strong);
    }

    /// How hard it is hit: error ratio first, then latency, then how many strong symptoms.
    fn hit(&self, other: &Member) -> std::cmp::Ordering {
        self.ratio
            .total_cmp(&other.ratio)
            .then(self.latency.total_cmp(&other.latency))
            .then(self.strong.cmp(&other.strong))
    }
}

pub struct CorrelationEngine {
    cfg: EngineConfig,
    depth: CorrelationDepth,
    rules: Vec<Rule>,
    pub state: ClusterState,
    active: FastMap<EntityKey, Working>,
    recent: FastMap<EntityKey, Working>,
    changes: FastMap<EntityKey, VecDeque<Change>>,
    weak: FastMap<(EntityKey, Symptom), (u32, DateTime<Utc>)>,
    /// Weak signals not (yet) part of an incident, per anchor: they join the incident
    /// if one opens within the window (bounded).
    pending: FastMap<EntityKey, VecDeque<Signal>>,
    /// Caller → destinations it was seen connecting to (learned dependency graph).
    deps: FastMap<EntityKey, BTreeSet<EntityKey>>,
    /// Destination → the incident its error ratios feed (healthy statistics then update
    /// that ratio without routing).
    ratio_route: FastMap<EntityKey, EntityKey>,
    /// Incidents changed (evidence only) but not yet reported: `flush` reports them.
    dirty: BTreeSet<EntityKey>,
    /// Anchor of a merged incident → the anchor of the incident it joined.
    alias: FastMap<EntityKey, EntityKey>,
    /// A caller seen failing to reach an incident's entity → that incident: the caller's
    /// own symptoms are part of the same chain.
    failing_callers: FastMap<EntityKey, EntityKey>,
    clock: DateTime<Utc>,
    last_sweep: DateTime<Utc>,
    pub abstentions: u64,
    pub signals_seen: u64,
    opened_seq: u64,
    /// Node → the Services its pods were seen connecting to (connect statistics are per
    /// node): a workload on that node may call them (bounded).
    node_calls: FastMap<String, BTreeSet<EntityKey>>,
    /// Outage conditions read from the state (no ready endpoints, no replica available)
    /// that would open a new incident wait out a grace period: replacement pods of a
    /// drain or a rollout are usually ready within it. Released when due if the state
    /// still shows the outage; dropped (and counted) if it cleared. Bounded.
    deferred: VecDeque<(DateTime<Utc>, Signal)>,
    /// Outage conditions that cleared within their grace period (never an incident).
    pub damped: u64,
    /// Held-back downgrades by the time they come due (`level_seen_at` + quiet): each
    /// event looks only at the front. Entries may be stale; `due_downgrades` checks.
    downgrading: BTreeSet<(DateTime<Utc>, EntityKey)>,
    /// When recent incidents opened (engine time, bounded): the storm guard's rate.
    /// Per symptom: one storm of refusals must not swallow an unrelated OOM kill.
    opened_at: FastMap<Symptom, VecDeque<DateTime<Utc>>>,
    /// Caller → (window start, unknown destinations it failed to reach that opened their
    /// own incident in the window): past `FANOUT_DESTINATIONS` the caller is the incident.
    fanout: FastMap<EntityKey, (DateTime<Utc>, u32)>,
    /// Signals a storm folded into one incident instead of a new one each (counted).
    pub storm_grouped: u64,
    /// Incidents closed because the active-incident cap was reached (counted).
    pub evicted: u64,
    /// Changes made outside `process` (incidents closed at the cap), reported next.
    closed: Vec<IncidentChange>,
}

/// Fewer failed-connect reports than this in an incident's window are too rare to be a
/// feature unavailable (P4): traffic volume decides severity.
const RARE_FAILURES: usize = 3;

/// How long volume mount failures must go on before they are an incident.
const MOUNT_PERSIST_SECONDS: i64 = 60;

/// A caller that fails to reach this many distinct addresses nobody in the cluster owns
/// within the window is their common factor: further ones join one incident on it.
const FANOUT_DESTINATIONS: u32 = 4;
/// Incidents opened by one symptom within `STORM_WINDOW_SECONDS` beyond which a new
/// incident of that symptom on an entity the cluster state does not know (an address, a
/// name only evidence claims) joins the storm's one incident instead: the number of
/// distinct things a storm creates is bounded, and other symptoms still open their own.
const STORM_OPENS: usize = 200;
const STORM_WINDOW_SECONDS: i64 = 300;
/// The name of a storm's incident (`Cluster/incident-storm-<symptom>`): a bucket, not a
/// cause, so it never merges with another incident.
pub const STORM_ANCHOR: &str = "incident-storm";

fn is_storm(k: &EntityKey) -> bool {
    k.kind == "Cluster" && k.name.starts_with(STORM_ANCHOR)
}

/// How long a state-derived outage must last before it opens an incident by itself.
const OUTAGE_GRACE_SECONDS: i64 = 30;
const MAX_DEFERRED: usize = 10_000;

const MAX_DEPS: usize = 100_000;
const MAX_RECENT: usize = 10_000;
/// (symptom, entity) pairs and conditions tracked per incident: what a storm of distinct
/// names can add to one incident is bounded.
const MAX_SEEN: usize = 4_096;
/// Entities tracked per incident for the common-onset hypothesis.
const MAX_MEMBERS: usize = 256;
/// The cause kind of a common-onset group: the likely origin of a cascade whose path is
/// not known (no dependency, no rule).
pub const CASCADE_ORIGIN: &str = "cascade_origin";
/// At most one report per this many seconds for an incident that only gained evidence.
const EMIT_EVERY_SECONDS: i64 = 5;

impl CorrelationEngine {
    pub fn new(cfg: EngineConfig, rules: Vec<Rule>, depth: CorrelationDepth) -> Self {
        Self {
            cfg,
            depth,
            rules,
            state: ClusterState::default(),
            active: FastMap::default(),
            recent: FastMap::default(),
            changes: FastMap::default(),
            weak: FastMap::default(),
            pending: FastMap::default(),
            ratio_route: FastMap::default(),
            alias: FastMap::default(),
            dirty: BTreeSet::new(),
            failing_callers: FastMap::default(),
            deps: FastMap::default(),
            clock: DateTime::<Utc>::MIN_UTC,
            last_sweep: DateTime::<Utc>::MIN_UTC,
            abstentions: 0,
            signals_seen: 0,
            opened_seq: 0,
            deferred: VecDeque::new(),
            damped: 0,
            node_calls: FastMap::default(),
            downgrading: BTreeSet::new(),
            opened_at: FastMap::default(),
            fanout: FastMap::default(),
            storm_grouped: 0,
            evicted: 0,
            closed: Vec::new(),
        }
    }

    pub fn with_defaults(depth: CorrelationDepth) -> Self {
        Self::new(EngineConfig::default(), rules::default_rules(), depth)
    }

    pub fn depth(&self) -> CorrelationDepth {
        self.depth
    }

    /// Switch depth live: applies to the next signal; open incidents keep their grouping.
    pub fn set_depth(&mut self, depth: CorrelationDepth) {
        if depth != self.depth {
            // The next signal of each open incident re-runs its analysis at the new depth.
            for w in self.active.values_mut() {
                w.seen.clear();
            }
        }
        self.depth = depth;
    }

    pub fn set_rules(&mut self, rules: Vec<Rule>) {
        self.rules = rules;
    }

    /// Advance the clock without evidence (live: idle time passes), resolving quiet
    /// incidents. Returns the incidents that changed.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<IncidentChange> {
        if now > self.clock {
            self.clock = now;
        }
        let released = self.release_deferred(now);
        let mut out = if released.is_empty() {
            Vec::new()
        } else {
            self.process(released)
        };
        let due = self.due_downgrades(now);
        for k in due {
            self.evaluate(&k);
            if let Some(w) = self.active.get(&k) {
                out.push(IncidentChange::Updated(w.inc.clone()));
            }
        }
        out.extend(self.sweep(true));
        out
    }

    /// Every incident still held (open or recently resolved), for evaluation.
    pub fn incidents(&self) -> Vec<Incident> {
        let mut v: Vec<Incident> = self
            .active
            .values()
            .chain(self.recent.values())
            .map(|w| w.inc.clone())
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }

    fn record_change(&mut self, c: Change) -> Vec<EntityKey> {
        let q = self.changes.entry(c.entity.clone()).or_default();
        q.push_back(c.clone());
        while q.len() > self.cfg.max_changes_per_entity {
            q.pop_front();
        }
        if self.changes.len() > MAX_DEPS {
            let horizon = self.clock - Duration::hours(6);
            self.changes
                .retain(|_, q| q.back().is_some_and(|c| c.at > horizon));
        }
        // Incidents this change may explain: on the entity, or using it (config).
        let mut touched = Vec::new();
        for (k, w) in &self.active {
            let related = *k == c.entity
                || w.signals.iter().any(|s| s.subject == c.entity)
                || (c.kind == "config" && self.uses_config(k, &c.entity));
            if related {
                touched.push(k.clone());
            }
        }
        touched
    }

    fn uses_config(&self, workload: &EntityKey, config: &EntityKey) -> bool {
        self.state.configs_of(workload).contains(config)
    }

    fn open(&mut self, anchor: &EntityKey, s: &Signal) -> &mut Working {
        let identity = Identity {
            cluster: None,
            namespace: anchor.namespace.clone(),
            kind: anchor.kind.clone(),
            name: anchor.name.clone(),
            problem: "chain".into(),
        };
        let fp = identity.fingerprint();
        let id = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(fp.as_bytes());
            h.update(s.evidence.to_bytes());
            let d = h.finalize();
            let mut random = [0u8; 16];
            random[6..].copy_from_slice(&d[..10]);
            Ulid::from_parts(
                u64::try_from(s.at.timestamp_millis()).unwrap_or(0),
                u128::from_be_bytes(random),
            )
        };
        let inc = Incident {
            id,
            title: format!("{} on {anchor}", human(s.symptom)),
            severity: Severity::P4,
            severity_reason: String::new(),
            status: Status::Open,
            fingerprint: fp,
            identity,
            started_at: s.at,
            // Detected when the engine saw it (an outage that waited out its grace period,
            // evidence delivered late), never before it happened.
            detected_at: self.clock.max(s.at),
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            updated_at: s.at,
            last_evidence_at: s.at,
            namespace: anchor.namespace.clone(),
            affected: Vec::new(),
            evidence: Vec::new(),
            evidence_count: 0,
            timeline: vec![TimelineEntry {
                at: s.at,
                kind: TimelineKind::Detected,
                message: format!("detected: {}", s.detail),
                count: 1,
                last_at: None,
                by: None,
            }],
            hypotheses: Vec::new(),
            root_cause_confident: false,
            changes: Vec::new(),
            merged_into: None,
            peak_severity: None,
            severity_set_by: None,
        };
        if self.active.len() >= self.cfg.max_active {
            self.evict_oldest();
        }
        let q = self.opened_at.entry(s.symptom).or_default();
        q.push_back(self.clock.max(s.at));
        while q.len() > STORM_OPENS {
            q.pop_front();
        }
        self.active.insert(
            anchor.clone(),
            Working {
                inc,
                anchor: anchor.clone(),
                signals: VecDeque::new(),
                conditions: BTreeSet::new(),
                last_symptom: s.at,
                ratios: BTreeMap::new(),
                ratio_intervals: BTreeMap::new(),
                abstained: false,
                level_seen_at: s.at,
                last_emitted: s.at,
                pending_downgrade: false,
                seen: BTreeSet::new(),
                members: BTreeMap::new(),
                onset_group: false,
                seq: self.opened_seq,
                factor: None,
                hosted: BTreeSet::new(),
            },
        );
        self.opened_seq += 1;
        self.active.get_mut(anchor).expect("just inserted")
    }

    /// Learns the dependency graph (who calls whom) and which Services each node's
    /// connections reach from one signal's target.
    fn learn_calls(&mut self, s: &Signal) {
        if let Some(t) = &s.target
            && t.kind != "Destination"
            && s.subject != *t
            && (self.deps.len() < MAX_DEPS || self.deps.contains_key(&s.subject))
        {
            let set = self.deps.entry(s.subject.clone()).or_default();
            if set.len() < 64 {
                set.insert(t.clone());
            }
        }
        if s.symptom == Symptom::ConnectStats
            && s.subject.kind == "Node"
            && let Some(t) = &s.target
            && t.kind == "Service"
            && (self.node_calls.len() < MAX_DEPS || self.node_calls.contains_key(&s.subject.name))
            && !self
                .node_calls
                .get(&s.subject.name)
                .is_some_and(|set| set.contains(t))
        {
            let set = self.node_calls.entry(s.subject.name.clone()).or_default();
            if set.len() < 64 {
                set.insert(t.clone());
            }
        }
    }

    /// A weak signal on an anchor without an incident: counted per (anchor, symptom)
    /// within the window; whether it has now repeated enough (and, for a mount, persisted)
    /// to open one.
    fn weak_repeated(&mut self, anchor: &EntityKey, s: &Signal) -> bool {
        let key = (anchor.clone(), s.symptom);
        let e = self.weak.entry(key).or_insert((0, s.at));
        if s.at - e.1 > self.cfg.window {
            *e = (0, s.at);
        }
        e.0 += 1;
        // A pod pending briefly is normal (the autoscaler adds a node): scheduling
        // must fail a few more times before it is an incident.
        let need = if s.symptom == Symptom::Unschedulable {
            self.cfg.weak_repeats + 2
        } else {
            self.cfg.weak_repeats
        };
        // A mount failing while a pod starts (a Secret or ConfigMap not synced yet)
        // retries within seconds and clears: it must persist a minute to count.
        let persisted = s.symptom != Symptom::MountFailed
            || s.at - e.1 >= Duration::seconds(MOUNT_PERSIST_SECONDS);
        let opens = e.0 >= need && persisted;
        if self.weak.len() > MAX_DEPS {
            let horizon = s.at - self.cfg.window;
            self.weak.retain(|_, v| v.1 > horizon);
        }
        opens
    }

    fn handle_signal(
        &mut self,
        s: Signal,
        touched: &mut BTreeSet<EntityKey>,
        opened: &mut BTreeSet<EntityKey>,
        novel: &mut BTreeSet<EntityKey>,
    ) {
        self.signals_seen += 1;
        self.learn_calls(&s);
        // Connect statistics without failures only feed ratios of existing incidents.
        let failing_ratio = s.ratio.is_some_and(|(f, _)| f > 0.0);
        if s.symptom == Symptom::ConnectStats && !failing_ratio {
            if let Some(t) = &s.target
                && let Some(anchor) = self.ratio_route.get(t).cloned()
                && self.active.contains_key(&anchor)
            {
                if self.attach(&anchor, s) {
                    novel.insert(anchor.clone());
                }
                touched.insert(anchor);
            }
            return;
        }
        let mut anchor = self.anchor(&s);
        for _ in 0..8 {
            match self.alias.get(&anchor) {
                Some(a) if self.active.contains_key(a) => anchor = a.clone(),
                _ => break,
            }
        }
        let exists = self.active.contains_key(&anchor);
        if !exists {
            if s.symptom == Symptom::ConnectStats && !failing_ratio {
                return;
            }
            let mut opens = s.strong;
            if !opens && !s.joins_only {
                opens = self.weak_repeated(&anchor, &s);
            }
            if !opens {
                if self.pending.len() < MAX_DEPS || self.pending.contains_key(&anchor) {
                    let q = self.pending.entry(anchor.clone()).or_default();
                    q.push_back(s);
                    while q.len() > 20 {
                        q.pop_front();
                    }
                }
                return;
            }
            // A storm (one caller failing to many unknown addresses; hundreds of new
            // incidents within minutes) adds to one incident instead of opening more.
            if let Some(storm) = self.storm_anchor(&anchor, &s) {
                self.storm_grouped += 1;
                anchor = storm;
                for _ in 0..8 {
                    match self.alias.get(&anchor) {
                        Some(a) if self.active.contains_key(a) => anchor = a.clone(),
                        _ => break,
                    }
                }
            }
            if self.active.contains_key(&anchor) {
                // Joins the storm's incident (below).
            } else if let Some(mut w) = self.recent.remove(&anchor) {
                if s.at - w.inc.resolved_at.unwrap_or(s.at) <= self.cfg.reopen {
                    w.inc.status = Status::Open;
                    w.inc.resolved_at = None;
                    w.inc.timeline.push(TimelineEntry {
                        at: s.at,
                        kind: TimelineKind::StatusChanged,
                        message: format!("reopened: relapse ({})", s.detail),
                        count: 1,
                        last_at: None,
                        by: None,
                    });
                    self.active.insert(anchor.clone(), w);
                } else {
                    self.open(&anchor, &s);
                    opened.insert(anchor.clone());
                }
            } else {
                self.open(&anchor, &s);
                opened.insert(anchor.clone());
            }
        }
        // Weak signals seen just before on the same anchor belong to the chain.
        if let Some(q) = self.pending.remove(&anchor) {
            let window = self.cfg.window;
            for p in q {
                if s.at - p.at <= window && p.at <= s.at {
                    let _ = self.attach(&anchor, p);
                }
            }
        }
        if self.attach(&anchor, s) || opened.contains(&anchor) {
            novel.insert(anchor.clone());
        }
        touched.insert(anchor);
    }

    /// Where later evidence about this signal's target goes: its ratio statistics (by
    /// target) and its failing caller (by subject) are routed to `anchor`'s incident.
    fn remember_routes(&mut self, anchor: &EntityKey, s: &Signal, failing_ratio: bool) {
        if s.ratio.is_some()
            && let Some(t) = &s.target
        {
            if self.ratio_route.len() > MAX_DEPS {
                let active = &self.active;
                self.ratio_route.retain(|_, a| active.contains_key(a));
            }
            self.ratio_route.insert(t.clone(), anchor.clone());
        }
        if (matches!(
            s.symptom,
            Symptom::ConnRefused | Symptom::ConnTimeout | Symptom::ConnError | Symptom::DnsFailure
        ) || (s.symptom == Symptom::ConnectStats && failing_ratio))
            && s.target.as_ref().is_some_and(|t| *t != s.subject)
            && s.subject.kind != "Node"
        {
            {
                if self.failing_callers.len() > MAX_DEPS {
                    let active = &self.active;
                    self.failing_callers.retain(|_, a| active.contains_key(a));
                }
                self.failing_callers
                    .insert(s.subject.clone(), anchor.clone());
            }
        }
    }

    /// Add a signal to an incident; true when it can change severity or hypotheses.
    fn attach(&mut self, anchor: &EntityKey, s: Signal) -> bool {
        let max_signals = self.cfg.max_signals;
        // A Service is served by workloads: they are affected too.
        let mut behind: Vec<EntityKey> = Vec::new();
        for e in [Some(&s.subject), s.target.as_ref()].into_iter().flatten() {
            if e.kind == "Service" {
                behind.extend(self.state.workloads_of(e));
            }
        }
        let failing_ratio = s.ratio.is_some_and(|(f, _)| f > 0.0);
        self.remember_routes(anchor, &s, failing_ratio);
        let Some(w) = self.active.get_mut(anchor) else {
            return false;
        };
        let cond_new = is_condition(s.symptom)
            && w.conditions.len() < MAX_SEEN
            && w.conditions.insert((s.subject.clone(), s.symptom));
        // A ratio is news when it moves to another severity band or becomes sustained.
        let band = |f: f64, a: f64| {
            let r = if a > 0.0 { f / a } else { 0.0 };
            if r >= 0.99 {
                3
            } else if r > crate::classify::P2_ERROR_RATIO {
                2
            } else if r >= crate::classify::P3_ERROR_RATIO {
                1
            } else {
                0
            }
        };
        let ratio_news = s.ratio.is_some_and(|(f, a)| {
            let key = ratio_key(&s);
            match w.ratios.get(&key) {
                None => true,
                Some((pf, pa, _)) => {
                    band(*pf, *pa) != band(f, a)
                        || w.ratio_intervals.get(&key).copied().unwrap_or(0) == 1
                }
            }
        });
        // Bounded: a storm of made-up names must not grow an incident without limit.
        let novel = (w.seen.len() < MAX_SEEN && w.seen.insert((s.symptom, s.subject.clone())))
            || cond_new
            || ratio_news
            || s.latency_s.is_some()
            || s.priority.is_some();
        if s.at < w.inc.started_at {
            w.inc.started_at = s.at;
        }
        if s.symptom != Symptom::ConnectStats || failing_ratio {
            w.last_symptom = w.last_symptom.max(s.at);
        }
        let inc = &mut w.inc;
        inc.evidence_count += 1;
        if inc.evidence.len() < MAX_EVIDENCE_REFS
            && !inc.evidence.iter().any(|r| r.id == s.evidence)
        {
            inc.evidence.push(EvidenceRef {
                id: s.evidence,
                time: s.at,
                kind: s.symptom.as_str().into(),
                entity: s.subject.to_string(),
            });
        }
        inc.last_evidence_at = inc.last_evidence_at.max(s.at);
        inc.updated_at = inc.updated_at.max(s.at);
        // A node condition's target is a workload that had pods there: hosted, not (yet)
        // showing a symptom of its own.
        let hosted = s.symptom.is_node_condition() && s.subject.kind == "Node";
        if hosted
            && let Some(t) = &s.target
            && w.hosted.len() < MAX_AFFECTED
        {
            w.hosted.insert(t.clone());
        }
        let inc = &mut w.inc;
        for a in [
            Some(s.subject.to_string()),
            s.node.as_ref().map(|n| EntityKey::node(n).to_string()),
            s.target.as_ref().filter(|_| !hosted).map(|t| t.to_string()),
        ]
        .into_iter()
        .flatten()
        .chain(behind.iter().map(|b| b.to_string()))
        {
            if inc.affected.len() < MAX_AFFECTED && !inc.affected.contains(&a) {
                inc.affected.push(a);
            }
        }
        if s.symptom != Symptom::ConnectStats || failing_ratio {
            push_timeline(
                inc,
                TimelineEntry {
                    at: s.at,
                    kind: TimelineKind::Evidence,
                    message: s.detail.clone(),
                    count: 1,
                    last_at: None,
                    by: None,
                },
            );
        }
        if s.strong
            && s.subject.namespace.is_some()
            && !matches!(s.subject.kind.as_str(), "Node" | "Cluster" | "Destination")
            && (w.members.len() < MAX_MEMBERS || w.members.contains_key(&s.subject))
        {
            let ratio = s.ratio.map_or(0.0, |(f, a)| {
                if a > 0.0 {
                    (f / a).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            });
            let m = Member {
                first: s.at,
                ratio: if ratio.is_finite() { ratio } else { 0.0 },
                latency: s
                    .latency_s
                    .filter(|l| l.is_finite())
                    .unwrap_or(0.0)
                    .max(0.0),
                strong: 1,
            };
            w.members
                .entry(s.subject.clone())
                .and_modify(|x| x.absorb(&m))
                .or_insert(m);
        }
        if let Some((f, a)) = s.ratio {
            let key = ratio_key(&s);
            let n = w.ratio_intervals.entry(key.clone()).or_insert(0);
            let over = a > 0.0 && f / a > crate::classify::P3_ERROR_RATIO;
            *n = if over { n.saturating_add(1) } else { 0 };
            w.ratios.insert(key, (f, a, s.at));
        }
        w.signals.push_back(s);
        while w.signals.len() > max_signals {
            w.signals.pop_front();
        }
        novel
    }

    fn recover(
        &mut self,
        subject: &EntityKey,
        symptom: Symptom,
        touched: &mut BTreeSet<EntityKey>,
    ) {
        for (k, w) in self.active.iter_mut() {
            let before = w.conditions.len();
            w.conditions.retain(|(s, sym)| {
                !(s == subject
                    && (*sym == symptom
                        || (symptom == Symptom::CrashLoop
                            && matches!(
                                sym,
                                Symptom::CrashLoop
                                    | Symptom::ImagePullFailed
                                    | Symptom::ConfigError
                            ))))
            });
            if symptom == Symptom::Alert {
                // A resolved alert ends its ratio and condition.
                w.conditions
                    .retain(|(s, sym)| !(s == subject && *sym == Symptom::Alert));
                w.ratios.retain(|_, (_, a, _)| *a < 1e6 - 1.0);
            }
            if w.conditions.len() != before || symptom == Symptom::Alert {
                touched.insert(k.clone());
            }
        }
    }

    /// Resolve incidents quiet for `quiet` with no condition still true.
    fn sweep(&mut self, force: bool) -> Vec<IncidentChange> {
        if !force && self.clock - self.last_sweep < Duration::seconds(5) {
            return Vec::new();
        }
        self.last_sweep = self.clock;
        let quiet = self.cfg.quiet;
        let now = self.clock;
        let done: Vec<EntityKey> = self
            .active
            .iter()
            .filter(|(_, w)| now - w.last_symptom >= quiet && w.conditions.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for k in done {
            if let Some(mut w) = self.active.remove(&k) {
                w.inc.status = Status::Resolved;
                w.inc.resolved_at = Some(now);
                w.inc.updated_at = now;
                w.inc.timeline.push(TimelineEntry {
                    at: now,
                    kind: TimelineKind::StatusChanged,
                    message: format!(
                        "resolved: no new symptom for {} min and no condition still active",
                        quiet.num_minutes()
                    ),
                    count: 1,
                    last_at: None,
                    by: None,
                });
                out.push(IncidentChange::Updated(w.inc.clone()));
                if self.recent.len() >= MAX_RECENT {
                    for old in Self::oldest(&self.recent, MAX_RECENT / 100, |w| {
                        (w.inc.resolved_at, w.seq)
                    }) {
                        self.recent.remove(&old);
                    }
                }
                self.recent.insert(k, w);
            }
        }
        let window = self.cfg.window;
        self.pending
            .retain(|_, q| q.back().is_some_and(|s| now - s.at <= window));
        self.weak.retain(|_, v| now - v.1 <= window);
        let horizon = now - self.cfg.reopen;
        self.recent
            .retain(|_, w| w.inc.resolved_at.is_none_or(|r| r > horizon));
        out
    }

    /// Apply what evidence (or the clock) brought: signals, changes, recoveries; then
    /// merge, group and report.
    fn process(&mut self, derived: Vec<Derived>) -> Vec<IncidentChange> {
        let mut touched = BTreeSet::new();
        let mut opened = BTreeSet::new();
        // Incidents whose analysis may change (others only gained evidence).
        let mut novel = BTreeSet::new();
        for d in derived {
            match d {
                Derived::Signal(s) => self.handle_signal(s, &mut touched, &mut opened, &mut novel),
                Derived::Change(c) => {
                    for k in self.record_change(c) {
                        touched.insert(k.clone());
                        novel.insert(k);
                    }
                }
                Derived::Recovery(r) => {
                    let mut rec = BTreeSet::new();
                    self.recover(&r.subject, r.symptom, &mut rec);
                    touched.extend(rec.iter().cloned());
                    novel.extend(rec);
                }
            }
        }
        let mut out = std::mem::take(&mut self.closed);
        let mut merged: Vec<Incident> = Vec::new();
        // A held-back downgrade is due once the quiet period has passed.
        for k in self.due_downgrades(self.clock) {
            novel.insert(k.clone());
            touched.insert(k);
        }
        let mut touched: Vec<EntityKey> = touched.into_iter().collect();
        for k in &novel {
            self.evaluate(k);
        }
        let mut absorbed: BTreeSet<EntityKey> = BTreeSet::new();
        self.join_chains(&novel, &mut touched, &mut merged, &mut absorbed);
        self.join_causes(&novel, &mut touched, &mut merged, &mut absorbed);
        self.join_common_factors(&novel, &mut touched, &mut merged, &mut absorbed);
        self.emit(&touched, &absorbed, &opened, &novel, &mut merged, &mut out);
        // A merged incident that was never reported as opened is not reported at all.
        for m in merged {
            if !opened
                .iter()
                .any(|k| self.recent.get(k).is_some_and(|w| w.inc.id == m.id))
            {
                out.push(IncidentChange::Updated(m));
            }
        }
        out.extend(self.sweep(false));
        out
    }

    /// Symptom-only incidents join the confident chain that involves them (one of a
    /// pair absorbs the other, or both started together).
    fn join_chains(
        &mut self,
        novel: &BTreeSet<EntityKey>,
        touched: &mut Vec<EntityKey>,
        merged: &mut Vec<Incident>,
        absorbed: &mut BTreeSet<EntityKey>,
    ) {
        for j in novel.iter().cloned().collect::<Vec<_>>() {
            if self.depth == CorrelationDepth::Basic {
                return;
            }
            let candidates = self.merge_candidates(&j);
            for k in candidates {
                let mut onset = false;
                let pair = if self.absorbs(&j, &k) {
                    Some((k.clone(), j.clone()))
                } else if !touched.contains(&k) && self.absorbs(&k, &j) {
                    Some((j.clone(), k.clone()))
                } else {
                    onset = true;
                    self.onset_pair(&j, &k)
                };
                if let Some((from, into)) = pair
                    && let Some(gone) = self.merge(&from, &into)
                {
                    if onset && let Some(w) = self.active.get_mut(&into) {
                        w.onset_group = true;
                    }
                    self.evaluate(&into);
                    merged.push(gone);
                    absorbed.insert(from);
                    if !touched.contains(&into) {
                        touched.push(into);
                    }
                    if !self.active.contains_key(&j) {
                        break;
                    }
                }
            }
        }
    }

    /// Incidents whose confident cause is an incident that now exists join it.
    fn join_causes(
        &mut self,
        novel: &BTreeSet<EntityKey>,
        touched: &mut Vec<EntityKey>,
        merged: &mut Vec<Incident>,
        absorbed: &mut BTreeSet<EntityKey>,
    ) {
        if self.depth != CorrelationDepth::Basic {
            for j in novel.iter().cloned().collect::<Vec<_>>() {
                if !self.active.contains_key(&j) {
                    continue;
                }
                let name = j.to_string();
                let followers: Vec<EntityKey> = self
                    .active
                    .iter()
                    .filter(|(k, w)| {
                        **k != j
                            && w.inc.root_cause_confident
                            && w.inc.hypotheses.first().is_some_and(|h| h.entity == name)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in followers {
                    if let Some(gone) = self.merge(&k, &j) {
                        merged.push(gone);
                        absorbed.insert(k);
                        if !touched.contains(&j) {
                            touched.push(j.clone());
                        }
                    }
                }
                if absorbed.iter().any(|a| self.alias.get(a) == Some(&j)) {
                    self.evaluate(&j);
                }
            }
        }
    }

    /// Several nodes, or several workloads on the nodes of one group, failing together:
    /// one incident on what they share.
    fn join_common_factors(
        &mut self,
        novel: &BTreeSet<EntityKey>,
        touched: &mut Vec<EntityKey>,
        merged: &mut Vec<Incident>,
        absorbed: &mut BTreeSet<EntityKey>,
    ) {
        // Several nodes failing together: one incident on what they share.
        if self.depth != CorrelationDepth::Basic
            && novel
                .iter()
                .any(|k| k.kind == "Node" && self.active.contains_key(k))
        {
            for (from, into) in self.common_factor() {
                if let Some(gone) = self.merge(&from, &into) {
                    merged.push(gone);
                    absorbed.insert(from);
                    if !touched.contains(&into) {
                        touched.push(into.clone());
                    }
                }
            }
            let grouped: Vec<EntityKey> = self
                .active
                .iter()
                .filter(|(_, w)| w.factor.is_some())
                .map(|(k, _)| k.clone())
                .collect();
            for k in grouped {
                self.evaluate(&k);
            }
        }
        // Several workloads failing only on the nodes of one node group, their replicas
        // elsewhere healthy: the group (its image, runtime) is the common factor.
        if self.depth != CorrelationDepth::Basic
            && novel.iter().any(|k| k.is_workload() || k.kind == "Service")
        {
            let pairs = self.workload_factor();
            for (from, into) in pairs {
                if let Some(gone) = self.merge(&from, &into) {
                    merged.push(gone);
                    absorbed.insert(from);
                    if !touched.contains(&into) {
                        touched.push(into.clone());
                    }
                }
            }
            let grouped: Vec<EntityKey> = self
                .active
                .iter()
                .filter(|(k, w)| w.factor.is_some() && k.kind != "Node")
                .map(|(k, _)| k.clone())
                .collect();
            for k in grouped {
                self.evaluate(&k);
            }
        }
    }

    /// Reports the touched incidents: merged into another one, or opened or changed in
    /// analysis (at once), or only grown (at most every few seconds of event time).
    fn emit(
        &mut self,
        touched: &[EntityKey],
        absorbed: &BTreeSet<EntityKey>,
        opened: &BTreeSet<EntityKey>,
        novel: &BTreeSet<EntityKey>,
        merged: &mut Vec<Incident>,
        out: &mut Vec<IncidentChange>,
    ) {
        for k in touched {
            if absorbed.contains(k) {
                continue;
            }
            if let Some(target) = self.merge_target(k)
                && let Some(gone) = self.merge(k, &target)
            {
                self.evaluate(&target);
                merged.push(gone);
                if let Some(w) = self.active.get(&target) {
                    out.push(IncidentChange::Updated(w.inc.clone()));
                }
                continue;
            }
            // Repeats of known symptoms only add evidence: report such an incident at most
            // every few seconds of event time (copying a large incident per fact would be
            // most of the cost); anything that changes its analysis is reported at once.
            let now = self.clock;
            if let Some(w) = self.active.get_mut(k) {
                let due = opened.contains(k)
                    || novel.contains(k)
                    || now - w.last_emitted >= Duration::seconds(EMIT_EVERY_SECONDS);
                if !due {
                    self.dirty.insert(k.clone());
                    continue;
                }
                w.last_emitted = now;
                self.dirty.remove(k);
                out.push(if opened.contains(k) {
                    IncidentChange::Opened(w.inc.clone())
                } else {
                    IncidentChange::Updated(w.inc.clone())
                });
            }
        }
    }

    /// Recompute severity and hypotheses of one incident.
    fn evaluate(&mut self, key: &EntityKey) {
        let Some(w) = self.active.get(key) else {
            return;
        };
        let (sev, reason) = self.severity(w);
        let (hyps, changes) = if self.depth == CorrelationDepth::Basic {
            (Vec::new(), Vec::new())
        } else {
            self.hypotheses(w)
        };
        let confident = hyps
            .first()
            .is_some_and(|h| h.confidence >= self.cfg.confident);
        let Some(w) = self.active.get_mut(key) else {
            return;
        };
        let at = w.last_symptom.max(w.inc.updated_at).max(self.clock);
        // A severity a person set stays: detection keeps its evidence and hypotheses but
        // no longer re-classifies.
        if w.inc.severity_set_by.is_none() {
            let first = w.inc.severity_reason.is_empty();
            // Up at once; down only once the higher level has not been justified for the
            // quiet period (readiness flapping must not flap the page).
            let sev = if first || sev <= w.inc.severity || at - w.level_seen_at >= self.cfg.quiet {
                w.level_seen_at = at;
                w.pending_downgrade = false;
                sev
            } else {
                w.pending_downgrade = true;
                self.downgrading
                    .insert((w.level_seen_at + self.cfg.quiet, key.clone()));
                w.inc.severity
            };
            let reason = if sev == w.inc.severity && !first && reason_sev(&reason) != Some(sev) {
                w.inc.severity_reason.clone()
            } else {
                reason
            };
            if sev != w.inc.severity || first {
                if !w.inc.severity_reason.is_empty() {
                    w.inc.timeline.push(TimelineEntry {
                        at,
                        kind: TimelineKind::SeverityChanged,
                        message: format!("severity {} → {sev}: {reason}", w.inc.severity),
                        count: 1,
                        last_at: None,
                        by: None,
                    });
                }
                w.inc.severity = sev;
            }
            w.inc.severity_reason = reason;
            w.inc.peak_severity = Some(w.inc.peak_severity.map_or(sev, |p| p.min(sev)));
        }
        let old_top = w
            .inc
            .hypotheses
            .first()
            .map(|h| (h.cause.clone(), h.entity.clone()));
        let new_top = hyps.first().map(|h| (h.cause.clone(), h.entity.clone()));
        if confident
            && old_top != new_top
            && let Some(h) = hyps.first()
        {
            {
                w.inc.timeline.push(TimelineEntry {
                    at,
                    kind: TimelineKind::Note,
                    message: format!(
                        "root cause: {} on {} ({:.0} %)",
                        h.cause,
                        h.entity,
                        h.confidence * 100.0
                    ),
                    count: 1,
                    last_at: None,
                    by: None,
                });
            }
        }
        for c in &changes {
            if !w.inc.changes.iter().any(|x| x.evidence == c.evidence) && w.inc.changes.len() < 20 {
                w.inc.changes.push(c.clone());
                w.inc.timeline.push(TimelineEntry {
                    at: c.at,
                    kind: TimelineKind::Change,
                    message: format!("changed before: {}", c.description),
                    count: 1,
                    last_at: None,
                    by: None,
                });
            }
        }
        w.inc.timeline.sort_by_key(|e| e.at);
        if w.inc.timeline.len() > MAX_TIMELINE {
            let drop = w.inc.timeline.len() - MAX_TIMELINE;
            w.inc.timeline.drain(1..1 + drop);
        }
        w.inc.root_cause_confident = confident;
        if !confident && !w.abstained && self.depth != CorrelationDepth::Basic {
            w.abstained = true;
            self.abstentions += 1;
        }
        if confident {
            w.abstained = false;
        }
        w.inc.title = title(w, &hyps, confident);
        w.inc.hypotheses = hyps;
    }
}

/// The level a severity reason was written for ("… runbook P2 …").
fn reason_sev(reason: &str) -> Option<Severity> {
    ["P1", "P2", "P3", "P4"]
        .iter()
        .find(|p| {
            reason.contains(&format!("runbook {p}")) || reason.contains(&format!("priority {p}"))
        })
        .and_then(|p| p.parse().ok())
}

/// Symptoms that describe a state lasting until a recovery is observed.
fn is_condition(s: Symptom) -> bool {
    matches!(
        s,
        Symptom::NoReadyEndpoints
            | Symptom::WorkloadUnavailable
            | Symptom::NodeNotReady
            | Symptom::CrashLoop
            | Symptom::ImagePullFailed
            | Symptom::ConfigError
            | Symptom::NodeMemoryPressure
            | Symptom::NodeDiskPressure
            | Symptom::NodePidPressure
            | Symptom::Alert
            | Symptom::TargetsDown
            | Symptom::VolumeFilling
            | Symptom::FilesystemFilling
            | Symptom::ResourceExhausted
            | Symptom::ControlPlaneDegraded
    )
}

impl CorrelationEngine {
    /// Hold these stored incidents (without their evidence windows) beside what is held.
    fn adopt(&mut self, active: Vec<Incident>) {
        for inc in active {
            if !inc.status.is_active() || inc.identity.problem != "chain" {
                continue;
            }
            let anchor = EntityKey::new(
                &inc.identity.kind,
                inc.identity.namespace.as_deref(),
                &inc.identity.name,
            );
            self.clock = self.clock.max(inc.last_evidence_at);
            self.opened_seq += 1;
            let onset_group = inc.root_cause_confident
                && inc
                    .hypotheses
                    .first()
                    .is_some_and(|h| h.cause == CASCADE_ORIGIN);
            // A common-factor incident keeps its factor (and so its cause) across a restart.
            let factor = inc
                .hypotheses
                .first()
                .filter(|h| h.cause == NODE_GROUP_FAILURE || h.cause == ZONE_FAILURE)
                .and_then(|h| {
                    Some(Factor {
                        cause: if h.cause == ZONE_FAILURE {
                            ZONE_FAILURE
                        } else {
                            NODE_GROUP_FAILURE
                        },
                        entity: EntityKey::parse(&h.entity)?,
                        nodes: inc
                            .affected
                            .iter()
                            .filter_map(|a| a.strip_prefix("Node/").map(str::to_owned))
                            .collect(),
                        of: 0,
                    })
                });
            self.active.insert(
                anchor.clone(),
                Working {
                    last_symptom: inc.last_evidence_at,
                    inc,
                    anchor,
                    signals: VecDeque::new(),
                    conditions: BTreeSet::new(),
                    ratios: BTreeMap::new(),
                    ratio_intervals: BTreeMap::new(),
                    abstained: false,
                    level_seen_at: DateTime::<Utc>::MIN_UTC,
                    last_emitted: DateTime::<Utc>::MIN_UTC,
                    pending_downgrade: false,
                    seen: BTreeSet::new(),
                    members: BTreeMap::new(),
                    onset_group,
                    seq: self.opened_seq,
                    factor,
                    hosted: BTreeSet::new(),
                },
            );
        }
    }
}

impl IncidentEngine for CorrelationEngine {
    fn restore(&mut self, active: Vec<Incident>) {
        self.active.clear();
        self.adopt(active);
    }

    fn resume(&mut self, stored: Vec<Incident>) {
        let mut by_id: std::collections::HashMap<Ulid, Incident> =
            stored.into_iter().map(|i| (i.id, i)).collect();
        // Rebuilt by the warm-up: the stored copy wins (people's actions, notes, a
        // severity set by hand), the rebuilt evidence windows stay. Held here but not
        // active in the store: resolved since (by a person or a quiet period).
        self.active.retain(|_, w| match by_id.remove(&w.inc.id) {
            Some(s) if s.status.is_active() => {
                w.inc = s;
                true
            }
            _ => false,
        });
        // Active in the store but not rebuilt (declared, or older than the evidence kept).
        self.adopt(by_id.into_values().collect());
    }

    fn observe(&mut self, ev: &Event, _now: DateTime<Utc>) -> Vec<IncidentChange> {
        if ev.time > self.clock {
            self.clock = ev.time;
        }
        let from_state = ev.kind.source() == "kubernetes" && ev.kind.domain() == "watch";
        let mut derived = self.release_deferred(self.clock);
        let fresh = if from_state {
            match &ev.object {
                Some(obj) => self.state.apply(ev.kind.anomaly(), obj, ev.time, ev.id),
                None => Vec::new(),
            }
        } else {
            derive::from_event(ev, &self.state, self.cfg.min_traffic)
        };
        for d in fresh {
            if from_state
                && let Derived::Signal(s) = &d
                && self.defer(s)
            {
                continue;
            }
            derived.push(d);
        }
        self.process(derived)
    }

    fn active_count(&self) -> usize {
        self.active.len()
    }

    fn set_depth(&mut self, depth: CorrelationDepth) {
        CorrelationEngine::set_depth(self, depth);
    }

    fn clock(&self) -> Option<DateTime<Utc>> {
        (self.clock > DateTime::<Utc>::MIN_UTC).then_some(self.clock)
    }

    fn tick(&mut self, now: DateTime<Utc>) -> Vec<IncidentChange> {
        CorrelationEngine::tick(self, now)
    }

    fn name(&self) -> &'static str {
        "correlation-engine"
    }

    fn act(
        &mut self,
        id: Ulid,
        action: &crate::lifecycle::Action,
        by: &str,
        at: DateTime<Utc>,
    ) -> Option<Result<Incident, crate::lifecycle::ActionError>> {
        use crate::lifecycle::Action;
        let in_active = self
            .active
            .iter()
            .find(|(_, w)| w.inc.id == id)
            .map(|(k, _)| k.clone());
        let in_recent = self
            .recent
            .iter()
            .find(|(_, w)| w.inc.id == id)
            .map(|(k, _)| k.clone());
        let (key, active) = match (in_active, in_recent) {
            (Some(k), _) => (k, true),
            (None, Some(k)) => (k, false),
            (None, None) => return None,
        };
        let map = if active {
            &mut self.active
        } else {
            &mut self.recent
        };
        let w = map.get_mut(&key)?;
        if let Err(e) = crate::lifecycle::apply(&mut w.inc, action, by, at) {
            return Some(Err(e));
        }
        let inc = w.inc.clone();
        // Keep the maps in step with the status: resolved lives in `recent` (a relapse
        // reopens it), reopened in `active`.
        match action {
            Action::Resolve if active => {
                if let Some(w) = self.active.remove(&key) {
                    self.recent.insert(key, w);
                }
            }
            Action::Reopen if !active => {
                if let Some(mut w) = self.recent.remove(&key) {
                    w.last_symptom = at.max(w.last_symptom);
                    self.active.insert(key, w);
                }
            }
            _ => {}
        }
        Some(Ok(inc))
    }

    fn flush(&mut self) -> Vec<IncidentChange> {
        let keys: Vec<EntityKey> = std::mem::take(&mut self.dirty).into_iter().collect();
        let now = self.clock;
        keys.into_iter()
            .filter_map(|k| {
                let w = self.active.get_mut(&k)?;
                w.last_emitted = now;
                Some(IncidentChange::Updated(w.inc.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

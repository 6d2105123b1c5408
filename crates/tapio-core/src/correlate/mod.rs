//! The correlation engine: one incident per causal chain, an evidence-backed root cause,
//! the runbook's P1–P4.
//!
//! - [`state`]: the cluster as the evidence stream describes it (Kubernetes objects from
//!   `kubernetes.watch.*` events) and the entity graph.
//! - [`derive`]: evidence of every source → signals (symptoms), changes and recoveries.
//! - [`rules`]: causal knowledge as data (`rules/default.toml`, docs/rules.md).
//! - this module: routing each signal to the incident of its causal chain (per
//!   `correlation-depth`), severity, hypotheses, flap damping.
//!
//! Event time is the clock: the same stream gives the same incidents, live or replayed.
//! State is bounded: objects per kind, incidents, signals per incident, changes per entity.

pub mod alerts;
pub mod derive;
pub mod entity;
pub mod rules;
pub mod signal;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Duration, Utc};
use tapio_proto::Event;
use ulid::Ulid;

use crate::config::CorrelationDepth;
use crate::engine::{IncidentChange, IncidentEngine};
use crate::incident::*;
use entity::{EntityKey, FastMap};
use rules::{On, Rule, render};
use signal::{Change, Derived, Signal, Symptom};
use state::ClusterState;

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
}

/// Fewer failed-connect reports than this in an incident's window are too rare to be a
/// feature unavailable (P4): traffic volume decides severity.
const RARE_FAILURES: usize = 3;

/// How long volume mount failures must go on before they are an incident.
const MOUNT_PERSIST_SECONDS: i64 = 60;

/// How long a state-derived outage must last before it opens an incident by itself.
const OUTAGE_GRACE_SECONDS: i64 = 30;
const MAX_DEFERRED: usize = 10_000;

const MAX_DEPS: usize = 100_000;
const MAX_RECENT: usize = 10_000;
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
        }
    }

    /// Whether a state-derived outage condition still holds.
    fn outage_holds(&self, s: &Signal) -> bool {
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
    fn release_deferred(&mut self, now: DateTime<Utc>) -> Vec<Derived> {
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
    fn defer(&mut self, s: &Signal) -> bool {
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
        let quiet = self.cfg.quiet;
        let due: Vec<EntityKey> = self
            .active
            .iter()
            .filter(|(_, w)| w.pending_downgrade && now - w.level_seen_at >= quiet)
            // An incident that resolves in this sweep needs no downgrade first (it would
            // be one more notification saying nothing: "now P4", then "resolved").
            .filter(|(_, w)| !(now - w.last_symptom >= quiet && w.conditions.is_empty()))
            .map(|(k, _)| k.clone())
            .collect();
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

    /// Which incident a signal belongs to (its causal anchor), per depth.
    fn anchor(&self, s: &Signal) -> EntityKey {
        let within = |w: &Working| s.at - w.last_symptom <= self.cfg.window;
        if self.depth == CorrelationDepth::Basic {
            // Same workload or node; no causal inference.
            return s.subject.clone();
        }
        if s.symptom.is_node_condition() {
            return s.subject.clone();
        }
        // A symptom on a pod of a node that has an open node incident joins it.
        if let Some(node) = &s.node {
            let nk = EntityKey::node(node);
            if let Some(w) = self.active.get(&nk)
                && within(w)
                && w.signals.iter().any(|x| x.symptom.is_node_condition())
            {
                return nk;
            }
        }
        // Lost capacity of a workload that the failed node already took down (its pods
        // cannot be replaced, its Service lost its endpoints, its targets went down)
        // belongs to the node's incident, whatever namespace it is in.
        if matches!(
            s.symptom,
            Symptom::Unschedulable
                | Symptom::WorkloadUnavailable
                | Symptom::WorkloadDegraded
                | Symptom::NoReadyEndpoints
                | Symptom::TargetsDown
        ) {
            let mut mine = vec![s.subject.to_string()];
            if s.subject.kind == "Service" {
                mine.extend(
                    self.state
                        .workloads_of(&s.subject)
                        .iter()
                        .map(|k| k.to_string()),
                );
            }
            let node = self
                .active
                .iter()
                .filter(|(k, w)| {
                    k.kind == "Node"
                        && within(w)
                        && w.signals
                            .iter()
                            .any(|x| x.symptom == Symptom::NodeNotReady && x.strong)
                        && mine.iter().any(|m| {
                            w.inc.affected.contains(m)
                                || EntityKey::parse(m).is_some_and(|k| w.hosted.contains(&k))
                        })
                })
                .map(|(k, w)| (w.inc.started_at, k))
                .min();
            if let Some((_, k)) = node {
                return k.clone();
            }
        }
        // Evidence that names only a namespace (an alert with no finer label) joins the
        // open incident of that namespace with the same symptom.
        if s.subject.kind == "Namespace" {
            let found = self
                .active
                .iter()
                .filter(|(k, w)| {
                    k.namespace.as_deref() == Some(s.subject.name.as_str())
                        && within(w)
                        && w.signals.iter().any(|x| x.symptom == s.symptom)
                })
                .map(|(k, w)| (w.inc.started_at, k))
                .min();
            if let Some((_, k)) = found {
                return k.clone();
            }
        }
        // An autoscaler's limit belongs to the chain of the workload it scales (or its
        // Service's); with none open yet, it waits on that Service.
        if s.subject.kind == "HorizontalPodAutoscaler" {
            let target = self.state.hpa_targets.get(&s.subject).cloned().or_else(|| {
                let ns = s.subject.namespace.as_deref().unwrap_or_default();
                ["Deployment", "StatefulSet"]
                    .iter()
                    .map(|k| EntityKey::ns(k, ns, &s.subject.name))
                    .find(|k| self.state.workloads.contains_key(k))
            });
            if let Some(t) = target {
                let services = self.state.services_of(&t);
                for k in std::iter::once(t.clone()).chain(services.iter().cloned()) {
                    if let Some(w) = self.active.get(&k)
                        && within(w)
                    {
                        return k;
                    }
                }
                return services.into_iter().next().unwrap_or(t);
            }
        }
        // The control plane is one chain: every component's alerts join the open one.
        if s.symptom == Symptom::ControlPlaneDegraded {
            let open = self
                .active
                .iter()
                .filter(|(_, w)| {
                    within(w)
                        && w.signals
                            .iter()
                            .any(|x| x.symptom == Symptom::ControlPlaneDegraded)
                })
                .map(|(k, w)| (w.inc.started_at, k))
                .min();
            if let Some((_, k)) = open {
                return k.clone();
            }
        }
        // Creates refused by the same admission webhook, in any namespace: one chain.
        if matches!(s.symptom, Symptom::WebhookFailed | Symptom::CertExpired)
            && let Some(name) = webhook_name(&s.message)
        {
            let open = self
                .active
                .iter()
                .filter(|(_, w)| {
                    within(w)
                        && w.signals.iter().any(|x| {
                            matches!(x.symptom, Symptom::WebhookFailed | Symptom::CertExpired)
                                && webhook_name(&x.message).as_deref() == Some(name.as_str())
                        })
                })
                .map(|(k, w)| (w.inc.started_at, k))
                .min();
            if let Some((_, k)) = open {
                return k.clone();
            }
        }
        // A pod network that cannot be set up is the CNI daemon's chain (or the node's).
        if s.symptom == Symptom::NetworkSetupFailed {
            if let Some(cni) = self.cni_daemon() {
                return cni;
            }
            if let Some(n) = &s.node {
                return EntityKey::node(n);
            }
        }
        // A claim's trouble joins the open incident of a workload that mounts it (the
        // database that stopped when its volume filled up).
        if s.subject.kind == "PersistentVolumeClaim" && !self.active.contains_key(&s.subject) {
            let users: Vec<EntityKey> = self
                .state
                .pods
                .values()
                .filter(|p| p.claims.contains(&s.subject))
                .filter_map(|p| p.owner.clone())
                .collect();
            for u in users {
                let mut keys = vec![u.clone()];
                keys.extend(self.state.services_of(&u));
                for k in keys {
                    if let Some(w) = self.active.get(&k)
                        && within(w)
                    {
                        return k;
                    }
                }
            }
        }
        // A workload whose volume claim already has an incident (attach, provisioning,
        // filling up) joins it.
        if s.subject.is_workload() || s.subject.kind == "Service" {
            let mut owners = vec![s.subject.clone()];
            if s.subject.kind == "Service" {
                owners.extend(self.state.workloads_of(&s.subject));
            }
            for o in &owners {
                for c in self.state.claims_of(o) {
                    if let Some(w) = self.active.get(&c)
                        && within(w)
                    {
                        return c;
                    }
                }
            }
        }
        // Every run of a CronJob is the same workload: its Jobs' symptoms are one chain.
        if s.subject.kind == "Job"
            && let Some(c) = self.state.job_owner(&s.subject)
        {
            return c;
        }
        // Failures to reach a destination are symptoms of the destination.
        if let Some(t) = &s.target
            && matches!(
                s.symptom,
                Symptom::ConnRefused
                    | Symptom::ConnTimeout
                    | Symptom::ConnError
                    | Symptom::DnsFailure
                    | Symptom::ConnectStats
            )
        {
            // A lookup that timed out is cluster DNS failing; one that found no such name
            // (a named in-cluster Service) is about that Service.
            let dns_target = t.namespace.as_deref() == Some("kube-system")
                && t.name.contains("dns")
                || t.kind == "Destination";
            if matches!(s.symptom, Symptom::DnsFailure) && dns_target {
                return self.dns_anchor();
            }
            if t.kind == "Service" {
                if let Some(k) = self.incident_of_service(t) {
                    return k;
                }
                return t.clone();
            }
            // A workload, or an address nobody in the cluster state owns: failures to it
            // from every caller are one incident.
            return t.clone();
        }
        // A Service without endpoints: the incident of the workload behind it, if any.
        if s.subject.kind == "Service" {
            if let Some(k) = self.incident_of_service(&s.subject) {
                return k;
            }
            return s.subject.clone();
        }
        // DNS provider symptoms go to the DNS incident.
        if s.subject.namespace.as_deref() == Some("kube-system")
            && (s.subject.name.contains("coredns") || s.subject.name.contains("dns"))
        {
            return self.dns_anchor();
        }
        // A workload whose Service already has an incident joins it.
        if s.subject.is_workload() {
            for svc in self.state.services_of(&s.subject) {
                if let Some(w) = self.active.get(&svc)
                    && within(w)
                {
                    return svc;
                }
            }
        }
        // A caller already failing to reach an incident's entity: its own symptoms (errors,
        // alerts, restarts) are part of that chain.
        if s.target.is_none() {
            let mut mine = vec![s.subject.clone()];
            if s.subject.kind == "Service" {
                mine.extend(self.state.workloads_of(&s.subject));
            }
            for m in &mine {
                if let Some(a) = self.failing_callers.get(m)
                    && let Some(w) = self.active.get(a)
                    && within(w)
                    && a != m
                {
                    return a.clone();
                }
            }
        }
        if self.depth == CorrelationDepth::Deep
            && let Some(k) = self.cascade_anchor(s)
        {
            return k;
        }
        s.subject.clone()
    }

    /// The cluster's CNI daemon (a kube-system DaemonSet of a known network plugin).
    fn cni_daemon(&self) -> Option<EntityKey> {
        state::CNI_DAEMONS.iter().find_map(|n| {
            let k = EntityKey::ns("DaemonSet", "kube-system", n);
            self.state.workloads.contains_key(&k).then_some(k)
        })
    }

    fn dns_anchor(&self) -> EntityKey {
        self.state
            .dns_workloads
            .iter()
            .next()
            .cloned()
            .or_else(|| derive::dns_service(&self.state))
            .unwrap_or_else(|| EntityKey::ns("Deployment", "kube-system", "coredns"))
    }

    /// The open incident a Service's trouble belongs to: the Service's own, or that of a
    /// workload behind it.
    fn incident_of_service(&self, svc: &EntityKey) -> Option<EntityKey> {
        if self.active.contains_key(svc) {
            return Some(svc.clone());
        }
        let behind = self.state.workloads_of(svc);
        if let Some(w) = behind.iter().find(|w| self.active.contains_key(*w)) {
            return Some(w.clone());
        }
        // Its workloads already fail to reach an incident's entity: their Service's
        // trouble is part of that chain.
        behind.iter().find_map(|w| {
            self.failing_callers
                .get(w)
                .filter(|a| self.active.contains_key(*a))
                .cloned()
        })
    }

    /// Deep: a caller's own symptoms while a destination it depends on has an open
    /// incident that started first belong to that incident (a cascade).
    fn cascade_anchor(&self, s: &Signal) -> Option<EntityKey> {
        if !matches!(
            s.symptom,
            Symptom::Alert
                | Symptom::CrashLoop
                | Symptom::Restarted
                | Symptom::ProbeFailed
                | Symptom::AbnormalExit
                | Symptom::ConnectStats
        ) {
            return None;
        }
        let deps = self.deps.get(&s.subject)?;
        let mut best: Option<(DateTime<Utc>, EntityKey)> = None;
        for d in deps {
            let k = if d.kind == "Service" {
                self.incident_of_service(d)
            } else {
                self.active.contains_key(d).then(|| d.clone())
            };
            if let Some(k) = k
                && let Some(w) = self.active.get(&k)
                && w.inc.started_at <= s.at
                && s.at - w.last_symptom <= self.cfg.window
                && best.as_ref().is_none_or(|(t, _)| w.inc.started_at < *t)
            {
                best = Some((w.inc.started_at, k));
            }
        }
        best.map(|(_, k)| k)
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
        if self.active.len() >= self.cfg.max_active
            && let Some(oldest) = self
                .active
                .iter()
                .min_by_key(|(_, w)| w.last_symptom)
                .map(|(k, _)| k.clone())
        {
            self.active.remove(&oldest);
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

    fn handle_signal(
        &mut self,
        s: Signal,
        touched: &mut BTreeSet<EntityKey>,
        opened: &mut BTreeSet<EntityKey>,
        novel: &mut BTreeSet<EntityKey>,
    ) {
        self.signals_seen += 1;
        // Learn the dependency graph from observed connections.
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
        {
            let set = self.node_calls.entry(s.subject.name.clone()).or_default();
            if set.len() < 64 {
                set.insert(t.clone());
            }
        }
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
                opens = e.0 >= need && persisted;
                if self.weak.len() > MAX_DEPS {
                    let horizon = s.at - self.cfg.window;
                    self.weak.retain(|_, v| v.1 > horizon);
                }
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
            if let Some(mut w) = self.recent.remove(&anchor) {
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
        let Some(w) = self.active.get_mut(anchor) else {
            return false;
        };
        let cond_new =
            is_condition(s.symptom) && w.conditions.insert((s.subject.clone(), s.symptom));
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
            let key = s.target.as_ref().unwrap_or(&s.subject).to_string();
            match w.ratios.get(&key) {
                None => true,
                Some((pf, pa, _)) => {
                    band(*pf, *pa) != band(f, a)
                        || w.ratio_intervals.get(&key).copied().unwrap_or(0) == 1
                }
            }
        });
        let novel = w.seen.insert((s.symptom, s.subject.clone()))
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
            let key = s.target.as_ref().unwrap_or(&s.subject).to_string();
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
                if self.recent.len() >= MAX_RECENT
                    && let Some(old) = self
                        .recent
                        .iter()
                        .min_by_key(|(_, w)| w.inc.resolved_at)
                        .map(|(k, _)| k.clone())
                {
                    self.recent.remove(&old);
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

    /// The incident this one belongs to: the one anchored at its confident root cause, or an
    /// older one with the same confident root cause (one causal chain, one incident).
    fn merge_target(&self, k: &EntityKey) -> Option<EntityKey> {
        if self.depth == CorrelationDepth::Basic {
            return None;
        }
        let w = self.active.get(k)?;
        if !w.inc.root_cause_confident {
            return None;
        }
        let top = w.inc.hypotheses.first()?;
        let cause = EntityKey::parse(&top.entity)?;
        if cause == *k {
            return None;
        }
        if self.active.contains_key(&cause) {
            return Some(cause);
        }
        self.active
            .iter()
            .filter(|(other, o)| {
                *other != k
                    && o.inc.root_cause_confident
                    && o.inc
                        .hypotheses
                        .first()
                        .is_some_and(|h| h.cause == top.cause && h.entity == top.entity)
                    && (o.inc.started_at, o.inc.id) < (w.inc.started_at, w.inc.id)
            })
            .map(|(other, _)| other.clone())
            .min()
    }

    /// Incidents that could absorb `j` or be absorbed by it: cheap filters first (strength,
    /// namespace), so this stays fast with thousands of open incidents.
    fn merge_candidates(&self, j: &EntityKey) -> Vec<EntityKey> {
        let Some(wj) = self.active.get(j) else {
            return Vec::new();
        };
        let is_strong = |w: &Working| {
            w.inc.root_cause_confident
                && w.inc
                    .hypotheses
                    .first()
                    .is_some_and(|h| h.cause != "dependency_failure" && h.cause != CASCADE_ORIGIN)
        };
        let j_strong = is_strong(wj);
        let j_onset = onset_eligible(j, wj);
        let mut namespaces: BTreeSet<Option<&str>> = BTreeSet::new();
        namespaces.insert(None);
        namespaces.insert(Some("kube-system"));
        namespaces.insert(j.namespace.as_deref());
        for a in &wj.inc.affected {
            let parts: Vec<&str> = a.split('/').collect();
            if parts.len() == 3 {
                namespaces.insert(Some(parts[1]));
            }
        }
        for h in &wj.hosted {
            namespaces.insert(h.namespace.as_deref());
        }
        // An unexplained incident only callers see may be downstream of a proven chain
        // in any namespace; pods short of the same resource may be in any namespace.
        let j_caller_only = !j_strong && caller_only(wj);
        fn unschedulable(w: &Working) -> bool {
            w.inc
                .hypotheses
                .first()
                .is_some_and(|h| h.cause == "unschedulable")
        }
        let j_unschedulable = unschedulable(wj);
        self.active
            .iter()
            .filter(|(k, w)| {
                *k != j
                    && (((is_strong(w) != j_strong || (j_strong && k.kind == "Node"))
                        || (j_onset && onset_eligible(k, w) && k.namespace == j.namespace))
                        && namespaces.contains(&k.namespace.as_deref())
                        || (j_caller_only && is_strong(w))
                        || (j_unschedulable && unschedulable(w)))
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Whether incident `k` is only a symptom (no confident cause, or "its callers fail")
    /// of incident `j`, which has a confident cause of its own and already involves it.
    fn absorbs(&self, j: &EntityKey, k: &EntityKey) -> bool {
        if j == k || self.depth == CorrelationDepth::Basic {
            return false;
        }
        let (Some(wj), Some(wk)) = (self.active.get(j), self.active.get(k)) else {
            return false;
        };
        fn top(w: &Working) -> Option<&str> {
            w.inc
                .hypotheses
                .first()
                .filter(|_| w.inc.root_cause_confident)
                .map(|h| h.cause.as_str())
        }
        let (ck, cj) = (top(wk), top(wj));
        let Some(cj) = cj else {
            return false;
        };
        if wk.last_symptom < wj.inc.started_at - self.cfg.window
            || wj.last_symptom < wk.inc.started_at - self.cfg.window
        {
            return false;
        }
        // Downstream of a proven chain (also a symptom-level one: a Service down).
        if self.downstream(j, wj, k, wk) {
            return true;
        }
        // Pods that cannot be scheduled for the same missing resource, in any namespace:
        // one capacity shortage of the cluster, the newer joins the older.
        if ck == Some("unschedulable") && cj == "unschedulable" {
            let want = |w: &Working| {
                w.signals
                    .iter()
                    .filter(|s| s.symptom == Symptom::Unschedulable)
                    .filter_map(|s| insufficient(&s.message))
                    .collect::<BTreeSet<_>>()
            };
            let (a, b) = (want(wj), want(wk));
            return (wj.inc.started_at, wj.inc.id) < (wk.inc.started_at, wk.inc.id)
                && !a.is_empty()
                && a == b;
        }
        if !absorbable(ck, cj) {
            return false;
        }
        let mut mine = vec![k.clone()];
        if k.kind == "Service" {
            mine.extend(self.state.workloads_of(k));
        }
        if let Some(h) = wk.inc.hypotheses.first()
            && let Some(e) = EntityKey::parse(&h.entity)
        {
            mine.push(e);
        }
        if ck == Some(cj) {
            // Same kind of node trouble: one chain when they share a (non-node) workload
            // — seen in both, or a workload of the older now running on the newer's
            // node (moved there and took it down too) — and the newer joins the older.
            let moved = k.kind == "Node"
                && wj.inc.affected.iter().any(|a| {
                    EntityKey::parse(a)
                        .filter(EntityKey::is_workload)
                        .is_some_and(|o| self.node_explains(&k.name, &o, wk))
                });
            return (wj.inc.started_at, wj.inc.id) < (wk.inc.started_at, wk.inc.id)
                && (moved
                    || wk.inc.affected.iter().any(|a| {
                        !a.starts_with("Node/")
                            && !a.starts_with("Destination/")
                            && wj.inc.affected.contains(a)
                    }));
        }
        mine.iter().any(|m| {
            let s = m.to_string();
            wj.inc.affected.contains(&s) || wj.hosted.contains(m)
        }) || self.downstream(j, wj, k, wk)
    }

    /// Whether `k` — no confident cause, only what callers see (alerts, failed connects,
    /// probes) — is downstream of `j`, a confident P1/P2 chain that began before it
    /// (within 15 minutes) and reaches it: `k` is in a namespace `j` already involves, or
    /// its pods ran on `j`'s failed node.
    fn downstream(&self, j: &EntityKey, wj: &Working, k: &EntityKey, wk: &Working) -> bool {
        let unexplained = !wk.inc.root_cause_confident
            || wk
                .inc
                .hypotheses
                .first()
                .is_some_and(|h| h.cause == CASCADE_ORIGIN);
        // A common-onset group is itself a guess about a path: it does not reach further
        // than its onset window.
        let proven = wj.inc.root_cause_confident
            && wj
                .inc
                .hypotheses
                .first()
                .is_some_and(|h| h.cause != CASCADE_ORIGIN);
        if !unexplained || !proven {
            return false;
        }
        // A common-onset group is a guess at a path nobody has shown: a proven chain
        // that began first in its namespace is the better explanation.
        let onset_group = wk.onset_group
            || wk
                .inc
                .hypotheses
                .first()
                .is_some_and(|h| h.cause == CASCADE_ORIGIN);
        let only_seen_by_callers = onset_group || caller_only(wk);
        let paging = wj
            .inc
            .peak_severity
            .unwrap_or(wj.inc.severity)
            .min(wj.inc.severity)
            <= Severity::P2;
        let after = wj.inc.started_at <= wk.inc.started_at
            && wk.inc.started_at - wj.inc.started_at <= Duration::minutes(15);
        if !only_seen_by_callers || !after {
            return false;
        }
        // Its pods ran on the chain's failed node: a path, whatever the chain's level.
        let mut owners = vec![k.clone()];
        if k.kind == "Service" {
            owners.extend(self.state.workloads_of(k));
        }
        if j.kind == "Node" && owners.iter().any(|o| self.node_explains(&j.name, o, wj)) {
            return true;
        }
        // Its nodes were seen calling a Service the chain took down (connect statistics
        // are per node, so this is an inferred path): enough for a node's chain, or for a
        // paging one.
        if (j.kind == "Node" || paging) && self.calls_into(&owners, j, wj) {
            return true;
        }
        // Only the same namespace: a paging chain is needed to claim it.
        if !paging {
            return false;
        }
        let ns = k.namespace.as_deref();
        ns.is_some()
            && (j.namespace.as_deref() == ns
                || wj.inc.affected.iter().any(|a| {
                    let mut p = a.split('/');
                    p.next();
                    p.next() == ns && a.split('/').count() == 3
                }))
    }

    /// Common onset: two incidents of one namespace that no rule explains (or that are
    /// common-onset groups already), the later beginning within `onset_window` of the
    /// group's first onset, are one incident — an alert storm whose path is unknown.
    /// Returns (from, into): the incident opened later joins the one opened first.
    /// Standard and deep depth only.
    fn onset_pair(&self, a: &EntityKey, b: &EntityKey) -> Option<(EntityKey, EntityKey)> {
        if a == b || self.depth == CorrelationDepth::Basic {
            return None;
        }
        let (wa, wb) = (self.active.get(a)?, self.active.get(b)?);
        if a.namespace.is_none()
            || a.namespace != b.namespace
            || !onset_eligible(a, wa)
            || !onset_eligible(b, wb)
        {
            return None;
        }
        let (oa, ob) = (onset(wa), onset(wb));
        // Both must be failing now, and the later must begin within the window of the
        // group's first onset (a bounded group, not an unbounded chain).
        let (first, later_onset) = if oa <= ob { (wa, ob) } else { (wb, oa) };
        let first_onset = oa.min(ob);
        if later_onset - first_onset > self.cfg.onset_window
            || later_onset - first.last_symptom > self.cfg.window
        {
            return None;
        }
        // The incident opened (and reported) first survives; the hypothesis names the
        // origin from the members' onsets whichever anchor that is.
        if (wa.seq, wa.inc.id) <= (wb.seq, wb.inc.id) {
            Some((b.clone(), a.clone()))
        } else {
            Some((a.clone(), b.clone()))
        }
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
        let mut out = Vec::new();
        let mut merged: Vec<Incident> = Vec::new();
        // A held-back downgrade is due once the quiet period has passed.
        let quiet = self.cfg.quiet;
        let clock = self.clock;
        for (k, w) in &self.active {
            if w.pending_downgrade
                && clock - w.level_seen_at >= quiet
                && !(clock - w.last_symptom >= quiet && w.conditions.is_empty())
            {
                novel.insert(k.clone());
                touched.insert(k.clone());
            }
        }
        let mut touched: Vec<EntityKey> = touched.into_iter().collect();
        for k in &novel {
            self.evaluate(k);
        }
        // Symptom-only incidents join the confident chain that involves them.
        let mut absorbed: BTreeSet<EntityKey> = BTreeSet::new();
        for j in novel.iter().cloned().collect::<Vec<_>>() {
            if self.depth == CorrelationDepth::Basic {
                break;
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
        // Incidents whose confident cause is an incident that now exists join it.
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
        for k in &touched {
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

    /// The zone or node group that `nodes` (at least two) have in common and that most of
    /// its nodes are among, while some node of the cluster is outside it.
    fn shared_factor(&self, nodes: &BTreeSet<&String>) -> Option<EntityKey> {
        if nodes.len() < 2 {
            return None;
        }
        let mut common: Option<Vec<(&'static str, String)>> = None;
        for n in nodes {
            let f = self.state.nodes.get(n.as_str())?.factors.clone();
            common = Some(match common {
                None => f,
                Some(c) => c.into_iter().filter(|x| f.contains(x)).collect(),
            });
        }
        let total = self.state.nodes.len();
        common?
            .into_iter()
            .filter_map(|(kind, value)| {
                let of = self
                    .state
                    .nodes
                    .values()
                    .filter(|n| n.factors.iter().any(|(k, v)| *k == kind && *v == value))
                    .count();
                (of < total && nodes.len() * 2 >= of).then_some((of, kind, value))
            })
            .min_by_key(|(of, kind, _)| (*of, *kind != "Zone"))
            .map(|(_, kind, value)| EntityKey::new(kind, None, &value))
    }

    /// Whether the nodes running `owners` were seen connecting to a Service that chain
    /// `j` involves or whose pods ran on `j`'s node.
    fn calls_into(&self, owners: &[EntityKey], j: &EntityKey, wj: &Working) -> bool {
        let nodes: BTreeSet<&str> = owners
            .iter()
            .flat_map(|o| self.state.pods_of(o))
            .filter_map(|p| p.node.as_deref())
            .collect();
        nodes.iter().any(|n| {
            self.node_calls.get(*n).is_some_and(|svcs| {
                svcs.iter().any(|svc| {
                    !owners.contains(svc)
                        && (wj.inc.affected.contains(&svc.to_string())
                            || self
                                .state
                                .workloads_of(svc)
                                .iter()
                                .any(|w| wj.inc.affected.contains(&w.to_string()))
                            || (j.kind == "Node" && self.node_explains(&j.name, svc, wj)))
                })
            })
        })
    }

    /// Whether the cause entity (a node, a volume claim) is upstream of `link` (a Service
    /// or workload): the node hosted its pods, or its pods mount the claim.
    fn explains(&self, cause: &EntityKey, link: &EntityKey, w: &Working) -> bool {
        match cause.kind.as_str() {
            "Node" => self.node_explains(&cause.name, link, w),
            "PersistentVolumeClaim" => {
                let mut owners = vec![link.clone()];
                if link.kind == "Service" {
                    owners.extend(self.state.workloads_of(link));
                }
                owners
                    .iter()
                    .any(|o| self.state.claims_of(o).contains(cause))
            }
            "ConfigMap" | "Secret" => {
                let mut owners = vec![link.clone()];
                if link.kind == "Service" {
                    owners.extend(self.state.workloads_of(link));
                }
                owners.iter().any(|o| self.uses_config(o, cause))
            }
            "NodeGroup" | "Zone" => w.factor.as_ref().is_some_and(|f| {
                f.entity == *cause && f.nodes.iter().any(|n| self.node_explains(n, link, w))
            }),
            k if cause.is_workload() || k == "Pod" => {
                *link == *cause
                    || (link.kind == "Service" && self.state.workloads_of(link).contains(cause))
            }
            _ => false,
        }
    }

    /// Whether node `node` hosted what `link` stands for (a Service's workloads, or the
    /// workload itself): its pods are there in the state, or the chain saw them there.
    fn node_explains(&self, node: &str, link: &EntityKey, w: &Working) -> bool {
        let mut owners = vec![link.clone()];
        if link.kind == "Service" {
            owners.extend(self.state.workloads_of(link));
        }
        self.state
            .pods_on(node)
            .any(|(_, p)| p.owner.as_ref().is_some_and(|o| owners.contains(o)))
            || w.signals
                .iter()
                .any(|s| s.node.as_deref() == Some(node) && owners.contains(&s.subject))
    }

    /// Node incidents failing together whose nodes share a node group or zone that the
    /// healthy nodes do not (at least two of them, beginning within 15 minutes): the
    /// factor covering the largest share of its nodes is the cause. Sets the factor on
    /// the incident opened first and returns the merges (from, into) that make it one.
    fn common_factor(&mut self) -> Vec<(EntityKey, EntityKey)> {
        let window = self.cfg.window;
        let failing: Vec<(EntityKey, DateTime<Utc>, u64)> = self
            .active
            .iter()
            .filter(|(k, w)| {
                k.kind == "Node"
                    && w.signals.iter().any(|s| {
                        s.strong
                            && s.symptom.is_node_condition()
                            && s.subject == **k
                            && w.last_symptom - s.at <= window
                    })
            })
            .map(|(k, w)| (k.clone(), w.inc.started_at, w.seq))
            .collect();
        if failing.len() < 2 {
            return Vec::new();
        }
        // Each factor: the failing nodes with it, and all nodes with it.
        let mut by_factor: BTreeMap<(&'static str, String), (Vec<usize>, usize)> = BTreeMap::new();
        for (i, (k, _, _)) in failing.iter().enumerate() {
            if let Some(n) = self.state.nodes.get(&k.name) {
                for f in &n.factors {
                    by_factor.entry(f.clone()).or_default().0.push(i);
                }
            }
        }
        let total_nodes = self.state.nodes.len();
        for ((kind, value), (_, of)) in by_factor.iter_mut() {
            *of = self
                .state
                .nodes
                .values()
                .filter(|n| n.factors.iter().any(|(k, v)| k == kind && v == value))
                .count();
        }
        let best = by_factor
            .into_iter()
            .filter(|(_, (members, of))| members.len() >= 2 && *of < total_nodes)
            .filter(|(_, (members, _))| {
                let first = members.iter().map(|i| failing[*i].1).min();
                let last = members.iter().map(|i| failing[*i].1).max();
                matches!((first, last), (Some(a), Some(b)) if b - a <= Duration::minutes(FACTOR_WINDOW_MINUTES))
            })
            .max_by(|a, b| {
                let share = |x: &(Vec<usize>, usize)| x.0.len() as f64 / x.1.max(1) as f64;
                share(&a.1)
                    .partial_cmp(&share(&b.1))
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then(a.1.0.len().cmp(&b.1.0.len()))
                    .then(b.0.cmp(&a.0))
            });
        let Some(((kind, value), (members, of))) = best else {
            return Vec::new();
        };
        // The failing nodes must be most of the factor's nodes: two of fifty in one zone
        // failing together is coincidence, not the zone.
        if members.len() * 2 < of {
            return Vec::new();
        }
        let mut nodes: Vec<&(EntityKey, DateTime<Utc>, u64)> =
            members.iter().map(|i| &failing[*i]).collect();
        nodes.sort_by_key(|(k, _, seq)| (*seq, k.clone()));
        let into = nodes[0].0.clone();
        let factor = Factor {
            cause: if kind == "Zone" {
                ZONE_FAILURE
            } else {
                NODE_GROUP_FAILURE
            },
            entity: EntityKey::new(kind, None, &value),
            nodes: nodes.iter().map(|(k, _, _)| k.name.clone()).collect(),
            of,
        };
        if let Some(w) = self.active.get_mut(&into) {
            // Nodes grouped earlier stay named.
            let mut all = w.factor.take().map(|f| f.nodes).unwrap_or_default();
            for n in factor.nodes.iter() {
                if !all.contains(n) {
                    all.push(n.clone());
                }
            }
            w.factor = Some(Factor {
                nodes: all,
                ..factor
            });
        }
        nodes
            .iter()
            .skip(1)
            .map(|(k, _, _)| (k.clone(), into.clone()))
            .collect()
    }

    /// Move incident `from` into `into`; `from` ends resolved, pointing at the survivor.
    fn merge(&mut self, from: &EntityKey, into: &EntityKey) -> Option<Incident> {
        let mut gone = self.active.remove(from)?;
        let Some(w) = self.active.get_mut(into) else {
            self.active.insert(from.clone(), gone);
            return None;
        };
        let at = gone.last_symptom.max(w.last_symptom);
        w.inc.started_at = w.inc.started_at.min(gone.inc.started_at);
        // The chain was detected when its first part was.
        w.inc.detected_at = w.inc.detected_at.min(gone.inc.detected_at);
        w.inc.evidence_count += gone.inc.evidence_count;
        for r in gone.inc.evidence.drain(..) {
            if w.inc.evidence.len() < MAX_EVIDENCE_REFS
                && !w.inc.evidence.iter().any(|x| x.id == r.id)
            {
                w.inc.evidence.push(r);
            }
        }
        for a in &gone.inc.affected {
            if w.inc.affected.len() < MAX_AFFECTED && !w.inc.affected.contains(a) {
                w.inc.affected.push(a.clone());
            }
        }
        w.inc.timeline.push(TimelineEntry {
            at,
            kind: TimelineKind::Note,
            message: format!(
                "joined incident {} ({}): same causal chain",
                gone.inc.id, gone.inc.title
            ),
            count: 1,
            last_at: None,
            by: None,
        });
        for s in gone.signals.drain(..) {
            w.seen.insert((s.symptom, s.subject.clone()));
            w.signals.push_back(s);
        }
        let mut sigs: Vec<Signal> = w.signals.drain(..).collect();
        sigs.sort_by_key(|s| s.at);
        w.signals = sigs.into_iter().collect();
        while w.signals.len() > self.cfg.max_signals {
            w.signals.pop_front();
        }
        w.conditions.extend(gone.conditions.iter().cloned());
        for (k, m) in &gone.members {
            if let Some(x) = w.members.get_mut(k) {
                x.absorb(m);
            } else if w.members.len() < MAX_MEMBERS {
                w.members.insert(k.clone(), *m);
            }
        }
        w.onset_group |= gone.onset_group;
        for h in std::mem::take(&mut gone.hosted) {
            if w.hosted.len() < MAX_AFFECTED {
                w.hosted.insert(h);
            }
        }
        if let Some(gf) = gone.factor.take() {
            match &mut w.factor {
                Some(f) => {
                    for n in gf.nodes {
                        if !f.nodes.contains(&n) {
                            f.nodes.push(n);
                        }
                    }
                }
                None => w.factor = Some(gf),
            }
        }
        for (k, v) in &gone.ratios {
            w.ratios.entry(k.clone()).or_insert(*v);
        }
        w.last_symptom = at;
        w.seen.clear();
        let survivor = w.inc.id;
        gone.inc.status = Status::Resolved;
        gone.inc.resolved_at = Some(at);
        gone.inc.updated_at = at;
        gone.inc.merged_into = Some(survivor);
        gone.inc.timeline.push(TimelineEntry {
            at,
            kind: TimelineKind::StatusChanged,
            message: format!("merged into incident {survivor}: same causal chain"),
            count: 1,
            last_at: None,
            by: None,
        });
        let out = gone.inc.clone();
        if self.alias.len() > MAX_DEPS {
            let active = &self.active;
            self.alias.retain(|_, a| active.contains_key(a));
        }
        self.alias.insert(from.clone(), into.clone());
        self.ratio_route.retain(|_, a| a != from);
        Some(out)
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
        w.inc.title = match hyps.first().filter(|_| confident) {
            Some(h) if h.cause == CASCADE_ORIGIN => format!(
                "{} workloads failing together in {}, likely origin {}",
                w.members
                    .keys()
                    .filter(|k| k.namespace == w.anchor.namespace)
                    .count(),
                w.anchor.namespace.as_deref().unwrap_or("-"),
                h.entity
            ),
            Some(h) => format!("{} on {}", human_cause(&h.cause), h.entity),
            None => {
                let first = w.signals.iter().find(|s| s.strong).or(w.signals.front());
                format!(
                    "{} on {} (no confident root cause)",
                    first.map(|s| human(s.symptom)).unwrap_or("Trouble"),
                    w.anchor
                )
            }
        };
        w.inc.hypotheses = hyps;
    }

    fn severity(&self, w: &Working) -> (Severity, String) {
        let mut best = (Severity::P4, "informational: runbook P4".to_owned());
        let mut raise = |sev: Severity, why: String| {
            if sev < best.0 {
                best = (sev, why);
            }
        };
        let active_syms: BTreeSet<Symptom> = w.conditions.iter().map(|(_, s)| *s).collect();
        let recent: Vec<&Signal> = w
            .signals
            .iter()
            .filter(|s| w.last_symptom - s.at <= self.cfg.window)
            .collect();
        let recent_syms: BTreeSet<Symptom> = recent.iter().map(|s| s.symptom).collect();
        let has = |sym: Symptom| {
            active_syms.contains(&sym) || (!is_condition(sym) && recent_syms.contains(&sym))
        };
        for s in &recent {
            if let Some(p) = s.priority {
                raise(
                    p,
                    format!("priority {p} declared by the producer ({})", s.detail),
                );
            }
        }
        // P1: complete unavailability.
        for (subj, sym) in &w.conditions {
            match sym {
                Symptom::NoReadyEndpoints => {
                    // Scaled to zero on purpose (every workload behind it wants 0
                    // replicas): its callers are stale, not a service down.
                    let behind = self.state.workloads_of(subj);
                    let retired = !behind.is_empty()
                        && behind.iter().all(|k| {
                            self.state
                                .workloads
                                .get(k)
                                .is_some_and(|ws| ws.desired == Some(0))
                        });
                    if retired {
                        raise(
                            Severity::P4,
                            format!(
                                "{subj} has 0 ready endpoints because its workloads are scaled to 0 on purpose: callers still reaching it are stale; runbook P4"
                            ),
                        );
                    } else {
                        raise(
                            Severity::P1,
                            format!(
                                "{subj} has 0 ready endpoints: runbook P1 \"Complete service unavailability\""
                            ),
                        );
                    }
                }
                Symptom::WorkloadUnavailable => {
                    // Serving: a Service selects it (or nothing says it does not).
                    let serving = !self.state.services_of(subj).is_empty()
                        || !self.state.workloads.contains_key(subj);
                    if serving {
                        raise(
                            Severity::P1,
                            format!(
                                "{subj} has 0 available replicas: runbook P1 \"Complete service unavailability\""
                            ),
                        )
                    } else {
                        raise(
                            Severity::P2,
                            format!(
                                "{subj} has 0 available replicas and serves no Service: runbook P2 \"Partial functionality unavailable\""
                            ),
                        )
                    }
                }
                _ => {}
            }
        }
        let not_ready = self
            .state
            .nodes
            .values()
            .filter(|n| n.ready == Some(false))
            .count();
        let nodes = self.state.nodes.len();
        if nodes >= 2 && not_ready * 2 > nodes && has(Symptom::NodeNotReady) {
            raise(
                Severity::P1,
                format!(
                    "{not_ready} of {nodes} nodes NotReady: runbook P1 \"Complete cluster failure\""
                ),
            );
        }
        if w.anchor == self.dns_anchor() {
            let callers: BTreeSet<&EntityKey> = recent
                .iter()
                .filter(|s| s.symptom == Symptom::DnsFailure)
                .map(|s| &s.subject)
                .collect();
            let dns_down = w.conditions.iter().any(|(_, s)| {
                matches!(s, Symptom::WorkloadUnavailable | Symptom::NoReadyEndpoints)
            }) || recent.iter().any(|s| {
                matches!(s.symptom, Symptom::CrashLoop | Symptom::OomKilled)
                    && s.subject == w.anchor
            });
            if callers.len() >= 2 || (dns_down && !callers.is_empty()) {
                raise(
                    Severity::P1,
                    format!(
                        "cluster DNS failing for {} workloads: runbook P1 \"Complete cluster failure\" (every service depends on DNS)",
                        callers.len()
                    ),
                );
            }
        }
        // Error ratios (sustained: two intervals, or an alert whose rule has its own `for`).
        for (target, (f, a, at)) in &w.ratios {
            if w.last_symptom - *at > self.cfg.window {
                continue;
            }
            let ratio = if *a > 0.0 { f / a } else { 0.0 };
            let from_alert = *a >= 1e6 - 1.0;
            if !from_alert && *a < self.cfg.min_traffic {
                continue;
            }
            let sustained = from_alert || w.ratio_intervals.get(target).copied().unwrap_or(0) >= 2;
            let pct = ratio * 100.0;
            if ratio >= 0.99 && sustained {
                raise(
                    Severity::P1,
                    format!(
                        "all requests to {target} failing ({pct:.0} %): runbook P1 \"Complete service unavailability\""
                    ),
                );
            } else if ratio > crate::classify::P2_ERROR_RATIO && sustained {
                raise(
                    Severity::P2,
                    format!(
                        "error rate {pct:.1} % > 5 % to {target}: runbook P2 \"Error rate > 5%\""
                    ),
                );
            } else if ratio > crate::classify::P2_ERROR_RATIO {
                raise(
                    Severity::P3,
                    format!(
                        "error rate {pct:.1} % to {target} (not yet sustained): runbook P3 \"Some features intermittently unavailable\""
                    ),
                );
            } else if ratio >= crate::classify::P3_ERROR_RATIO {
                raise(
                    Severity::P3,
                    format!("error rate {pct:.1} % to {target}: runbook P3 \"Error rate 1-5%\""),
                );
            }
        }
        for s in &recent {
            if let Some(l) = s.latency_s
                && l > crate::classify::P2_LATENCY_SECONDS
            {
                raise(
                    Severity::P2,
                    format!("response time {l:.1} s > 5 s: runbook P2 \"Slow response times\""),
                );
            }
        }
        // P2: partial functionality unavailable. Pod-level failures count as that only when
        // their workload is short of available replicas (or nothing says it is not); while
        // the old replicas still serve everyone, it is a P3 non-critical failure.
        for sym in [
            Symptom::CrashLoop,
            Symptom::ImagePullFailed,
            Symptom::ConfigError,
            Symptom::Unschedulable,
            Symptom::MountFailed,
            Symptom::WebhookFailed,
            Symptom::NetworkSetupFailed,
            Symptom::VolumeAttachFailed,
        ] {
            if !has(sym) {
                continue;
            }
            let subjects: BTreeSet<&EntityKey> = recent
                .iter()
                .filter(|s| s.symptom == sym)
                .map(|s| &s.subject)
                .chain(
                    w.conditions
                        .iter()
                        .filter(|(_, x)| *x == sym)
                        .map(|(k, _)| k),
                )
                .collect();
            // Short of replicas, and serving: a Service selects it (a worker or agent
            // without one is a non-critical component). For pods that fail while running
            // (crash loops), short means at most half of the desired replicas are
            // available: one of three down while the others serve is capacity lost, not
            // partial unavailability. What blocks new pods (webhooks, scheduling, pulls,
            // mounts) is short as soon as one is missing: nothing can replace it.
            let runtime_failure = matches!(sym, Symptom::CrashLoop | Symptom::ConfigError);
            // A node, claim, quota or webhook blocking pods: the workloads it affects.
            let affected_workloads: Vec<EntityKey> = w
                .inc
                .affected
                .iter()
                .filter_map(|a| EntityKey::parse(a))
                .filter(|k| k.is_workload())
                .collect();
            let subjects: BTreeSet<&EntityKey> = subjects
                .into_iter()
                .flat_map(|k| {
                    if k.is_workload() || k.kind == "Pod" || k.kind == "Service" {
                        vec![k]
                    } else {
                        affected_workloads.iter().collect()
                    }
                })
                .collect();
            let short = subjects.iter().any(|k| {
                let serving =
                    !self.state.services_of(k).is_empty() || !self.state.workloads.contains_key(*k);
                serving
                    && match self.state.workloads.get(*k) {
                        Some(ws) => match (ws.desired, ws.available) {
                            (Some(d), Some(a)) => a < d && (!runtime_failure || a * 2 <= d),
                            _ => true,
                        },
                        None => true,
                    }
            });
            if short {
                raise(
                    Severity::P2,
                    format!(
                        "{} with replicas unavailable: runbook P2 \"Partial functionality unavailable\"",
                        human(sym)
                    ),
                );
            } else {
                raise(
                    Severity::P3,
                    format!(
                        "{} while most desired replicas are still available: runbook P3 \"Non-critical component failures\"",
                        human(sym)
                    ),
                );
            }
        }
        for sym in [Symptom::NodeNotReady, Symptom::CertExpired] {
            if has(sym) {
                raise(
                    Severity::P2,
                    format!(
                        "{}: runbook P2 \"Partial functionality unavailable\"",
                        human(sym)
                    ),
                );
                break;
            }
        }
        for s in &recent {
            if s.symptom == Symptom::Alert && s.strong && s.ratio.is_none() {
                raise(
                    Severity::P3,
                    format!(
                        "alert firing ({}): runbook P3 \"Non-critical component failures\"",
                        s.detail
                    ),
                );
            }
        }
        // Replicas short: the share still available decides (one of three down while the
        // Service answers is capacity lost, not an outage).
        for s in recent
            .iter()
            .filter(|s| s.symptom == Symptom::WorkloadDegraded)
        {
            let serving = !self.state.services_of(&s.subject).is_empty();
            match self
                .state
                .workloads
                .get(&s.subject)
                .and_then(|ws| ws.desired.zip(ws.available))
            {
                Some((d, a)) if serving && d > 0 && a * 2 <= d => raise(
                    Severity::P2,
                    format!(
                        "{}: {a} of {d} replicas available: runbook P2 \"Partial functionality unavailable\"",
                        s.subject
                    ),
                ),
                Some((d, a)) => raise(
                    Severity::P3,
                    format!(
                        "{}: {a} of {d} replicas available{}: runbook P3 \"Non-critical component failures\"",
                        s.subject,
                        if serving {
                            ", the rest still serve"
                        } else {
                            ""
                        }
                    ),
                ),
                None => raise(
                    Severity::P3,
                    format!(
                        "{} ({}); replica counts unknown: runbook P3 \"Non-critical component failures\"",
                        s.subject, s.detail
                    ),
                ),
            }
        }
        // Alerts read through the vocabulary (correlate/alerts.rs), each with its figure.
        for s in &recent {
            let live =
                !is_condition(s.symptom) || w.conditions.contains(&(s.subject.clone(), s.symptom));
            if !live {
                continue;
            }
            match s.symptom {
                Symptom::TargetsDown => {
                    let f = s.fraction.unwrap_or(0.0);
                    // Cross-check with the state: endpoints still ready means scraping
                    // failed, not serving.
                    let ready = self
                        .state
                        .ready_endpoints(&s.subject)
                        .is_some_and(|(r, _)| r > 0);
                    if f >= 0.999 && !s.monitoring && !ready {
                        raise(
                            Severity::P1,
                            format!(
                                "{}: {}: runbook P1 \"Complete service unavailability\"",
                                s.subject, s.detail
                            ),
                        );
                    } else if s.monitoring {
                        raise(
                            Severity::P3,
                            format!(
                                "monitoring gap ({}): runbook P3 \"Non-critical component failures\"",
                                s.detail
                            ),
                        );
                    } else {
                        raise(
                            Severity::P3,
                            format!(
                                "{}: {}; the other targets still answer: runbook P3 \"Some features intermittently unavailable\"",
                                s.subject, s.detail
                            ),
                        );
                    }
                }
                Symptom::ControlPlaneDegraded if s.strong => raise(
                    Severity::P2,
                    format!(
                        "control plane degraded ({}): deploys, scaling and self-healing fail; runbook P2 \"Partial functionality unavailable\"",
                        s.detail
                    ),
                ),
                Symptom::ControlPlaneDegraded
                | Symptom::VolumeFilling
                | Symptom::FilesystemFilling
                | Symptom::ResourceExhausted
                | Symptom::ScalingLimit
                | Symptom::QuotaExceeded
                | Symptom::VolumeProvisionFailed => raise(
                    Severity::P3,
                    format!("{}: runbook P3 \"Resource usage warnings\"", s.detail),
                ),
                Symptom::JobFailed => raise(
                    Severity::P3,
                    format!(
                        "{} ({}): runbook P3 \"Non-critical component failures\"",
                        s.subject, s.detail
                    ),
                ),
                _ => {}
            }
        }
        // P3: intermittent unavailability, resource warnings, non-critical failures.
        for sym in [
            Symptom::ConnRefused,
            Symptom::ConnTimeout,
            Symptom::ConnError,
            Symptom::DnsFailure,
        ] {
            // Volume decides: a handful of failed connects in the whole window (a rarely
            // used link) is not a feature unavailable.
            let n = recent.iter().filter(|s| s.symptom == sym).count();
            if has(sym) && n >= RARE_FAILURES {
                raise(
                    Severity::P3,
                    format!(
                        "{}: {n} reports in the window: runbook P3 \"Some features intermittently unavailable\"",
                        human(sym)
                    ),
                );
            }
        }
        for sym in [
            Symptom::Evicted,
            Symptom::OomKilled,
            Symptom::NodeMemoryPressure,
            Symptom::NodeDiskPressure,
            Symptom::NodePidPressure,
            Symptom::CpuPressure,
            Symptom::IoPressure,
            Symptom::DiskLatency,
        ] {
            if has(sym) {
                raise(
                    Severity::P3,
                    format!("{}: runbook P3 \"Resource usage warnings\"", human(sym)),
                );
            }
        }
        for sym in [
            Symptom::RuntimeFailed,
            Symptom::DiskError,
            Symptom::HungTask,
            Symptom::Restarted,
            Symptom::ProbeFailed,
            Symptom::AbnormalExit,
            Symptom::NetworkDegraded,
        ] {
            if has(sym) {
                raise(
                    Severity::P3,
                    format!(
                        "{}: runbook P3 \"Non-critical component failures\"",
                        human(sym)
                    ),
                );
            }
        }
        if best.0 == Severity::P4 && has(Symptom::Informational) {
            best.1 = "informational (maintenance, configuration drift): runbook P4".into();
        }
        best
    }

    fn hypotheses(&self, w: &Working) -> (Vec<Hypothesis>, Vec<ChangeNote>) {
        let mut hyps: Vec<Hypothesis> = Vec::new();
        let mut notes: Vec<ChangeNote> = Vec::new();
        let first_at = w
            .signals
            .front()
            .map_or(w.inc.started_at, |s| s.at)
            .min(w.inc.started_at);
        let present: BTreeSet<Symptom> = w.signals.iter().map(|s| s.symptom).collect();
        #[allow(clippy::type_complexity)]
        let mut cands: Vec<(&Rule, EntityKey, f64, Vec<&Signal>, Option<Change>)> = Vec::new();
        let mut onsets: BTreeMap<(String, String), DateTime<Utc>> = BTreeMap::new();
        // Signals grouped once per evaluation, in arrival order within each symptom.
        let mut by_symptom: BTreeMap<Symptom, Vec<&Signal>> = BTreeMap::new();
        let mut strong_by_symptom: BTreeMap<Symptom, usize> = BTreeMap::new();
        let mut strong_total = 0usize;
        for s in &w.signals {
            by_symptom.entry(s.symptom).or_default().push(s);
            if s.strong {
                *strong_by_symptom.entry(s.symptom).or_default() += 1;
                strong_total += 1;
            }
        }
        for rule in &self.rules {
            if rule.requires_any.iter().any(|r| present.contains(r)) || rule.requires_any.is_empty()
            {
            } else {
                continue;
            }
            if rule.excludes.iter().any(|x| present.contains(x)) {
                continue;
            }
            let support: Vec<&Signal> = rule
                .symptoms
                .iter()
                .flat_map(|sym| by_symptom.get(sym).into_iter().flatten().copied())
                .collect();
            if support.is_empty() {
                continue;
            }
            if !rule.message_contains.is_empty()
                && !support.iter().any(|s| {
                    let m = format!("{} {}", s.message, s.detail).to_ascii_lowercase();
                    rule.message_contains.iter().any(|c| m.contains(c))
                })
            {
                continue;
            }
            // Distinct subjects: only built when the rule needs them.
            let needs_subjects =
                rule.min_subjects > 0 || rule.max_subjects > 0 || rule.on == On::Config;
            let subjects: BTreeSet<&EntityKey> = if needs_subjects {
                support.iter().map(|s| &s.subject).collect()
            } else {
                BTreeSet::new()
            };
            if rule.min_subjects > 0 && subjects.len() < rule.min_subjects {
                continue;
            }
            if rule.max_subjects > 0 && subjects.len() > rule.max_subjects {
                continue;
            }
            // Where the cause sits.
            let entity: Option<EntityKey> = match rule.on {
                On::Subject => {
                    let mut counts: BTreeMap<EntityKey, usize> = BTreeMap::new();
                    // Where the rule's required symptom is seen, when it names one.
                    let required = |s: &Signal| {
                        rule.requires_any.is_empty() || rule.requires_any.contains(&s.symptom)
                    };
                    for s in support.iter().filter(|s| required(s)) {
                        match s.subject.kind.as_str() {
                            "Node" | "Cluster" => {}
                            // A Service stands for the one workload behind it (an alert
                            // about the Service of a Deployment that rolled out).
                            "Service" => {
                                let ws = self.state.workloads_of(&s.subject);
                                if ws.len() == 1 {
                                    *counts.entry(ws[0].clone()).or_default() += 1;
                                }
                            }
                            _ => *counts.entry(s.subject.clone()).or_default() += 1,
                        }
                    }
                    if w.anchor.is_workload() && counts.contains_key(&w.anchor) {
                        Some(w.anchor.clone())
                    } else {
                        counts
                            .into_iter()
                            .max_by_key(|(k, n)| (*n, std::cmp::Reverse(k.clone())))
                            .map(|(k, _)| k)
                    }
                }
                On::Node
                    if w.anchor.kind == "Node" && support.iter().any(|s| s.subject == w.anchor) =>
                {
                    // The chain's own node: where it started.
                    Some(w.anchor.clone())
                }
                On::Node => {
                    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
                    for s in &support {
                        if s.subject.kind == "Node" {
                            *counts.entry(s.subject.name.clone()).or_default() += 3;
                        } else if let Some(n) = &s.node {
                            *counts.entry(n.clone()).or_default() += 1;
                        }
                    }
                    // Spread over several nodes that share a zone or node group the
                    // others do not: the shared factor (an exhausted zone subnet, a
                    // broken node image) is where the cause sits.
                    let nodes: BTreeSet<&String> = counts.keys().collect();
                    self.shared_factor(&nodes).or_else(|| {
                        counts
                            .into_iter()
                            .max_by_key(|(_, n)| *n)
                            .map(|(n, _)| EntityKey::node(&n))
                    })
                }
                On::Service => support
                    .iter()
                    .find(|s| s.subject.kind == "Service")
                    .map(|s| s.subject.clone()),
                On::Target => {
                    let mut counts: BTreeMap<&EntityKey, usize> = BTreeMap::new();
                    for s in &support {
                        if let Some(t) = &s.target
                            && t.kind != "Destination"
                        {
                            *counts.entry(t).or_default() += 1;
                        }
                    }
                    counts
                        .into_iter()
                        .max_by_key(|(_, n)| *n)
                        .map(|(k, _)| k.clone())
                }
                On::Config => None, // resolved below from changes
                On::Dns => (w.anchor == self.dns_anchor()).then(|| w.anchor.clone()),
                On::NetworkPlugin => self.cni_daemon().or_else(|| {
                    support
                        .iter()
                        .find_map(|s| s.node.as_deref().map(EntityKey::node))
                }),
            };
            // The change the rule needs, before the first symptom.
            let mut change: Option<Change> = None;
            if let Some(kind) = &rule.change {
                // A cause comes before its effects: the change must precede the chain's
                // first strong symptom (30 s of slack for clock and ordering skew); a change
                // made during the incident is a mitigation attempt, not its cause.
                let first_strong = w
                    .signals
                    .iter()
                    .filter(|s| s.strong)
                    .map(|s| s.at)
                    .min()
                    .unwrap_or(first_at);
                let lo = first_at - rule.change_window;
                let hi = first_strong + Duration::seconds(30);
                let candidates: Vec<&Change> = match rule.on {
                    On::Config => self
                        .changes
                        .iter()
                        .filter(|(k, _)| matches!(k.kind.as_str(), "ConfigMap" | "Secret"))
                        .filter(|(k, _)| {
                            subjects.iter().any(|s| {
                                self.uses_config(s, k)
                                    || (s.kind == "Namespace"
                                        && k.namespace.as_deref() == Some(s.name.as_str()))
                            })
                        })
                        .flat_map(|(_, q)| q.iter())
                        .collect(),
                    _ => entity
                        .as_ref()
                        .and_then(|e| self.changes.get(e))
                        .map(|q| q.iter().collect())
                        .unwrap_or_default(),
                };
                change = candidates
                    .into_iter()
                    .filter(|c| &c.kind == kind && c.at >= lo && c.at <= hi)
                    .max_by_key(|c| c.at)
                    .cloned();
                if change.is_none() {
                    continue;
                }
            }
            let entity = match (rule.on, &change) {
                (On::Config, Some(c)) => Some(c.entity.clone()),
                _ => entity,
            };
            let Some(entity) = entity else {
                continue;
            };
            // Confidence: the rule's base, scaled by how much of the incident it explains.
            let explained: usize = rule
                .symptoms
                .iter()
                .map(|sym| strong_by_symptom.get(sym).copied().unwrap_or(0))
                .sum();
            let coverage = if strong_total == 0 {
                1.0
            } else {
                explained as f64 / strong_total as f64
            };
            let confidence = (rule.confidence * (0.6 + 0.4 * coverage)).min(1.0);
            cands.push((rule, entity, confidence, support, change));
        }
        // Rank: confidence, then support, then rule name (deterministic); one per
        // cause + entity; only the best five are rendered.
        cands.sort_by(|a, b| {
            b.2.partial_cmp(&a.2)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.3.len().cmp(&a.3.len()))
                .then(a.0.name.cmp(&b.0.name))
        });
        let mut seen_pairs = BTreeSet::new();
        cands.retain(|c| seen_pairs.insert((c.0.cause.clone(), c.1.clone())));
        cands.truncate(5);
        for (rule, entity, confidence, support, change) in cands {
            let mut syms: Vec<&str> = support.iter().map(|s| s.symptom.as_str()).collect();
            syms.sort_unstable();
            syms.dedup();
            let message = support
                .iter()
                .find(|s| !s.message.is_empty())
                .map(|s| s.message.clone())
                .unwrap_or_default();
            let limit = support
                .iter()
                .filter(|s| s.symptom == Symptom::OomKilled)
                .find_map(|s| parse_bytes(&s.message))
                .map(|b| (b, fmt_bytes(b)));
            let subject = w.anchor.clone();
            let vars: Vec<(&str, String)> = vec![
                ("entity", entity.to_string()),
                ("kind", entity.kind.clone()),
                ("kind_lower", entity.kind.to_ascii_lowercase()),
                ("name", entity.name.clone()),
                (
                    "namespace",
                    entity.namespace.clone().unwrap_or_else(|| "default".into()),
                ),
                ("resource", entity.resource()),
                ("subject", subject.to_string()),
                ("subject_resource", subject.resource()),
                (
                    "node",
                    support
                        .iter()
                        .find_map(|s| s.node.clone())
                        .unwrap_or_default(),
                ),
                ("symptoms", syms.join(", ")),
                ("count", support.len().to_string()),
                ("message", message.chars().take(200).collect()),
                (
                    "change",
                    change
                        .as_ref()
                        .map(|c| c.description.clone())
                        .unwrap_or_default(),
                ),
                (
                    "limit",
                    limit
                        .as_ref()
                        .map(|(_, l)| format!(" ({l})"))
                        .unwrap_or_default(),
                ),
                (
                    "suggested_limit",
                    limit
                        .as_ref()
                        .map(|(b, _)| fmt_bytes(b * 2))
                        .unwrap_or_else(|| "<2x the observed peak>".into()),
                ),
            ];
            let mut chain = vec![format!("{} on {entity}", rule.cause)];
            if let Some(c) = &change {
                chain.insert(0, format!("changed: {}", c.description));
            }
            for s in &support {
                let step = format!("→ {}", s.detail);
                if !chain.contains(&step) {
                    chain.push(step);
                }
                if chain.len() >= 8 {
                    break;
                }
            }
            if let Some(c) = &change {
                notes.push(ChangeNote {
                    at: c.at,
                    entity: c.entity.to_string(),
                    kind: c.kind.clone(),
                    description: c.description.clone(),
                    evidence: c.evidence,
                });
            }
            // When the cause's own symptom first showed (its required one, when it
            // names one): the earlier of two close node causes is the likelier start.
            let began = support
                .iter()
                .filter(|s| rule.requires_any.is_empty() || rule.requires_any.contains(&s.symptom))
                .map(|s| s.at)
                .min();
            if let Some(b) = began {
                onsets.insert((rule.cause.clone(), entity.to_string()), b);
            }
            hyps.push(Hypothesis {
                cause: rule.cause.clone(),
                entity: entity.to_string(),
                confidence: (confidence * 1000.0).round() / 1000.0,
                evidence: support.iter().map(|s| s.evidence).take(20).collect(),
                chain,
                rule: rule.name.clone(),
                explanation: render(&rule.explain, &vars),
                mitigations: rule.mitigations.iter().map(|m| render(m, &vars)).collect(),
            });
        }
        // Changes on the incident's entities in the hour before, even when no rule used them.
        let mut related: BTreeSet<&EntityKey> = BTreeSet::new();
        let mut nodes: BTreeSet<&str> = BTreeSet::new();
        related.insert(&w.anchor);
        for s in &w.signals {
            related.insert(&s.subject);
            if let Some(n) = &s.node {
                nodes.insert(n);
            }
        }
        let node_keys: Vec<EntityKey> = nodes
            .iter()
            .filter(|n| self.changes.contains_key(&EntityKey::node(n)))
            .map(|n| EntityKey::node(n))
            .collect();
        related.extend(node_keys.iter());
        for k in related {
            if let Some(q) = self.changes.get(k) {
                for c in q
                    .iter()
                    .filter(|c| c.at <= w.last_symptom && c.at >= first_at - Duration::hours(1))
                {
                    if !notes.iter().any(|n| n.evidence == c.evidence) {
                        notes.push(ChangeNote {
                            at: c.at,
                            entity: c.entity.to_string(),
                            kind: c.kind.clone(),
                            description: c.description.clone(),
                            evidence: c.evidence,
                        });
                    }
                }
            }
        }
        notes.sort_by_key(|n| n.at);
        if let Some(h) = self.onset_hypothesis(w) {
            hyps.push(h);
        }
        if let Some(f) = &w.factor {
            hyps.push(factor_hypothesis(f, w));
        }
        // Rank: confidence, then support, then name (deterministic). One per cause+entity.
        hyps.sort_by(|a, b| {
            b.confidence
                .partial_cmp(&a.confidence)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(b.evidence.len().cmp(&a.evidence.len()))
                .then(a.rule.cmp(&b.rule))
        });
        // Two causes on the same node within 0.05 of each other: the one whose own symptom
        // began first leads (memory starvation before the CPU storm it sets off).
        if hyps.len() >= 2
            && hyps[0].entity == hyps[1].entity
            && hyps[0].entity.starts_with("Node/")
            && hyps[0].confidence - hyps[1].confidence < 0.05
            && let (Some(a), Some(b)) = (
                onsets.get(&(hyps[0].cause.clone(), hyps[0].entity.clone())),
                onsets.get(&(hyps[1].cause.clone(), hyps[1].entity.clone())),
            )
            && b < a
        {
            hyps.swap(0, 1);
        }
        // A cause that explains the chain outranks the symptom-level explanation of one
        // of its links: a node whose failure took a Service's pods, a claim its pods
        // mount, a rollout or config of the workloads behind it rank above "that Service
        // has no ready endpoints" or "its callers fail".
        let symptom_level = |c: &str| {
            matches!(
                c,
                "no_ready_endpoints" | "dependency_failure" | CASCADE_ORIGIN
            )
        };
        let node_level = |c: &str| !symptom_level(c);
        // Move them ahead of the first symptom-level hypothesis they explain, keeping
        // their own order, and give them at least its confidence.
        if let Some(at) = hyps.iter().position(|h| symptom_level(&h.cause)) {
            let link = EntityKey::parse(&hyps[at].entity);
            let conf = hyps[at].confidence;
            let mut lifted = Vec::new();
            let mut i = at + 1;
            while i < hyps.len() {
                let explains = node_level(&hyps[i].cause)
                    && link.as_ref().is_some_and(|l| {
                        EntityKey::parse(&hyps[i].entity).is_some_and(|c| self.explains(&c, l, w))
                    });
                if explains {
                    let mut h = hyps.remove(i);
                    h.confidence = h.confidence.max(conf);
                    lifted.push(h);
                } else {
                    i += 1;
                }
            }
            for (n, h) in lifted.into_iter().enumerate() {
                hyps.insert(at + n, h);
            }
        }
        let mut seen = BTreeSet::new();
        hyps.retain(|h| seen.insert((h.cause.clone(), h.entity.clone())));
        hyps.truncate(5);
        (hyps, notes)
    }
}

/// The hypothesis of nodes failing together on a shared node group or zone: it explains
/// every node's failure at once, so it outranks each node's own.
fn factor_hypothesis(f: &Factor, w: &Working) -> Hypothesis {
    let what = if f.cause == ZONE_FAILURE {
        "zone"
    } else {
        "node group"
    };
    let evidence: Vec<Ulid> = w
        .signals
        .iter()
        .filter(|s| s.subject.kind == "Node" && s.strong)
        .map(|s| s.evidence)
        .take(20)
        .collect();
    let nodes = f.nodes.join(", ");
    let of = if f.of > 0 {
        format!(" of its {}", f.of)
    } else {
        String::new()
    };
    let mut chain = vec![format!("{} on {}", f.cause, f.entity)];
    chain.extend(f.nodes.iter().map(|n| format!("→ node {n} failed")));
    let selector = if f.cause == ZONE_FAILURE {
        format!("topology.kubernetes.io/zone={}", f.entity.name)
    } else {
        format!("<node-group label>={}", f.entity.name)
    };
    Hypothesis {
        cause: f.cause.into(),
        entity: f.entity.to_string(),
        confidence: 0.95,
        evidence,
        chain,
        rule: "common-factor".into(),
        explanation: format!(
            "{} nodes{of} of {what} {} failed together ({nodes}) while nodes outside it stayed healthy: the {what} is the common factor",
            f.nodes.len(),
            f.entity.name
        ),
        mitigations: vec![
            format!("kubectl get nodes -l {selector} -o wide"),
            format!("kubectl cordon -l {selector}"),
            "compare the failing nodes' image, kernel and runtime (kubectl get nodes -o wide) with the healthy ones; roll back the last change to the group".into(),
        ],
    }
}

/// Confidence of a common-onset origin that began failing first and is also the worst
/// hit; first but not worst is a best guess below the default confidence threshold.
const ONSET_FIRST_AND_WORST: f64 = 0.6;
const ONSET_FIRST_ONLY: f64 = 0.45;

impl CorrelationEngine {
    /// The hypothesis of a common-onset group: the entity that began failing first is
    /// the likely origin (confidence 0.6 when it is also the worst hit, 0.45 otherwise);
    /// the others are affected. A guess about a path nobody has shown, so it ranks below
    /// what a rule proves.
    fn onset_hypothesis(&self, w: &Working) -> Option<Hypothesis> {
        if !w.onset_group {
            return None;
        }
        let ns = w.anchor.namespace.as_deref()?;
        let members: Vec<(&EntityKey, &Member)> = w
            .members
            .iter()
            .filter(|(k, _)| k.namespace.as_deref() == Some(ns))
            .collect();
        if members.len() < 2 {
            return None;
        }
        // First to fail; ties broken by the harder hit, then by name (deterministic).
        let (origin, om) = members.iter().copied().min_by(|a, b| {
            a.1.first
                .cmp(&b.1.first)
                .then(b.1.hit(a.1))
                .then(a.0.cmp(b.0))
        })?;
        let worst = members
            .iter()
            .all(|(k, m)| *k == origin || om.hit(m) != std::cmp::Ordering::Less);
        let last = members.iter().map(|(_, m)| m.first).max()?;
        let span = (last - om.first).num_milliseconds().max(0) as f64 / 1000.0;
        let hit = if om.ratio > 0.0 {
            format!(" ({:.0} % errors)", om.ratio * 100.0)
        } else if om.latency > 0.0 {
            format!(" (p99 {:.1} s)", om.latency)
        } else {
            String::new()
        };
        let n = members.len();
        let explanation = format!(
            "{n} workloads in {ns} began failing within {span:.0} s and no dependency or rule \
             explains them separately; {} {}{hit}: the likely origin, the others probably \
             fail through it",
            origin.name,
            if worst {
                "first and worst hit"
            } else {
                "first (not the worst hit)"
            },
        );
        let mut chain = vec![format!("{CASCADE_ORIGIN} on {origin}")];
        let mut rest: Vec<(&EntityKey, &Member)> = members
            .iter()
            .copied()
            .filter(|(k, _)| *k != origin)
            .collect();
        rest.sort_by(|a, b| a.1.first.cmp(&b.1.first).then(a.0.cmp(b.0)));
        for (k, m) in rest.iter().take(7) {
            let after = (m.first - om.first).num_milliseconds().max(0) as f64 / 1000.0;
            chain.push(format!("→ {k} failing {after:.1} s later"));
        }
        let evidence: Vec<Ulid> = w
            .signals
            .iter()
            .filter(|s| s.strong && s.subject == *origin)
            .map(|s| s.evidence)
            .take(20)
            .collect();
        let resource = origin.resource();
        Some(Hypothesis {
            cause: CASCADE_ORIGIN.into(),
            entity: origin.to_string(),
            confidence: if worst {
                ONSET_FIRST_AND_WORST
            } else {
                ONSET_FIRST_ONLY
            },
            evidence,
            chain,
            rule: "common-onset".into(),
            explanation,
            mitigations: vec![
                format!("kubectl describe {resource} -n {ns}"),
                format!("kubectl logs {resource} -n {ns} --since=15m"),
                format!(
                    "check what {} depends on (database, queue, external API): the other {} workloads likely fail through it",
                    origin.name,
                    n - 1
                ),
            ],
        })
    }
}

/// When an incident began failing: its first strong symptom (weak signals seen before it,
/// a probe miss minutes earlier, do not make it older), else its start.
fn onset(w: &Working) -> DateTime<Utc> {
    w.members
        .values()
        .map(|m| m.first)
        .min()
        .unwrap_or(w.inc.started_at)
}

/// Whether an incident may join a common-onset group: it sits in a namespace, on a
/// workload, pod or Service, and no rule explains it (no confident cause, or it is a
/// common-onset group itself).
fn onset_eligible(k: &EntityKey, w: &Working) -> bool {
    k.namespace.is_some()
        && !matches!(k.kind.as_str(), "Node" | "Cluster" | "Destination")
        && (!w.inc.root_cause_confident
            || w.inc
                .hypotheses
                .first()
                .is_some_and(|h| h.cause == CASCADE_ORIGIN))
}

/// Whether an incident whose cause is `k` (None: no confident cause) is only a symptom of
/// an incident whose confident cause is `j`, when `j` already involves it.
fn absorbable(k: Option<&str>, j: &str) -> bool {
    // Symptom-level causes: they say what failed, not why.
    const SYMPTOMATIC: [&str; 2] = ["dependency_failure", "no_ready_endpoints"];
    if SYMPTOMATIC.contains(&j) {
        return false;
    }
    match k {
        None => true,
        Some(k) if SYMPTOMATIC.contains(&k) => true,
        // A common-onset group is a guess about an unknown path: a rule's cause that
        // already involves the group's origin or its anchor explains it.
        Some(CASCADE_ORIGIN) => j != CASCADE_ORIGIN,
        // An autoscaler at its maximum is what any chain that stops pods from serving or
        // starting looks like from the HPA.
        Some("autoscaling_limit") => j != "autoscaling_limit",
        // OOM kills on a node starved of memory are the node's, not the limit's.
        Some("memory_limit_too_low") => j == "node_memory_pressure",
        // A node going NotReady under pressure is the pressure's doing.
        Some("node_failure") => {
            matches!(j, "node_memory_pressure" | "cpu_pressure" | "io_pressure")
        }
        // The same kind of node trouble following one workload from node to node is one
        // chain (the DFDS Hangfire post-mortem): joined when they share a workload.
        Some(k) => k == j && matches!(j, "node_memory_pressure" | "cpu_pressure" | "io_pressure"),
    }
}

/// Whether an incident holds only what callers and monitors see (alerts, failed connects,
/// probes, targets down) and nothing about its own pods or nodes.
fn caller_only(w: &Working) -> bool {
    w.signals.iter().all(|s| {
        matches!(
            s.symptom,
            Symptom::Alert
                | Symptom::ConnectStats
                | Symptom::ConnRefused
                | Symptom::ConnTimeout
                | Symptom::ConnError
                | Symptom::ProbeFailed
                | Symptom::TargetsDown
                | Symptom::Informational
                | Symptom::CpuThrottled
        )
    })
}

/// The admission webhook a refusal names (`failed calling webhook "x"`).
fn webhook_name(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let i = lower.find("webhook \"")? + "webhook \"".len();
    let name: String = lower[i..]
        .chars()
        .take_while(|c| *c != '"' && *c != '\\')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The resource a scheduling failure lacks (`Insufficient cpu` → "cpu").
fn insufficient(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let i = lower.find("insufficient ")? + "insufficient ".len();
    let r: String = lower[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '/' || *c == '-')
        .collect();
    (!r.is_empty()).then_some(r)
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

fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return (n > 0).then_some(n);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    let m = match unit {
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return None,
    };
    Some(n * m)
}

fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 30 && b.is_multiple_of(1 << 30) {
        format!("{}Gi", b >> 30)
    } else {
        format!("{}Mi", b.div_ceil(1 << 20))
    }
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

fn human(s: Symptom) -> &'static str {
    match s {
        Symptom::OomKilled => "OOM kills",
        Symptom::CrashLoop => "Crash loop",
        Symptom::Restarted => "Restarts",
        Symptom::ImagePullFailed => "Image pull failures",
        Symptom::ConfigError => "Container config errors",
        Symptom::Unschedulable => "Unschedulable pods",
        Symptom::Evicted => "Evictions",
        Symptom::ProbeFailed => "Probe failures",
        Symptom::MountFailed => "Volume mount failures",
        Symptom::NodeNotReady => "Node NotReady",
        Symptom::NodeMemoryPressure => "Node memory pressure",
        Symptom::NodeDiskPressure => "Node disk pressure",
        Symptom::NodePidPressure => "Node PID pressure",
        Symptom::CpuPressure => "CPU pressure",
        Symptom::IoPressure => "I/O pressure",
        Symptom::NoReadyEndpoints => "No ready endpoints",
        Symptom::WorkloadUnavailable => "No replica available",
        Symptom::WorkloadDegraded => "Replicas unavailable",
        Symptom::ConnRefused => "Connections refused",
        Symptom::ConnTimeout => "Connections timing out",
        Symptom::ConnError => "Connection errors",
        Symptom::DnsFailure => "DNS failures",
        Symptom::ConnectStats => "Connection failures",
        Symptom::DiskError => "Disk I/O errors",
        Symptom::DiskLatency => "Disk latency",
        Symptom::HungTask => "Hung tasks",
        Symptom::Alert => "Alert",
        Symptom::AbnormalExit => "Abnormal exits",
        Symptom::WebhookFailed => "Admission webhook failures",
        Symptom::CertExpired => "Expired certificate",
        Symptom::NetworkDegraded => "Network degradation",
        Symptom::Declared => "Declared incident",
        Symptom::Informational => "Informational",
        Symptom::TargetsDown => "Scrape targets down",
        Symptom::VolumeFilling => "Volume filling up",
        Symptom::FilesystemFilling => "Node filesystem filling up",
        Symptom::ResourceExhausted => "Node resource exhaustion",
        Symptom::ControlPlaneDegraded => "Control plane degraded",
        Symptom::JobFailed => "Job failures",
        Symptom::ScalingLimit => "Autoscaler at its limit",
        Symptom::CpuThrottled => "CPU throttling",
        Symptom::NetworkSetupFailed => "Pod network setup failures",
        Symptom::VolumeAttachFailed => "Volume attach failures",
        Symptom::VolumeProvisionFailed => "Volume provisioning failures",
        Symptom::QuotaExceeded => "Quota exceeded",
        Symptom::RuntimeFailed => "Container runtime failures",
    }
}

fn human_cause(c: &str) -> String {
    let s = c.replace('_', " ");
    let mut ch = s.chars();
    match ch.next() {
        Some(f) => f.to_uppercase().collect::<String>() + ch.as_str(),
        None => s,
    }
}

fn push_timeline(inc: &mut Incident, entry: TimelineEntry) {
    if let Some(last) = inc.timeline.last_mut()
        && last.kind == TimelineKind::Evidence
        && entry.kind == TimelineKind::Evidence
        && last.message == entry.message
    {
        last.count += 1;
        last.last_at = Some(entry.at.max(last.last_at.unwrap_or(last.at)));
        return;
    }
    if inc.timeline.len() >= MAX_TIMELINE {
        inc.timeline.remove(1);
    }
    inc.timeline.push(entry);
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

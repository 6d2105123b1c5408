//! Structure: which incidents are one chain (symptom-only incidents joining the chain
//! that explains them, common onset, nodes sharing a factor) and how they merge.

use super::*;

impl CorrelationEngine {
    /// The incident this one belongs to: the one anchored at its confident root cause, or an
    /// older one with the same confident root cause (one causal chain, one incident).
    pub(super) fn merge_target(&self, k: &EntityKey) -> Option<EntityKey> {
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
    pub(super) fn merge_candidates(&self, j: &EntityKey) -> Vec<EntityKey> {
        let Some(wj) = self.active.get(j) else {
            return Vec::new();
        };
        if super::is_storm(j) {
            return Vec::new();
        }
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
        // A node's chain reaches every namespace with pods on the node.
        if j.kind == "Node" {
            for (k, _) in self.state.pods_on(&j.name) {
                namespaces.insert(k.namespace.as_deref());
            }
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
                    && !super::is_storm(k)
                    && (((is_strong(w) != j_strong || (j_strong && k.kind == "Node"))
                        || (j_onset && onset_eligible(k, w) && k.namespace == j.namespace))
                        && namespaces.contains(&k.namespace.as_deref())
                        || (j_caller_only && is_strong(w))
                        || (j_unschedulable && unschedulable(w)))
            })
            .map(|(k, w)| (w.seq, k.clone()))
            .collect::<BTreeSet<_>>()
            // In the order the incidents opened: which merges happen first never depends
            // on the names (or their hashes), so renaming everything keeps the answer.
            .into_iter()
            .map(|(_, k)| k)
            .collect()
    }

    /// Whether incident `k` is only a symptom (no confident cause, or "its callers fail")
    /// of incident `j`, which has a confident cause of its own and already involves it.
    pub(super) fn absorbs(&self, j: &EntityKey, k: &EntityKey) -> bool {
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
            wj.inc.affected.contains(&s)
                || wj.hosted.contains(m)
                // A node's chain takes in what runs on the node (the state knows it even
                // when no "Node is not ready" event named the pods).
                || (j.kind == "Node" && self.node_explains(&j.name, m, wj))
        }) || self.downstream(j, wj, k, wk)
    }

    /// Whether `k` — no confident cause, only what callers see (alerts, failed connects,
    /// probes) — is downstream of `j`, a confident P1/P2 chain that began before it
    /// (within 15 minutes) and reaches it: `k` is in a namespace `j` already involves, or
    /// its pods ran on `j`'s failed node.
    pub(super) fn downstream(
        &self,
        j: &EntityKey,
        wj: &Working,
        k: &EntityKey,
        wk: &Working,
    ) -> bool {
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
    pub(super) fn onset_pair(
        &self,
        a: &EntityKey,
        b: &EntityKey,
    ) -> Option<(EntityKey, EntityKey)> {
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

    /// The zone or node group that `nodes` (at least two) have in common and that most of
    /// its nodes are among, while some node of the cluster is outside it.
    pub(super) fn shared_factor(&self, nodes: &BTreeSet<&String>) -> Option<EntityKey> {
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
    pub(super) fn calls_into(&self, owners: &[EntityKey], j: &EntityKey, wj: &Working) -> bool {
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
    pub(super) fn explains(&self, cause: &EntityKey, link: &EntityKey, w: &Working) -> bool {
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
    pub(super) fn node_explains(&self, node: &str, link: &EntityKey, w: &Working) -> bool {
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

    /// Unexplained incidents of at least three workloads, beginning within 15 minutes,
    /// whose failing pods all ran on nodes of one node group that not every node belongs
    /// to, while each of them still has a ready pod outside it: the group is the cause
    /// (a node image or runtime that only those nodes run). Sets the factor on the
    /// incident opened first and returns the merges (from, into) that make it one.
    pub(super) fn workload_factor(&mut self) -> Vec<(EntityKey, EntityKey)> {
        let window = Duration::minutes(FACTOR_WINDOW_MINUTES);
        let unexplained = |k: &EntityKey, w: &Working| {
            (k.is_workload() || k.kind == "Service")
                && w.factor.is_none()
                && !(w.inc.root_cause_confident
                    && w.inc.hypotheses.first().is_some_and(|h| {
                        h.cause != CASCADE_ORIGIN && h.cause != "dependency_failure"
                    }))
        };
        // Cheap first: it takes three (this runs whenever a workload's incident changes).
        if self
            .active
            .iter()
            .filter(|(k, w)| unexplained(k, w))
            .take(3)
            .count()
            < 3
        {
            return Vec::new();
        }
        // Unexplained workload incidents and the nodes their failing pods ran on.
        // A local scratch list, built and consumed in this function; a named type would be
        // used only here.
        #[allow(clippy::type_complexity)]
        let mut cands: Vec<(
            u64,
            EntityKey,
            DateTime<Utc>,
            BTreeSet<String>,
            Vec<EntityKey>,
        )> = Vec::new();
        for (k, w) in self.active.iter().filter(|(k, w)| unexplained(k, w)) {
            let mut owners = vec![k.clone()];
            if k.kind == "Service" {
                owners.extend(self.state.workloads_of(k));
            }
            let nodes: BTreeSet<String> = w
                .signals
                .iter()
                .filter(|s| owners.contains(&s.subject))
                .filter_map(|s| s.node.clone())
                .collect();
            if !nodes.is_empty() {
                cands.push((w.seq, k.clone(), w.inc.started_at, nodes, owners));
            }
        }
        if cands.len() < 3 {
            return Vec::new();
        }
        cands.sort();
        let groups = |n: &str| -> Vec<String> {
            self.state
                .nodes
                .get(n)
                .map(|st| {
                    st.factors
                        .iter()
                        .filter(|(kind, _)| *kind == "NodeGroup")
                        .map(|(_, v)| v.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        // The groups every failing node of a candidate is in.
        let mut by_group: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, (_, _, _, nodes, _)) in cands.iter().enumerate() {
            let mut common: Option<BTreeSet<String>> = None;
            for n in nodes {
                let g: BTreeSet<String> = groups(n).into_iter().collect();
                common = Some(match common {
                    None => g,
                    Some(c) => c.intersection(&g).cloned().collect(),
                });
            }
            for g in common.unwrap_or_default() {
                by_group.entry(g).or_default().push(i);
            }
        }
        let total = self.state.nodes.len();
        for (g, members) in by_group {
            if members.len() < 3 {
                continue;
            }
            let in_group = |n: &str| groups(n).contains(&g);
            let of = self.state.nodes.keys().filter(|n| in_group(n)).count();
            if of == 0 || of >= total {
                continue;
            }
            // Each workload still serves from outside the group: the group, not the
            // workload, is what fails.
            let healthy_elsewhere = members.iter().all(|i| {
                cands[*i].4.iter().any(|o| {
                    self.state.pods_of(o).any(|p| {
                        p.ready == Some(true) && p.node.as_deref().is_some_and(|n| !in_group(n))
                    })
                })
            });
            let first = members.iter().map(|i| cands[*i].2).min();
            let last = members.iter().map(|i| cands[*i].2).max();
            let together = matches!((first, last), (Some(a), Some(b)) if b - a <= window);
            if !healthy_elsewhere || !together {
                continue;
            }
            let into = cands[members[0]].1.clone();
            let nodes: Vec<String> = members
                .iter()
                .flat_map(|i| cands[*i].3.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if let Some(w) = self.active.get_mut(&into) {
                w.factor = Some(Factor {
                    cause: NODE_GROUP_FAILURE,
                    entity: EntityKey::new("NodeGroup", None, &g),
                    nodes,
                    of,
                });
            }
            return members
                .iter()
                .skip(1)
                .map(|i| (cands[*i].1.clone(), into.clone()))
                .collect();
        }
        Vec::new()
    }

    /// Node incidents failing together whose nodes share a node group or zone that the
    /// healthy nodes do not (at least two of them, beginning within 15 minutes): the
    /// factor covering the largest share of its nodes is the cause. Sets the factor on
    /// the incident opened first and returns the merges (from, into) that make it one.
    pub(super) fn common_factor(&mut self) -> Vec<(EntityKey, EntityKey)> {
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
    pub(super) fn merge(&mut self, from: &EntityKey, into: &EntityKey) -> Option<Incident> {
        if super::is_storm(from) || super::is_storm(into) {
            return None;
        }
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
            if w.seen.len() < super::MAX_SEEN {
                w.seen.insert((s.symptom, s.subject.clone()));
            }
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
}

/// When an incident began failing: its first strong symptom (weak signals seen before it,
/// a probe miss minutes earlier, do not make it older), else its start.
pub(super) fn onset(w: &Working) -> DateTime<Utc> {
    w.members
        .values()
        .map(|m| m.first)
        .min()
        .unwrap_or(w.inc.started_at)
}

/// Whether an incident may join a common-onset group: it sits in a namespace, on a
/// workload, pod or Service, and no rule explains it (no confident cause, or it is a
/// common-onset group itself).
pub(super) fn onset_eligible(k: &EntityKey, w: &Working) -> bool {
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
pub(super) fn absorbable(k: Option<&str>, j: &str) -> bool {
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
pub(super) fn caller_only(w: &Working) -> bool {
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
pub(super) fn webhook_name(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let i = lower.find("webhook \"")? + "webhook \"".len();
    let name: String = lower[i..]
        .chars()
        .take_while(|c| *c != '"' && *c != '\\')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The resource a scheduling failure lacks (`Insufficient cpu` → "cpu").
pub(super) fn insufficient(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let i = lower.find("insufficient ")? + "insufficient ".len();
    let r: String = lower[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '/' || *c == '-')
        .collect();
    (!r.is_empty()).then_some(r)
}

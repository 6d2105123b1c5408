//! Routing: which incident (causal anchor) a signal belongs to, per depth.

use super::*;

impl CorrelationEngine {
    /// Which incident a signal belongs to (its causal anchor), per depth.
    ///
    /// Long by nature: the routing rules are tried in order and the first that applies
    /// decides (basic depth first, then one commented block per causal path: node,
    /// namespace, autoscaler, control plane, webhook, CNI, claims, CronJobs, destinations).
    pub(super) fn anchor(&self, s: &Signal) -> EntityKey {
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
        // (Only looked up while some claim has an incident: this runs for every signal.)
        if (s.subject.is_workload() || s.subject.kind == "Service")
            && self
                .active
                .keys()
                .any(|k| k.kind == "PersistentVolumeClaim")
        {
            let mut owners = vec![s.subject.clone()];
            if s.subject.kind == "Service" {
                owners.extend(self.state.workloads_of(&s.subject));
            }
            for o in &owners {
                for p in self.state.pods_of(o) {
                    for c in &p.claims {
                        if let Some(w) = self.active.get(c)
                            && within(w)
                        {
                            return c.clone();
                        }
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
    pub(super) fn cni_daemon(&self) -> Option<EntityKey> {
        state::CNI_DAEMONS.iter().find_map(|n| {
            let k = EntityKey::ns("DaemonSet", "kube-system", n);
            self.state.workloads.contains_key(&k).then_some(k)
        })
    }

    pub(super) fn dns_anchor(&self) -> EntityKey {
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
    pub(super) fn incident_of_service(&self, svc: &EntityKey) -> Option<EntityKey> {
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
    pub(super) fn cascade_anchor(&self, s: &Signal) -> Option<EntityKey> {
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
}

//! Ranking: the root-cause hypotheses of an incident, from the rules and from structure
//! (common factor, common onset), ordered so that a cause explaining the chain outranks
//! the symptom-level explanation of one of its links.

use super::*;

impl CorrelationEngine {
    /// The incident's root-cause hypotheses, best first, and the changes they cite.
    ///
    /// Long by nature: for every rule it finds where the cause sits, the change it needs
    /// and its confidence, then ranks the candidates and renders the best; the steps share
    /// scratch lists and are commented in place.
    pub(super) fn hypotheses(&self, w: &Working) -> (Vec<Hypothesis>, Vec<ChangeNote>) {
        let mut hyps: Vec<Hypothesis> = Vec::new();
        let mut notes: Vec<ChangeNote> = Vec::new();
        let first_at = w
            .signals
            .front()
            .map_or(w.inc.started_at, |s| s.at)
            .min(w.inc.started_at);
        let present: BTreeSet<Symptom> = w.signals.iter().map(|s| s.symptom).collect();
        // A local scratch list of (rule, cause entity, score, supporting signals, change);
        // a named type would be used only here.
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
pub(super) fn factor_hypothesis(f: &Factor, w: &Working) -> Hypothesis {
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
    pub(super) fn onset_hypothesis(&self, w: &Working) -> Option<Hypothesis> {
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

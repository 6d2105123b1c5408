//! Severity: the runbook's P-levels from an incident's evidence, each with the figure
//! that decided it and where it came from (docs/classification.md).

use super::*;

impl CorrelationEngine {
    /// The runbook level an incident's evidence justifies, with the reason that decided it.
    ///
    /// Long by nature: one commented block per runbook level and criterion (P1
    /// unavailability, error ratios, P2 partial loss, alerts, P3 intermittent trouble),
    /// each raising the level it justifies; the most severe wins. Read top to bottom, it
    /// is the runbook's table.
    pub(super) fn severity(&self, w: &Working) -> (Severity, String) {
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
                    } else if f >= 0.999 && !s.monitoring {
                        raise(
                            Severity::P3,
                            format!(
                                "{}: {}, yet the state shows ready endpoints (scraping may fail, not the service): runbook P3 \"Some features intermittently unavailable\"",
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
}

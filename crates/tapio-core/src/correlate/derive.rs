//! Evidence of every source → signals, changes and recoveries.

use tapio_proto::{Event, EventSeverity};

use super::alerts;
use super::entity::{EntityKey, subject_of};
use super::signal::{Change, Derived, Recovery, Signal, Symptom};
use super::state::ClusterState;
use crate::incident::Severity;

/// The subject of an evidence entity, with pods resolved to their workload from state.
pub fn subject(ev: &Event, state: &ClusterState) -> Option<EntityKey> {
    let e = &ev.entity;
    if e.workload.is_none()
        && let (Some(ns), Some(pod)) = (&e.namespace, &e.pod)
        && let Some(p) = state.pods.get(&EntityKey::ns("Pod", ns, pod))
        && let Some(o) = &p.owner
    {
        return Some(o.clone());
    }
    if e.workload.is_none()
        && e.pod.is_none()
        && let Some(uid) = &e.pod_uid
        && let Some(p) = state.pods.values().find(|p| &p.uid == uid)
        && let Some(o) = &p.owner
    {
        return Some(o.clone());
    }
    subject_of(e)
}

fn sig(ev: &Event, symptom: Symptom, subject: EntityKey, strong: bool, detail: String) -> Signal {
    Signal {
        at: ev.time,
        evidence: ev.id,
        symptom,
        subject,
        node: ev.entity.node.clone(),
        target: None,
        detail,
        strong,
        ratio: None,
        latency_s: None,
        priority: None,
        message: String::new(),
        fraction: None,
        monitoring: false,
        joins_only: false,
        source: "",
    }
}

/// The DNS service of the cluster, when known.
pub fn dns_service(state: &ClusterState) -> Option<EntityKey> {
    let k = EntityKey::ns("Service", "kube-system", "kube-dns");
    if state.services.contains_key(&k) {
        return Some(k);
    }
    state
        .services
        .keys()
        .find(|k| k.namespace.as_deref() == Some("kube-system") && k.name.contains("dns"))
        .cloned()
}

fn target_of(ev: &Event, state: &ClusterState) -> (Option<EntityKey>, bool) {
    // Borrowed: this runs for every connect statistic.
    let addr: Option<&str> = match ev.attributes.get("dst_addr") {
        Some(tapio_proto::AttrValue::String(a)) => Some(a.as_str()),
        _ => None,
    };
    let port = ev.attr_f64("dst_port").map(|p| p as i64);
    let is_dns = port == Some(53);
    let who = addr.and_then(|a| state.who_is(a, port));
    let target = match (who, addr) {
        (Some(w), _) => Some(w),
        (None, Some(a)) if is_dns => dns_service(state).or(Some(EntityKey::new(
            "Destination",
            None,
            &format!("{a}:53"),
        ))),
        (None, Some(a)) => Some(EntityKey::new(
            "Destination",
            None,
            &format!("{a}:{}", port.unwrap_or(0)),
        )),
        (None, None) => ev
            .entity
            .service
            .as_ref()
            .map(|s| EntityKey::new("Service", ev.entity.namespace.as_deref(), s)),
    };
    let dns = is_dns
        || target.as_ref().is_some_and(|t| {
            t.namespace.as_deref() == Some("kube-system") && t.name.contains("dns")
        });
    (target, dns)
}

/// Signals, changes and recoveries one non-state evidence event stands for.
///
/// Long by nature: one match arm per evidence type (kernel, network, application metrics,
/// node, Kubernetes, alerts), each naming the symptom and its subject. It is a dispatch
/// table over event types; the shared work (subject, destination) lives in the helpers
/// above.
pub fn from_event(ev: &Event, state: &ClusterState, min_traffic: f64) -> Vec<Derived> {
    let mut out = Vec::new();
    let t = ev.kind.as_str();
    let subj = subject(ev, state);
    let node_key = ev.entity.node.as_deref().map(EntityKey::node);
    let who = subj
        .clone()
        .or_else(|| node_key.clone())
        .unwrap_or_else(|| {
            EntityKey::new(
                "Cluster",
                None,
                ev.entity.cluster.as_deref().unwrap_or("default"),
            )
        });

    // A producer that states the priority (alert label, a person's declaration).
    if let Some(p) = ev
        .attr_str("priority")
        .and_then(|p| p.parse::<Severity>().ok())
        && !t.starts_with("alert.prometheus.resolved")
    {
        let mut s = sig(
            ev,
            Symptom::Declared,
            who.clone(),
            true,
            format!("{t} declares {p}"),
        );
        s.priority = Some(p);
        s.message = ev.attr_str("alertname").unwrap_or_default();
        out.push(Derived::Signal(s));
        return out;
    }
    if ev.kind.domain() == "security" && ev.severity == EventSeverity::Critical {
        let mut s = sig(
            ev,
            Symptom::Declared,
            who,
            true,
            format!("active security threat: {t}"),
        );
        s.priority = Some(Severity::P1);
        out.push(Derived::Signal(s));
        return out;
    }
    if ev.kind.source() == "change" {
        let kind = match ev.kind.domain() {
            "deployment" | "rollout" | "statefulset" | "daemonset" | "image" => "rollout",
            "config" | "configmap" | "secret" => "config",
            "node" => "node",
            "scale" => "scale",
            _ => "marker",
        };
        let desc = format!(
            "{t} on {who}{}",
            ev.attr_str("image")
                .map(|i| format!(" (image {i})"))
                .unwrap_or_default()
        );
        out.push(Derived::Change(Change {
            at: ev.time,
            evidence: ev.id,
            entity: who.clone(),
            kind: kind.into(),
            description: desc.clone(),
        }));
        if ev.kind.anomaly().contains("drift") {
            out.push(Derived::Signal(sig(
                ev,
                Symptom::Informational,
                who,
                true,
                desc,
            )));
        }
        return out;
    }
    let count = ev.attr_f64("count").unwrap_or(1.0);
    match t {
        "kernel.container.oom_kill" | "kubernetes.pod.oom_killed" => {
            let what = match (ev.attr_str("comm"), ev.attr_str("pid")) {
                (Some(c), Some(p)) => format!("OOM kill of {c} (pid {p})"),
                (Some(c), None) => format!("OOM kill of {c}"),
                _ => format!(
                    "container {}OOMKilled{}",
                    ev.entity
                        .container
                        .as_deref()
                        .map(|c| format!("{c} "))
                        .unwrap_or_default(),
                    ev.attr_str("restart_count")
                        .map(|r| format!(" (restart {r})"))
                        .unwrap_or_default()
                ),
            };
            let mut s = sig(ev, Symptom::OomKilled, who, true, what);
            s.message = ev.attr_str("memory_limit_bytes").unwrap_or_default();
            out.push(Derived::Signal(s));
        }
        "kernel.container.abnormal_exit" => {
            let how = ev
                .attr_str("exit_code")
                .map(|c| format!("exit code {c}"))
                .or_else(|| ev.attr_str("signal_name"))
                .unwrap_or_default();
            out.push(Derived::Signal(sig(
                ev,
                Symptom::AbnormalExit,
                who,
                false,
                format!(
                    "{} exited abnormally ({how})",
                    ev.attr_str("comm").unwrap_or_default()
                ),
            )));
        }
        "kernel.network.connection_refused"
        | "kernel.network.connection_timeout"
        | "kernel.network.connection_error" => {
            let (target, dns) = target_of(ev, state);
            let sym = if dns {
                Symptom::DnsFailure
            } else {
                match ev.kind.anomaly() {
                    "connection_refused" => Symptom::ConnRefused,
                    "connection_timeout" => Symptom::ConnTimeout,
                    _ => Symptom::ConnError,
                }
            };
            let known = target.as_ref().is_some_and(|t| t.kind != "Destination");
            // The agent reports a refusal only once it repeats (3 in 10 s by default); a
            // producer that sends every single one needs three before it counts.
            let strong =
                count >= 3.0 || sym == Symptom::ConnTimeout || dns || (known && count >= 2.0);
            let tgt = target.clone().map(|t| t.to_string()).unwrap_or_default();
            let caller = match ev.attr_str("comm") {
                Some(c) => format!("{c} in {who}"),
                None => who.to_string(),
            };
            let within = ev
                .attr_str("window_seconds")
                .map(|w| format!(" within {w} s"))
                .unwrap_or_default();
            let mut s = sig(
                ev,
                sym,
                who,
                strong,
                format!(
                    "{} from {caller} to {tgt} ({count}{within})",
                    sym.as_str().replace('_', " "),
                ),
            );
            s.target = target;
            out.push(Derived::Signal(s));
        }
        "kernel.network.connect_stats" => {
            let attempts = ev.attr_f64("attempts").unwrap_or(0.0);
            let failed = ev.attr_f64("refused").unwrap_or(0.0)
                + ev.attr_f64("timed_out").unwrap_or(0.0)
                + ev.attr_f64("errors").unwrap_or(0.0);
            let (target, dns) = target_of(ev, state);
            let Some(target) = target else {
                return out;
            };
            let ratio = if attempts > 0.0 {
                failed / attempts
            } else {
                0.0
            };
            let sym = if dns && failed > 0.0 {
                Symptom::DnsFailure
            } else {
                Symptom::ConnectStats
            };
            let strong = failed > 0.0 && attempts >= min_traffic && ratio > 0.01;
            let mut s = sig(
                ev,
                sym,
                who,
                strong,
                // Healthy statistics only feed ratios: no text to build.
                if failed > 0.0 {
                    format!(
                        "connects to {target}: {failed} of {attempts} failed ({:.1} %)",
                        ratio * 100.0
                    )
                } else {
                    String::new()
                },
            );
            s.ratio = Some((failed, attempts));
            s.target = Some(target);
            s.node = ev.entity.node.clone();
            out.push(Derived::Signal(s));
        }
        // A Service's measured traffic and errors (the server's Prometheus source): like
        // connect statistics — healthy figures only feed an incident's ratio, failing ones
        // open when there is enough traffic — but per request, and named as Prometheus's.
        "metrics.service.red" => {
            let rate = ev.attr_f64("request_rate").unwrap_or(0.0).max(0.0);
            let window = ev
                .attr_f64("window_seconds")
                .filter(|w| *w > 0.0)
                .unwrap_or(300.0);
            let Some(ratio) = ev.attr_f64("error_ratio").map(|r| r.clamp(0.0, 1.0)) else {
                return out;
            };
            let Some(svc) = subj.clone().filter(|k| k.kind == "Service") else {
                return out;
            };
            let requests = rate * window;
            let failed = ratio * requests;
            let strong = failed > 0.0 && requests >= min_traffic && ratio > 0.01;
            let mut s = sig(
                ev,
                Symptom::ConnectStats,
                svc.clone(),
                strong,
                if failed > 0.0 {
                    format!(
                        "{svc}: {:.1} % of {rate:.2} requests/s failing (Prometheus)",
                        ratio * 100.0
                    )
                } else {
                    String::new()
                },
            );
            s.ratio = Some((failed, requests));
            s.target = Some(svc);
            s.source = "Prometheus";
            out.push(Derived::Signal(s));
        }
        "kernel.network.reset_storm"
        | "kernel.network.retransmit_spike"
        | "kernel.network.rtt_degradation" => {
            let (target, _) = target_of(ev, state);
            let mut s = sig(
                ev,
                Symptom::NetworkDegraded,
                who,
                false,
                format!(
                    "{t} to {}",
                    target.as_ref().map(|t| t.to_string()).unwrap_or_default()
                ),
            );
            s.target = target;
            out.push(Derived::Signal(s));
        }
        "kernel.storage.io_error" | "kernel.storage.latency_spike" => {
            let node = node_key.unwrap_or(who);
            let sym = if t.ends_with("io_error") {
                Symptom::DiskError
            } else {
                Symptom::DiskLatency
            };
            out.push(Derived::Signal(sig(
                ev,
                sym,
                node,
                true,
                format!(
                    "{} on device {}",
                    sym.as_str().replace('_', " "),
                    ev.attr_str("device").unwrap_or_default()
                ),
            )));
        }
        "node.pressure.memory" | "node.pressure.cpu" | "node.pressure.io" => {
            let node = node_key.unwrap_or(who);
            let sym = match ev.kind.anomaly() {
                "memory" => Symptom::NodeMemoryPressure,
                "cpu" => Symptom::CpuPressure,
                _ => Symptom::IoPressure,
            };
            out.push(Derived::Signal(sig(
                ev,
                sym,
                node,
                true,
                format!(
                    "{} pressure {}% (some avg10)",
                    ev.kind.anomaly(),
                    ev.attr_str("some_avg10").unwrap_or_default()
                ),
            )));
        }
        "node.filesystem.nearly_full" => {
            let node = node_key.unwrap_or(who);
            out.push(Derived::Signal(sig(
                ev,
                Symptom::NodeDiskPressure,
                node,
                true,
                format!(
                    "filesystem {} nearly full",
                    ev.attr_str("mount_point").unwrap_or_default()
                ),
            )));
        }
        "node.kernel.hung_task" => {
            let node = node_key.unwrap_or(who);
            out.push(Derived::Signal(sig(
                ev,
                Symptom::HungTask,
                node,
                true,
                format!("hung task {}", ev.attr_str("comm").unwrap_or_default()),
            )));
        }
        // Kernel limits the agent watches (docs/agent.md): running out is a node's
        // resource exhaustion; a full conntrack table dropping packets opens at once.
        "node.limits.file_descriptors"
        | "node.limits.pids"
        | "node.limits.conntrack"
        | "node.limits.inotify" => {
            let node = node_key.unwrap_or(who);
            let what = t.rsplit('.').next().unwrap_or("limit").replace('_', " ");
            let figure = match (ev.attr_f64("used"), ev.attr_f64("max")) {
                (Some(u), Some(m)) if m > 0.0 => {
                    format!(" ({u:.0} of {m:.0}, {:.0} %)", u / m * 100.0)
                }
                _ => String::new(),
            };
            let dropping = matches!(
                ev.attributes.get("dropping"),
                Some(tapio_proto::AttrValue::Bool(true))
            );
            let strong = dropping
                || ev.severity >= EventSeverity::Error
                || ev.attr_f64("ratio").is_some_and(|r| r >= 0.95);
            let mut s = sig(
                ev,
                Symptom::ResourceExhausted,
                node,
                strong,
                format!(
                    "{what} near the node's limit{figure}{}",
                    if dropping { ": dropping packets" } else { "" }
                ),
            );
            s.message = ev.attr_str("message").unwrap_or_default();
            out.push(Derived::Signal(s));
        }
        "kernel.container.cpu_throttled" => {
            // Context for a chain (a slow service whose pods are throttled), never an
            // incident of its own, however often it repeats.
            let ratio = ev.attr_f64("ratio").unwrap_or(0.0);
            let mut s = sig(
                ev,
                Symptom::CpuThrottled,
                who,
                false,
                format!(
                    "CPU throttled in {:.0} % of periods (CFS quota)",
                    ratio * 100.0
                ),
            );
            s.joins_only = true;
            out.push(Derived::Signal(s));
        }
        "node.kernel.fs_error" => {
            let node = node_key.unwrap_or(who);
            let mut s = sig(
                ev,
                Symptom::DiskError,
                node,
                true,
                format!(
                    "filesystem error{}",
                    ev.attr_str("device")
                        .map(|d| format!(" on {d}"))
                        .unwrap_or_default()
                ),
            );
            s.message = ev.attr_str("message").unwrap_or_default();
            out.push(Derived::Signal(s));
        }
        "node.kernel.soft_lockup" => {
            let node = node_key.unwrap_or(who);
            out.push(Derived::Signal(sig(
                ev,
                Symptom::HungTask,
                node,
                true,
                format!(
                    "soft lockup on CPU {} ({} s)",
                    ev.attr_str("cpu")
                        .or_else(|| ev.attr_f64("cpu").map(|c| format!("{c:.0}")))
                        .unwrap_or_else(|| "?".into()),
                    ev.attr_f64("stuck_seconds")
                        .map_or("?".into(), |x| format!("{x:.0}"))
                ),
            )));
        }
        "kubernetes.pod.crash_loop" | "kubernetes.pod.crash_loop_backoff" => {
            out.push(Derived::Signal(sig(
                ev,
                Symptom::CrashLoop,
                who,
                true,
                "CrashLoopBackOff".into(),
            )));
        }
        "kubernetes.node.not_ready" => {
            let node = node_key.unwrap_or(who);
            out.push(Derived::Signal(sig(
                ev,
                Symptom::NodeNotReady,
                node,
                true,
                "node NotReady".into(),
            )));
        }
        "kubernetes.workload.unavailable" => {
            out.push(Derived::Signal(sig(
                ev,
                Symptom::WorkloadUnavailable,
                who,
                true,
                "no replica available".into(),
            )));
        }
        "alert.prometheus.firing" => {
            let Some(reading) = alerts::read(ev, state) else {
                return out;
            };
            let name = ev.attr_str("alertname").unwrap_or_else(|| "alert".into());
            let text = format!(
                "{} {}",
                ev.attr_str("summary").unwrap_or_default(),
                ev.attr_str("description").unwrap_or_default()
            );
            let lower = text.to_ascii_lowercase();
            let mut sym = reading.symptom;
            if sym == Symptom::Alert
                && (lower.contains("x509")
                    || name.to_ascii_lowercase().contains("certificate")
                        && lower.contains("expired"))
            {
                sym = Symptom::CertExpired;
            }
            // A figure the producer states outright wins over one read from the text.
            let ratio = ev.attr_f64("error_ratio").or(reading.error_ratio);
            let latency = ev
                .attr_f64("p99_latency_seconds")
                .or_else(|| ev.attr_f64("latency_seconds"))
                .or(reading.latency_s);
            // A warning alert alone is not an incident (alert noise is what users drown
            // in): it joins the chain it belongs to, or opens one when it repeats. What
            // the vocabulary calls strong (critical alerts, a service's targets all down,
            // ...), and alerts stating an error ratio above 1 % or a latency above 5 s,
            // open one.
            let ratio_bad = ratio.is_some_and(|r| r >= crate::classify::P3_ERROR_RATIO);
            let slow = latency.is_some_and(|l| l > crate::classify::P2_LATENCY_SECONDS);
            let strong = reading.strong || (!reading.monitoring && (ratio_bad || slow));
            let subject = reading.subject.clone().unwrap_or(who);
            let mut s = sig(
                ev,
                sym,
                subject,
                strong,
                format!(
                    "alert {name} firing{}",
                    reading
                        .figure
                        .as_ref()
                        .map(|f| format!(": {f}"))
                        .or_else(|| ratio.map(|r| format!(" (error ratio {r})")))
                        .unwrap_or_default()
                ),
            );
            if sym == Symptom::NodeNotReady
                || matches!(
                    sym,
                    Symptom::FilesystemFilling
                        | Symptom::ResourceExhausted
                        | Symptom::NodeMemoryPressure
                        | Symptom::CpuPressure
                        | Symptom::IoPressure
                        | Symptom::NetworkDegraded
                ) && s.subject.kind == "Node"
            {
                s.node = Some(s.subject.name.clone());
            }
            if let Some(r) = ratio {
                s.ratio = Some((r * 1e6, 1e6));
                s.source = "alert";
            }
            if let Some(f) = reading.fraction {
                s.fraction = Some(f);
            }
            s.monitoring = reading.monitoring;
            s.joins_only = sym == Symptom::CpuThrottled;
            s.latency_s = latency;
            s.message = format!("{name} {text}");
            if ev.severity <= EventSeverity::Info && sym == Symptom::Alert {
                s.symptom = Symptom::Informational;
                // Drift is worth a P4 ticket; other informational alerts are context.
                let m = s.message.to_ascii_lowercase();
                s.strong =
                    m.contains("drift") || m.contains("out of sync") || m.contains("outofsync");
            }
            out.push(Derived::Signal(s));
        }
        "alert.prometheus.resolved" => {
            if let Some(reading) = alerts::read(ev, state) {
                let subject = reading.subject.unwrap_or(who);
                let mut symptoms = vec![reading.symptom];
                if reading.symptom == Symptom::Alert {
                    symptoms.push(Symptom::CertExpired);
                }
                for symptom in symptoms {
                    out.push(Derived::Recovery(Recovery {
                        at: ev.time,
                        subject: subject.clone(),
                        symptom,
                    }));
                }
            }
        }
        _ => {}
    }
    out
}

//! Kubernetes `Warning` events (kubelet, scheduler, controllers, node-problem-detector)
//! read as signals: which symptom a reason means, and which entity it is about (a pod's
//! owner, the node, a webhook configuration, a StorageClass, a claim, a quota).

use super::*;

/// Container runtime failures in kubelet events (containerd, CRI-O, runc, overlayfs).
const RUNTIME_ERRORS: &[&str] = &[
    "failed to create containerd task",
    "failed to reserve sandbox name",
    "failed to reserve container name",
    "error creating overlay mount",
    "failed to mount rootfs",
    "oci runtime create failed",
    "runc create failed",
    "too many open files",
    "context deadline exceeded: unknown",
];

/// A quoted name after `prefix` in `msg` (`failed calling webhook "x"` → x).
fn quoted_after<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let lower = msg.to_ascii_lowercase();
    let i = lower.find(prefix)? + prefix.len();
    let rest = msg[i..].trim_start().trim_start_matches('\\');
    let rest = rest.strip_prefix('"')?;
    let end = rest.find(['"', '\\'])?;
    Some(&rest[..end]).filter(|n| !n.is_empty() && n.len() <= 253)
}

/// The word after `prefix` (`exceeded quota: compute-resources,` → compute-resources).
fn word_after<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let lower = msg.to_ascii_lowercase();
    let i = lower.find(prefix)? + prefix.len();
    let rest = msg[i..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|n| !n.is_empty() && n.len() <= 253)
}

/// The fields of one Warning event the reason table reads.
struct Warning<'a> {
    reason: &'a str,
    message: &'a str,
    /// `message` in lower case.
    lower: &'a str,
    /// The involved object's kind, name and namespace.
    ikind: &'a str,
    iname: &'a str,
    ins: &'a str,
    node: Option<&'a str>,
    /// The involved pod as the state holds it, when the event is about a pod.
    pod: Option<&'a PodState>,
}

impl ClusterState {
    pub(super) fn event(&mut self, cx: &mut Ctx, obj: &Value) {
        if s(obj, &["type"]) != Some("Warning") {
            return;
        }
        let reason = s(obj, &["reason"]).unwrap_or("");
        let message = s(obj, &["message"])
            .or_else(|| s(obj, &["note"]))
            .unwrap_or("")
            .to_owned();
        let inv = obj.get("involvedObject").or_else(|| obj.get("regarding"));
        let Some(inv) = inv else {
            return;
        };
        let ikind = s(inv, &["kind"]).unwrap_or("");
        let iname = s(inv, &["name"]).unwrap_or("");
        let ins = s(inv, &["namespace"]).unwrap_or("");
        // Resolve the subject: a pod's owner, else the object itself.
        let (subject, node) = match ikind {
            "Pod" => {
                let pk = EntityKey::ns("Pod", ins, iname);
                match self.pods.get(&pk) {
                    Some(p) => (p.owner.clone().unwrap_or(pk), p.node.clone()),
                    None => (self.owner_from_pod_name(ins, iname).unwrap_or(pk), None),
                }
            }
            "Node" => (EntityKey::node(iname), Some(iname.to_owned())),
            "ReplicaSet" => {
                let rk = EntityKey::ns("ReplicaSet", ins, iname);
                (
                    self.rs_owner.get(&rk).cloned().unwrap_or_else(|| {
                        match iname.rsplit_once('-') {
                            Some((d, _)) => EntityKey::ns("Deployment", ins, d),
                            None => rk,
                        }
                    }),
                    None,
                )
            }
            "" => return,
            k => (EntityKey::new(k, Some(ins), iname), None),
        };
        let lower = message.to_ascii_lowercase();
        let detail = format!("{reason} on {ikind}/{iname}: {message}");
        let cut: String = detail.chars().take(300).collect();
        // A failing admission webhook is a cause on its configuration, when the state
        // knows which configuration holds it.
        let webhook = quoted_after(&message, "failed calling webhook")
            .and_then(|w| self.webhooks.get(w))
            .cloned();
        // The workload the event is about: when the cause sits elsewhere (a webhook, a
        // quota, a claim, a node), it is what the cause blocks.
        let involved = subject.clone();
        if lower.contains("x509") && (lower.contains("expired") || lower.contains("not yet valid"))
        {
            let mapped = webhook.is_some();
            cx.signal(
                Symptom::CertExpired,
                webhook.unwrap_or(subject),
                node,
                cut,
                true,
                message,
            );
            if mapped
                && involved.is_workload()
                && let Some(Derived::Signal(s)) = cx.out.last_mut()
            {
                s.target = Some(involved);
            }
            return;
        }
        let subject = match (&webhook, reason) {
            (Some(w), "FailedCreate" | "FailedCreatePodSandBox") => w.clone(),
            _ => subject,
        };
        let pod_key = (ikind == "Pod").then(|| EntityKey::ns("Pod", ins, iname));
        let pod = pod_key.as_ref().and_then(|k| self.pods.get(k));
        let mut subject = subject;
        let warning = Warning {
            reason,
            message: &message,
            lower: &lower,
            ikind,
            iname,
            ins,
            node: node.as_deref(),
            pod,
        };
        let Some((sym, strong)) = self.reason_symptom(&warning, &mut subject) else {
            return;
        };
        // A node under planned disruption (cordoned: drained, upgraded, scaled down)
        // going NotReady or evicting is what the plan does: weak evidence.
        let planned = node
            .as_deref()
            .and_then(|n| self.nodes.get(n))
            .is_some_and(|n| n.cordoned);
        let planned = planned && matches!(sym, Symptom::NodeNotReady | Symptom::Evicted);
        let strong = strong && !planned;
        // A node-level event about a node: the node is the subject.
        if sym.is_node_condition() && ikind == "Node" {
            cx.signal(sym, EntityKey::node(iname), node, cut, strong, message);
            return;
        }
        // "Node is not ready" on a pod (the node lifecycle controller): the node's
        // condition, with the pod's workload as what it affects.
        if sym == Symptom::NodeNotReady
            && let Some(n) = node.clone()
        {
            cx.signal_to(sym, EntityKey::node(&n), Some(n), subject, cut);
            if let Some(Derived::Signal(s)) = cx.out.last_mut() {
                s.strong = strong;
                s.message = message;
                s.joins_only = planned;
            }
            return;
        }
        let blocks = (subject != involved && involved.is_workload()).then_some(involved);
        cx.signal(sym, subject, node, cut, strong, message);
        if let Some(Derived::Signal(s)) = cx.out.last_mut() {
            s.joins_only = planned;
            s.target = blocks;
        }
    }

    /// The symptom a Warning event's reason (and message) means and whether it is strong
    /// evidence; `subject` is moved to where the cause sits (a StorageClass, the node, a
    /// claim, a quota, a CronJob) when the reason says so. `None`: not a failure.
    fn reason_symptom(&self, w: &Warning, subject: &mut EntityKey) -> Option<(Symptom, bool)> {
        let Warning {
            reason,
            message,
            lower,
            ikind,
            iname,
            ins,
            node,
            pod,
        } = *w;
        let found = match reason {
            "FailedScheduling"
                if lower.contains("provisioning failed")
                    || lower.contains("failed to provision") =>
            {
                // The claim's StorageClass cannot provision: that is where the cause sits.
                *subject = self
                    .storage_class_subject(message, pod, ins)
                    .unwrap_or_else(|| subject.clone());
                (Symptom::VolumeProvisionFailed, true)
            }
            "FailedScheduling" => (Symptom::Unschedulable, false),
            "ProvisioningFailed" => {
                let claim = (ikind == "PersistentVolumeClaim")
                    .then(|| EntityKey::ns("PersistentVolumeClaim", ins, iname));
                *subject = quoted_after(message, "storageclass")
                    .map(|c| EntityKey::new("StorageClass", None, c))
                    .or_else(|| {
                        claim
                            .as_ref()
                            .and_then(|c| self.claim_classes.get(c))
                            .map(|c| EntityKey::new("StorageClass", None, c))
                    })
                    .unwrap_or_else(|| subject.clone());
                (Symptom::VolumeProvisionFailed, true)
            }
            "BackOff" if lower.contains("pulling image") || lower.contains("image") => {
                (Symptom::ImagePullFailed, true)
            }
            "BackOff" => (Symptom::CrashLoop, true),
            "FailedCreatePodSandBox" | "FailedCreatePodSandbox" | "Failed" | "FailedSync"
                if lower.contains("sandbox image")
                    || lower.contains("pause:")
                    || lower.contains("/pause") =>
            {
                // The node cannot get its own sandbox (pause) image: no pod starts there.
                if let Some(n) = &node {
                    *subject = EntityKey::node(n);
                }
                (Symptom::ImagePullFailed, true)
            }
            "FailedCreatePodSandBox" | "FailedCreatePodSandbox" | "Failed"
                if RUNTIME_ERRORS.iter().any(|m| lower.contains(m)) =>
            {
                // The container runtime on the node fails: a node problem.
                if let Some(n) = &node {
                    *subject = EntityKey::node(n);
                }
                (Symptom::RuntimeFailed, true)
            }
            "FailedCreatePodSandBox" | "FailedCreatePodSandbox" if lower.contains("webhook") => {
                (Symptom::WebhookFailed, true)
            }
            "FailedCreatePodSandBox" | "FailedCreatePodSandbox" | "NetworkNotReady" => {
                // CNI and IPAM: the pod network cannot be set up.
                (Symptom::NetworkSetupFailed, true)
            }
            "Failed" | "ErrImagePull" | "ImagePullBackOff"
                if lower.contains("pull") || lower.contains("image") =>
            {
                (Symptom::ImagePullFailed, true)
            }
            "Failed" => (Symptom::ConfigError, false),
            // Readiness failing while a pod warms up (never ready yet) is start-up, not a
            // failure; liveness failures always count.
            "Unhealthy"
                if lower.starts_with("readiness probe") && pod.is_some_and(|p| !p.was_ready) =>
            {
                return None;
            }
            "Unhealthy" => (Symptom::ProbeFailed, false),
            "FailedAttachVolume" | "FailedMount" | "FailedMapVolume"
                if lower.contains("multi-attach")
                    || lower.contains("attachvolume")
                    || lower.contains("unattached volumes")
                    || reason == "FailedAttachVolume" =>
            {
                // An attach that does not happen: the volume (its claim) is the subject.
                *subject = self
                    .claim_subject(message, pod, ins)
                    .unwrap_or_else(|| subject.clone());
                (Symptom::VolumeAttachFailed, true)
            }
            // A mount failing while the pod starts (a Secret not synced yet) usually clears
            // within seconds: weak until it repeats.
            "FailedMount" | "FailedMapVolume" => (Symptom::MountFailed, false),
            "Evicted" => (Symptom::Evicted, true),
            "NodeNotReady" => (Symptom::NodeNotReady, true),
            "OOMKilling" | "SystemOOM" => (Symptom::OomKilled, true),
            // node-problem-detector's kernel monitor.
            "FilesystemIsReadOnly" | "Ext4Error" | "IOError" | "XFSError" | "BtrfsError" => {
                (Symptom::DiskError, true)
            }
            "TaskHung" | "KernelOops" | "AUFSUmountHung" | "DockerHung" | "KernelDeadlock" => {
                (Symptom::HungTask, true)
            }
            "ContainerdStart" | "DockerStart" | "KubeletStart" | "ContainerGCFailed" => {
                (Symptom::RuntimeFailed, false)
            }
            "FailedCreate" if lower.contains("exceeded quota") => {
                *subject = word_after(message, "exceeded quota:")
                    .map(|q| EntityKey::ns("ResourceQuota", ins, q))
                    .unwrap_or_else(|| subject.clone());
                (Symptom::QuotaExceeded, true)
            }
            "FailedCreate" if lower.contains("webhook") => (Symptom::WebhookFailed, true),
            "FailedCreate" => (Symptom::WebhookFailed, false),
            "BackoffLimitExceeded" | "DeadlineExceeded" => {
                *subject = self.job_owner(subject).unwrap_or_else(|| subject.clone());
                (Symptom::JobFailed, true)
            }
            "EvictionThresholdMet" if lower.contains("memory") => {
                (Symptom::NodeMemoryPressure, true)
            }
            "EvictionThresholdMet" | "NodeHasDiskPressure" | "FreeDiskSpaceFailed" => {
                (Symptom::NodeDiskPressure, true)
            }
            "NodeHasInsufficientMemory" => (Symptom::NodeMemoryPressure, true),
            "ImageGCFailed" => (Symptom::NodeDiskPressure, false),
            _ => return None,
        };
        Some(found)
    }

    /// The claim a volume failure is about: the PV the message names (`volume "pvc-…"`),
    /// else the pod's only claim.
    fn claim_subject(&self, msg: &str, pod: Option<&PodState>, _ns: &str) -> Option<EntityKey> {
        if let Some(pv) = quoted_after(msg, "volume")
            && let Some(c) = self.pv_claims.get(pv)
        {
            return Some(c.clone());
        }
        let p = pod?;
        (p.claims.len() == 1).then(|| p.claims.iter().next().cloned())?
    }

    /// The StorageClass a provisioning failure is about: named in the message, else the
    /// class of the claim it names (`for PVC "x"`), else of the pod's only claim.
    fn storage_class_subject(
        &self,
        msg: &str,
        pod: Option<&PodState>,
        ns: &str,
    ) -> Option<EntityKey> {
        if let Some(c) = quoted_after(msg, "storageclass") {
            return Some(EntityKey::new("StorageClass", None, c));
        }
        let claim = quoted_after(msg, "pvc")
            .map(|c| EntityKey::ns("PersistentVolumeClaim", ns, c))
            .or_else(|| {
                let p = pod?;
                (p.claims.len() == 1).then(|| p.claims.iter().next().cloned())?
            })?;
        self.claim_classes
            .get(&claim)
            .map(|c| EntityKey::new("StorageClass", None, c))
    }
}

//! Entity keys: `Kind/namespace/name` for namespaced objects, `Kind/name` for cluster ones.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use tapio_proto::Entity;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityKey {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl EntityKey {
    pub fn new(kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: namespace.filter(|n| !n.is_empty()).map(str::to_owned),
            name: name.to_owned(),
        }
    }
    pub fn ns(kind: &str, namespace: &str, name: &str) -> Self {
        Self::new(kind, Some(namespace), name)
    }
    pub fn node(name: &str) -> Self {
        Self::new("Node", None, name)
    }
    pub fn is_workload(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "CronJob" | "ReplicaSet"
        )
    }
    /// Lower-case kind as kubectl spells resources (`deployment/checkout`).
    pub fn resource(&self) -> String {
        format!("{}/{}", self.kind.to_ascii_lowercase(), self.name)
    }
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [k, n] if !k.is_empty() && !n.is_empty() => Some(Self::new(k, None, n)),
            [k, ns, n] if !k.is_empty() && !n.is_empty() => Some(Self::new(k, Some(ns), n)),
            _ => None,
        }
    }
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// The most specific stable subject of an evidence entity: its workload, else its pod,
/// else its service, else its node.
pub fn subject_of(e: &Entity) -> Option<EntityKey> {
    let ns = e.namespace.as_deref();
    if let Some(w) = &e.workload {
        return Some(EntityKey::new(&w.kind, ns, &w.name));
    }
    if let Some(p) = &e.pod {
        return Some(EntityKey::new("Pod", ns, p));
    }
    if let Some(s) = &e.service {
        return Some(EntityKey::new("Service", ns, s));
    }
    if let Some(n) = e.node.as_deref() {
        return Some(EntityKey::node(n));
    }
    e.namespace
        .as_deref()
        .map(|ns| EntityKey::new("Namespace", None, ns))
}

/// FNV-1a: fast for short keys, and fixed (no random seed), so iteration order — and
/// with it every tie the engine breaks — is the same in every run of the same stream.
#[derive(Default, Clone, Copy)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// The map type of the engine's state.
pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

//! Cgroup paths: which container runtime, container id, pod UID, QoS class or systemd
//! unit a cgroup path names ([`parse_cgroup_path`]), and the cgroup line of
//! `/proc/<pid>/cgroup` that says it ([`parse_proc_cgroup`]). Pure parsers.

/// The container runtime a cgroup or container id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    Containerd,
    CriO,
    Docker,
    Podman,
}

impl Runtime {
    /// `containerd`, `cri-o`, `docker`, `podman`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Containerd => "containerd",
            Self::CriO => "cri-o",
            Self::Docker => "docker",
            Self::Podman => "podman",
        }
    }

    /// From the scheme of a Kubernetes `containerID` (`containerd://…`, `cri-o://…`, …).
    pub(super) fn from_scheme(scheme: &str) -> Option<Self> {
        match scheme {
            "containerd" => Some(Self::Containerd),
            "cri-o" => Some(Self::CriO),
            "docker" => Some(Self::Docker),
            "podman" => Some(Self::Podman),
            _ => None,
        }
    }

    /// From the prefix of a systemd scope (`cri-containerd-<id>.scope`) or of runc's
    /// `slice:prefix:id` form.
    fn from_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "cri-containerd" => Some(Self::Containerd),
            "crio" => Some(Self::CriO),
            "docker" => Some(Self::Docker),
            "libpod" => Some(Self::Podman),
            _ => None,
        }
    }
}

/// What one cgroup path says about the process in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupInfo {
    /// Pod UID in canonical dashed form (`8dbc5577-d0e2-…`); static pods keep their
    /// 32-hex config hash.
    pub pod_uid: Option<String>,
    /// 64-hex container id, lowercase, without runtime prefix.
    pub container_id: Option<String>,
    /// Known when the path names it (`cri-containerd-`, `crio-`, `docker-`, `libpod-`, or
    /// a bare id under `/docker/`); a cgroupfs-driver pod path does not.
    pub runtime: Option<Runtime>,
    /// `guaranteed`, `burstable` or `besteffort` when the path is below a pod.
    pub qos: Option<String>,
    /// Deepest systemd unit (`nginx.service`, `session-3.scope`) that is not a container
    /// scope and lies below any pod or container found.
    pub systemd_unit: Option<String>,
}

impl CgroupInfo {
    pub(super) fn names_container(&self) -> bool {
        self.pod_uid.is_some() || self.container_id.is_some()
    }
}

/// Parses one cgroup path (v1 or v2, cgroupfs or systemd driver; containerd, CRI-O,
/// Docker and Podman). Never fails: what is not recognised stays `None`.
///
/// Rules: the deepest pod segment (`pod<uid>` or `…-pod<uid_with_underscores>.slice`)
/// gives the pod; the deepest container segment below it gives the container
/// (`<64-hex>`, `cri-containerd-<hex>.scope`, `crio-<hex>[.scope]`, `docker-<hex>.scope`,
/// `libpod-<hex>.scope`, or runc's `<pod slice>:<prefix>:<hex>`). Conmon scopes
/// (`crio-conmon-`, `libpod-conmon-`) are the runtime's monitor, not the container.
/// `..` components (cgroup namespaces) are ignored.
pub fn parse_cgroup_path(path: &str) -> CgroupInfo {
    let mut info = CgroupInfo::default();
    // Depth of the deepest pod or container match; a unit only counts below it.
    let mut anchor: Option<usize> = None;
    let mut unit: Option<(usize, &str)> = None;
    let mut prev = "";
    let segments = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..");
    for (depth, seg) in segments.enumerate() {
        if let Some((slice, prefix, id)) = colon_form(seg) {
            // runc's systemd path used verbatim as a cgroupfs name, e.g.
            // `kubepods-burstable-pod<uid>.slice:cri-containerd:<id>`.
            if let Some((uid, qos)) = pod_segment(slice, prev) {
                info.pod_uid = Some(uid);
                info.qos = Some(qos.to_owned());
            }
            info.container_id = Some(id.to_ascii_lowercase());
            info.runtime = Runtime::from_prefix(prefix);
            anchor = Some(depth);
        } else if let Some((uid, qos)) = pod_segment(seg, prev) {
            info.pod_uid = Some(uid);
            info.qos = Some(qos.to_owned());
            // A container above the pod (a kind node's own container) is not this one's.
            info.container_id = None;
            info.runtime = None;
            anchor = Some(depth);
        } else if let Some(found) = container_segment(seg, prev) {
            match found {
                ContainerSeg::Id(id, runtime) => {
                    info.container_id = Some(id);
                    info.runtime = runtime;
                }
                ContainerSeg::Monitor(runtime) => {
                    info.container_id = None;
                    info.runtime = Some(runtime);
                }
            }
            anchor = Some(depth);
        } else if is_unit(seg) {
            unit = Some((depth, seg));
        }
        prev = seg;
    }
    if let Some((depth, name)) = unit
        && anchor.is_none_or(|a| depth > a)
    {
        info.systemd_unit = Some(name.to_owned());
    }
    info
}

/// `<slice>:<prefix>:<64-hex>` (runc's systemd cgroup path form).
fn colon_form(seg: &str) -> Option<(&str, &str, &str)> {
    let mut parts = seg.splitn(3, ':');
    let slice = parts.next()?;
    let prefix = parts.next()?;
    let id = parts.next()?;
    (slice.ends_with(".slice") && is_hex64(id)).then_some((slice, prefix, id))
}

/// A pod cgroup: cgroupfs `pod<uid>` (QoS from the parent directory) or systemd
/// `<root>[-<qos>]-pod<uid_with_underscores>.slice`. Returns the canonical UID and QoS.
fn pod_segment(seg: &str, parent: &str) -> Option<(String, &'static str)> {
    if let Some(name) = seg.strip_suffix(".slice") {
        let (head, last) = name.rsplit_once('-')?;
        let uid = canonical_pod_uid(last.strip_prefix("pod")?)?;
        return Some((uid, qos_class(head.rsplit('-').next().unwrap_or(""))));
    }
    let uid = canonical_pod_uid(seg.strip_prefix("pod")?)?;
    Some((uid, qos_class(parent)))
}

fn qos_class(parent: &str) -> &'static str {
    match parent {
        "burstable" => "burstable",
        "besteffort" => "besteffort",
        // Guaranteed pods sit directly under the kubepods root.
        _ => "guaranteed",
    }
}

enum ContainerSeg {
    Id(String, Option<Runtime>),
    /// A runtime monitor (conmon) next to the container, not the container.
    Monitor(Runtime),
}

fn container_segment(seg: &str, parent: &str) -> Option<ContainerSeg> {
    let name = seg.strip_suffix(".scope").unwrap_or(seg);
    for (prefix, runtime) in [
        ("crio-conmon-", Runtime::CriO),
        ("libpod-conmon-", Runtime::Podman),
    ] {
        if name.strip_prefix(prefix).is_some_and(is_hex64) {
            return Some(ContainerSeg::Monitor(runtime));
        }
    }
    for (prefix, runtime) in [
        ("cri-containerd-", Runtime::Containerd),
        ("crio-", Runtime::CriO),
        ("docker-", Runtime::Docker),
        ("libpod-", Runtime::Podman),
    ] {
        if let Some(id) = name.strip_prefix(prefix)
            && is_hex64(id)
        {
            return Some(ContainerSeg::Id(id.to_ascii_lowercase(), Some(runtime)));
        }
    }
    if is_hex64(seg) {
        // cgroupfs driver: a bare id. Only plain Docker says who made it (`/docker/<id>`).
        let runtime = (parent == "docker").then_some(Runtime::Docker);
        return Some(ContainerSeg::Id(seg.to_ascii_lowercase(), runtime));
    }
    None
}

/// A systemd unit that can hold processes.
fn is_unit(seg: &str) -> bool {
    [".service", ".scope", ".socket", ".mount", ".swap"]
        .iter()
        .any(|suffix| seg.len() > suffix.len() && seg.ends_with(suffix))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Canonical pod UID: a UUID with `-` or `_` separators becomes lowercase dashed; a
/// 32-hex static-pod config hash stays as it is (lowercased). Anything else is `None`.
pub(super) fn canonical_pod_uid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    match b.len() {
        36 => {
            let mut out = String::with_capacity(36);
            for (i, &c) in b.iter().enumerate() {
                if matches!(i, 8 | 13 | 18 | 23) {
                    if c != b'-' && c != b'_' {
                        return None;
                    }
                    out.push('-');
                } else if c.is_ascii_hexdigit() {
                    out.push(c.to_ascii_lowercase() as char);
                } else {
                    return None;
                }
            }
            Some(out)
        }
        32 if b.iter().all(u8::is_ascii_hexdigit) => Some(s.to_ascii_lowercase()),
        _ => None,
    }
}

/// Parses the content of `/proc/<pid>/cgroup`: cgroup v1 lines `N:ctrl[,ctrl]:/path`,
/// the v2 line `0::/path`, or both (hybrid). The first line in the order v2, `memory`,
/// `cpu`, `pids`, `name=systemd`, others that names a pod or container wins; failing
/// that, the first in that order that names a systemd unit.
pub fn parse_proc_cgroup(content: &str) -> CgroupInfo {
    select_proc_cgroup(content)
        .map(|(_, info)| info)
        .unwrap_or_default()
}

/// [`parse_proc_cgroup`] plus the path of the line chosen.
pub(super) fn select_proc_cgroup(content: &str) -> Option<(&str, CgroupInfo)> {
    let mut lines: Vec<(u8, &str)> = content
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _hierarchy = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?.trim_end();
            let has = |c: &str| controllers.split(',').any(|x| x == c);
            let rank = if controllers.is_empty() {
                0
            } else if has("memory") {
                1
            } else if has("cpu") {
                2
            } else if has("pids") {
                3
            } else if has("name=systemd") {
                4
            } else {
                5
            };
            Some((rank, path))
        })
        .collect();
    lines.sort_by_key(|&(rank, _)| rank);
    let parsed: Vec<(&str, CgroupInfo)> = lines
        .into_iter()
        .map(|(_, path)| (path, parse_cgroup_path(path)))
        .collect();
    let pick = parsed
        .iter()
        .position(|(_, i)| i.names_container())
        .or_else(|| parsed.iter().position(|(_, i)| i.systemd_unit.is_some()))
        .unwrap_or(0);
    parsed.into_iter().nth(pick)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::enrich::testutil::*;

    fn info(
        pod: Option<&str>,
        container: Option<&str>,
        runtime: Option<Runtime>,
        qos: Option<&str>,
        unit: Option<&str>,
    ) -> CgroupInfo {
        CgroupInfo {
            pod_uid: pod.map(str::to_owned),
            container_id: container.map(str::to_owned),
            runtime,
            qos: qos.map(str::to_owned),
            systemd_unit: unit.map(str::to_owned),
        }
    }

    /// Every cgroup path shape the runtimes and kubelet cgroup drivers write, one case per
    /// line: a table, long because the shapes are many, not because it does much.
    #[test]
    fn cgroup_path_shapes() {
        use Runtime::*;
        let cases: Vec<(&str, String, CgroupInfo)> = vec![
            (
                "containerd (or Docker), cgroup v1, cgroupfs driver, Burstable",
                format!("/kubepods/burstable/pod{UID}/{CID}"),
                info(Some(UID), Some(CID), None, Some("burstable"), None),
            ),
            (
                "containerd, cgroup v1, cgroupfs driver, Guaranteed (pod right under kubepods)",
                format!("/kubepods/pod{UID}/{CID}"),
                info(Some(UID), Some(CID), None, Some("guaranteed"), None),
            ),
            (
                "containerd, cgroup v2, cgroupfs driver (k3s, GKE COS): same path in `0::`",
                format!("/kubepods/besteffort/pod{UID}/{CID}"),
                info(Some(UID), Some(CID), None, Some("besteffort"), None),
            ),
            (
                "CRI-O, cgroup v1/v2, cgroupfs driver",
                format!("/kubepods/besteffort/pod{UID}/crio-{CID}"),
                info(Some(UID), Some(CID), Some(CriO), Some("besteffort"), None),
            ),
            (
                "CRI-O, cgroupfs driver: conmon is the monitor, not the container",
                format!("/kubepods/besteffort/pod{UID}/crio-conmon-{CID}"),
                info(Some(UID), None, Some(CriO), Some("besteffort"), None),
            ),
            (
                "containerd, cgroup v1 or v2, systemd driver, Burstable",
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope"
                ),
                info(Some(UID), Some(CID), Some(Containerd), Some("burstable"), None),
            ),
            (
                "containerd, systemd driver, Guaranteed",
                format!("/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{CID}.scope"),
                info(Some(UID), Some(CID), Some(Containerd), Some("guaranteed"), None),
            ),
            (
                "CRI-O, cgroup v1 or v2, systemd driver (OpenShift)",
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{CID}.scope"
                ),
                info(Some(UID), Some(CID), Some(CriO), Some("besteffort"), None),
            ),
            (
                "CRI-O, cgroup v2, systemd driver, crun's `container` sub-cgroup",
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-{CID}.scope/container"
                ),
                info(Some(UID), Some(CID), Some(CriO), Some("burstable"), None),
            ),
            (
                "CRI-O, systemd driver: conmon scope is not the container",
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-conmon-{CID}.scope"
                ),
                info(Some(UID), None, Some(CriO), Some("burstable"), None),
            ),
            (
                "Docker (dockershim / cri-dockerd), cgroup v1, systemd driver",
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/docker-{CID}.scope"
                ),
                info(Some(UID), Some(CID), Some(Docker), Some("besteffort"), None),
            ),
            (
                "containerd, cgroup v2, systemd driver, kind/minikube (cgroup root /kubelet)",
                format!(
                    "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{UID_}.slice/cri-containerd-{CID}.scope"
                ),
                info(Some(UID), Some(CID), Some(Containerd), Some("besteffort"), None),
            ),
            (
                "containerd, cgroup v2, kind node seen from the host: the node's own Docker id is not the container",
                format!(
                    "/system.slice/docker-{}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope",
                    "3350ade4226f0adcd9e4e9545d7c2a16a5aa362d12315f2a88e2024cea1246cf"
                ),
                info(Some(UID), Some(CID), Some(Containerd), Some("burstable"), None),
            ),
            (
                "containerd, cgroup v2, kubelet systemd driver but containerd SystemdCgroup=false: runc's colon form under containerd.service",
                format!(
                    "/system.slice/containerd.service/kubepods-burstable-pod{UID_}.slice:cri-containerd:{CID}"
                ),
                info(Some(UID), Some(CID), Some(Containerd), Some("burstable"), None),
            ),
            (
                "containerd, systemd driver, static pod (UID is the 32-hex config hash)",
                format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod23b5c5a138ffb34cba6fda53690335d5.slice/cri-containerd-{CID}.scope"
                ),
                info(
                    Some("23b5c5a138ffb34cba6fda53690335d5"),
                    Some(CID),
                    Some(Containerd),
                    Some("burstable"),
                    None,
                ),
            ),
            (
                "cgroup v2 in a cgroup namespace: path relative to the reader's root",
                format!(
                    "/../../kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{CID}.scope"
                ),
                info(Some(UID), Some(CID), Some(Containerd), Some("besteffort"), None),
            ),
            (
                "pod-level cgroup (no container)",
                format!("/kubepods/burstable/pod{UID}"),
                info(Some(UID), None, None, Some("burstable"), None),
            ),
            (
                "plain Docker, cgroup v1, cgroupfs driver",
                format!("/docker/{CID}"),
                info(None, Some(CID), Some(Docker), None, None),
            ),
            (
                "plain Docker, systemd driver",
                format!("/system.slice/docker-{CID}.scope"),
                info(None, Some(CID), Some(Docker), None, None),
            ),
            (
                "Podman, cgroup v2, systemd driver (rootful)",
                format!("/machine.slice/libpod-{CID}.scope/container"),
                info(None, Some(CID), Some(Podman), None, None),
            ),
            (
                "plain host: a service",
                "/system.slice/nginx.service".to_owned(),
                info(None, None, None, None, Some("nginx.service")),
            ),
            (
                "plain host: a login session",
                "/user.slice/user-1000.slice/session-3.scope".to_owned(),
                info(None, None, None, None, Some("session-3.scope")),
            ),
            (
                "plain host: user manager's app scope (deepest unit wins)",
                "/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-5d1c.scope".to_owned(),
                info(None, None, None, None, Some("vte-spawn-5d1c.scope")),
            ),
            (
                "plain host: service with a sub-cgroup",
                "/system.slice/containerd.service/runtime".to_owned(),
                info(None, None, None, None, Some("containerd.service")),
            ),
            (
                "kubelet itself",
                "/system.slice/kubelet.service".to_owned(),
                info(None, None, None, None, Some("kubelet.service")),
            ),
            ("pid 1", "/init.scope".to_owned(), CgroupInfo::default().with_unit("init.scope")),
            ("root", "/".to_owned(), CgroupInfo::default()),
            ("empty", String::new(), CgroupInfo::default()),
            ("QoS slice, no pod", "/kubepods.slice/kubepods-burstable.slice".to_owned(), CgroupInfo::default()),
            ("QoS dir, no pod", "/kubepods/burstable".to_owned(), CgroupInfo::default()),
            (
                "not a UID",
                "/kubepods/burstable/podnotauid/abc".to_owned(),
                CgroupInfo::default(),
            ),
            (
                "short hex is not a container id",
                "/system.slice/docker-abc123.scope".to_owned(),
                info(None, None, None, None, Some("docker-abc123.scope")),
            ),
        ];
        for (what, path, want) in cases {
            assert_eq!(parse_cgroup_path(&path), want, "{what}: {path}");
        }
    }

    impl CgroupInfo {
        fn with_unit(mut self, unit: &str) -> Self {
            self.systemd_unit = Some(unit.to_owned());
            self
        }
    }

    #[test]
    fn pod_uid_canonical_form() {
        assert_eq!(canonical_pod_uid(UID_).as_deref(), Some(UID));
        assert_eq!(
            canonical_pod_uid("8DBC5577-D0E2-4706-8787-57D52C03DDF2").as_deref(),
            Some(UID)
        );
        assert_eq!(
            canonical_pod_uid("8dbc5577-d0e2-4706-8787-57d52c03ddfz"),
            None
        );
        assert_eq!(
            canonical_pod_uid("8dbc5577d0e2-4706-8787-57d52c03ddf2a"),
            None
        );
        assert_eq!(canonical_pod_uid(""), None);
    }

    #[test]
    fn proc_cgroup_hybrid_prefers_the_line_naming_a_container() {
        // cgroup v1 hybrid (Ubuntu 20.04-style), containerd, cgroupfs driver: the unified
        // `0::` line shows only the runtime's service, the controllers show the pod.
        let content = format!(
            "12:perf_event:/kubepods/burstable/pod{UID}/{CID}\n\
             11:memory:/kubepods/burstable/pod{UID}/{CID}\n\
             10:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}\n\
             9:pids:/kubepods/burstable/pod{UID}/{CID}\n\
             8:net_cls,net_prio:/kubepods/burstable/pod{UID}/{CID}\n\
             1:name=systemd:/system.slice/containerd.service\n\
             0::/system.slice/containerd.service\n"
        );
        let got = parse_proc_cgroup(&content);
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        assert_eq!(got.container_id.as_deref(), Some(CID));
        assert_eq!(got.systemd_unit, None);
        let (path, _) = select_proc_cgroup(&content).expect("a line");
        assert_eq!(path, format!("/kubepods/burstable/pod{UID}/{CID}"));
    }

    #[test]
    fn proc_cgroup_v2_and_plain_host() {
        // cgroup v2, containerd, systemd driver.
        let v2 = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{CID}.scope\n"
        );
        let got = parse_proc_cgroup(&v2);
        assert_eq!(got.pod_uid.as_deref(), Some(UID));
        assert_eq!(got.runtime, Some(Runtime::Containerd));

        // cgroup v1 hybrid, plain host service: the unit comes from name=systemd / `0::`.
        let host = "11:memory:/system.slice/nginx.service\n\
                    4:cpu,cpuacct:/system.slice/nginx.service\n\
                    3:devices:/system.slice/nginx.service\n\
                    1:name=systemd:/system.slice/nginx.service\n\
                    0::/system.slice/nginx.service\n";
        assert_eq!(
            parse_proc_cgroup(host).systemd_unit.as_deref(),
            Some("nginx.service")
        );

        // pure v1 where memory shows only the slice but name=systemd shows the unit.
        let v1 = "5:memory:/user.slice\n2:cpu,cpuacct:/user.slice\n\
                  1:name=systemd:/user.slice/user-1000.slice/session-3.scope\n";
        assert_eq!(
            parse_proc_cgroup(v1).systemd_unit.as_deref(),
            Some("session-3.scope")
        );

        assert_eq!(parse_proc_cgroup(""), CgroupInfo::default());
        assert_eq!(parse_proc_cgroup("garbage\n"), CgroupInfo::default());
    }
}

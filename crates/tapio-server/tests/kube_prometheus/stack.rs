//! The stack a case runs: Tapio, the exporters, Prometheus, Alertmanager; and reading the
//! alerts and incidents that come out of it.

use super::*;

// ---------------------------------------------------------------------------------------
// The stack: Tapio, the exporters, Prometheus, Alertmanager
// ---------------------------------------------------------------------------------------

pub(crate) struct Stack {
    pub(crate) tapio: Server,
    /// A webhook receiver routed every incident notification Tapio sends.
    pub(crate) hook: Receiver,
    pub(crate) cluster: Arc<Mutex<Cluster>>,
    pub(crate) metrics_port: u16,
    pub(crate) prometheus: Daemon,
    pub(crate) _alertmanager: Daemon,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) seq: u64,
}

pub(crate) fn sd_file(dir: &Path, job: &str) -> String {
    dir.join("sd")
        .join(format!("{job}.json"))
        .display()
        .to_string()
}

/// Writes one file-SD file per scrape job from the model; returns the jobs.
pub(crate) fn write_targets(dir: &Path, cluster: &Cluster, metrics_port: u16) -> Vec<String> {
    std::fs::create_dir_all(dir.join("sd")).expect("sd dir");
    let jobs = cluster.targets(metrics_port);
    for (job, targets) in &jobs {
        let path = sd_file(dir, job);
        let tmp = format!("{path}.tmp");
        std::fs::write(&tmp, Value::from(targets.clone()).to_string()).expect("sd file");
        std::fs::rename(&tmp, &path).expect("sd file");
    }
    jobs.into_keys().collect()
}

pub(crate) fn get_json(url: &str) -> Value {
    let mut r = ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.body_mut().read_json().expect("json")
}

impl Stack {
    // Kept whole (~150 lines): the start-up order is the point (receiver, Tapio, exporters,
    // Alertmanager, Prometheus without rules, two scrapes, then the rules), each step
    // commented where it is.
    pub(crate) fn start() -> Self {
        // Fail before starting anything when a binary is missing.
        require("prometheus", "prometheus");
        require("prometheus-alertmanager", "prometheus-alertmanager");
        let dir = tempfile::tempdir().expect("tempdir");
        let hook = Receiver::start(200);
        let notify = dir.path().join("notify.toml");
        std::fs::write(
            &notify,
            format!(
                "[dispatch]\ntimeout = \"2s\"\n\n[[receiver]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n\n[[route]]\nreceivers = [\"hook\"]\n",
                hook.url("/tapio")
            ),
        )
        .expect("notify config");
        let tapio = Server::start(&[
            "--kube",
            "off",
            "--notify",
            notify.to_str().expect("utf-8 path"),
        ]);
        let cluster = Arc::new(Mutex::new(Cluster::new()));
        let metrics_port = serve_metrics(cluster.clone());
        let alerting_rules = write_rules(&dir.path().join("rules"));

        // kube-prometheus's routing with test timers (its group_wait is 30 s, its
        // group_interval 5 m): Watchdog and InfoInhibitor go nowhere, everything else to
        // Tapio. No inhibition rules, so that Tapio sees every alert the rules fire (with
        // kube-prometheus's, an info alert alone in its namespace would never arrive).
        let am_cfg = dir.path().join("alertmanager.yml");
        let am = json!({
            "route": {
                "receiver": "tapio", "group_by": ["namespace"],
                "group_wait": "1s", "group_interval": "1s", "repeat_interval": "12h",
                "routes": [
                    {"matchers": ["alertname = Watchdog"], "receiver": "null"},
                    {"matchers": ["alertname = InfoInhibitor"], "receiver": "null"}
                ]
            },
            "receivers": [
                {"name": "tapio", "webhook_configs": [{
                    "url": format!("{}/api/v1/alertmanager", tapio.url()), "send_resolved": true}]},
                {"name": "null"}
            ]
        });
        // JSON is YAML: the configs are written with serde_json.
        std::fs::write(&am_cfg, am.to_string()).expect("alertmanager config");
        let alertmanager = Daemon::alertmanager(&am_cfg, dir.path());

        let jobs = write_targets(dir.path(), &cluster.lock().expect("lock"), metrics_port);
        let prom_cfg = dir.path().join("prometheus.yml");
        let scrape: Vec<Value> = jobs
            .iter()
            .map(|job| {
                json!({"job_name": job, "honor_labels": true,
                       "file_sd_configs": [{"files": [sd_file(dir.path(), job)], "refresh_interval": "1s"}]})
            })
            .collect();
        let mut prom = json!({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [format!("127.0.0.1:{}", alertmanager.port)]}]}]},
            "scrape_configs": scrape
        });
        // First without rules: Prometheus discovers and scrapes the healthy cluster before
        // any rule runs, as one that has been running for a while would (else `absent()`
        // rules such as KubeSchedulerDown fire during the first seconds of discovery).
        std::fs::write(&prom_cfg, prom.to_string()).expect("prometheus config");
        let prometheus = Daemon::prometheus(&prom_cfg, dir.path(), &["--web.enable-lifecycle"]);
        let mut st = Self {
            tapio,
            hook,
            cluster,
            metrics_port,
            prometheus,
            _alertmanager: alertmanager,
            dir,
            seq: 0,
        };
        let targets: usize = {
            let c = st.cluster();
            c.targets(metrics_port).values().map(Vec::len).sum()
        };
        tapio_testkit::wait("every target up in Prometheus", 30, || {
            let v = get_json(&format!(
                "{}/api/v1/targets?state=active",
                st.prometheus.url()
            ));
            let active = v["data"]["activeTargets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            active.len() == targets && active.iter().all(|t| t["health"] == "up")
        });
        // Two scrapes of every target, so that rates have their first interval.
        std::thread::sleep(Duration::from_secs(2));
        prom["rule_files"] = json!([format!("{}/rules/*.yaml", st.dir.path().display())]);
        std::fs::write(&prom_cfg, prom.to_string()).expect("prometheus config");
        let reload = ureq::post(format!("{}/-/reload", st.prometheus.url()))
            .send_empty()
            .expect("POST /-/reload");
        assert_eq!(reload.status().as_u16(), 200, "reload with the rules");

        // Prometheus itself accepts every alerting rule.
        let rules = get_json(&format!("{}/api/v1/rules?type=alert", st.prometheus.url()));
        let loaded: usize = rules["data"]["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["rules"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(
            loaded,
            alerting_rules,
            "Prometheus loaded {loaded} of the {alerting_rules} kube-prometheus alerting rules; log:\n{}",
            st.prometheus.logs()
        );

        // The cluster as the watcher first lists it.
        let snapshot = st.cluster().snapshot();
        st.post_watch(snapshot);

        // A healthy cluster: the rules evaluated, nothing but Watchdog firing. (A pending
        // alert is only reported: one slow scrape on a busy machine makes `up` 0 once.)
        tapio_testkit::wait("Watchdog firing", 30, || {
            st.prometheus_alerts()
                .iter()
                .any(|a| a["labels"]["alertname"] == "Watchdog" && a["state"] == "firing")
        });
        std::thread::sleep(Duration::from_secs(3));
        st.assert_rules_healthy();
        let (firing, pending): (Vec<Value>, Vec<Value>) = st
            .prometheus_alerts()
            .into_iter()
            .filter(|a| a["labels"]["alertname"] != "Watchdog")
            .partition(|a| a["state"] == "firing");
        if !pending.is_empty() {
            eprintln!("pending in the healthy cluster: {pending:?}");
        }
        assert!(
            firing.is_empty(),
            "the healthy cluster fires alerts: {firing:#?}"
        );
        assert_eq!(
            st.tapio.metric("tapio_alertmanager_alerts_received_total"),
            0.0,
            "alerts reached Tapio from the healthy cluster: {:#?}",
            st.firing()
        );
        assert!(
            st.tapio.incidents("").is_empty(),
            "the healthy cluster's state opened incidents: {:#?}",
            st.tapio.incidents("")
        );
        st
    }

    pub(crate) fn cluster(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().expect("lock")
    }

    /// Rewrites the service-discovery files from the model: new pods become targets, as
    /// endpoints discovery would make them.
    pub(crate) fn sync_targets(&self) {
        write_targets(self.dir.path(), &self.cluster(), self.metrics_port);
    }

    /// Posts watch events as the kube watcher stores them (one batch).
    pub(crate) fn post_watch(&mut self, objects: Vec<(&'static str, Value)>) {
        let time = Utc::now().to_rfc3339();
        let events: Vec<Value> = objects
            .into_iter()
            .map(|(verb, obj)| {
                let meta = &obj["metadata"];
                let mut entity = json!({"cluster": CLUSTER});
                if let Some(ns) = meta["namespace"].as_str() {
                    entity["namespace"] = json!(ns);
                }
                match obj["kind"].as_str() {
                    Some("Node") => entity["node"] = meta["name"].clone(),
                    Some("Pod") => {
                        entity["pod"] = meta["name"].clone();
                        entity["pod_uid"] = meta["uid"].clone();
                        entity["node"] = obj["spec"]["nodeName"].clone();
                    }
                    _ => {}
                }
                json!({"id": ulid::Ulid::new().to_string(), "time": time,
                       "type": format!("kubernetes.watch.{verb}"), "severity": "info",
                       "entity": entity, "object": obj})
            })
            .collect();
        self.seq += 1;
        let body = json!({"version": 1, "agent_id": "kube-watch", "node": CLUSTER,
                          "seq": self.seq, "events": events});
        let (status, ack) = self.tapio.post(
            "/api/v1/evidence",
            body.to_string().as_bytes(),
            &[("content-type", "application/json")],
        );
        assert_eq!(status, 200, "watch evidence refused: {ack}");
    }

    pub(crate) fn prometheus_alerts(&self) -> Vec<Value> {
        get_json(&format!("{}/api/v1/alerts", self.prometheus.url()))["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every rule evaluates without error over the served series (a failed vector match
    /// would mean the series are not shaped as the exporters shape them).
    pub(crate) fn assert_rules_healthy(&self) {
        let rules = get_json(&format!("{}/api/v1/rules", self.prometheus.url()));
        let bad: Vec<String> = rules["data"]["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .filter(|r| r["health"] == "err")
            .map(|r| format!("{}: {}", r["name"], r["lastError"]))
            .collect();
        assert!(bad.is_empty(), "rules failing to evaluate: {bad:#?}");
    }

    /// The firing alerts Tapio stored (the receiver's evidence).
    pub(crate) fn firing(&self) -> Vec<Value> {
        self.tapio
            .get_json("/api/v1/evidence?type=alert.prometheus.firing&limit=5000")["evidence"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e["event"].clone())
            .collect()
    }

    /// Waits until Tapio has received a firing alert named `name` whose entity or
    /// attributes hold every `(key, value)` of `with`.
    pub(crate) fn wait_alert(&self, secs: u64, name: &str, with: &[(&str, &str)]) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.firing().iter().any(|ev| alert_matches(ev, name, with)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let stored: Vec<String> = self.firing().iter().map(describe_alert).collect();
        let active: Vec<String> = self
            .prometheus_alerts()
            .iter()
            .map(|a| format!("{} {}", a["state"], a["labels"]))
            .collect();
        panic!(
            "timed out waiting for Tapio to receive {name} {with:?}\nTapio stored: {stored:#?}\nPrometheus alerts: {active:#?}"
        );
    }

    pub(crate) fn incidents(&self) -> Vec<Value> {
        self.tapio.incidents("?limit=1000")
    }

    /// What arrived and what Tapio made of it, to stderr.
    pub(crate) fn report(&self, case: &str) {
        let mut alerts: Vec<String> = self.firing().iter().map(describe_alert).collect();
        alerts.sort();
        eprintln!(
            "--- {case}: {} firing alerts stored ({} received, duplicates included):",
            alerts.len(),
            self.tapio
                .metric("tapio_alertmanager_alerts_received_total")
        );
        for a in &alerts {
            eprintln!("    {a}");
        }
        let incidents = self.incidents();
        eprintln!("--- {case}: {} incidents:", incidents.len());
        for i in &incidents {
            eprintln!("{}", describe_incident(i));
        }
        let notes: Vec<String> = self
            .hook
            .accepted()
            .iter()
            .map(|n| {
                format!(
                    "{} {} {}",
                    n["kind"], n["incident"]["severity"], n["incident"]["title"]
                )
            })
            .collect();
        eprintln!("--- {case}: {} notifications: {notes:#?}", notes.len());
    }
}

/// An alert's label as Tapio stored it: in the entity (`workload` is the name of the
/// `deployment`/`statefulset`/… label's workload) or among the attributes.
pub(crate) fn attr_or_entity<'a>(ev: &'a Value, key: &str) -> Option<&'a str> {
    if key == "workload" {
        return ev["entity"]["workload"]["name"].as_str();
    }
    ev["entity"][key]
        .as_str()
        .or_else(|| ev["attributes"][key].as_str())
}

pub(crate) fn alert_matches(ev: &Value, name: &str, with: &[(&str, &str)]) -> bool {
    ev["attributes"]["alertname"] == name
        && with.iter().all(|(k, v)| attr_or_entity(ev, k) == Some(*v))
}

pub(crate) fn describe_alert(ev: &Value) -> String {
    let a = &ev["attributes"];
    format!(
        "{} [{}] entity={} {}",
        a["alertname"].as_str().unwrap_or("?"),
        ev["severity"].as_str().unwrap_or("?"),
        ev["entity"],
        a["description"].as_str().unwrap_or_default()
    )
}

pub(crate) fn describe_incident(i: &Value) -> String {
    let id = &i["identity"];
    let mut s = format!(
        "  [{} peak {} {}] {:?}\n    severity_reason: {}\n    identity: {}/{}/{} ({}) affected: {}\n    root_cause_confident: {} merged_into: {}",
        i["severity"].as_str().unwrap_or("?"),
        i["peak_severity"].as_str().unwrap_or("-"),
        i["status"].as_str().unwrap_or("?"),
        i["title"].as_str().unwrap_or("?"),
        i["severity_reason"].as_str().unwrap_or("?"),
        id["kind"].as_str().unwrap_or("?"),
        id["namespace"].as_str().unwrap_or("-"),
        id["name"].as_str().unwrap_or("?"),
        id["problem"].as_str().unwrap_or("?"),
        i["affected"],
        i["root_cause_confident"],
        i["merged_into"].as_str().unwrap_or("-"),
    );
    for h in i["hypotheses"].as_array().cloned().unwrap_or_default() {
        let _ = write!(
            s,
            "\n    hypothesis {} on {} ({}, rule {}): {}",
            h["cause"].as_str().unwrap_or("?"),
            h["entity"].as_str().unwrap_or("?"),
            h["confidence"],
            h["rule"].as_str().unwrap_or("?"),
            h["explanation"].as_str().unwrap_or_default()
        );
    }
    s
}

pub(crate) fn top_hypothesis(i: &Value) -> (&str, &str) {
    let h = &i["hypotheses"][0];
    (
        h["cause"].as_str().unwrap_or("-"),
        h["entity"].as_str().unwrap_or("-"),
    )
}

pub(crate) fn is_open(i: &Value) -> bool {
    i["status"] == "open"
}

/// The incident's severity now or at its peak is one of `levels`.
pub(crate) fn pages_at(i: &Value, levels: &[&str]) -> bool {
    ["severity", "peak_severity"]
        .iter()
        .any(|k| i[k].as_str().is_some_and(|s| levels.contains(&s)))
}

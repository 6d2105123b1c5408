//! The public status page end to end: what customers see (and what they never see) on
//! `/status` and `/status.json`, then the page rendered in headless Chromium at phone and
//! desktop width (screenshots kept as CI artifacts in `target/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tapio_testkit::{Server, oom_batch};

const TITLE: &str = "Checkout <b>down</b> for EU";

/// A server with customer-facing and internal incidents:
/// - declared P1 in `shop`, acknowledged with a note (public);
/// - declared P2 in `shop`, worked through to resolved (public, in the history);
/// - detected P1 in `shop` (public, under a generic title);
/// - detected P1 and OOM incidents in `backoffice`, OOM in `shop` (internal).
fn populated() -> Server {
    let s = Server::start(&[
        "--status-namespaces",
        "shop",
        "--status-title",
        "Acme status",
    ]);
    let (status, inc) = s.post(
        "/api/v1/incidents",
        br#"{"severity":"P1","title":"Checkout <b>down</b> for EU","namespace":"shop","by":"alice"}"#,
        &[],
    );
    assert_eq!(status, 201, "{inc}");
    let id = inc["id"].as_str().expect("id").to_owned();
    let (status, inc) = s.post(
        &format!("/api/v1/incidents/{id}/ack"),
        br#"{"by":"bob","note":"Fix being deployed"}"#,
        &[],
    );
    assert_eq!(status, 200, "{inc}");

    let (status, inc) = s.post(
        "/api/v1/incidents",
        br#"{"severity":"P2","title":"Search results delayed","namespace":"shop","service":"search","by":"carol",
             "description":"Searches take up to 30 seconds for some customers."}"#,
        &[],
    );
    assert_eq!(status, 201, "{inc}");
    let past = inc["id"].as_str().expect("id").to_owned();
    for (action, note) in [
        ("ack", "We found a slow database query behind this."),
        ("mitigate", "A fix is deployed and search is recovering."),
        ("resolve", "Search is back to normal."),
    ] {
        let body = serde_json::json!({"by": "carol", "note": note}).to_string();
        let (status, inc) = s.post(
            &format!("/api/v1/incidents/{past}/{action}"),
            body.as_bytes(),
            &[],
        );
        assert_eq!(status, 200, "{action}: {inc}");
    }

    for (ns, workload) in [("shop", "payments-api"), ("backoffice", "payroll-export")] {
        let body = format!(
            r#"{{"type":"kubernetes.workload.unavailable","severity":"critical","producer":"ci",
                "entity":{{"namespace":"{ns}","workload":{{"kind":"Deployment","name":"{workload}"}}}},
                "attributes":{{"desired_replicas":3,"available_replicas":0}}}}"#
        );
        let (status, ack) = s.post("/api/v1/events", body.as_bytes(), &[]);
        assert_eq!(status, 202, "{ack}");
    }
    let shop_oom = oom_batch("agent-1", 1, "cartsvc", 2);
    let backoffice_oom = oom_batch("agent-2", 1, "ledgerd", 2)
        .replace(r#""namespace":"shop""#, r#""namespace":"backoffice""#);
    for batch in [shop_oom, backoffice_oom] {
        let (status, ack) = s.post("/api/v1/evidence", batch.as_bytes(), &[]);
        assert_eq!(status, 200, "{ack}");
    }
    s.wait_for(10, "the detected incidents", |s| {
        s.incidents("?namespace=backoffice").len() >= 2
            && s.incidents("?namespace=shop&severity=P1,P2").len() >= 2
    });
    s
}

fn get(s: &Server, path: &str) -> (u16, String, ureq::http::HeaderMap) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut r = agent.get(format!("{}{path}", s.url())).call().expect("GET");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (
        status,
        r.body_mut().read_to_string().expect("body"),
        headers,
    )
}

fn header<'a>(h: &'a ureq::http::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Strings only the internal view knows: people, internal namespaces, workloads, pods,
/// causes.
const INTERNAL: [&str; 12] = [
    "alice",
    "bob",
    "carol",
    "backoffice",
    "payroll",
    "payments-api",
    "cartsvc",
    "ledgerd",
    "Deployment",
    "OOM",
    "worker-1",
    "java",
];

#[test]
fn the_status_page_shows_customer_facing_incidents_in_customer_words_only() {
    let s = populated();
    // The page is rebuilt every 2 s at most: wait until it shows the whole story.
    s.wait_for(10, "the status page to show every public incident", |s| {
        let v = s.get_json("/status.json");
        v["incidents"].as_array().map(Vec::len) == Some(2)
            && v["resolved"].as_array().map(Vec::len) == Some(1)
    });

    let (status, html, h) = get(&s, "/status");
    assert_eq!(status, 200, "{html}");
    assert!(header(&h, "content-type").starts_with("text/html"), "{h:?}");
    assert_eq!(header(&h, "cache-control"), "no-cache");
    assert!(header(&h, "content-security-policy").contains("default-src 'none'"));
    assert!(html.contains(r#"<meta name="viewport""#));
    assert!(html.contains("<title>Acme status</title>"));
    assert!(html.contains("Major outage"), "{html}");
    assert!(
        html.contains("Checkout &lt;b&gt;down&lt;/b&gt; for EU"),
        "title escaped: {html}"
    );
    assert!(!html.contains("<b>down</b>"), "title not escaped: {html}");
    assert!(html.contains("Identified"));
    assert!(html.contains("Fix being deployed"));
    assert!(html.contains("Service disruption affecting shop"));
    assert!(html.contains("Search results delayed"));
    assert!(html.contains("Resolved"));
    assert!(html.contains("Search is back to normal."));
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external assets"
    );
    for secret in INTERNAL {
        assert!(!html.contains(secret), "{secret:?} is internal: {html}");
    }

    let (status, text, h) = get(&s, "/status.json");
    assert_eq!(status, 200, "{text}");
    assert_eq!(header(&h, "cache-control"), "no-cache");
    for secret in INTERNAL {
        assert!(!text.contains(secret), "{secret:?} is internal: {text}");
    }
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["title"], "Acme status");
    assert_eq!(v["overall"]["state"], "major_outage");
    assert_eq!(v["overall"]["label"], "Major outage");
    let incidents = v["incidents"].as_array().expect("incidents");
    let declared = incidents
        .iter()
        .find(|i| i["title"] == TITLE)
        .unwrap_or_else(|| panic!("the declared incident: {v}"));
    assert_eq!(declared["impact"], "major_outage");
    assert_eq!(declared["impact_label"], "Major outage");
    assert_eq!(declared["status"], "identified");
    assert_eq!(declared["status_label"], "Identified");
    assert_eq!(declared["updates"][0]["message"], "Fix being deployed");
    assert_eq!(declared["updates"][0]["status"], "identified");
    assert_eq!(declared["updates"][1]["status"], "investigating");
    for field in [
        "id",
        "fingerprint",
        "evidence",
        "severity_reason",
        "hypotheses",
    ] {
        assert!(
            declared.get(field).is_none(),
            "{field} is internal: {declared}"
        );
    }
    let detected = incidents
        .iter()
        .find(|i| i["title"] != TITLE)
        .expect("the detected incident");
    assert_eq!(detected["title"], "Service disruption affecting shop");
    assert_eq!(detected["status"], "investigating");
    assert_eq!(v["services"][0]["name"], "shop");
    assert_eq!(v["services"][0]["state"], "major_outage");
    let past = &v["resolved"][0];
    assert_eq!(past["title"], "Search results delayed");
    assert_eq!(past["impact_label"], "Partial outage");
    assert_eq!(past["status_label"], "Resolved");
    let steps: Vec<&str> = past["updates"]
        .as_array()
        .expect("updates")
        .iter()
        .filter_map(|u| u["status_label"].as_str())
        .collect();
    assert_eq!(
        steps,
        ["Resolved", "Monitoring", "Identified", "Investigating"],
        "{past}"
    );
    assert_eq!(
        past["updates"][3]["message"],
        "Searches take up to 30 seconds for some customers."
    );
}

fn chromium() -> Option<PathBuf> {
    if std::env::var("TAPIO_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("TAPIO_SKIP_BROWSER_TESTS=1: the status page is not rendered in a browser");
        return None;
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file());
    match found {
        Some(p) => Some(p),
        None => panic!(
            "chromium is not installed: this test renders /status in headless Chromium. \
             Install it (`apt-get install -y --no-install-recommends chromium`; .ci/run does) \
             or set TAPIO_SKIP_BROWSER_TESTS=1 to skip the browser part"
        ),
    }
}

/// Render `url` at `width`×`height` into `out`; returns the PNG bytes.
fn screenshot(chromium: &Path, url: &str, width: u32, height: u32, out: &Path) -> Vec<u8> {
    let profile = tempfile::tempdir().expect("profile dir");
    let log = profile.path().join("chromium.log");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("p").display()
        ))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish the screenshot within 120 s; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let png = std::fs::read(out).unwrap_or_default();
    assert!(
        status.success() && !png.is_empty(),
        "chromium failed ({status}) to write {}; its log:\n{}",
        out.display(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    png
}

#[test]
fn the_status_page_renders_in_headless_chromium_at_phone_and_desktop_width() {
    let Some(chromium) = chromium() else {
        return;
    };
    let s = populated();
    s.wait_for(10, "the status page to show every public incident", |s| {
        let v = s.get_json("/status.json");
        v["incidents"].as_array().map(Vec::len) == Some(2)
            && v["resolved"].as_array().map(Vec::len) == Some(1)
    });
    let shots = tempfile::tempdir().expect("tempdir");
    // CARGO_TARGET_TMPDIR is `<target>/tmp`: the screenshots are kept in `<target>/`.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf();
    for (name, width, height) in [("phone", 390, 1200), ("desktop", 1280, 900)] {
        let out = shots.path().join(format!("status-page-{name}.png"));
        let png = screenshot(
            &chromium,
            &format!("{}/status", s.url()),
            width,
            height,
            &out,
        );
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is not a PNG",
            out.display()
        );
        assert!(
            png.len() > 5 * 1024,
            "{} is only {} bytes: the page did not render",
            out.display(),
            png.len()
        );
        // The PNG header's IHDR holds the image size: it is the window asked for.
        let w = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        assert_eq!(w, width, "{name} screenshot width");
        let kept = target.join(format!("status-page-{name}.png"));
        std::fs::copy(&out, &kept).expect("copy the screenshot to target/");
        println!("screenshot: {}", kept.display());
    }
}

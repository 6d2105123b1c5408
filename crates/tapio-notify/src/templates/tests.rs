//! The runbook's messages rendered from sample incidents, and user templates loaded,
//! checked and reported with file and line.

// Test code: unwrap failures are the test failing.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use tapio_core::incident::*;
use ulid::Ulid;

use super::samples::samples;
use super::*;
use crate::fixtures::*;

#[test]
fn initial_follows_the_runbook() {
    let inc = confident();
    let s = render(NotificationKind::Initial, &inc, &ctx());
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines,
        [
            "🚨 INCIDENT: P1 - checkout is crash-looping (OOMKilled)",
            "Started: 2026-01-01T10:00:00Z (10:00 UTC)",
            "Impact: P1: checkout serves traffic and 0 of 3 replicas are ready; \
             affected: Deployment/shop/checkout, Service/shop/checkout",
            "Status: Investigating (acknowledged)",
            "Lead: @bob",
            &format!(
                "Thread: https://tapio.example.com/api/v1/incidents/{}",
                inc.id
            ),
        ],
        "{s}"
    );
}

#[test]
fn initial_without_lead_or_link() {
    let s = render(
        NotificationKind::Initial,
        &unsure(),
        &RenderContext::new(t(60)),
    );
    assert!(s.contains("Status: Investigating\n"), "{s}");
    assert!(s.ends_with("Lead: unassigned"), "{s}");
    assert!(!s.contains("Thread"), "{s}");
}

#[test]
fn update_with_confident_root_cause() {
    let inc = confident();
    let s = render(NotificationKind::Update, &inc, &ctx());
    assert!(
        s.starts_with(&format!(
            "📊 UPDATE: {} (P1 - checkout is crash-looping (OOMKilled))\n",
            inc.id
        )),
        "{s}"
    );
    assert!(s.contains("Status: Investigating (acknowledged)\n"), "{s}");
    assert!(
        s.contains(
            "Progress: root cause: rollout v42 raised memory use past the 512Mi limit; \
             latest note (bob, 10:10 UTC): rolling back to v41\n"
        ),
        "{s}"
    );
    assert!(
        s.contains(
            "Next Steps: kubectl rollout undo deployment/checkout -n shop; \
             raise the memory limit of checkout\n"
        ),
        "{s}"
    );
    assert!(s.contains("ETA: unknown\n"), "{s}");
}

#[test]
fn update_without_confident_root_cause() {
    let mut inc = unsure();
    inc.timeline.push(entry(
        900,
        TimelineKind::Note,
        "eta: 10:45 UTC",
        Some("carol"),
    ));
    let s = render(NotificationKind::Update, &inc, &RenderContext::new(t(1000)));
    assert!(s.contains("Status: Investigating\n"), "{s}");
    assert!(
        s.contains(
            "Progress: no confident root cause yet (leading hypothesis: memory limit too \
             low after rollout on Deployment/shop/checkout, 40 %)"
        ),
        "{s}"
    );
    assert!(
        s.contains("Next Steps: confirm memory limit too low after rollout on"),
        "{s}"
    );
    assert!(s.ends_with("ETA: 10:45 UTC"), "{s}");

    let mut bare = unsure();
    bare.hypotheses.clear();
    let s = render(
        NotificationKind::Update,
        &bare,
        &RenderContext::new(t(1000)),
    );
    assert!(s.contains("Progress: no confident root cause yet\n"), "{s}");
    assert!(s.contains("Next Steps: investigate"), "{s}");
}

#[test]
fn resolution_with_and_without_root_cause() {
    let mut inc = confident();
    inc.status = Status::Resolved;
    inc.resolved_at = Some(t(4320));
    inc.timeline.push(entry(
        4320,
        TimelineKind::StatusChanged,
        "resolved by bob",
        Some("bob"),
    ));
    let s = render(NotificationKind::Resolution, &inc, &ctx());
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines[..5],
        [
            format!(
                "✅ RESOLVED: {} (P1 - checkout is crash-looping (OOMKilled))",
                inc.id
            )
            .as_str(),
            "Duration: 1 h 12 min",
            "Cause: memory limit too low after rollout on Deployment/shop/checkout",
            "Resolution: rolling back to v41",
            &format!("Follow-up: post-mortem: tapio postmortem {}", inc.id),
        ],
        "{s}"
    );

    // No note, no confident cause, resolved by a person.
    let mut inc = unsure();
    inc.status = Status::Resolved;
    inc.resolved_at = Some(t(125));
    inc.timeline.push(entry(
        125,
        TimelineKind::StatusChanged,
        "resolved by dave",
        Some("dave"),
    ));
    let s = render(
        NotificationKind::Resolution,
        &inc,
        &RenderContext::new(t(200)),
    );
    assert!(s.contains("Duration: 2 min\n"), "{s}");
    assert!(s.contains("Cause: no confident root cause\n"), "{s}");
    assert!(s.contains("Resolution: resolved by dave\n"), "{s}");

    // Resolved by Tapio after the quiet period.
    inc.timeline.pop();
    inc.timeline.push(entry(
        125,
        TimelineKind::StatusChanged,
        "resolved: no new symptom for 15 min and no condition still active",
        None,
    ));
    let s = render(
        NotificationKind::Resolution,
        &inc,
        &RenderContext::new(t(200)),
    );
    assert!(
        s.contains("Resolution: resolved: no new symptom for 15 min"),
        "{s}"
    );
}

#[test]
fn lead_from_an_implicit_acknowledgement() {
    let mut inc = unsure();
    inc.status = Status::Mitigated;
    inc.acknowledged_at = Some(t(300));
    inc.mitigated_at = Some(t(300));
    inc.timeline.push(entry(
        300,
        TimelineKind::StatusChanged,
        "mitigated by erin",
        Some("erin"),
    ));
    let s = render(NotificationKind::Initial, &inc, &ctx());
    assert!(s.contains("Lead: @erin"), "{s}");
}

#[test]
fn durations_read_like_people_write_them() {
    let d = chrono::Duration::seconds;
    assert_eq!(human_duration(d(45)), "45 s");
    assert_eq!(human_duration(d(12 * 60 + 5)), "12 min");
    assert_eq!(human_duration(d(3600)), "1 h");
    assert_eq!(human_duration(d(4320)), "1 h 12 min");
    assert_eq!(human_duration(d(2 * 86_400 + 3 * 3600 + 60)), "2 d 3 h");
    assert_eq!(human_duration(d(-5)), "0 s");
    let s = render(NotificationKind::Resolution, &unsure(), &ctx());
    assert!(s.contains("Duration: 1 h (ongoing)"), "{s}");
}

fn write(dir: &std::path::Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapio-notify-{}", Ulid::new()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn overrides_load_and_render() {
    let dir = tempdir();
    let p = write(
        &dir,
        "initial.j2",
        "{{ severity }} {{ title | upper }}\n\
         {% for a in affected %}\n\
         - {{ a }}\n\
         {% endfor %}\n\
         lead={{ lead }} ns={{ namespace | default('-', true) }} \
         ack={{ acknowledged_at | hhmm if acknowledged_at else 'no' }}\n\
         {% if root_cause %}cause={{ root_cause.cause }}{% endif %}\n",
    );
    let t = Templates::load(&[(NotificationKind::Initial, p.clone())]).unwrap();
    assert_eq!(t.name(NotificationKind::Initial), p.display().to_string());
    let s = t
        .render(NotificationKind::Initial, &confident(), &ctx())
        .unwrap();
    assert_eq!(
        s,
        "P1 CHECKOUT IS CRASH-LOOPING (OOMKILLED)\n\
         - Deployment/shop/checkout\n\
         - Service/shop/checkout\n\
         lead=bob ns=shop ack=10:04 UTC\n\
         cause=memory limit too low after rollout"
    );
    // The other kinds keep the defaults.
    let u = t
        .render(NotificationKind::Update, &confident(), &ctx())
        .unwrap();
    assert!(u.starts_with("📊 UPDATE:"), "{u}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = tempdir();
    let p = write(
        &dir,
        "update.j2",
        "UPDATE {{ id }}\nStatus: {{ status }}\nProgress: {% if progress %}{{ progress }\n",
    );
    let e = Templates::load(&[(NotificationKind::Update, p.clone())]).unwrap_err();
    assert_eq!(e.file, p.display().to_string());
    assert_eq!(e.line, Some(3), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}:3: syntax error", p.display())),
        "{e}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn undefined_variable_is_caught_at_load() {
    let dir = tempdir();
    let p = write(
        &dir,
        "resolution.j2",
        "RESOLVED {{ id }}\n\nCause: {{ root_cuase }}\n",
    );
    let e = Templates::load(&[(NotificationKind::Resolution, p.clone())]).unwrap_err();
    assert_eq!(e.line, Some(3), "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}:3: undefined value", p.display())),
        "{shown}"
    );
    assert!(shown.contains("root_cuase"), "{shown}");

    // A typo in a branch only one of the samples takes is caught too.
    let p = write(
        &dir,
        "initial.j2",
        "{% if root_cause %}ok{% else %}{{ nope }}{% endif %}",
    );
    let e = Templates::load(&[(NotificationKind::Initial, p)]).unwrap_err();
    assert_eq!(e.line, Some(1), "{e}");

    // An attribute of a value that is none for some incidents.
    let p = write(&dir, "update.j2", "x\n{{ root_cause.cause }}");
    let e = Templates::load(&[(NotificationKind::Update, p)]).unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");

    // An optional time formatted without a guard.
    let p = write(&dir, "update.j2", "acked {{ acknowledged_at | hhmm }}");
    let e = Templates::load(&[(NotificationKind::Update, p)]).unwrap_err();
    assert!(
        e.message.contains("hhmm needs an RFC 3339 time, got none"),
        "{e}"
    );

    // An unknown filter.
    let p = write(&dir, "update.j2", "{{ title | shout }}");
    let e = Templates::load(&[(NotificationKind::Update, p)]).unwrap_err();
    assert!(e.message.contains("shout"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unreadable_file_is_an_error_without_a_line() {
    let e = Templates::load(&[(
        NotificationKind::Initial,
        PathBuf::from("/nonexistent/tapio/initial.j2"),
    )])
    .unwrap_err();
    assert_eq!(e.line, None);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/tapio/initial.j2: cannot read"),
        "{e}"
    );
}

#[test]
fn defaults_render_every_sample() {
    let t = Templates::defaults();
    for kind in NotificationKind::ALL {
        for (inc, ctx) in samples() {
            let s = t.render(kind, &inc, &ctx).unwrap();
            assert!(!s.contains("\n\n"), "{kind}: {s}");
        }
    }
}

#[test]
fn kind_serde_and_parse() {
    assert_eq!(
        serde_json::to_string(&NotificationKind::Resolution).unwrap(),
        "\"resolution\""
    );
    assert_eq!(
        "Update".parse::<NotificationKind>(),
        Ok(NotificationKind::Update)
    );
    assert!("final".parse::<NotificationKind>().is_err());
}

//! Slack: a Block Kit message posted to an incoming webhook.

use serde_json::{Value, json};
use tapio_core::Incident;
use tapio_proto::text::cut_chars;

use super::http::post_json;
use super::{Sent, default_heading, split_heading};
use crate::templates::{NotificationKind, acknowledged_by};

/// Slack Block Kit limits (<https://api.slack.com/reference/block-kit/blocks>).
pub const SLACK_HEADER_MAX: usize = 150;
pub const SLACK_SECTION_TEXT_MAX: usize = 3000;
pub const SLACK_FIELD_TEXT_MAX: usize = 2000;
pub const SLACK_FIELDS_MAX: usize = 10;
/// Slack truncates a message's top-level `text` past this.
pub const SLACK_TEXT_MAX: usize = 40_000;
/// Slack mrkdwn escaping (`&`, `<`, `>`), then at most `max` characters, never cutting an
/// escape in two.
fn mrkdwn(s: &str, max: usize) -> String {
    let escaped = |c: char| match c {
        '&' => "&amp;".to_owned(),
        '<' => "&lt;".to_owned(),
        '>' => "&gt;".to_owned(),
        c => c.to_string(),
    };
    let total: usize = s.chars().map(|c| escaped(c).chars().count()).sum();
    let budget = if total <= max {
        max
    } else {
        max.saturating_sub(1)
    };
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let e = escaped(c);
        let n = e.chars().count();
        if used + n > budget {
            out.push('…');
            return out;
        }
        used += n;
        out.push_str(&e);
    }
    out
}

/// A Slack incoming-webhook message (Block Kit): the first line of `text` as the header,
/// severity / status / started / lead as fields, the rest of `text` as the body, and
/// `tapio · <id>` (with the link) as context. `text` itself is the notification fallback.
/// Every Block Kit limit is respected by cutting with "…".
pub fn payload(kind: NotificationKind, inc: &Incident, text: &str, link: Option<&str>) -> Value {
    let (head, body) = split_heading(text);
    let head = if head.is_empty() {
        default_heading(kind, inc)
    } else {
        head.to_owned()
    };
    let fallback = if text.trim().is_empty() {
        head.clone()
    } else {
        text.trim().to_owned()
    };
    let field = |name: &str, value: &str| {
        json!({
            "type": "mrkdwn",
            "text": mrkdwn(&format!("*{name}*\n{value}"), SLACK_FIELD_TEXT_MAX),
        })
    };
    let mut fields = vec![
        field("Severity", inc.severity.as_str()),
        field("Status", inc.status.as_str()),
        field(
            "Started",
            &inc.started_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        ),
        field("Lead", acknowledged_by(inc).unwrap_or("unassigned")),
    ];
    fields.truncate(SLACK_FIELDS_MAX);
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": cut_chars(&head, SLACK_HEADER_MAX),
                "emoji": true,
            },
        }),
        json!({"type": "section", "fields": fields}),
    ];
    if !body.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": mrkdwn(body, SLACK_SECTION_TEXT_MAX)},
        }));
    }
    let mut context = mrkdwn(&format!("tapio · {}", inc.id), SLACK_SECTION_TEXT_MAX);
    if let Some(link) = link.map(str::trim).filter(|l| !l.is_empty()) {
        // Slack link syntax: <url|label>, the URL escaped like any mrkdwn text.
        context.push_str(&format!(
            " · <{}|open in Tapio>",
            mrkdwn(&link.replace('|', "%7C"), 2000)
        ));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context}],
    }));
    json!({
        "text": cut_chars(&fallback, SLACK_TEXT_MAX),
        "blocks": blocks,
    })
}

/// Post the Slack message for this notification to the incoming webhook at `url`.
pub fn send(
    agent: &ureq::Agent,
    url: &str,
    kind: NotificationKind,
    inc: &Incident,
    text: &str,
    link: Option<&str>,
) -> Sent {
    post_json(agent, url, &payload(kind, inc, text, link), &[])
}

#[cfg(test)]
mod tests {
    // Test code: unwrap failures are the test failing.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::fixtures::*;

    #[test]
    fn slack_payload_shape() {
        let inc = confident();
        let text = render(NotificationKind::Initial, &inc, &ctx());
        let link = ctx().link(&inc).unwrap();
        let p = payload(NotificationKind::Initial, &inc, &text, Some(&link));
        assert_eq!(p["text"], json!(text));
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 4);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert_eq!(blocks[0]["text"]["emoji"], true);
        assert_eq!(
            blocks[0]["text"]["text"],
            "🚨 INCIDENT: P1 - checkout is crash-looping (OOMKilled)"
        );
        assert_eq!(blocks[1]["type"], "section");
        assert_eq!(
            blocks[1]["fields"],
            json!([
                {"type": "mrkdwn", "text": "*Severity*\nP1"},
                {"type": "mrkdwn", "text": "*Status*\nacknowledged"},
                {"type": "mrkdwn", "text": "*Started*\n2026-01-01 10:00 UTC"},
                {"type": "mrkdwn", "text": "*Lead*\nbob"},
            ])
        );
        assert_eq!(blocks[2]["text"]["type"], "mrkdwn");
        assert!(
            blocks[2]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("Started: ")
        );
        assert_eq!(blocks[3]["type"], "context");
        assert_eq!(
            blocks[3]["elements"][0]["text"],
            json!(format!("tapio · {} · <{link}|open in Tapio>", inc.id))
        );
    }

    #[test]
    fn slack_payload_respects_block_kit_limits() {
        let mut inc = confident();
        inc.title = "x".repeat(500);
        let body = "<&>".repeat(2000);
        let text = format!("🚨 INCIDENT: P1 - {}\n{body}", inc.title);
        let p = payload(NotificationKind::Initial, &inc, &text, None);
        let blocks = p["blocks"].as_array().unwrap();
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert_eq!(header.chars().count(), SLACK_HEADER_MAX);
        assert!(header.ends_with('…'));
        let section = blocks[2]["text"]["text"].as_str().unwrap();
        assert!(section.chars().count() <= SLACK_SECTION_TEXT_MAX);
        // Cut after a whole escape, never inside one.
        assert!(
            section.ends_with(";…"),
            "{}",
            &section[section.len() - 20..]
        );
        assert!(section.starts_with("&lt;&amp;&gt;"));
        assert!(blocks[1]["fields"].as_array().unwrap().len() <= SLACK_FIELDS_MAX);
        for f in blocks[1]["fields"].as_array().unwrap() {
            assert!(f["text"].as_str().unwrap().chars().count() <= SLACK_FIELD_TEXT_MAX);
        }
        // No body: no empty section (Slack refuses empty text).
        let p = payload(NotificationKind::Update, &inc, "", None);
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 3);
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .starts_with("📊 UPDATE:")
        );
    }
}

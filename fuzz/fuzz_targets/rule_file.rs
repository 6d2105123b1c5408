//! The causal rule file loader (`rules/default.toml`, user rule files): any text is refused
//! with a `RuleError` (origin, location, message) or loaded, never a panic; and a rule it
//! loads can be evaluated (its change window can be looked back from an incident's time).
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use tapio_core::correlate::rules::{default_rules, merge, parse_rules, render};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_rules(text, "fuzz.toml") {
        Err(e) => {
            assert!(!e.location.is_empty() && !e.message.is_empty(), "{e:?}");
        }
        Ok(rules) => {
            let now: DateTime<Utc> =
                DateTime::from_timestamp(1_795_773_600, 0).expect("fixed clock");
            for r in &rules {
                assert!(r.confidence > 0.0 && r.confidence <= 1.0);
                assert!(!r.symptoms.is_empty());
                // The engine looks for a change in [first symptom - change_window, ...].
                assert!(
                    now.checked_sub_signed(r.change_window).is_some(),
                    "rule {:?}: change window {} cannot be looked back from {now}",
                    r.name,
                    r.change_window
                );
                let _ = render(&r.explain, &[("subject", "shop/Deployment/api".into())]);
            }
            let n = rules.len();
            let merged = merge(default_rules(), rules);
            assert!(merged.len() >= n);
        }
    }
});

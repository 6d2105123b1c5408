//! Tapio's domain model and decisions, free of I/O.
//!
//! - [`incident`]: the incident record (what the API returns and the store keeps).
//! - [`classify`]: the runbook's P1–P4 applied to single facts, with the reason.
//! - [`engine`]: the seam the server drives (`IncidentEngine`, `IncidentChange`).
//! - [`correlate`]: the live engine behind that seam (`CorrelationEngine`): signals grouped
//!   into incidents, root-cause hypotheses, severity, storms.
//! - [`config`]: the four live runtime keys of the `tapio-config` ConfigMap.
//! - [`shed`]: which evidence load shedding may drop, and which it never drops.
//! - [`report`]: MTTD/MTTA/MTTR/MTBF per period, severity and service, target compliance,
//!   Markdown/SVG renderings, and post-mortem drafts.
//!
//! Time is always passed in (`now`), so everything here runs the same under a fake clock
//! and in a replay.

pub mod auth;
pub mod classify;
pub mod config;
pub mod correlate;
pub mod duration;
pub mod engine;
pub mod eval;
pub mod incident;
pub mod lifecycle;
pub mod report;
pub mod shed;
pub mod silence;

pub use classify::{Classification, classify};
pub use correlate::CorrelationEngine;
pub use engine::{IncidentChange, IncidentEngine};
pub use incident::*;

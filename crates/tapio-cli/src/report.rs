//! `tapio report` (incident metrics for a calendar period) and `tapio postmortem` (a
//! post-mortem draft for one incident). The figures and documents come from
//! `tapio_core::report`; this file fetches and writes.

use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use clap::ValueEnum;
use tapio_core::Incident;
use tapio_core::report::{self as core, PeriodKind};

use crate::client::{Client, ClientError};

/// The server's page size for incident lists.
const MAX_LIST: usize = 1000;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Markdown,
}

/// `--period`: week, month, quarter, year.
pub fn parse_period(s: &str) -> Result<PeriodKind, String> {
    s.parse()
}

/// `--from`: YYYY-MM-DD.
pub fn parse_from(s: &str) -> Result<NaiveDate, String> {
    core::parse_date(s)
}

/// Every incident updated since `from` (all statuses), as the server lists them.
fn fetch_since(client: &Client, from: DateTime<Utc>) -> Result<Vec<Incident>, ClientError> {
    let q = crate::query_string(&[
        (
            "status",
            Some("open,acknowledged,mitigated,resolved".to_owned()),
        ),
        (
            "since",
            Some(from.to_rfc3339_opts(SecondsFormat::Secs, true)),
        ),
        ("limit", Some(MAX_LIST.to_string())),
    ]);
    let list: serde_json::Value = client.get(&format!("/api/v1/incidents{q}"))?;
    serde_json::from_value(list["incidents"].clone())
        .map_err(|e| ClientError::Protocol(format!("incident list: {e}")))
}

/// `tapio report`: exit 0, 1 on a local error (bad period, unwritable chart), 3 when the
/// server cannot be reached.
pub fn run_report(
    client: &Client,
    kind: PeriodKind,
    from: Option<NaiveDate>,
    format: ReportFormat,
    chart: Option<&Path>,
) -> u8 {
    let now = Utc::now();
    let (start, end) = core::period(kind, from, now);
    if start > now {
        eprintln!(
            "tapio report: --from {} is in the future: the {} starting {} has no incidents yet",
            from.map(|d| d.to_string()).unwrap_or_default(),
            kind.as_str(),
            start.format("%Y-%m-%d")
        );
        return 1;
    }
    let incidents = match fetch_since(client, start) {
        Ok(v) => v,
        Err(e) => return crate::fail(&e),
    };
    if incidents.len() >= MAX_LIST {
        eprintln!(
            "tapio report: warning: the server returned its maximum of {MAX_LIST} incidents \
             updated since {}; figures may leave some out (try a shorter period)",
            start.format("%Y-%m-%d")
        );
    }
    let report = core::compute(&incidents, start, end);
    let text = match format {
        ReportFormat::Table => core::to_table(&report),
        ReportFormat::Json => format!("{}\n", core::to_json(&report)),
        ReportFormat::Markdown => core::to_markdown(&report, Some(client.base())),
    };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("tapio report: writing the report: {e}");
        return 1;
    }
    if let Some(path) = chart {
        if let Err(e) = std::fs::write(path, core::to_svg(&report)) {
            eprintln!(
                "tapio report: cannot write the chart to {}: {e}",
                path.display()
            );
            return 1;
        }
        // Standard error, so `-o json > file` stays clean.
        eprintln!("chart of {} written to {}", report.label, path.display());
    }
    0
}

/// `tapio postmortem`: the draft on standard output, or in a new file (an existing file is
/// left alone unless `force`: someone may have edited it).
pub fn run_postmortem(client: &Client, id: &str, out: Option<&Path>, force: bool) -> u8 {
    let inc: Incident = match client.get(&format!("/api/v1/incidents/{}", crate::encode(id))) {
        Ok(i) => i,
        Err(e) => return crate::fail(&e),
    };
    let md = core::postmortem_markdown(&inc, Utc::now());
    match out {
        None => {
            print!("{md}");
            0
        }
        Some(path) => {
            let file = if force {
                std::fs::File::create(path)
            } else {
                std::fs::File::create_new(path)
            };
            let written = file.and_then(|mut f| f.write_all(md.as_bytes()));
            match written {
                Ok(()) => {
                    eprintln!(
                        "post-mortem draft for {} written to {} ({} _TODO_ to fill in)",
                        inc.id,
                        path.display(),
                        md.matches("_TODO_").count()
                    );
                    0
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    eprintln!(
                        "tapio postmortem: {} already exists and may hold edits; choose another \
                         file or pass --force to overwrite it",
                        path.display()
                    );
                    1
                }
                Err(e) => {
                    eprintln!("tapio postmortem: cannot write {}: {e}", path.display());
                    1
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named() {
        let e = parse_period("fortnight").err().unwrap_or_default();
        assert!(e.contains("\"fortnight\""), "{e}");
        let e = parse_from("2026-13-40").err().unwrap_or_default();
        assert!(e.contains("\"2026-13-40\""), "{e}");
        assert!(parse_from("2026-11-27").is_ok());
    }
}

//! `tapio`: the on-call engineer's first command.

mod analyze;
mod check;
mod client;
mod render;
mod report;
mod up;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tapio_core::Incident;
use tapio_core::duration::parse_duration;

use crate::client::{Client, ClientError};

#[derive(Parser)]
#[command(
    name = "tapio",
    version,
    about = "Tapio: incidents in Kubernetes, found and explained"
)]
struct Cli {
    /// tapio-server address (`tapio replay`: a comma-separated list of replicas, tried in
    /// turn). (default http://127.0.0.1:8080; `tapio replay` without it runs in-process)
    #[arg(long, global = true, env = "TAPIO_SERVER")]
    server: Option<String>,
    /// API token (`tapio auth add-user` prints one); never logged.
    #[arg(long, global = true, env = "TAPIO_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Bound on the whole command (e.g. 2s, 30s).
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Is Tapio healthy, and what is wrong in the cluster?
    ///
    /// Exit codes: 0 healthy and no open P1/P2; 1 an open P1/P2 incident; 2 Tapio degraded
    /// or unhealthy; 3 server unreachable (or no answer within --timeout).
    Check {
        /// Every component's detail, per-agent last-seen and gaps, all open incidents.
        #[arg(long)]
        all: bool,
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: Output,
    },
    /// List and inspect incidents.
    Incidents {
        #[command(subcommand)]
        cmd: IncidentsCmd,
    },
    /// Run tapio-server and tapio-agent together on this host (embedded SQLite, no other
    /// service). Run as root for eBPF kernel evidence. Ctrl-C stops both.
    Up {
        #[arg(long, default_value = "./tapio-data")]
        data_dir: std::path::PathBuf,
        #[arg(long, default_value = "./tapio-config")]
        config_dir: std::path::PathBuf,
        /// Server listen address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Agent /metrics and /health address.
        #[arg(long, default_value = "127.0.0.1:9091")]
        agent_listen: String,
        /// Only the server.
        #[arg(long)]
        no_agent: bool,
    },
    /// Replay a file (JSON Lines, one evidence batch per line): to a server with
    /// --server, else in-process through the correlation engine, printing the incidents.
    Replay {
        /// Path of the .jsonl file, or - for standard input.
        file: String,
        /// Pace by event time, N times faster than it happened (to a server).
        #[arg(long, conflicts_with = "max_speed")]
        speed: Option<f64>,
        /// As fast as the server answers (the default).
        #[arg(long)]
        max_speed: bool,
        /// In-process: correlation depth.
        #[arg(long, default_value = "standard")]
        depth: String,
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Users and tokens for `tapio-server --auth-dir` (docs/security.md).
    Auth {
        #[command(subcommand)]
        cmd: AuthCmd,
    },
    /// The security audit trail.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Silences and maintenance windows: incidents are still recorded, notifications held.
    Silence {
        #[command(subcommand)]
        cmd: SilenceCmd,
    },
    /// Why did this happen? The causal chain, evidence, confidence and what to do.
    ///
    /// `tapio why INCIDENT_ID` or `tapio why pod/NAME -n NAMESPACE` (also deployment/NAME,
    /// node/NAME, service/NAME).
    Why {
        target: String,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Score the correlation engine on scenarios with ground truth (docs/scenarios.md).
    ///
    /// Exit 1 when a --min-* bar is not met.
    Eval {
        /// A scenario directory, or a directory of them.
        dir: std::path::PathBuf,
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: Output,
        /// Evaluate every scenario at this depth instead of the one it names.
        #[arg(long)]
        depth: Option<String>,
        #[arg(long)]
        min_ac1: Option<f64>,
        #[arg(long)]
        min_ac3: Option<f64>,
        #[arg(long)]
        min_severity: Option<f64>,
        /// Fail when any incident is over-merged or over-split.
        #[arg(long)]
        exact_grouping: bool,
        /// Fail when more produced incidents than this merge two expected chains.
        #[arg(long)]
        max_over_merge: Option<usize>,
        /// Fail when expected incidents are split more than this many times per 10
        /// scenarios.
        #[arg(long)]
        max_over_split_per_10: Option<f64>,
        /// Fail when more than this many P1/P2 incidents match nothing expected (pages
        /// on noise).
        #[arg(long)]
        max_noise_pages: Option<usize>,
    },
    /// Incident metrics for a calendar period: MTTD, MTTA, MTTR, MTBF per severity and
    /// service, compliance with the runbook targets, P1/P2 list and trend.
    Report {
        /// week (ISO, from Monday), month, quarter or year.
        #[arg(long, default_value = "week", value_parser = report::parse_period)]
        period: tapio_core::report::PeriodKind,
        /// A day in the period (YYYY-MM-DD). Default: the period containing today (UTC).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = report::parse_from)]
        from: Option<chrono::NaiveDate>,
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: report::ReportFormat,
        /// Also write the trend chart as SVG to this file.
        #[arg(long, value_name = "FILE.svg")]
        chart: Option<std::path::PathBuf>,
    },
    /// Draft a post-mortem (Markdown) for one incident, following the runbook.
    Postmortem {
        id: String,
        /// Write to this file instead of standard output (never over an existing one).
        #[arg(short = 'o', long, value_name = "FILE.md")]
        output: Option<std::path::PathBuf>,
        /// Overwrite the --output file if it exists.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum IncidentsCmd {
    /// List incidents, most severe first.
    List {
        /// Comma-separated: open, acknowledged, mitigated, resolved. Default: all unresolved.
        #[arg(long)]
        status: Option<String>,
        /// Comma-separated: P1, P2, P3, P4.
        #[arg(long)]
        severity: Option<String>,
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Updated within this long (2h, 7d) or since an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Show one incident with its timeline and evidence.
    Show {
        id: String,
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Acknowledge: someone is on it (stops escalation).
    Ack(ActArgs),
    /// Mitigated: the impact is contained, the cause may remain.
    Mitigate(ActArgs),
    /// Resolved.
    Resolve(ActArgs),
    /// Reopen a resolved incident.
    Reopen(ActArgs),
    /// Set the severity by hand (detection keeps it from then on).
    Severity {
        id: String,
        /// P1, P2, P3 or P4.
        severity: String,
        /// Why (recorded on the timeline and in the severity reason).
        #[arg(long)]
        reason: Option<String>,
        /// Who (default: $TAPIO_USER or $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Add a note to the timeline.
    Note {
        id: String,
        text: String,
        /// Who (default: $TAPIO_USER or $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// The incident's timeline: detection, evidence, changes, people's actions.
    Timeline {
        id: String,
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: Output,
    },
    /// Declare an incident from a user report; it runs the same lifecycle.
    Declare {
        #[arg(long)]
        severity: String,
        #[arg(long)]
        title: String,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        #[arg(long)]
        service: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuthCmd {
    /// Write a user's entry into the auth directory and print its new token once.
    AddUser {
        name: String,
        /// viewer, responder, admin, or agent (for agents and producers).
        #[arg(long)]
        role: String,
        /// The directory tapio-server reads (--auth-dir).
        #[arg(long, env = "TAPIO_AUTH_DIR")]
        auth_dir: std::path::PathBuf,
        /// Replace an existing user's entry (a new token; the old one stops working).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Write the audit records as JSON lines (evidence preservation).
    Export {
        /// A duration back from now (24h, 7d) or an RFC 3339 time.
        #[arg(long, default_value = "24h")]
        since: String,
        /// File to write (default: standard output).
        #[arg(short = 'o', long)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum SilenceCmd {
    /// Hold notifications for incidents matching every given matcher.
    Add {
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Workload or Service name (checkout, deployment/checkout).
        #[arg(long)]
        workload: Option<String>,
        /// Comma-separated: P1, P2, P3, P4.
        #[arg(long)]
        severity: Option<String>,
        /// Root-cause kind (e.g. node_failure).
        #[arg(long)]
        cause: Option<String>,
        /// How long (2h, 30m).
        #[arg(long = "for")]
        duration: String,
        #[arg(long)]
        comment: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Active, pending and recently ended silences.
    List {
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: Output,
    },
    /// End a silence now.
    Expire {
        id: String,
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(clap::Args)]
struct ActArgs {
    id: String,
    /// Who (default: $TAPIO_USER or $USER).
    #[arg(long)]
    by: Option<String>,
    /// A note recorded with the change.
    #[arg(long)]
    note: Option<String>,
}

/// Who acts: --by, else $TAPIO_USER, else $USER.
fn actor(by: Option<String>) -> String {
    by.or_else(|| std::env::var("TAPIO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "cli".into())
}

// One arm per subcommand, each only handing its arguments to the function that runs it
// and mapping the result to an exit code: long, but a flat table to read, not logic.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let explicit_server = cli.server.is_some();
    let server = cli
        .server
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let client = Client::new(&server, cli.timeout).with_token(cli.token.clone());
    let cli_target = Target {
        server,
        explicit: explicit_server,
        timeout: cli.timeout,
        token: cli.token.clone(),
    };
    let code = match cli.cmd {
        Cmd::Check { all, output } => check::run(&client, all, output),
        Cmd::Incidents { cmd } => match incidents(&client, cmd) {
            Ok(()) => 0,
            Err(e) => fail(&e),
        },
        Cmd::Up {
            data_dir,
            config_dir,
            listen,
            agent_listen,
            no_agent,
        } => match up::run(up::UpArgs {
            data_dir,
            config_dir,
            listen,
            agent_listen,
            no_agent,
        }) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("tapio up: {e}");
                1
            }
        },
        Cmd::Replay {
            file,
            speed,
            max_speed: _,
            depth,
            output,
        } => replay(&cli_target, &file, speed, &depth, output),
        Cmd::Auth {
            cmd:
                AuthCmd::AddUser {
                    name,
                    role,
                    auth_dir,
                    force,
                },
        } => match add_user(&name, &role, &auth_dir, force) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("tapio auth add-user: {e}");
                2
            }
        },
        Cmd::Audit {
            cmd: AuditCmd::Export { since, output },
        } => match audit_export(&client, &since, output.as_deref()) {
            Ok(()) => 0,
            Err(e) => fail(&e),
        },
        Cmd::Silence { cmd } => match silence(&client, cmd) {
            Ok(()) => 0,
            Err(e) => fail(&e),
        },
        Cmd::Why {
            target,
            namespace,
            output,
        } => match analyze::why(&client, &target, namespace.as_deref(), output) {
            Ok(c) => c,
            Err(e) => fail(&e),
        },
        Cmd::Eval {
            dir,
            output,
            depth,
            min_ac1,
            min_ac3,
            min_severity,
            exact_grouping,
            max_over_merge,
            max_over_split_per_10,
            max_noise_pages,
        } => {
            let depth = match depth
                .as_deref()
                .map(|d| tapio_core::eval::parse_depth(Some(d)))
            {
                None => Ok(None),
                Some(Ok(d)) => Ok(Some(d)),
                Some(Err(e)) => Err(e),
            };
            match depth.and_then(|d| analyze::eval_dir(&dir, d)) {
                Ok(results) => {
                    print!("{}", analyze::eval_report(&results, output));
                    if output == Output::Json {
                        println!();
                    }
                    let s = tapio_core::eval::summarize(&results);
                    let mut failed = Vec::new();
                    for (name, got, bar) in [
                        ("AC@1", s.ac_at_1, min_ac1),
                        ("AC@3", s.ac_at_3, min_ac3),
                        ("severity exact", s.severity_exact, min_severity),
                    ] {
                        if let Some(bar) = bar
                            && got < bar
                        {
                            failed.push(format!("{name} {got:.3} < {bar}"));
                        }
                    }
                    if let Some(m) = max_over_merge
                        && s.over_merge > m
                    {
                        failed.push(format!("over-merge {} > {m}", s.over_merge));
                    }
                    let per_10 = s.over_split as f64 * 10.0 / s.scenarios.max(1) as f64;
                    if let Some(m) = max_over_split_per_10
                        && per_10 > m
                    {
                        failed.push(format!(
                            "over-split {} in {} scenarios = {per_10:.2} per 10 > {m}",
                            s.over_split, s.scenarios
                        ));
                    }
                    if let Some(m) = max_noise_pages
                        && s.noise_pages > m
                    {
                        failed.push(format!("pages on noise {} > {m}", s.noise_pages));
                    }
                    if exact_grouping && (s.over_merge > 0 || s.over_split > 0) {
                        failed.push(format!(
                            "over-merge {} / over-split {} (want 0)",
                            s.over_merge, s.over_split
                        ));
                    }
                    if failed.is_empty() {
                        0
                    } else {
                        eprintln!("tapio eval: below the bar: {}", failed.join(", "));
                        1
                    }
                }
                Err(e) => {
                    eprintln!("tapio eval: {e}");
                    2
                }
            }
        }
        Cmd::Report {
            period,
            from,
            output,
            chart,
        } => report::run_report(&client, period, from, output, chart.as_deref()),
        Cmd::Postmortem { id, output, force } => {
            report::run_postmortem(&client, &id, output.as_deref(), force)
        }
    };
    ExitCode::from(code)
}

/// Where the CLI talks to: the `--server` address(es), whether one was given, and how.
struct Target {
    server: String,
    explicit: bool,
    timeout: Duration,
    token: Option<String>,
}

/// `tapio replay`: to the server(s) when `--server` is given, else in process.
fn replay(target: &Target, file: &str, speed: Option<f64>, depth: &str, output: Output) -> u8 {
    let r = if target.explicit {
        if speed.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
            Err(format!(
                "--speed {} must be a number above 0 (e.g. 10 for ten times faster)",
                speed.unwrap_or(0.0)
            ))
        } else {
            let clients: Vec<Client> = target
                .server
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Client::new(s, target.timeout).with_token(target.token.clone()))
                .collect();
            analyze::replay_to_server(&clients, file, speed)
        }
    } else {
        tapio_core::eval::parse_depth(Some(depth))
            .and_then(|d| analyze::replay_in_process(file, d, output))
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tapio replay: {e}");
            1
        }
    }
}

fn fail(e: &ClientError) -> u8 {
    eprintln!("tapio: {e}");
    match e {
        ClientError::Unreachable(_) => 3,
        _ => 1,
    }
}

fn query_string(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Percent-encode a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn incidents(client: &Client, cmd: IncidentsCmd) -> Result<(), ClientError> {
    match cmd {
        IncidentsCmd::List {
            status,
            severity,
            namespace,
            since,
            limit,
            output,
        } => {
            let q = query_string(&[
                (
                    "status",
                    Some(status.unwrap_or_else(|| "open,acknowledged,mitigated".into())),
                ),
                ("severity", severity),
                ("namespace", namespace),
                ("since", since),
                ("limit", Some(limit.to_string())),
            ]);
            let list: serde_json::Value = client.get(&format!("/api/v1/incidents{q}"))?;
            match output {
                Output::Json => println!("{}", pretty(&list)),
                Output::Table => {
                    let incs: Vec<Incident> = serde_json::from_value(list["incidents"].clone())
                        .map_err(|e| ClientError::Protocol(e.to_string()))?;
                    if incs.is_empty() {
                        println!("No incidents match.");
                    } else {
                        print!("{}", render::incident_table(&incs, chrono::Utc::now()));
                    }
                }
            }
        }
        IncidentsCmd::Show { id, output } => {
            let inc: Incident = client.get(&format!("/api/v1/incidents/{}", encode(&id)))?;
            match output {
                Output::Json => println!("{}", pretty(&inc)),
                Output::Table => print!("{}", render::incident_detail(&inc, chrono::Utc::now())),
            }
        }
        IncidentsCmd::Ack(a) => act(client, "ack", a)?,
        IncidentsCmd::Mitigate(a) => act(client, "mitigate", a)?,
        IncidentsCmd::Resolve(a) => act(client, "resolve", a)?,
        IncidentsCmd::Reopen(a) => act(client, "reopen", a)?,
        IncidentsCmd::Severity {
            id,
            severity,
            reason,
            by,
        } => {
            let severity = severity.to_ascii_uppercase();
            let body = serde_json::json!({"by": actor(by), "severity": severity, "reason": reason});
            let inc: Incident = client.post(
                &format!("/api/v1/incidents/{}/severity", encode(&id)),
                body.to_string().as_bytes(),
            )?;
            println!(
                "{} is now {} ({}): {}",
                inc.id, inc.severity, inc.title, inc.severity_reason
            );
        }
        IncidentsCmd::Note { id, text, by } => {
            let body = serde_json::json!({"by": actor(by), "text": text});
            let inc: Incident = client.post(
                &format!("/api/v1/incidents/{}/notes", encode(&id)),
                body.to_string().as_bytes(),
            )?;
            println!("noted on {} ({})", inc.id, inc.title);
        }
        IncidentsCmd::Timeline { id, output } => {
            let v: serde_json::Value =
                client.get(&format!("/api/v1/incidents/{}/timeline", encode(&id)))?;
            match output {
                Output::Json => println!("{}", pretty(&v)),
                Output::Table => {
                    println!(
                        "{} {}  {}  [{}]",
                        v["severity"].as_str().unwrap_or(""),
                        v["title"].as_str().unwrap_or(""),
                        v["id"].as_str().unwrap_or(""),
                        v["status"].as_str().unwrap_or("")
                    );
                    for e in v["timeline"].as_array().into_iter().flatten() {
                        let at = e["at"].as_str().unwrap_or("");
                        let count = e["count"]
                            .as_u64()
                            .filter(|c| *c > 1)
                            .map(|c| format!(" ×{c}"))
                            .unwrap_or_default();
                        let by = e["by"]
                            .as_str()
                            .map(|b| format!("  ({b})"))
                            .unwrap_or_default();
                        println!(
                            "  {}  {:<15} {}{count}{by}",
                            at.get(..19).unwrap_or(at).replace('T', " "),
                            e["kind"].as_str().unwrap_or(""),
                            e["message"].as_str().unwrap_or("")
                        );
                    }
                }
            }
        }
        IncidentsCmd::Declare {
            severity,
            title,
            namespace,
            service,
            description,
            by,
        } => {
            let body = serde_json::json!({"severity": severity.to_ascii_uppercase(), "title": title,
                "namespace": namespace, "service": service, "description": description, "by": actor(by)});
            let inc: Incident = client.post("/api/v1/incidents", body.to_string().as_bytes())?;
            println!("declared {} {} ({})", inc.severity, inc.id, inc.title);
        }
    }
    Ok(())
}

fn silence(client: &Client, cmd: SilenceCmd) -> Result<(), ClientError> {
    match cmd {
        SilenceCmd::Add {
            namespace,
            workload,
            severity,
            cause,
            duration,
            comment,
            by,
        } => {
            let severity: Vec<String> = severity
                .map(|s| {
                    s.split(',')
                        .map(|x| x.trim().to_ascii_uppercase())
                        .filter(|x| !x.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let body = serde_json::json!({
                "matchers": {"namespace": namespace, "workload": workload, "severity": severity, "cause": cause},
                "duration": duration, "comment": comment, "by": actor(by)});
            let v: serde_json::Value =
                client.post("/api/v1/silences", body.to_string().as_bytes())?;
            println!(
                "silence {} until {}",
                v["id"].as_str().unwrap_or(""),
                v["ends_at"].as_str().unwrap_or("")
            );
        }
        SilenceCmd::List { output } => {
            let v: serde_json::Value = client.get("/api/v1/silences")?;
            match output {
                Output::Json => println!("{}", pretty(&v)),
                Output::Table => {
                    let list = v["silences"].as_array().cloned().unwrap_or_default();
                    if list.is_empty() {
                        println!("No silences.");
                    }
                    for s in list {
                        println!(
                            "{}  {:<8} until {}  {}  by {}{}",
                            s["id"].as_str().unwrap_or(""),
                            s["state"].as_str().unwrap_or(""),
                            s["ends_at"].as_str().unwrap_or("").get(..19).unwrap_or(""),
                            s["matchers"],
                            s["created_by"].as_str().unwrap_or(""),
                            s["comment"]
                                .as_str()
                                .filter(|c| !c.is_empty())
                                .map(|c| format!(" — {c}"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
        }
        SilenceCmd::Expire { id, by } => {
            let body = serde_json::json!({"by": actor(by)});
            let v: serde_json::Value = client.post(
                &format!("/api/v1/silences/{}/expire", encode(&id)),
                body.to_string().as_bytes(),
            )?;
            println!("silence {} expired", v["id"].as_str().unwrap_or(""));
        }
    }
    Ok(())
}

/// `tapio auth add-user`: a new token, its hash in `DIR/NAME` (for role agent the token
/// itself, which the agents mount), the token printed once.
fn add_user(name: &str, role: &str, dir: &std::path::Path, force: bool) -> Result<(), String> {
    use std::io::{Read, Write};
    if !tapio_core::auth::valid_user_name(name) {
        return Err(format!(
            "user name {name:?} must be 1-63 of a-z 0-9 . _ - starting with a letter or digit (it is a Secret key)"
        ));
    }
    let role: tapio_core::auth::Role = role.parse()?;
    if !dir.is_dir() {
        return Err(format!(
            "--auth-dir {}: not a directory (create it, or point at the tapio-server --auth-dir)",
            dir.display()
        ));
    }
    let path = dir.join(name);
    if path.exists() && !force {
        return Err(format!(
            "{} exists: user {name} is already there (--force gives it a new token)",
            path.display()
        ));
    }
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(|e| format!("no randomness from /dev/urandom: {e}"))?;
    let token = format!("tapio_{}", tapio_core::auth::hex(&raw));
    // Written whole under a temporary name, then renamed: the server never reads half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut f = std::os::unix::fs::OpenOptionsExt::mode(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
            0o600,
        )
        .open(&tmp)?;
        // An agent's file carries the token itself: the agents mount this key to send it.
        let content = if role == tapio_core::auth::Role::Agent {
            tapio_core::auth::agent_file(&token)
        } else {
            tapio_core::auth::user_file(role, &token)
        };
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!(
        "user {name} ({}) written to {}; the token is shown once:",
        role.as_str(),
        path.display()
    );
    println!("{token}");
    Ok(())
}

/// `tapio audit export`: every record since, as JSON lines, oldest first. Pages through
/// `GET /api/v1/audit` (`after` = the previous page's `next`) and writes each page as it
/// comes, so any number of records fits (one page is at most a few MB); --timeout bounds
/// each page.
fn audit_export(
    client: &Client,
    since: &str,
    output: Option<&std::path::Path>,
) -> Result<(), ClientError> {
    use std::io::Write;
    const PAGE: usize = 5000;
    let werr = |e: std::io::Error| ClientError::Protocol(format!("writing the export: {e}"));
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| ClientError::Protocol(format!("creating {}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    // The time is fixed at the first page, so a relative `since` does not move.
    let since = if since.chars().next().is_some_and(|c| c.is_ascii_digit())
        && chrono::DateTime::parse_from_rfc3339(since).is_err()
    {
        match tapio_core::duration::parse_duration(since)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| chrono::Utc::now().checked_sub_signed(d))
        {
            Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            None => since.to_owned(),
        }
    } else {
        since.to_owned()
    };
    let mut after = 0i64;
    let mut n = 0u64;
    loop {
        // --timeout bounds each page, not the whole export.
        let v: serde_json::Value = client.renewed().get(&format!(
            "/api/v1/audit?since={}&after={after}&limit={PAGE}",
            encode(&since)
        ))?;
        let records = v["records"].as_array().cloned().unwrap_or_default();
        for mut r in records {
            if let Some(o) = r.as_object_mut() {
                o.remove("pos");
            }
            writeln!(out, "{r}").map_err(werr)?;
            n += 1;
        }
        let next = v["next"].as_i64().unwrap_or(after);
        if v["more"] != serde_json::Value::Bool(true) || next <= after {
            break;
        }
        after = next;
    }
    out.flush().map_err(werr)?;
    if let Some(path) = output {
        eprintln!("{n} audit records written to {}", path.display());
    }
    Ok(())
}

fn act(client: &Client, verb: &str, a: ActArgs) -> Result<(), ClientError> {
    let body = serde_json::json!({"by": actor(a.by), "note": a.note});
    let inc: Incident = client.post(
        &format!("/api/v1/incidents/{}/{verb}", encode(&a.id)),
        body.to_string().as_bytes(),
    )?;
    println!(
        "{} is {} ({} {})",
        inc.id, inc.status, inc.severity, inc.title
    );
    Ok(())
}

pub fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

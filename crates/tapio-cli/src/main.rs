//! `tapio`: the on-call engineer's first command.

mod check;
mod client;
mod render;
mod up;

use std::io::BufRead;
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
    /// tapio-server address.
    #[arg(
        long,
        global = true,
        env = "TAPIO_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
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
    /// Post a replay file (JSON Lines, one evidence batch per line) to the server.
    Replay {
        /// Path of the .jsonl file, or - for standard input.
        file: String,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = Client::new(&cli.server, cli.timeout);
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
        Cmd::Replay { file } => match replay(&client, &file) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("tapio replay: {e}");
                1
            }
        },
    };
    ExitCode::from(code)
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
    }
    Ok(())
}

pub fn pretty<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn replay(client: &Client, file: &str) -> Result<(), String> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).map_err(|e| format!("cannot open {file}: {e}"))?,
        ))
    };
    let (mut batches, mut accepted, mut dup) = (0usize, 0usize, 0usize);
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("{file}:{}: cannot read: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        // Validate locally first so the error names the line.
        tapio_proto::decode_batch(
            line.as_bytes(),
            chrono::Utc::now(),
            &tapio_proto::Limits::default(),
        )
        .map_err(|e| format!("{file}:{}: {}", i + 1, e.message))?;
        let ack: tapio_proto::IngestAck = client
            .post("/api/v1/evidence", line.as_bytes())
            .map_err(|e| format!("{file}:{}: {e}", i + 1))?;
        batches += 1;
        accepted += ack.accepted;
        dup += ack.duplicate_events + usize::from(ack.duplicate_batch);
    }
    println!(
        "replayed {batches} batches to {}: {accepted} events stored, {dup} duplicates ignored",
        client.base()
    );
    Ok(())
}

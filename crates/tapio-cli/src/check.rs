//! `tapio check`: Tapio's own health plus what is open, with exit codes for scripts.

use serde_json::json;
use tapio_core::Incident;
use tapio_proto::{AgentStatus, HealthReport, HealthStatus, IncidentSummary};

use crate::client::{Client, ClientError};
use crate::{Output, pretty, render};

pub const EXIT_OK: u8 = 0;
pub const EXIT_URGENT_INCIDENT: u8 = 1;
pub const EXIT_TAPIO_UNWELL: u8 = 2;
pub const EXIT_UNREACHABLE: u8 = 3;

struct Gathered {
    health: HealthReport,
    summary: IncidentSummary,
    incidents: Vec<Incident>,
    agents: Option<Vec<AgentStatus>>,
    /// `--all`: replicas, partition owners and bus lag (`None` from a server before 0.2).
    cluster: Option<serde_json::Value>,
}

fn gather(client: &Client, all: bool) -> Result<Gathered, ClientError> {
    let (status, body) = client.get_raw("/health")?;
    let health: HealthReport = serde_json::from_str(&body).map_err(|e| {
        ClientError::Protocol(format!(
            "/health answered {status} with a body that is not a health report: {e}"
        ))
    })?;
    let summary: IncidentSummary = client.get("/api/v1/incidents/summary")?;
    let q = if all {
        "?status=open,acknowledged,mitigated&limit=1000"
    } else {
        "?status=open,acknowledged,mitigated&severity=P1,P2&limit=5"
    };
    let list: serde_json::Value = client.get(&format!("/api/v1/incidents{q}"))?;
    let incidents: Vec<Incident> = serde_json::from_value(list["incidents"].clone())
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    let agents = if all { Some(all_agents(client)?) } else { None };
    let cluster = if all {
        match client.get::<serde_json::Value>("/api/v1/cluster") {
            Ok(v) => Some(v),
            Err(ClientError::Api { status: 404, .. }) => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    Ok(Gathered {
        health,
        summary,
        incidents,
        agents,
        cluster,
    })
}

/// Every agent, a page at a time (`next` is the following page's `after`; a server
/// without paging answers one page without `next`).
fn all_agents(client: &Client) -> Result<Vec<AgentStatus>, ClientError> {
    let mut out: Vec<AgentStatus> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            None => "/api/v1/agents?limit=500".to_owned(),
            Some(a) => format!("/api/v1/agents?limit=500&after={}", encode_query(a)),
        };
        let v: serde_json::Value = client.get(&path)?;
        let page: Vec<AgentStatus> = serde_json::from_value(v["agents"].clone())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let next = v["next"].as_str().map(str::to_owned);
        let empty = page.is_empty();
        out.extend(page);
        match next {
            // A next that does not move on would loop forever: stop.
            Some(n) if !empty && after.as_deref() != Some(n.as_str()) => after = Some(n),
            _ => return Ok(out),
        }
    }
}

/// Percent-encode a query value (agent ids are node names, but be safe).
fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn exit_code(g: &Gathered) -> u8 {
    let urgent = ["P1", "P2"]
        .iter()
        .map(|s| g.summary.active.get(*s).copied().unwrap_or(0))
        .sum::<u64>();
    if g.health.status != HealthStatus::Healthy {
        EXIT_TAPIO_UNWELL
    } else if urgent > 0 {
        EXIT_URGENT_INCIDENT
    } else {
        EXIT_OK
    }
}

pub fn run(client: &Client, all: bool, output: Output) -> u8 {
    match gather(client, all) {
        Ok(g) => {
            let code = exit_code(&g);
            match output {
                Output::Json => println!(
                    "{}",
                    pretty(&json!({
                        "server": client.base(),
                        "reachable": true,
                        "status": g.health.status,
                        "exit_code": code,
                        "health": g.health,
                        "active_incidents": g.summary.active,
                        "incidents": g.incidents,
                        "agents": g.agents,
                        "cluster": g.cluster,
                    }))
                ),
                Output::Table => {
                    print!(
                        "{}",
                        render::check(
                            client.base(),
                            &g.health,
                            &g.summary,
                            &g.incidents,
                            g.agents.as_deref(),
                            all,
                            chrono::Utc::now()
                        )
                    );
                    if let Some(c) = &g.cluster {
                        print!("{}", render::cluster(c, chrono::Utc::now()));
                    }
                }
            }
            code
        }
        Err(e) => {
            let code = match e {
                ClientError::Unreachable(_) => EXIT_UNREACHABLE,
                _ => EXIT_TAPIO_UNWELL,
            };
            match output {
                Output::Json => println!(
                    "{}",
                    pretty(&json!({
                        "server": client.base(),
                        "reachable": code != EXIT_UNREACHABLE,
                        "status": if code == EXIT_UNREACHABLE { "unreachable" } else { "unhealthy" },
                        "exit_code": code,
                        "error": e.to_string(),
                    }))
                ),
                Output::Table => {
                    let word = if code == EXIT_UNREACHABLE {
                        "UNREACHABLE"
                    } else {
                        "ERROR"
                    };
                    println!("Tapio  {}  {word}", client.base());
                    println!("  {e}");
                    if code == EXIT_UNREACHABLE {
                        println!(
                            "  Next: kubectl get pods -n tapio-system; kubectl logs deployment/tapio-server -n tapio-system --tail=100"
                        );
                    }
                }
            }
            code
        }
    }
}

//! `tapio-refuse`: a steady rate of refused TCP connects to one closed loopback port, for
//! measuring what observing them costs (bench/agent-vs-bpftrace.sh).
//!
//! Prints the number of connects attempted and refused as JSON when done.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Connects per second.
    #[arg(long, default_value_t = 20_000)]
    rate: u64,
    /// How long.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// A loopback port nobody listens on.
    #[arg(long)]
    port: u16,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    anyhow::ensure!(a.rate > 0, "--rate must be at least 1");
    let addr: SocketAddr = ([127, 0, 0, 1], a.port).into();
    if TcpStream::connect(addr).is_ok() {
        anyhow::bail!("port {} accepts connections: pick a closed port", a.port);
    }
    let start = Instant::now();
    let total = a.rate * a.seconds;
    let (mut attempted, mut refused) = (0u64, 1u64);
    attempted += 1;
    // Pace in 1 ms slices so the rate is steady, not bursty.
    while attempted < total {
        let due = (start.elapsed().as_secs_f64() * a.rate as f64) as u64;
        if attempted >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        for _ in 0..(due - attempted).min(1000) {
            attempted += 1;
            match TcpStream::connect(addr) {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused += 1,
                Err(_) => {}
                Ok(_) => anyhow::bail!("port {} started accepting connections", a.port),
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"attempted": attempted, "refused": refused, "seconds": secs,
            "rate": attempted as f64 / secs})
    );
    Ok(())
}

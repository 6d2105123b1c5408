//! `tapio-server`: parse the flags, start the runtime, run the topology.

use clap::Parser;
use tapio_server::topology::{Args, run};

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tapio_server::api::status_page::configure(tapio_server::api::status_page::StatusConfig::new(
        &args.status_title,
        &args.status_namespaces,
    ));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tapio-server: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "tapio-server failed");
            eprintln!("tapio-server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

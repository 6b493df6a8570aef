//! The service of `cargo xtask chaos`: `chaos-server <redis ports> <executions file>` (ports comma-separated: a
//! ring of masters; `CHAOS_QUEUE_CAPACITY` sets the queue capacity). Serves `chaos` with one
//! action, `record` (`{"id": text, "size": n}`), which appends its id to the executions file (one write per run,
//! so a killed process leaves every finished line) and answers `n` bytes of text, chunked past 100 KB. Prints
//! `READY` once serving; stops on SIGTERM.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsoa_server::{serve, shutdown_signal, ActionContext, ActionError, Server};
use rsoa_transport_redis::{RedisBackend, RedisServerTransport};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Record {
    id: String,
    size: usize,
}

#[derive(Serialize)]
struct Recorded {
    id: String,
    data: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, executions] = &args[..] else {
        return Err("usage: chaos-server <redis ports> <executions file>".into());
    };
    let first: u16 = port.split(',').next().unwrap_or_default().parse()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(executions)?;
    let file = Arc::new(Mutex::new(file));
    let server = Server::builder("chaos")
        .action_fn("record", move |req: Record, _ctx: ActionContext| {
            let file = file.clone();
            async move {
                let mut file = file
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                writeln!(file, "{}", req.id).map_err(ActionError::server_error)?;
                Ok::<_, ActionError>(Recorded {
                    data: "x".repeat(req.size),
                    id: req.id,
                })
            }
        })
        .build()?;
    let mut settings = interop::server_settings(first);
    interop::chaos_redis(&mut settings, port)?;
    let backend = RedisBackend::connect(settings).await?;
    let transport = Arc::new(RedisServerTransport::new(&backend, "chaos")?);
    println!("READY");
    serve(server, transport, shutdown_signal(), Duration::from_secs(5)).await;
    Ok(())
}

//! A one-action (`echo`) rsoa service for the side-by-side benchmark: `bench-server <redis port> [service]`
//! (default `rsbench`). Prints `READY` once serving; stops on SIGTERM.
//!
//! Like a PySOA server process, it runs on one thread (a current-thread runtime): a process per core is how rsoa
//! servers scale, and on one thread no call pays for waking a second one (about a third less CPU per call here).

use std::sync::Arc;
use std::time::Duration;

use rsoa_protocol::Map;
use rsoa_server::{
    serve, shutdown_signal, ActionContext, ActionDescription, ActionError, RawAction, Server,
};
use rsoa_transport::BoxFuture;
use rsoa_transport_redis::{RedisBackend, RedisServerTransport};

/// mimalloc, as a production server binary would choose: every call allocates and frees many small values, and
/// glibc's allocator spends a tenth (10 KB bodies) to a quarter (tiny ones) more CPU per call on them here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Echo;

impl RawAction for Echo {
    fn call(&self, body: Map, _ctx: ActionContext) -> BoxFuture<'_, Result<Map, ActionError>> {
        Box::pin(async move { Ok(body) })
    }

    fn describe(&self) -> ActionDescription {
        ActionDescription::default()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .ok_or("usage: bench-server <redis port> [service]")?
        .parse()?;
    let name = args.next().unwrap_or_else(|| "rsbench".to_owned());
    let server = Server::builder(name.as_str())
        .raw_action("echo", Echo)
        .build()?;
    let mut settings = interop::redis_settings(port);
    // Pop twice as many requests per round trip as the server runs at once (`max_concurrent_jobs`, 64 by default),
    // so that under a backlog the next batch is already here while the current one runs. In interleaved drains
    // this gave 10-20 % more calls per second than batches of 64 (and batches of 16 or 8 far fewer), with less
    // CPU per call in the server and in Redis.
    settings.receive_batch_size = Some(2 * server.settings().max_concurrent_jobs);
    let backend = RedisBackend::connect(settings).await?;
    let transport = Arc::new(RedisServerTransport::new(&backend, &name)?);
    println!("READY");
    serve(server, transport, shutdown_signal(), Duration::from_secs(5)).await;
    Ok(())
}

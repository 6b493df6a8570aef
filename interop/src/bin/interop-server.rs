//! The `rsinterop` service on Redis: `interop-server <redis port>`. Prints `READY` once serving; stops on SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use rsoa_server::{serve, shutdown_signal};
use rsoa_transport_redis::{RedisBackend, RedisServerTransport};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("warn")
        .init();
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or("usage: interop-server <redis port>")?
        .parse()?;
    let client = interop::client(port, |_| {}).await?;
    let server = interop::service(client);
    let backend = RedisBackend::connect(interop::server_settings(port)).await?;
    let transport = Arc::new(RedisServerTransport::new(&backend, server.service_name())?);
    println!("READY");
    let outcome = serve(
        server,
        transport,
        shutdown_signal(),
        Duration::from_secs(10),
    )
    .await;
    eprintln!("interop-server stopped: {outcome:?}");
    Ok(())
}

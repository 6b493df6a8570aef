//! Running a server on a network transport: receive, run, respond, until told to stop.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rsoa_transport::{Error as TransportError, ReceivedJob, ServerTransport};
use tokio::sync::Semaphore;

use crate::Server;

/// How a [`serve`] loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServeOutcome {
    /// The shutdown signal came, every received job was run and answered.
    Stopped,
    /// The shutdown signal came, but some jobs were still running when the grace period ended.
    StoppedWithJobsRunning(usize),
    /// The transport closed by itself.
    TransportClosed,
    /// A setup hook failed (the error is logged); no request was taken.
    SetupFailed,
}

/// Serves `server` on `transport` until `shutdown` resolves, then stops taking requests, runs and answers every
/// request already taken, and waits up to `grace` for running jobs to finish.
///
/// The server's setup hooks run first (a failure ends it with [`ServeOutcome::SetupFailed`]), its idle hooks
/// whenever the transport's receive timeout passes with no request, and its teardown hooks at the end.
///
/// Jobs run concurrently, at most [`ServerSettings::max_concurrent_jobs`](crate::ServerSettings) at a time; when all
/// slots are busy the loop stops taking requests, leaving them in the queue for other server processes. Transport
/// errors are logged and retried with a growing pause; a response that cannot be sent is logged. Nothing here
/// panics or gives up on a bad message.
pub async fn serve<T>(
    server: Server,
    transport: Arc<T>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> ServeOutcome
where
    T: ServerTransport + ?Sized,
{
    if let Err(error) = server.setup().await {
        tracing::error!(service = server.service_name(), %error, "the server could not start");
        return ServeOutcome::SetupFailed;
    }
    let outcome = serve_jobs(&server, transport, shutdown, grace).await;
    server.teardown().await;
    outcome
}

async fn serve_jobs<T>(
    server: &Server,
    transport: Arc<T>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> ServeOutcome
where
    T: ServerTransport + ?Sized,
{
    let slots = server.settings().max_concurrent_jobs;
    let permits = Arc::new(Semaphore::new(slots));
    let mut shutdown = std::pin::pin!(shutdown);
    let mut failures = 0_u32;
    let mut closed_by_transport = false;
    tracing::info!(service = server.service_name(), slots, "serving");
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let received = tokio::select! {
            () = &mut shutdown => break,
            received = transport.receive() => received,
        };
        match received {
            Ok(Some(job)) => {
                failures = 0;
                spawn_job(server, &transport, job, permit);
                // The job just spawned starts before this loop's own bookkeeping for the next request (a permit,
                // the transport's receive): on a one-thread runtime, that puts the response on the wire sooner.
                tokio::task::yield_now().await;
            }
            Ok(None) => {
                failures = 0;
                server.idle().await;
            }
            Err(TransportError::Closed) => {
                closed_by_transport = true;
                break;
            }
            Err(error) => {
                failures += 1;
                let pause = Duration::from_millis((25_u64 << failures.min(7)).min(2_000));
                tracing::error!(service = server.service_name(), %error, ?pause, "receiving failed");
                tokio::time::sleep(pause).await;
            }
        }
    }
    if closed_by_transport {
        return ServeOutcome::TransportClosed;
    }
    // Stop taking requests, but run every one already taken: none is lost.
    transport.stop_receiving();
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        match transport.receive().await {
            Ok(Some(job)) => spawn_job(server, &transport, job, permit),
            Ok(None) => {}
            Err(TransportError::Closed) => break,
            Err(error) => {
                tracing::error!(service = server.service_name(), %error, "receiving failed while stopping");
                break;
            }
        }
    }
    let drained = tokio::time::timeout(grace, permits.acquire_many(slots as u32)).await;
    match drained {
        Ok(_) => ServeOutcome::Stopped,
        Err(_) => ServeOutcome::StoppedWithJobsRunning(slots - permits.available_permits()),
    }
}

fn spawn_job<T>(
    server: &Server,
    transport: &Arc<T>,
    received: ReceivedJob,
    permit: tokio::sync::OwnedSemaphorePermit,
) where
    T: ServerTransport + ?Sized,
{
    let server = server.clone();
    let transport = transport.clone();
    let ReceivedJob { job, reply, .. } = received;
    let (request_id, meta) = (job.request_id.clone(), job.meta.clone());
    let held = server.watch().map(|watch| {
        let copy = transport.copy_reply(&reply);
        (watch.clone(), request_id.clone(), meta.clone(), copy)
    });
    let run = async move {
        if let Some(response) = server.handle(job).await {
            if let Err(error) = transport.respond(reply, request_id, meta, response).await {
                tracing::error!(service = server.service_name(), %error, "could not send a response");
            }
        }
        drop(permit);
    };
    match held {
        None => drop(tokio::spawn(run)),
        Some((watch, request_id, meta, reply)) => {
            drop(tokio::spawn(watch.hold(request_id, meta, reply, run)));
        }
    }
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere): the usual `shutdown` for [`serve`] in a standalone process.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => tracing::info!("SIGINT received; stopping"),
                    _ = terminate.recv() => tracing::info!("SIGTERM received; stopping"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

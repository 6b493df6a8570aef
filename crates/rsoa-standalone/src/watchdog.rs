//! The watchdog: a thread outside the server's runtime that notices when the runtime has stopped moving.
//!
//! A job's deadline cancels it at its next `.await`; code that never yields (a CPU-bound loop, blocking I/O in an
//! async action) never reaches one, and on the one-thread runtime it stops every other job too. When the runtime
//! has not ticked for `harakiri.timeout` seconds, the watchdog logs the action that blocks it, answers the caller
//! of every job the worker has taken over a Redis connection of its own, removes the heartbeat file, and exits
//! with [`BLOCKED_EXIT_CODE`] so that the supervisor starts a fresh worker. A caller gets an error, never silence.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rsoa_protocol::{Error as WireError, ErrorCode, JobResponse};
use rsoa_server::{HeldJob, Watch};
use rsoa_transport::ServerTransport;
use rsoa_transport_redis::{RedisBackend, RedisServerTransport, RedisSettings};

/// The exit status of a worker stopped by the watchdog (`EX_SOFTWARE`).
pub const BLOCKED_EXIT_CODE: i32 = 70;

/// How often the runtime ticks and the watchdog looks.
const PERIOD: Duration = Duration::from_millis(250);

/// How long answering the callers may take before the worker exits anyway.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// What the watchdog needs to answer callers and clean up.
pub(crate) struct Watchdog {
    pub(crate) watch: Arc<Watch>,
    pub(crate) limit: Duration,
    pub(crate) service: String,
    pub(crate) redis: RedisSettings,
    /// The server's transport, for the requests it popped and has not handed to the server yet.
    pub(crate) transport: Arc<RedisServerTransport>,
    pub(crate) heartbeat: Option<PathBuf>,
}

/// Starts the runtime's ticks (on the current runtime) and the watchdog thread.
pub(crate) fn start(watchdog: Watchdog) -> std::io::Result<()> {
    drop(tokio::spawn(watchdog.watch.clone().tick(PERIOD)));
    std::thread::Builder::new()
        .name("rsoa-watchdog".to_owned())
        .spawn(move || loop {
            // A plain sleep: this thread's only job is to look now and then, and the runtime it watches may be
            // the one that is stuck.
            std::thread::sleep(PERIOD);
            if watchdog.watch.silent_for() > watchdog.limit {
                watchdog.fire();
            }
        })
        .map(drop)
}

impl Watchdog {
    fn fire(&self) -> ! {
        let blocked = self.watch.blocked();
        let action = blocked
            .culprit
            .as_ref()
            .and_then(|job| job.action.clone())
            .unwrap_or_else(|| Arc::from("(none: job middleware or the server itself)"));
        tracing::error!(
            service = %self.service,
            action = &*action,
            request_id = ?blocked.culprit.as_ref().map(|job| &job.request_id),
            jobs_held = blocked.others.len() + usize::from(blocked.culprit.is_some()),
            limit = ?self.limit,
            "the runtime has been blocked past harakiri.timeout by code that does not yield; answering every \
             caller and exiting so that a fresh worker takes over"
        );
        let mut answers = Vec::new();
        if let Some(job) = blocked.culprit {
            let message = format!(
                "The action \"{action}\" blocked the server for more than {} seconds and was interrupted.",
                self.limit.as_secs()
            );
            answers.push((job, WireError::new(ErrorCode::JOB_TIMEOUT, message)));
        }
        for job in blocked.others {
            let message = format!(
                "The server process was stopped while this job waited: the action \"{action}\" of another job \
                 blocked it for more than {} seconds.",
                self.limit.as_secs()
            );
            answers.push((job, WireError::new(ErrorCode::SERVER_ERROR, message)));
        }
        for received in self.transport.take_buffered() {
            let job = received.job;
            let held = HeldJob::new(job.request_id, job.meta, Some(received.reply));
            let message = format!(
                "The server process was stopped before this job started (it may be sent again): the action                  \"{action}\" of another job blocked it for more than {} seconds.",
                self.limit.as_secs()
            );
            answers.push((held, WireError::new(ErrorCode::SERVER_ERROR, message)));
        }
        match self.answer(answers) {
            Ok(answered) => tracing::error!(answered, "answered the callers of the held jobs"),
            Err(error) => tracing::error!(%error, "could not answer the callers of the held jobs"),
        }
        if let Some(path) = &self.heartbeat {
            let _ = std::fs::remove_file(path);
        }
        std::process::exit(BLOCKED_EXIT_CODE)
    }

    /// Sends each error to its caller over a connection of its own, on a runtime of its own.
    fn answer(&self, answers: Vec<(HeldJob, WireError)>) -> Result<usize, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let answering = async {
                let backend = RedisBackend::connect(self.redis.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                let transport = RedisServerTransport::new(&backend, &self.service)
                    .map_err(|e| e.to_string())?;
                let mut answered = 0;
                for (job, error) in answers {
                    let Some(reply) = job.reply else { continue };
                    let response = JobResponse::from_errors(vec![error]);
                    match transport
                        .respond(reply, job.request_id, job.meta, response)
                        .await
                    {
                        Ok(()) => answered += 1,
                        Err(e) => tracing::error!(error = %e, "could not answer a held job"),
                    }
                }
                backend.close().await;
                Ok(answered)
            };
            tokio::time::timeout(ANSWER_WITHIN, answering)
                .await
                .map_err(|_| format!("gave up after {ANSWER_WITHIN:?}"))?
        })
    }
}

//! What a watchdog outside the runtime needs to know when the runtime stops moving: is it still ticking, which job
//! is it polling, and which requests has it taken but not answered.
//!
//! A job that never reaches an `.await` cannot be cancelled by its deadline: on a one-thread runtime it stops every
//! other job, the receive loop and the timers with it. [`Watch`] is shared between the server and a thread of
//! its own (the standalone runner's watchdog): the runtime ticks it, [`serve`](crate::serve) records each job it
//! takes, with a copy of how to answer it, and marks the job it is polling. When the ticks stop, the thread can
//! name the action that blocked and answer every caller over a connection of its own.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rsoa_protocol::{Map, Value};
use rsoa_transport::ReplyHandle;

tokio::task_local! {
    /// The [`Watch`] id of the job this task runs.
    static HELD: u64;
}

/// A request taken from the transport and not yet answered.
#[derive(Debug)]
#[non_exhaustive]
pub struct HeldJob {
    /// The request id, as the caller sent it.
    pub request_id: Value,
    /// The request's meta.
    pub meta: Arc<Map>,
    /// A copy of how to answer the caller, when the transport can make one
    /// ([`ServerTransport::copy_reply`](rsoa_transport::ServerTransport::copy_reply)).
    pub reply: Option<ReplyHandle>,
    /// The action the job is running, once it has started one.
    pub action: Option<Arc<str>>,
    /// When the job was taken.
    pub taken: Instant,
}

impl HeldJob {
    /// A job taken now, not yet running an action.
    pub fn new(request_id: Value, meta: Arc<Map>, reply: Option<ReplyHandle>) -> HeldJob {
        HeldJob {
            request_id,
            meta,
            reply,
            action: None,
            taken: Instant::now(),
        }
    }
}

/// Liveness and in-flight jobs of one server's runtime, for a watchdog thread. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Watch {
    started: Instant,
    /// Milliseconds since `started` at the runtime's last tick.
    beat: AtomicU64,
    /// The id of the job being polled right now (0 for none).
    polling: AtomicU64,
    next_id: AtomicU64,
    held: Mutex<HashMap<u64, HeldJob>>,
}

impl Default for Watch {
    fn default() -> Watch {
        Watch {
            started: Instant::now(),
            beat: AtomicU64::new(0),
            polling: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            held: Mutex::new(HashMap::new()),
        }
    }
}

/// What the watchdog found once the runtime stopped ticking.
#[derive(Debug)]
#[non_exhaustive]
pub struct Blocked {
    /// The job that was being polled when the runtime stopped, if one was: the one that blocks it.
    pub culprit: Option<HeldJob>,
    /// Every other job taken and not answered.
    pub others: Vec<HeldJob>,
}

impl Watch {
    /// A new watch; the runtime must then run [`Watch::tick`].
    pub fn new() -> Arc<Watch> {
        Arc::new(Watch::default())
    }

    /// Ticks every `period` for as long as the runtime runs it: spawn it on the runtime being watched.
    pub async fn tick(self: Arc<Watch>, period: Duration) {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.beat
                .store(millis(self.started.elapsed()), Ordering::Relaxed);
        }
    }

    /// How long since the runtime last ticked.
    pub fn silent_for(&self) -> Duration {
        let beat = Duration::from_millis(self.beat.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(beat)
    }

    /// Takes the record of every job in flight, naming the one being polled. Called once the runtime is judged
    /// stuck; the jobs are then the caller's to answer.
    pub fn blocked(&self) -> Blocked {
        let polling = self.polling.load(Ordering::Acquire);
        let mut held = lock(&self.held);
        let culprit = held.remove(&polling);
        let mut others: Vec<HeldJob> = held.drain().map(|(_, job)| job).collect();
        others.sort_by_key(|job| job.taken);
        Blocked { culprit, others }
    }

    /// Records a job taken from the transport; runs `job` as it, and forgets it when `job` ends.
    ///
    /// `job` is boxed: a job's future is kilobytes long, and held inline it would be copied whole once more into
    /// this future and again into the task, per job (measured: nearly half again the server's CPU per call).
    pub(crate) fn hold<F>(
        self: Arc<Watch>,
        request_id: Value,
        meta: Arc<Map>,
        reply: Option<ReplyHandle>,
        job: F,
    ) -> impl Future<Output = F::Output>
    where
        F: Future,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.held).insert(id, HeldJob::new(request_id, meta, reply));
        let job = Box::pin(job);
        HELD.scope(
            id,
            Held {
                watch: self,
                id,
                job,
            },
        )
    }

    /// Notes the action the current task's job runs now; nothing when the job is not held.
    pub(crate) fn running(&self, action: &Arc<str>) {
        if let Ok(id) = HELD.try_with(|id| *id) {
            if let Some(job) = lock(&self.held).get_mut(&id) {
                job.action = Some(action.clone());
            }
        }
    }
}

/// A held job: marked as the one being polled for the length of each poll, and forgotten when it ends or is
/// dropped.
struct Held<F: Future> {
    watch: Arc<Watch>,
    id: u64,
    job: Pin<Box<F>>,
}

impl<F: Future> Future for Held<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let previous = self.watch.polling.swap(self.id, Ordering::AcqRel);
        let poll = self.job.as_mut().poll(cx);
        self.watch.polling.store(previous, Ordering::Release);
        poll
    }
}

impl<F: Future> Drop for Held<F> {
    fn drop(&mut self) {
        lock(&self.watch.held).remove(&self.id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

//! Server middleware: code that wraps every job and every action.
//!
//! # Ordering
//!
//! Middleware forms an onion, as in PySOA: the first one configured is the outermost. Its `job` hook sees the job
//! before any other and its response after every other; inside the job, each action passes through the `action`
//! hooks in the same order.
//!
//! ```text
//!   job ──▶ first.job ──▶ second.job ──▶ for each action: first.action ──▶ second.action ──▶ action
//! ```
//!
//! Errors are data: a hook returns a response carrying PySOA errors rather than failing. A panic in a job hook
//! becomes a job-level `SERVER_ERROR`, a panic in an action hook or action an action-level one.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use rsoa_protocol::{ActionRequest, ActionResponse, JobRequest, JobResponse};

use crate::server::{JobEnvelope, ServerInner};
use crate::ActionContext;

/// Middleware around a server's jobs and actions. Both hooks pass through by default.
///
/// ```
/// use async_trait::async_trait;
/// use rsoa_protocol::{ActionRequest, ActionResponse};
/// use rsoa_server::{ActionContext, ActionNext, ServerMiddleware};
///
/// /// Logs how long each action takes.
/// struct Timing;
///
/// #[async_trait]
/// impl ServerMiddleware for Timing {
///     async fn action(&self, request: ActionRequest, ctx: &ActionContext, next: ActionNext<'_>) -> ActionResponse {
///         let start = std::time::Instant::now();
///         let response = next.run(request, ctx).await;
///         tracing::info!(action = ctx.action_name(), elapsed = ?start.elapsed());
///         response
///     }
/// }
/// ```
#[async_trait]
pub trait ServerMiddleware: Send + Sync + 'static {
    /// Wraps a whole job; call `next.run(job)` to run it.
    async fn job(&self, job: JobRequest, next: JobNext<'_>) -> JobResponse {
        next.run(job).await
    }

    /// Wraps one action; call `next.run(request, ctx)` to run it.
    async fn action(
        &self,
        request: ActionRequest,
        ctx: &ActionContext,
        next: ActionNext<'_>,
    ) -> ActionResponse {
        next.run(request, ctx).await
    }
}

/// The rest of the job chain.
pub struct JobNext<'a> {
    pub(crate) server: &'a Arc<ServerInner>,
    pub(crate) middleware: &'a [Arc<dyn ServerMiddleware>],
    pub(crate) envelope: &'a JobEnvelope,
}

impl std::fmt::Debug for JobNext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobNext")
            .field("remaining", &self.middleware.len())
            .finish()
    }
}

impl JobNext<'_> {
    /// A client for job middleware: the server's client, its calls carrying `job`'s correlation id, switches and
    /// custom context keys, with `calling_service` set to this service (what actions get from
    /// [`ActionContext::client`]; PySOA puts it in the job request as `client`).
    pub fn client(&self, job: &JobRequest) -> rsoa_client::Client {
        let mut context = job.context.clone();
        context.calling_service = Some(self.server.name.to_string());
        self.server.client.with_context(&context)
    }

    /// The name of this service.
    pub fn service_name(&self) -> &str {
        &self.server.name
    }

    /// Passes the job to the next middleware, or runs its actions after the last one.
    pub async fn run(self, job: JobRequest) -> JobResponse {
        match self.middleware.split_first() {
            Some((first, rest)) => {
                first
                    .job(
                        job,
                        JobNext {
                            server: self.server,
                            middleware: rest,
                            envelope: self.envelope,
                        },
                    )
                    .await
            }
            None => self.server.run_actions(job, self.envelope).await,
        }
    }
}

/// The rest of the action chain.
pub struct ActionNext<'a> {
    pub(crate) server: &'a ServerInner,
    pub(crate) middleware: &'a [Arc<dyn ServerMiddleware>],
}

impl std::fmt::Debug for ActionNext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionNext")
            .field("remaining", &self.middleware.len())
            .finish()
    }
}

impl ActionNext<'_> {
    /// Passes the action to the next middleware, or runs it after the last one.
    pub async fn run(self, request: ActionRequest, ctx: &ActionContext) -> ActionResponse {
        match self.middleware.split_first() {
            Some((first, rest)) => {
                first
                    .action(
                        request,
                        ctx,
                        ActionNext {
                            server: self.server,
                            middleware: rest,
                        },
                    )
                    .await
            }
            None => self.server.invoke_action(request, ctx).await,
        }
    }
}

/// A job hook from an async closure: `job_fn(|job, next| async move { next.run(job).await })`.
pub fn job_fn<F>(f: F) -> impl ServerMiddleware
where
    F: for<'a> Fn(JobRequest, JobNext<'a>) -> futures::future::BoxFuture<'a, JobResponse>
        + Send
        + Sync
        + 'static,
{
    struct JobFn<F>(F);

    #[async_trait]
    impl<F> ServerMiddleware for JobFn<F>
    where
        F: for<'a> Fn(JobRequest, JobNext<'a>) -> futures::future::BoxFuture<'a, JobResponse>
            + Send
            + Sync
            + 'static,
    {
        async fn job(&self, job: JobRequest, next: JobNext<'_>) -> JobResponse {
            (self.0)(job, next).await
        }
    }

    JobFn(f)
}

/// An action hook from a closure that sees each action's response after it ran (for logging, metrics, or
/// rewriting the response): `action_response_fn(|ctx, response| response)`.
pub fn action_response_fn<F>(f: F) -> impl ServerMiddleware
where
    F: Fn(&ActionContext, ActionResponse) -> ActionResponse + Send + Sync + 'static,
{
    struct ActionResponseFn<F>(F);

    #[async_trait]
    impl<F> ServerMiddleware for ActionResponseFn<F>
    where
        F: Fn(&ActionContext, ActionResponse) -> ActionResponse + Send + Sync + 'static,
    {
        async fn action(
            &self,
            request: ActionRequest,
            ctx: &ActionContext,
            next: ActionNext<'_>,
        ) -> ActionResponse {
            let response = next.run(request, ctx).await;
            (self.0)(ctx, response)
        }
    }

    ActionResponseFn(f)
}

/// Runs `f` and boxes its future; lets closures passed to [`job_fn`] be written as `|job, next| boxed(async move { … })`.
pub fn boxed<'a, T>(f: impl Future<Output = T> + Send + 'a) -> futures::future::BoxFuture<'a, T> {
    Box::pin(f)
}

//! The in-process transport: a client calls a server living in the same process.
//!
//! [`LocalTransport`] hands each job straight to a [`JobHandler`] (an `rsoa_server::Server`), which runs it with
//! the full server machinery: validation, middleware, error handling. Many callers can use it at once. It is the
//! transport for tests, demos, and services embedded in another program.
//!
//! Like PySOA's local transport it does not serialize by default. [`LocalTransport::round_trip`] makes every
//! request and response go through a serializer and back, as it would on the wire, so that tests catch values
//! that would not survive a real transport.
//!
//! ```
//! use rsoa_client::Client;
//! use rsoa_server::{ActionContext, ActionError, Server};
//! use rsoa_transport_local::LocalTransport;
//!
//! #[derive(serde::Deserialize)]
//! struct Square { number: i64 }
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Squared { square: i64 }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = Server::builder("example")
//!     .action_fn("square", |req: Square, _ctx: ActionContext| async move {
//!         Ok::<_, ActionError>(Squared { square: req.number * req.number })
//!     })
//!     .build()
//!     .unwrap();
//! let client = Client::builder().service(LocalTransport::new(server).round_trip(true)).build();
//! let response = client.call_action("example", "square", &serde_json::json!({"number": 7})).await.unwrap();
//! assert_eq!(response.into_body_as::<Squared>().unwrap().square, 49);
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use rsoa_codec::{MsgpackSerializer, Serializer};
use rsoa_protocol::{Error as WireError, ErrorCode, JobResponse, Map, Value};
use rsoa_transport::{
    BoxFuture, ClientRequest, ClientResponse, ClientTransport, Error, IncomingJob, JobBody,
    JobHandler, PendingResponse,
};

/// A client transport that runs each job on an in-process [`JobHandler`].
#[derive(Clone)]
pub struct LocalTransport {
    handler: Arc<dyn JobHandler>,
    serializer: Option<Arc<dyn Serializer>>,
    spawn_jobs: bool,
}

impl fmt::Debug for LocalTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTransport")
            .field("service", &self.handler.service_name())
            .field("serializer", &self.serializer)
            .field("spawn_jobs", &self.spawn_jobs)
            .finish()
    }
}

impl LocalTransport {
    /// A transport to `handler`, without serialization.
    pub fn new(handler: impl JobHandler) -> LocalTransport {
        LocalTransport::from_arc(Arc::new(handler))
    }

    /// A transport to a shared handler.
    pub fn from_arc(handler: Arc<dyn JobHandler>) -> LocalTransport {
        LocalTransport {
            handler,
            serializer: None,
            spawn_jobs: false,
        }
    }

    /// Whether to send every request and response through MessagePack and back, as a real transport would.
    #[must_use]
    pub fn round_trip(self, enabled: bool) -> LocalTransport {
        if enabled {
            self.round_trip_with(MsgpackSerializer::default())
        } else {
            LocalTransport {
                serializer: None,
                ..self
            }
        }
    }

    /// Whether each job runs in a Tokio task of its own (off by default).
    ///
    /// By default a job runs inside the caller's future, which is the fastest way (no task, no cross-thread wake):
    /// the job then shares the caller's fate, so a call that times out cancels its job at its next `.await`, and
    /// the jobs of a parallel call interleave on the caller's task. With `spawn_jobs(true)` every job runs to the
    /// end whatever the caller does, as on a real server, and parallel jobs spread over the runtime's worker
    /// threads, at a cost of a task per call (about 1.5 µs here). It needs a Tokio runtime.
    #[must_use]
    pub fn spawn_jobs(self, spawn: bool) -> LocalTransport {
        LocalTransport {
            spawn_jobs: spawn,
            ..self
        }
    }

    /// Sends every request and response through `serializer` and back.
    #[must_use]
    pub fn round_trip_with(self, serializer: impl Serializer) -> LocalTransport {
        LocalTransport {
            serializer: Some(Arc::new(serializer)),
            ..self
        }
    }
}

fn envelope(request_id: Value, meta: Map, body: Value) -> Value {
    let mut map = Map::with_capacity(3);
    map.push("request_id", request_id);
    map.push("meta", meta);
    map.push("body", body);
    Value::Map(map)
}

/// Encodes and decodes a value as a transport would; the decoded envelope's parts.
fn through(serializer: &dyn Serializer, value: &Value) -> Result<(Value, Map, Value), Error> {
    let bytes = serializer
        .encode(value)
        .map_err(|e| Error::invalid_message("could not encode the message", e))?;
    let decoded = serializer
        .decode(&bytes)
        .map_err(|e| Error::invalid_message("could not decode the message", e))?;
    let Value::Map(mut map) = decoded else {
        return Err(Error::InvalidMessage {
            message: "the message is not a map".to_owned(),
            source: None,
        });
    };
    let meta = match map.remove("meta") {
        Some(Value::Map(meta)) => meta,
        _ => Map::new(),
    };
    Ok((
        map.remove("request_id").unwrap_or_default(),
        meta,
        map.remove("body").unwrap_or_default(),
    ))
}

/// Whether a requester's `client_version` is new enough for `is_caller_error` (PySOA 0.70 and later).
fn wants_caller_flag(meta: &Map) -> bool {
    match meta.get("client_version") {
        Some(Value::Array(parts)) => {
            let version: Vec<i64> = parts.iter().map(|p| p.as_i64().unwrap_or(0)).collect();
            version.as_slice() >= [0, 70, 0].as_slice()
        }
        _ => false,
    }
}

/// Where a job runs.
// The enum lives inside the pending response's boxed future, so boxing the job would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Work {
    /// In a task of its own.
    Spawned(tokio::task::JoinHandle<Option<JobResponse>>),
    /// In the caller's future, when it is awaited.
    Inline(IncomingJob),
}

impl ClientTransport for LocalTransport {
    fn service_name(&self) -> &str {
        self.handler.service_name()
    }

    fn send(
        &self,
        request: ClientRequest,
    ) -> BoxFuture<'_, Result<Option<PendingResponse>, Error>> {
        Box::pin(async move {
            let ClientRequest {
                request_id,
                meta,
                job,
                ..
            } = request;
            let suppress = job.control.suppress_response;
            let incoming = match &self.serializer {
                None => IncomingJob::new(Value::from(request_id), meta, JobBody::Typed(job)),
                Some(serializer) => {
                    let (id, meta, body) = through(
                        &**serializer,
                        &envelope(Value::from(request_id), meta, job.into_value()),
                    )?;
                    IncomingJob::new(id, meta, JobBody::Raw(body))
                }
            };
            let caller_flag = wants_caller_flag(&incoming.meta);
            let meta = incoming.meta.clone();
            if suppress {
                // Nobody waits for a suppressed response, so the job runs now, before `send` returns.
                self.handler.handle_job(incoming).await;
                return Ok(None);
            }
            let handler = self.handler.clone();
            let serializer = self.serializer.clone();
            let work = if self.spawn_jobs {
                let handler = handler.clone();
                Work::Spawned(tokio::spawn(
                    async move { handler.handle_job(incoming).await },
                ))
            } else {
                Work::Inline(incoming)
            };
            Ok(Some(PendingResponse::new(async move {
                let response = match work {
                    Work::Spawned(task) => task
                        .await
                        .map_err(|e| Error::connection(format!("the job's task failed: {e}")))?,
                    Work::Inline(incoming) => handler.handle_job(incoming).await,
                };
                let response = response.ok_or_else(|| Error::InvalidMessage {
                    message: "the server sent no response to a request that asked for one"
                        .to_owned(),
                    source: None,
                })?;
                // The job is over, so the meta is usually no longer shared and is taken as it is.
                let meta = Arc::unwrap_or_clone(meta);
                let Some(serializer) = serializer else {
                    let mut reply = ClientResponse::new(request_id, response);
                    reply.meta = meta;
                    return Ok(reply);
                };
                let message = envelope(
                    Value::from(request_id),
                    meta.clone(),
                    response.into_value(caller_flag),
                );
                let (_, meta, body) = match through(&*serializer, &message) {
                    Ok(parts) => parts,
                    // A server that cannot serialize its response answers with this job error instead.
                    Err(_) => {
                        let error = WireError::new(
                            ErrorCode::RESPONSE_NOT_SERIALIZABLE,
                            "Could not send the response because it failed to serialize",
                        );
                        let replacement =
                            JobResponse::from_errors(vec![error]).to_value(caller_flag);
                        through(
                            &*serializer,
                            &envelope(Value::from(request_id), meta, replacement),
                        )?
                    }
                };
                let job = JobResponse::from_owned_value(body).map_err(|e| {
                    Error::invalid_message("the response is not a valid job response", e)
                })?;
                let mut reply = ClientResponse::new(request_id, job);
                reply.meta = meta;
                Ok(reply)
            })))
        })
    }
}

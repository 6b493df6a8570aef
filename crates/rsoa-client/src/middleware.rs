//! Client middleware: code that sees every request before it is sent and every response after it arrives.
//!
//! # Ordering
//!
//! Middleware forms an onion. The first one configured is the outermost: its `request` hook sees the request
//! first, and the code after `next.run(...)` in its `response` hook sees the response last.
//!
//! ```text
//!            request ──▶  first ──▶ second ──▶ transport
//!           response ◀──  first ◀── second ◀──    │
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use rsoa_transport::{ClientRequest, ClientResponse, ClientTransport, PendingResponse};

use crate::CallError;

/// Middleware around a client's requests and responses. Both hooks pass through by default.
///
/// ```
/// use async_trait::async_trait;
/// use rsoa_client::{CallError, ClientMiddleware, RequestNext};
/// use rsoa_transport::{ClientRequest, PendingResponse};
///
/// /// Adds an auth token to every request's meta.
/// struct Auth(String);
///
/// #[async_trait]
/// impl ClientMiddleware for Auth {
///     async fn request(
///         &self,
///         mut request: ClientRequest,
///         next: RequestNext<'_>,
///     ) -> Result<Option<PendingResponse>, CallError> {
///         request.meta.insert("auth_token", self.0.as_str());
///         next.run(request).await
///     }
/// }
/// ```
#[async_trait]
pub trait ClientMiddleware: Send + Sync + 'static {
    /// Sees a request on its way out; call `next.run(request)` to send it.
    async fn request(
        &self,
        request: ClientRequest,
        next: RequestNext<'_>,
    ) -> Result<Option<PendingResponse>, CallError> {
        next.run(request).await
    }

    /// Sees a response on its way in; call `next.run(response)` to let inner middleware see it first.
    async fn response(
        &self,
        response: ClientResponse,
        next: ResponseNext<'_>,
    ) -> Result<ClientResponse, CallError> {
        next.run(response).await
    }
}

/// The rest of the request chain.
#[derive(Debug)]
pub struct RequestNext<'a> {
    pub(crate) middleware: &'a [Arc<dyn ClientMiddleware>],
    pub(crate) transport: &'a dyn ClientTransport,
}

impl RequestNext<'_> {
    /// Passes the request to the next middleware, or to the transport after the last one.
    pub async fn run(self, request: ClientRequest) -> Result<Option<PendingResponse>, CallError> {
        match self.middleware.split_first() {
            Some((first, rest)) => {
                first
                    .request(
                        request,
                        RequestNext {
                            middleware: rest,
                            transport: self.transport,
                        },
                    )
                    .await
            }
            None => self
                .transport
                .send(request)
                .await
                .map_err(|source| CallError::transport(self.transport.service_name(), source)),
        }
    }
}

/// The rest of the response chain.
#[derive(Debug)]
pub struct ResponseNext<'a> {
    pub(crate) middleware: &'a [Arc<dyn ClientMiddleware>],
}

impl ResponseNext<'_> {
    /// Passes the response to the next (inner) middleware; after the last one it comes back unchanged.
    pub async fn run(self, response: ClientResponse) -> Result<ClientResponse, CallError> {
        match self.middleware.split_first() {
            Some((first, rest)) => {
                first
                    .response(response, ResponseNext { middleware: rest })
                    .await
            }
            None => Ok(response),
        }
    }
}

impl std::fmt::Debug for dyn ClientMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientMiddleware")
    }
}

/// A request hook from a closure: `request_fn(|request| { ...; Ok(request) })` edits each request before it is
/// sent (or refuses it with an error).
pub fn request_fn<F>(f: F) -> impl ClientMiddleware
where
    F: Fn(ClientRequest) -> Result<ClientRequest, CallError> + Send + Sync + 'static,
{
    struct RequestFn<F>(F);

    #[async_trait]
    impl<F> ClientMiddleware for RequestFn<F>
    where
        F: Fn(ClientRequest) -> Result<ClientRequest, CallError> + Send + Sync + 'static,
    {
        async fn request(
            &self,
            request: ClientRequest,
            next: RequestNext<'_>,
        ) -> Result<Option<PendingResponse>, CallError> {
            next.run((self.0)(request)?).await
        }
    }

    RequestFn(f)
}

/// A response hook from a closure: `response_fn(|response| { ...; Ok(response) })` edits each response after the
/// inner middleware has seen it.
pub fn response_fn<F>(f: F) -> impl ClientMiddleware
where
    F: Fn(ClientResponse) -> Result<ClientResponse, CallError> + Send + Sync + 'static,
{
    struct ResponseFn<F>(F);

    #[async_trait]
    impl<F> ClientMiddleware for ResponseFn<F>
    where
        F: Fn(ClientResponse) -> Result<ClientResponse, CallError> + Send + Sync + 'static,
    {
        async fn response(
            &self,
            response: ClientResponse,
            next: ResponseNext<'_>,
        ) -> Result<ClientResponse, CallError> {
            (self.0)(next.run(response).await?)
        }
    }

    ResponseFn(f)
}

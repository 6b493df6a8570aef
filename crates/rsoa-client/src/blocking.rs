//! A blocking facade for synchronous code.

use std::future::IntoFuture;

use rsoa_protocol::{ActionRequest, ActionResponse, JobResponse};

use crate::{CallError, Client, IntoBody};

/// A [`Client`] for synchronous callers: each call blocks the thread until it is done.
///
/// It owns a small single-threaded Tokio runtime. Any client call, with any options, can be run through
/// [`BlockingClient::run`]; the common ones have shortcuts. Calling it from inside an async runtime is refused with
/// [`CallError::BlockingInAsync`] (block there and the runtime's own tasks would starve); dropping it there is
/// fine. Over Redis, connect the backend with `RedisBackend::connect_blocking`, which needs no runtime of yours.
///
/// ```
/// use rsoa_client::blocking::BlockingClient;
/// use rsoa_client::Client;
///
/// let client = BlockingClient::new(Client::builder().build()).unwrap();
/// let err = client.call_action("nowhere", "ping", ()).unwrap_err();
/// assert!(matches!(err, rsoa_client::CallError::UnknownService { .. }));
/// ```
#[derive(Debug)]
pub struct BlockingClient {
    client: Client,
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingClient {
    /// Wraps a client.
    pub fn new(client: Client) -> std::io::Result<BlockingClient> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(BlockingClient {
            client,
            runtime: Some(runtime),
        })
    }

    /// The async client underneath, to build calls with options for [`BlockingClient::run`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs any call (or other future) to completion.
    ///
    /// ```
    /// # use rsoa_client::{blocking::BlockingClient, Client};
    /// # let blocking = BlockingClient::new(Client::builder().build()).unwrap();
    /// let outcome = blocking.run(blocking.client().call_action("svc", "ping", ()).switch(3));
    /// # assert!(outcome.is_err());
    /// ```
    pub fn run<F, T>(&self, call: F) -> Result<T, CallError>
    where
        F: IntoFuture<Output = Result<T, CallError>>,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(CallError::BlockingInAsync);
        }
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        runtime.block_on(call.into_future())
    }

    /// [`Client::call_action`], blocking.
    pub fn call_action(
        &self,
        service: &str,
        action: &str,
        body: impl IntoBody,
    ) -> Result<ActionResponse, CallError> {
        self.run(self.client.call_action(service, action, body))
    }

    /// [`Client::call_actions`], blocking.
    pub fn call_actions(
        &self,
        service: &str,
        actions: impl IntoIterator<Item = ActionRequest>,
    ) -> Result<JobResponse, CallError> {
        self.run(self.client.call_actions(service, actions))
    }

    /// [`Client::call_actions_parallel`], blocking.
    pub fn call_actions_parallel(
        &self,
        service: &str,
        actions: impl IntoIterator<Item = ActionRequest>,
    ) -> Result<Vec<ActionResponse>, CallError> {
        self.run(self.client.call_actions_parallel(service, actions))
    }
}

impl Drop for BlockingClient {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks stop, which Tokio forbids inside another runtime; there, let
        // them stop in the background.
        if let Some(runtime) = self.runtime.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_inside_a_runtime_and_dropped_there_cleanly() {
        let client = BlockingClient::new(Client::builder().build()).unwrap();
        assert!(matches!(
            client.call_action("svc", "ping", ()),
            Err(CallError::BlockingInAsync)
        ));
        drop(client);
    }

    #[test]
    fn dropped_outside_a_runtime() {
        let client = BlockingClient::new(Client::builder().build()).unwrap();
        assert!(matches!(
            client.call_action("svc", "ping", ()),
            Err(CallError::UnknownService { .. })
        ));
    }
}

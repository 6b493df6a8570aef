//! rsoa: fast Rust (micro)services and their clients in the RPC style of Eventbrite's PySOA, wire-compatible with
//! PySOA 1.4.9.
//!
//! This crate re-exports the others, one cargo feature per optional crate, so an application depends on `rsoa`
//! and enables what it uses:
//!
//! | feature | module | default |
//! |---|---|---|
//! | (always) | [`protocol`]: `Value`, the PySOA types, job and action records, wire errors | yes |
//! | `client` | [`client`]: calling services | yes |
//! | `server` | [`server`]: running services | yes |
//! | `transport-local` | [`transport_local`]: the in-process transport | yes |
//! | `transport-redis` (or `redis`) | `transport_redis`: the Redis gateway, wire-compatible with PySOA | no |
//! | `standalone` | `standalone`: run a service as a process (settings file, command line, logging) | no |
//! | `transport` | [`transport`]: the transport traits | with `client` or `server` |
//! | `codec` | [`codec`]: MessagePack and JSON exactly as PySOA writes them | with `transport-local` |
//! | `switches` | [`switches`]: switch sets | with `client` or `server` |
//! | `test` | `test`: the test harness, assertions, stubs, a mock transport and PySOA test plans (`test::plan`) | no |
//!
//! ```
//! use rsoa::client::Client;
//! use rsoa::server::{ActionContext, ActionError, Server};
//! use rsoa::transport_local::LocalTransport;
//!
//! #[derive(serde::Deserialize)]
//! struct Hello { name: String }
//! #[derive(serde::Serialize)]
//! struct Greeting { greeting: String }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder("greeter")
//!     .action_fn("hello", |req: Hello, _ctx: ActionContext| async move {
//!         Ok::<_, ActionError>(Greeting { greeting: format!("Hello, {}!", req.name) })
//!     })
//!     .build()?;
//! let client = Client::builder().service(LocalTransport::new(server)).build();
//!
//! let mut body = rsoa::protocol::Map::new();
//! body.insert("name", "Ada");
//! let response = client.call_action("greeter", "hello", body).await?;
//! assert_eq!(response.body["greeting"].as_str(), Some("Hello, Ada!"));
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use rsoa_protocol as protocol;

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
#[doc(inline)]
pub use rsoa_client as client;

#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
#[doc(inline)]
pub use rsoa_server as server;

#[cfg(feature = "transport")]
#[cfg_attr(docsrs, doc(cfg(feature = "transport")))]
#[doc(inline)]
pub use rsoa_transport as transport;

#[cfg(feature = "transport-local")]
#[cfg_attr(docsrs, doc(cfg(feature = "transport-local")))]
#[doc(inline)]
pub use rsoa_transport_local as transport_local;

#[cfg(feature = "transport-redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "transport-redis")))]
#[doc(inline)]
pub use rsoa_transport_redis as transport_redis;

#[cfg(feature = "standalone")]
#[cfg_attr(docsrs, doc(cfg(feature = "standalone")))]
#[doc(inline)]
pub use rsoa_standalone as standalone;

#[cfg(feature = "codec")]
#[cfg_attr(docsrs, doc(cfg(feature = "codec")))]
#[doc(inline)]
pub use rsoa_codec as codec;

#[cfg(feature = "switches")]
#[cfg_attr(docsrs, doc(cfg(feature = "switches")))]
#[doc(inline)]
pub use rsoa_switches as switches;

#[cfg(feature = "test")]
#[cfg_attr(docsrs, doc(cfg(feature = "test")))]
#[doc(inline)]
pub use rsoa_test as test;

#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

//! Protocol types for rsoa, a Rust implementation of Eventbrite's PySOA, wire-compatible with PySOA 1.4.9.
//!
//! This crate holds what both ends of a call agree on, with no I/O:
//!
//! - [`Value`], the dynamic value every body, context and meta map is made of, able to hold everything PySOA puts
//!   on the wire without loss: integers over the whole MessagePack range, bytes distinct from text, ordered maps,
//!   [`DateTime`], [`UtcDateTime`], [`Date`], [`Time`], [`Decimal`], [`Amount`], and unknown [`Ext`] values.
//! - serde integration like `serde_json::Value`: [`to_value`] and [`from_value`], where a failure names the field
//!   in PySOA's pointer syntax so that it becomes an `INVALID` error with `field = "a.b.0"`.
//! - The records of the protocol: [`JobRequest`], [`ActionRequest`], [`JobResponse`], [`ActionResponse`], the wire
//!   [`Error`] with its open [`ErrorCode`], and the [`Context`] and [`Control`] headers.
//!
//! ```
//! use rsoa_protocol::{from_value, to_value, Date, Decimal};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! #[serde(deny_unknown_fields)]
//! struct Invoice {
//!     due: Date,
//!     total: Decimal,
//!     lines: Vec<String>,
//! }
//!
//! let invoice = Invoice { due: Date::new(2026, 12, 1).unwrap(), total: "19.90".parse().unwrap(), lines: vec![] };
//! let value = to_value(&invoice).unwrap();
//! assert_eq!(from_value::<Invoice>(value).unwrap(), invoice);
//! ```

mod amount;
mod currencies;
mod de;
mod decimal;
mod error;
mod magic;
mod message;
mod ser;
mod temporal;
mod value;

pub use amount::{Amount, Currency};
pub use de::from_value;
pub use decimal::Decimal;
pub use error::{ErrorKind, ValueError};
pub use message::{
    ActionRequest, ActionResponse, Context, Control, Error, ErrorCode, JobRequest, JobResponse,
};
pub use ser::to_value;
pub use temporal::{Date, DateTime, Time, UtcDateTime};
pub use value::{CompactString, Ext, Int, Map, Value, PYSOA_EXTENSION_CODES};

/// Python `bytes` in your own types: a [`ByteBuf`] field, or a `Vec<u8>` field with
/// `#[serde(with = "rsoa_protocol::serde_bytes")]`, becomes [`Value::Bytes`] (MessagePack `bin`) and is read back from
/// it. A plain `Vec<u8>` is a list of integers to serde, as it would be to PySOA.
///
/// ```
/// use rsoa_protocol::{from_value, to_value, ByteBuf, Value};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Upload {
///     #[serde(with = "rsoa_protocol::serde_bytes")]
///     data: Vec<u8>,
///     thumbnail: ByteBuf,
/// }
///
/// let upload = Upload { data: vec![0, 159, 255], thumbnail: ByteBuf::from(vec![1]) };
/// let value = to_value(&upload).unwrap();
/// assert_eq!(value["data"], Value::Bytes(vec![0, 159, 255]));
/// assert_eq!(from_value::<Upload>(value).unwrap(), upload);
/// ```
pub use serde_bytes;
#[doc(no_inline)]
pub use serde_bytes::ByteBuf;

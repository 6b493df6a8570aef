//! rsoa-transport

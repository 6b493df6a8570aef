//! rsoa-client

//! rsoa-server

//! rsoa-transport-local

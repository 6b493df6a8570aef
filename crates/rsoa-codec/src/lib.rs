//! rsoa-codec

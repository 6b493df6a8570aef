//! rsoa

//! rsoa-switches

//! rsoa-test

//! rsoa-transport-redis

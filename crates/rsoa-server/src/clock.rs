//! The clock actions read: the system's, or an instant a test froze it at.

use std::fmt;
use std::sync::{Arc, Mutex};

use rsoa_protocol::UtcDateTime;

/// The time a server's actions read through [`ActionContext::now`](crate::ActionContext::now).
///
/// It is the system's clock until a test freezes it ([`Clock::freeze`]), PySOA test plans' `freeze time` (done there
/// with freezegun). Clones share the frozen instant, so a test holding the server's clock
/// ([`Server::clock`](crate::Server::clock)) freezes the time every action of that server reads.
///
/// ```
/// use rsoa_protocol::UtcDateTime;
/// use rsoa_server::clock::Clock;
///
/// let clock = Clock::default();
/// let at: UtcDateTime = "2018-04-20T04:20:20Z".parse().unwrap();
/// clock.freeze(at);
/// assert_eq!(clock.now(), at);
/// clock.unfreeze();
/// assert_ne!(clock.now(), at);
/// ```
#[derive(Clone, Default)]
pub struct Clock {
    frozen: Arc<Mutex<Option<UtcDateTime>>>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("frozen", &self.frozen())
            .finish()
    }
}

impl Clock {
    /// The current time: the frozen instant if there is one, else the system's.
    pub fn now(&self) -> UtcDateTime {
        self.frozen().unwrap_or_else(UtcDateTime::now)
    }

    /// Stops the clock at `at` until [`Clock::unfreeze`].
    pub fn freeze(&self, at: UtcDateTime) {
        *self.lock() = Some(at);
    }

    /// Lets the clock follow the system's again.
    pub fn unfreeze(&self) {
        *self.lock() = None;
    }

    /// The instant the clock is frozen at, if it is.
    pub fn frozen(&self) -> Option<UtcDateTime> {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<UtcDateTime>> {
        // Setting an `Option` cannot be left half done, so a poisoned lock is still consistent.
        self.frozen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

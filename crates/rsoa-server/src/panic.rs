//! Turning a panic inside an action or middleware into a `SERVER_ERROR` with a traceback, so the server keeps
//! serving.
//!
//! `catch_unwind` gives only the panic's payload. To also report where it happened and the stack, a panic hook is
//! installed once per process: while a [`CatchPanic`] future is being polled on a thread, the hook records the
//! location and a backtrace for that thread instead of printing them; everywhere else it defers to the hook that
//! was installed before.

use std::any::Any;
use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                let location = info
                    .location()
                    .map_or_else(String::new, |l| format!(" at {l}"));
                let trace = format!(
                    "panicked{location}\n\nstack backtrace:\n{}",
                    Backtrace::force_capture()
                );
                LAST_PANIC.with(|last| *last.borrow_mut() = Some(trace));
            } else {
                previous(info);
            }
        }));
    });
}

/// A caught panic: its message and a traceback.
#[derive(Debug)]
pub(crate) struct Panicked {
    pub(crate) message: String,
    pub(crate) traceback: String,
}

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

pin_project_lite::pin_project! {
    /// Polls a future, turning a panic into [`Panicked`]. The future is pinned in place (a job runs three of these
    /// per action, and boxing each was an allocation and a copy of the future).
    pub(crate) struct CatchPanic<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> CatchPanic<F> {
    pub(crate) fn new(inner: F) -> Self {
        install_hook();
        CatchPanic { inner }
    }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, Panicked>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let was = CAPTURING.with(|c| c.replace(true));
        let inner = self.project().inner;
        // The future is not polled again after it panicked (it is dropped with the job), so observing it in a
        // broken state is impossible.
        let result = catch_unwind(AssertUnwindSafe(move || inner.poll(cx)));
        CAPTURING.with(|c| c.set(was));
        match result {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                let message = message(&*payload);
                let traceback = LAST_PANIC
                    .with(|last| last.borrow_mut().take())
                    .unwrap_or_else(|| "panicked (no backtrace was captured)".to_owned());
                Poll::Ready(Err(Panicked {
                    traceback: format!("{message}\n{traceback}"),
                    message,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn panics_become_values_with_a_location() {
        let caught = CatchPanic::new(async {
            if std::hint::black_box(true) {
                panic!("boom {}", 7);
            }
        })
        .await;
        let err = caught.unwrap_err();
        assert_eq!(err.message, "boom 7");
        assert!(err.traceback.contains("panic.rs"), "{}", err.traceback);
        assert!(
            err.traceback.contains("stack backtrace"),
            "{}",
            err.traceback
        );
    }

    #[tokio::test]
    async fn normal_results_pass_through() {
        assert_eq!(CatchPanic::new(async { 5 }).await.unwrap(), 5);
    }
}

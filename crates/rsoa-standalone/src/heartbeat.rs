//! The heartbeat file: PySOA's liveness signal, refreshed while the server's runtime is free to run.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the file is rewritten (PySOA: at most every 2.5 s).
const INTERVAL: Duration = Duration::from_millis(2500);

/// A heartbeat file kept fresh by a task on the server's runtime, removed when dropped.
///
/// The file holds the time of its last refresh in seconds since the epoch, as text (`1733330000.123456`, PySOA's
/// format). The task runs on the server's one-thread runtime, so an action that blocks the runtime stops the
/// heartbeat too: a probe that checks the file's age notices a wedged worker.
pub(crate) struct Heartbeat {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    /// Writes the file at `template` (`{{pid}}` and `{{fid}}` replaced by the process id and the worker number,
    /// or `main`) and starts refreshing it. Must be called on the server's runtime.
    pub(crate) fn start(template: &str, worker: Option<u16>) -> std::io::Result<Heartbeat> {
        let fid = worker.map_or_else(|| "main".to_owned(), |w| w.to_string());
        let path = PathBuf::from(
            template
                .replace("{{pid}}", &std::process::id().to_string())
                .replace("{{fid}}", &fid),
        );
        beat(&path)?;
        let refreshed = path.clone();
        let task = tokio::spawn(async move {
            let mut interval = tokio::time::interval(INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval.tick().await;
            loop {
                interval.tick().await;
                if let Err(e) = beat(&refreshed) {
                    tracing::warn!(path = %refreshed.display(), error = %e, "cannot refresh the heartbeat file");
                }
            }
        });
        Ok(Heartbeat { path, task })
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.task.abort();
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the heartbeat file");
        }
    }
}

/// Writes the current time whole: to a file beside it, then renamed over it, so that a reader never sees a
/// partial or stale-tailed value (PySOA rewrites in place without truncating, which can leave trailing digits).
fn beat(path: &Path) -> std::io::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let mut next = path.as_os_str().to_owned();
    next.push(".next");
    std::fs::write(&next, now.to_string())?;
    std::fs::rename(&next, path)
}

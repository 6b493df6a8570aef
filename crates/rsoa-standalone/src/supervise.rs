//! `--workers N`: the process re-executes its own binary N times and keeps those workers running.
//!
//! A worker that exits while the supervisor is not stopping is started again after a pause that starts at a
//! quarter second and doubles with each crash in a row of that worker, up to `supervisor.max_restart_delay_in_seconds`.
//! After `supervisor.max_crashes` crashes within `supervisor.crash_window_in_seconds`, the supervisor stops every
//! worker and exits with status 1: a worker that cannot run (Redis gone, bad code) must not be restarted for ever.
//! SIGTERM or SIGINT is passed to every worker as SIGTERM (each then stops gracefully, answering every request it
//! took), and the supervisor exits once they have; a second signal kills them at once.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::{Cli, Settings};

/// The first pause before a restart.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(250);

/// A worker's exit, as its waiting task reports it: the slot, the generation of the process (0 for one that could
/// not be started) and how it ended.
type Exit = (usize, u64, std::io::Result<ExitStatus>);

/// One worker's slot: its process while it runs, or when to start it again.
enum Slot {
    Running { pid: Pid, generation: u64 },
    RestartAt(Instant),
    Stopped,
}

/// Runs `workers` copies of this binary and supervises them until a signal stops them all.
pub(crate) fn supervise(cli: &Cli, settings: &Settings, workers: usize) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the supervisor's runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(Supervisor::new(cli, settings, workers).run())
}

struct Supervisor {
    exe: PathBuf,
    args: Vec<String>,
    slots: Vec<Slot>,
    /// Crashes in a row per slot, for the back-off.
    in_a_row: Vec<u32>,
    crashes: VecDeque<Instant>,
    max_crashes: usize,
    window: Duration,
    max_delay: Duration,
    generation: u64,
    exits: (mpsc::UnboundedSender<Exit>, mpsc::UnboundedReceiver<Exit>),
}

impl Supervisor {
    fn new(cli: &Cli, settings: &Settings, workers: usize) -> Supervisor {
        // The workers get the same settings file and logging, and no `--workers`: each serves by itself.
        let mut args = vec!["--settings".to_owned(), cli.settings.display().to_string()];
        if let Some(level) = &cli.log_level {
            args.extend(["--log-level".to_owned(), level.clone()]);
        }
        if let Some(format) = cli.log_format {
            let format = match format {
                crate::LogFormat::Human => "human",
                crate::LogFormat::Json => "json",
            };
            args.extend(["--log-format".to_owned(), format.to_owned()]);
        }
        let policy = &settings.supervisor;
        Supervisor {
            exe: std::env::current_exe()
                .unwrap_or_else(|_| PathBuf::from(std::env::args().next().unwrap_or_default())),
            args,
            slots: (0..workers)
                .map(|_| Slot::RestartAt(Instant::now()))
                .collect(),
            in_a_row: vec![0; workers],
            crashes: VecDeque::new(),
            max_crashes: policy.max_crashes,
            window: Duration::from_secs(policy.crash_window_in_seconds),
            max_delay: Duration::from_secs(policy.max_restart_delay_in_seconds),
            generation: 0,
            exits: mpsc::unbounded_channel(),
        }
    }

    async fn run(mut self) -> ExitCode {
        let (Ok(mut terminate), Ok(mut interrupt)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            eprintln!("error: cannot listen for signals");
            return ExitCode::from(1);
        };
        loop {
            self.start_due();
            let next_start = self
                .slots
                .iter()
                .filter_map(|s| match s {
                    Slot::RestartAt(at) => Some(*at),
                    _ => None,
                })
                .min();
            tokio::select! {
                _ = terminate.recv() => return self.stop(&mut terminate, &mut interrupt).await,
                _ = interrupt.recv() => return self.stop(&mut terminate, &mut interrupt).await,
                Some((slot, generation, status)) = self.exits.1.recv() => {
                    if !self.exited(slot, generation, status) {
                        self.kill_all(Signal::SIGTERM);
                        self.wait_all(&mut terminate, &mut interrupt).await;
                        return ExitCode::from(1);
                    }
                }
                _ = sleep_until(next_start) => {}
            }
        }
    }

    /// Starts every worker whose time has come.
    fn start_due(&mut self) {
        let now = Instant::now();
        for slot in 0..self.slots.len() {
            if matches!(self.slots[slot], Slot::RestartAt(at) if at <= now) {
                self.start(slot);
            }
        }
    }

    fn start(&mut self, slot: usize) {
        let mut command = tokio::process::Command::new(&self.exe);
        command
            .args(&self.args)
            .arg("--worker-number")
            .arg((slot + 1).to_string())
            .kill_on_drop(false);
        match command.spawn() {
            Ok(mut child) => {
                self.generation += 1;
                let generation = self.generation;
                let pid = child
                    .id()
                    .map_or(Pid::from_raw(0), |id| Pid::from_raw(id as i32));
                tracing::info!(worker = slot, pid = pid.as_raw(), "worker started");
                self.slots[slot] = Slot::Running { pid, generation };
                let exits = self.exits.0.clone();
                tokio::spawn(async move {
                    let status = child.wait().await;
                    let _ = exits.send((slot, generation, status));
                });
            }
            Err(e) => {
                tracing::error!(worker = slot, error = %e, "cannot start a worker");
                // Counted and rescheduled like a crash when the message comes back round.
                self.slots[slot] = Slot::Stopped;
                let _ = self.exits.0.send((slot, 0, Err(e)));
            }
        }
    }

    /// Records a worker's exit and schedules its restart; false when the crashes say to give up.
    fn exited(
        &mut self,
        slot: usize,
        generation: u64,
        status: std::io::Result<ExitStatus>,
    ) -> bool {
        if let Slot::Running {
            generation: running,
            ..
        } = self.slots[slot]
        {
            if running != generation && generation != 0 {
                return true;
            }
        }
        // "exit status: 70", "signal: 9 (SIGKILL)", or why waiting failed.
        let status = match &status {
            Ok(status) => status.to_string(),
            Err(e) => format!("cannot wait for the worker: {e}"),
        };
        let now = Instant::now();
        self.crashes.push_back(now);
        while self
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.crashes.pop_front();
        }
        if self.crashes.len() >= self.max_crashes {
            tracing::error!(
                worker = slot,
                %status,
                crashes = self.crashes.len(),
                window_seconds = self.window.as_secs(),
                "workers keep exiting; the supervisor gave up"
            );
            eprintln!(
                "error: gave up after {} worker crashes within {} s",
                self.crashes.len(),
                self.window.as_secs()
            );
            self.slots[slot] = Slot::Stopped;
            return false;
        }
        let delay = FIRST_RESTART_DELAY
            .saturating_mul(1 << self.in_a_row[slot].min(16))
            .min(self.max_delay);
        self.in_a_row[slot] += 1;
        tracing::warn!(
            worker = slot,
            %status,
            ?delay,
            "worker exited; restarting it"
        );
        self.slots[slot] = Slot::RestartAt(now + delay);
        true
    }

    /// Passes the stop to every worker and waits for them; a second signal kills them.
    async fn stop(
        &mut self,
        terminate: &mut tokio::signal::unix::Signal,
        interrupt: &mut tokio::signal::unix::Signal,
    ) -> ExitCode {
        tracing::info!("stopping every worker");
        self.kill_all(Signal::SIGTERM);
        if self.wait_all(terminate, interrupt).await {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }

    fn kill_all(&mut self, signal: Signal) {
        for slot in &mut self.slots {
            match slot {
                Slot::Running { pid, .. } => {
                    let _ = kill(*pid, signal);
                }
                _ => *slot = Slot::Stopped,
            }
        }
    }

    /// Waits until every worker has exited; true when each exited cleanly. A signal meanwhile kills them.
    async fn wait_all(
        &mut self,
        terminate: &mut tokio::signal::unix::Signal,
        interrupt: &mut tokio::signal::unix::Signal,
    ) -> bool {
        let mut clean = true;
        while self.slots.iter().any(|s| matches!(s, Slot::Running { .. })) {
            tokio::select! {
                Some((slot, generation, status)) = self.exits.1.recv() => {
                    if matches!(self.slots[slot], Slot::Running { generation: g, .. } if g == generation) {
                        clean &= status.as_ref().is_ok_and(ExitStatus::success);
                        self.slots[slot] = Slot::Stopped;
                    }
                }
                _ = terminate.recv() => { self.kill_all(Signal::SIGKILL); clean = false; }
                _ = interrupt.recv() => { self.kill_all(Signal::SIGKILL); clean = false; }
            }
        }
        clean
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

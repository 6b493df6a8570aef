//! `rsoa bench`: concurrent callers on one action, a progress bar, and a latency summary from an HDR histogram.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rsoa_client::Client;
use rsoa_protocol::Map;

/// When the callers stop.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stop {
    /// After this many calls in all.
    Count(u64),
    /// After this long.
    After(Duration),
}

/// What to run.
pub(crate) struct Load {
    pub(crate) service: String,
    pub(crate) action: String,
    pub(crate) body: Map,
    pub(crate) concurrency: u64,
    pub(crate) stop: Stop,
    /// The time between two calls of all the callers together (`--rate`).
    pub(crate) pause: Option<Duration>,
    pub(crate) timeout: Duration,
}

/// What came of it.
pub(crate) struct Results {
    /// Microseconds per successful call.
    latencies: Histogram<u64>,
    /// Failed calls by error code (`TIMEOUT`, `TRANSPORT` for calls that got no answer).
    errors: BTreeMap<String, u64>,
    elapsed: Duration,
}

/// Runs the callers until the load says stop.
pub(crate) async fn run(client: &Client, load: Load) -> Results {
    let load = Arc::new(load);
    let started = Instant::now();
    let issued = Arc::new(AtomicU64::new(0));
    let progress = progress_bar(load.stop);
    let merged = Arc::new(Mutex::new(Results::empty()));
    let callers: Vec<_> = (0..load.concurrency)
        .map(|_| {
            let (client, load, issued, progress, merged) = (
                client.clone(),
                load.clone(),
                issued.clone(),
                progress.clone(),
                merged.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = new_histogram();
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                loop {
                    // The call's number: what --count and --rate go by.
                    let n = issued.fetch_add(1, Ordering::Relaxed);
                    match load.stop {
                        Stop::Count(count) if n >= count => break,
                        Stop::After(limit) if started.elapsed() >= limit => break,
                        _ => {}
                    }
                    if let Some(pause) = load.pause {
                        let slot = pause.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
                        tokio::time::sleep_until((started + slot).into()).await;
                    }
                    let call_started = Instant::now();
                    let outcome = client
                        .call_action(&load.service, &load.action, load.body.clone())
                        .timeout(load.timeout)
                        .await;
                    match outcome {
                        Ok(_) => {
                            let micros = u64::try_from(call_started.elapsed().as_micros())
                                .unwrap_or(u64::MAX);
                            let _ = latencies.record(micros.max(1));
                        }
                        Err(error) => {
                            let codes: Vec<String> = error
                                .wire_errors()
                                .iter()
                                .map(|e| e.code.to_string())
                                .collect();
                            let key = match (codes.first(), &error) {
                                (Some(code), _) => code.clone(),
                                (None, rsoa_client::CallError::Timeout { .. }) => {
                                    "TIMEOUT".to_owned()
                                }
                                (None, _) => "TRANSPORT".to_owned(),
                            };
                            *errors.entry(key).or_default() += 1;
                        }
                    }
                    progress.inc(1);
                }
                let mut all = merged
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = all.latencies.add(&latencies);
                for (code, n) in errors {
                    *all.errors.entry(code).or_default() += n;
                }
            })
        })
        .collect();
    for caller in callers {
        let _ = caller.await;
    }
    progress.finish_and_clear();
    let mut results = Arc::try_unwrap(merged)
        .ok()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        })
        .unwrap_or_else(|| Results {
            latencies: new_histogram(),
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
        });
    results.elapsed = started.elapsed();
    results
}

/// Microseconds from 1 µs to an hour, three significant figures.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// A bar of calls for `--count`, of seconds for `--duration`; hidden when standard error is not a terminal.
fn progress_bar(stop: Stop) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match stop {
        Stop::Count(count) => ProgressBar::new(count),
        Stop::After(_) => ProgressBar::no_length(),
    };
    let style = ProgressStyle::with_template(
        "{spinner} {pos} calls  {per_sec}  {elapsed_precise} {wide_bar}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

impl Results {
    fn empty() -> Results {
        Results {
            latencies: new_histogram(),
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
        }
    }

    fn ok(&self) -> u64 {
        self.latencies.len()
    }

    pub(crate) fn errors(&self) -> u64 {
        self.errors.values().sum()
    }

    fn rate(&self) -> f64 {
        (self.ok() + self.errors()) as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn quantiles(&self) -> [(&'static str, u64); 5] {
        let q = |q: f64| self.latencies.value_at_quantile(q);
        [
            ("p50", q(0.5)),
            ("p90", q(0.9)),
            ("p99", q(0.99)),
            ("p99.9", q(0.999)),
            ("max", self.latencies.max()),
        ]
    }

    /// A summary for people.
    pub(crate) fn text(&self) -> String {
        let mut out = format!(
            "calls: {} ok, {} failed in {:.2} s: {:.1} calls/s\nlatency µs:",
            self.ok(),
            self.errors(),
            self.elapsed.as_secs_f64(),
            self.rate()
        );
        for (name, micros) in self.quantiles() {
            out.push_str(&format!(" {name} {micros}"));
        }
        out.push('\n');
        for (code, n) in &self.errors {
            out.push_str(&format!("errors {code}: {n}\n"));
        }
        out
    }

    /// The same as one JSON object.
    pub(crate) fn json(&self) -> String {
        let latency: serde_json::Map<String, serde_json::Value> = self
            .quantiles()
            .into_iter()
            .map(|(name, micros)| (format!("{name}_us"), micros.into()))
            .collect();
        let value = serde_json::json!({
            "ok": self.ok(),
            "failed": self.errors(),
            "seconds": self.elapsed.as_secs_f64(),
            "calls_per_sec": self.rate(),
            "latency": latency,
            "errors": self.errors,
        });
        format!("{value}\n")
    }
}

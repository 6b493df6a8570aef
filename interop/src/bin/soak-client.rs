//! The load of `cargo xtask soak`: `soak-client <redis port> <service> <server pid> <minutes> <callers>`.
//!
//! Each caller calls the example service in a loop, paced (a 10 ms pause after each call), mixing tiny `square`
//! calls with `echo` of 20 KB (one call in ten). At the end of every minute it prints one JSON line: the minute,
//! calls, errors by kind, latency percentiles in milliseconds, and the server process's resident memory (from
//! `/proc/<pid>/status`), so that drift and leaks show.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rsoa_client::CallError;
use rsoa_protocol::{Map, Value};

/// One minute's figures, filled by every caller.
struct Window {
    latency_us: Histogram<u64>,
    errors: BTreeMap<&'static str, u64>,
}

impl Window {
    fn new() -> Window {
        Window {
            latency_us: Histogram::new(3).expect("a histogram"),
            errors: BTreeMap::new(),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, service, pid, minutes, callers] = &args[..] else {
        return Err(
            "usage: soak-client <redis port> <service> <server pid> <minutes> <callers>".into(),
        );
    };
    let (port, pid, minutes, callers): (u16, u32, u64, usize) = (
        port.parse()?,
        pid.parse()?,
        minutes.parse()?,
        callers.parse()?,
    );
    let client = interop::client_for(port, &[service.as_str()], |_| {}).await?;
    let window = Arc::new(Mutex::new(Window::new()));
    let until = Instant::now() + Duration::from_secs(60 * minutes);
    let callers = (0..callers).map(|caller| {
        let (client, window, service) = (client.clone(), window.clone(), service.clone());
        async move {
            let mut n = 0_u64;
            while Instant::now() < until {
                n += 1;
                let began = Instant::now();
                let outcome = if n % 10 == caller as u64 % 10 {
                    let mut body = Map::new();
                    body.insert("data", Value::from("x".repeat(20_000)));
                    client.call_action(&service, "echo", body).await.map(drop)
                } else {
                    let mut body = Map::new();
                    body.insert("number", Value::from(n as i64 % 1000));
                    client.call_action(&service, "square", body).await.map(drop)
                };
                let took = began.elapsed();
                {
                    let mut window = window
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    match outcome {
                        Ok(()) => {
                            let _ = window.latency_us.record(took.as_micros() as u64);
                        }
                        Err(e) => *window.errors.entry(kind(&e)).or_default() += 1,
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let report = async {
        for minute in 1..=minutes {
            tokio::time::sleep_until((until - Duration::from_secs(60 * (minutes - minute))).into())
                .await;
            let done = std::mem::replace(
                &mut *window
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Window::new(),
            );
            let h = &done.latency_us;
            let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            let errors: Vec<String> = done
                .errors
                .iter()
                .map(|(k, v)| format!("\"{k}\": {v}"))
                .collect();
            println!(
                "{{\"minute\": {minute}, \"calls\": {}, \"errors\": {{{}}}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}, \"p999_ms\": {:.2}, \"max_ms\": {:.2}, \"server_rss_mib\": {:.1}}}",
                h.len() + done.errors.values().sum::<u64>(),
                errors.join(", "),
                ms(0.5),
                ms(0.99),
                ms(0.999),
                h.max() as f64 / 1000.0,
                rss_mib(pid)
            );
        }
    };
    futures::future::join(futures::future::join_all(callers), report).await;
    Ok(())
}

/// What kind of failure a call met.
fn kind(error: &CallError) -> &'static str {
    match error {
        CallError::Timeout { .. } => "timeout",
        CallError::Transport { .. } => "transport",
        CallError::Job { .. } => "job",
        CallError::Action { .. } => "action",
        _ => "other",
    }
}

/// The resident memory of a process, in MiB (0 when it cannot be read).
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

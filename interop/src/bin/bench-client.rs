//! The rsoa load generator of the side-by-side benchmark:
//! `bench-client <redis port> <service> <body size> <callers> <total calls>`. Prints one JSON line:
//! `{"calls": n, "seconds": s, "calls_per_sec": x, "p50_us": p, "p99_us": q}`, as `bench_client.py` does.
//! Its callers are tasks on one thread, which leaves the most CPU to Redis and the server on a small machine.

use std::time::{Duration, Instant};

use rsoa_protocol::{Map, Value};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, service, size, callers, calls] = &args[..] else {
        return Err(
            "usage: bench-client <redis port> <service> <body size> <callers> <total calls>".into(),
        );
    };
    let (port, size, callers, calls): (u16, usize, usize, usize) = (
        port.parse()?,
        size.parse()?,
        callers.parse()?,
        calls.parse()?,
    );
    let client = interop::client_for(port, &[service.as_str()], |_| {}).await?;
    let mut body = Map::new();
    body.insert("data", Value::from("x".repeat(size)));
    let run = |per_caller: usize| {
        let client = client.clone();
        let service = service.clone();
        let body = body.clone();
        async move {
            let mut latencies = Vec::with_capacity(per_caller);
            for _ in 0..per_caller {
                let start = Instant::now();
                client
                    .call_action(&service, "echo", body.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                latencies.push(start.elapsed());
            }
            Ok::<_, String>(latencies)
        }
    };
    // Warm up every caller's connections first.
    for task in (0..callers)
        .map(|_| tokio::spawn(run(20)))
        .collect::<Vec<_>>()
    {
        task.await??;
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| tokio::spawn(run(calls / callers)))
        .collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(calls);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let quantile = |q: f64| {
        latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1e6
    };
    println!(
        "{{\"calls\": {}, \"seconds\": {seconds:.6}, \"calls_per_sec\": {:.1}, \"p50_us\": {:.1}, \"p99_us\": {:.1}}}",
        latencies.len(),
        latencies.len() as f64 / seconds,
        quantile(0.5),
        quantile(0.99)
    );
    Ok(())
}

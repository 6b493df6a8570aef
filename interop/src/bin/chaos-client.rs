//! The load of `cargo xtask chaos`: `chaos-client <redis ports> <name> <callers> <seconds>` (ports as for
//! `chaos-server`). Each caller calls
//! `chaos.record` in a loop for the given time, every tenth call asking for a chunked (200 KB) response, each with
//! an id of its own (`<name>-<caller>-<n>`) and a 5 s timeout. Prints one line per call:
//! `<id> <outcome> <start ms> <end ms>`, times from the client's start, the outcome `ok`, `timeout`, `transport`
//! (a typed transport error), `job`/`action` (an error response), `wrong` (an answer that is not the call's own)
//! or `hung` (neither an answer nor an error 5 s after the timeout).

use std::time::{Duration, Instant};

use rsoa_client::CallError;
use rsoa_protocol::{Map, Value};

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, name, callers, seconds] = &args[..] else {
        return Err("usage: chaos-client <redis ports> <name> <callers> <seconds>".into());
    };
    let (callers, seconds): (usize, u64) = (callers.parse()?, seconds.parse()?);
    let first: u16 = port.split(',').next().unwrap_or_default().parse()?;
    interop::chaos_redis(&mut interop::redis_settings(first), port)?;
    let client = interop::client_for(first, &["chaos"], |settings| {
        // Checked just above.
        let _ = interop::chaos_redis(settings, port);
    })
    .await?;
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let callers = (0..callers).map(|caller| {
        let client = client.clone();
        async move {
            let mut lines = Vec::new();
            let mut n = 0_u64;
            while Instant::now() < until {
                n += 1;
                let id = format!("{name}-{caller}-{n}");
                let mut body = Map::new();
                body.insert("id", id.as_str());
                body.insert("size", if n % 10 == 0 { 200_000 } else { 0 });
                let began = start.elapsed().as_millis();
                let call = client.call_action("chaos", "record", body).timeout(TIMEOUT);
                let outcome =
                    match tokio::time::timeout(TIMEOUT + Duration::from_secs(5), call).await {
                        Err(_) => "hung",
                        Ok(Ok(response))
                            if response.body.get("id").and_then(Value::as_str) == Some(&id) =>
                        {
                            "ok"
                        }
                        Ok(Ok(_)) => "wrong",
                        Ok(Err(CallError::Timeout { .. })) => "timeout",
                        Ok(Err(CallError::Transport { .. })) => "transport",
                        Ok(Err(CallError::Job { .. })) => "job",
                        Ok(Err(CallError::Action { .. })) => "action",
                        Ok(Err(_)) => "other",
                    };
                let ended = start.elapsed().as_millis();
                lines.push(format!("{id} {outcome} {began} {ended}"));
                if outcome != "ok" {
                    // A caller that failed pauses a moment, as a real one would, rather than spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            lines
        }
    });
    for lines in futures::future::join_all(callers).await {
        for line in lines {
            println!("{line}");
        }
    }
    Ok(())
}

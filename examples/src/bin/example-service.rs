//! The `example` service as a process, run by the standalone entry point:
//! `example-service --settings examples/example-service.toml` (add `--check-settings` to check the file and exit).
//! It calls `ledger` through the `client_routing` of its settings; `extra.service_name` serves it under another name.

fn main() -> std::process::ExitCode {
    rsoa_standalone::run(|settings, client| {
        // The service's own settings live under `extra`; a setup hook checks them once Redis is reachable, before
        // the first request (a failure exits 1).
        let greeting = settings.extra.get("greeting").cloned();
        // `extra.service_name` runs a copy under another name (the benchmarks do).
        let name = settings
            .extra
            .get("service_name")
            .and_then(|n| n.as_str())
            .unwrap_or("example");
        examples::example_service_builder_as(name, client).setup(move || {
            let greeting = greeting.clone();
            async move {
                match greeting.as_ref().and_then(|g| g.as_str()) {
                    Some(greeting) if !greeting.is_empty() => {
                        tracing::info!(greeting, "set up");
                        Ok(())
                    }
                    _ => Err(format!(
                        "extra.greeting must be a non-empty string, not {greeting:?}"
                    )),
                }
            }
        })
    })
}

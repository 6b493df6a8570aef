//! The `example` service as a process, run by the standalone entry point:
//! `example-service --settings examples/example-service.toml` (add `--check-settings` to check the file and exit).
//! It calls `ledger` through the `client_routing` of its settings.

fn main() -> std::process::ExitCode {
    rsoa_standalone::run(|_settings, client| examples::example_service_builder(client))
}

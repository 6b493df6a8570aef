//! The `example` service's PySOA test plans (`tests/plans/*.pysoa`): each case a test, against the Rust service
//! in-process, with its `ledger` downstream real (or stubbed, where a case stubs it).
//! `cargo test -p examples --test plans -- square` runs the cases whose name holds `square`.

fn main() {
    rsoa_test::plan::Plan::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/plans")).run_tests(
        || {
            let ledger = rsoa_transport_local::LocalTransport::new(examples::ledger_service())
                .round_trip(true);
            examples::example_service(rsoa_client::Client::builder().service(ledger).build())
        },
    );
}

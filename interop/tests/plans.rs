//! The interop contract's PySOA test plans (`interop/plans/*.pysoa`), unchanged, against the Rust `rsinterop`
//! service in-process: the same files PySOA's own `ServicePlanTestCase` runs against `pyinterop`
//! (`interop/python/plan_cases.py`). `call_service`'s downstream calls are stubbed by the plans.

fn main() {
    let plans = concat!(env!("CARGO_MANIFEST_DIR"), "/plans");
    rsoa_test::plan::Plan::new(plans)
        .run_tests(|| interop::service(rsoa_client::Client::builder().build()));
}

//! `cargo xtask bench codec`: encode and decode throughput of rsoa's MessagePack serializer beside plain `rmpv`
//! doing the same bytes in the same run (the floor), reported as a ratio.
//!
//! Two workloads: a realistic ~300-byte request envelope and a ~100 KB response envelope. Each measurement is the
//! median of several timed rounds, and rsoa and rmpv rounds alternate so that machine noise hits both alike.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rsoa_codec::{MsgpackSerializer, Serializer};
use rsoa_protocol::{DateTime, Decimal, Map, Value};

const ROUNDS: usize = 9;
const ROUND_TIME: Duration = Duration::from_millis(150);

fn request_envelope() -> Value {
    let meta: Value = [
        (
            "client_version",
            Value::Array(vec![1.into(), 4.into(), 9.into()]),
        ),
        (
            "reply_to",
            "service.orders.0123456789abcdef0123456789abcdef!00000000beef".into(),
        ),
        ("__expiry__", 1_700_000_060.25.into()),
    ]
    .into_iter()
    .collect();
    let body: Value = [
        (
            "control",
            [("continue_on_error", false), ("suppress_response", false)]
                .into_iter()
                .collect::<Value>(),
        ),
        (
            "context",
            [
                (
                    "correlation_id",
                    Value::from("5a0b3c8e9d7f4e21a6b5c4d3e2f1a0b9"),
                ),
                (
                    "switches",
                    Value::Array(vec![2.into(), 5.into(), 17.into()]),
                ),
                ("caller", "checkout-web".into()),
            ]
            .into_iter()
            .collect(),
        ),
        (
            "actions",
            Value::Array(vec![[
                ("action", Value::from("get_order")),
                (
                    "body",
                    [
                        ("order_id", Value::from(123_456_789)),
                        (
                            "include",
                            Value::Array(vec!["lines".into(), "payments".into()]),
                        ),
                    ]
                    .into_iter()
                    .collect(),
                ),
            ]
            .into_iter()
            .collect()]),
        ),
    ]
    .into_iter()
    .collect();
    [
        ("request_id", Value::from(421_337)),
        ("meta", meta),
        ("body", body),
    ]
    .into_iter()
    .collect()
}

fn response_envelope(target_bytes: usize) -> Value {
    let mut items = Vec::new();
    let serializer = MsgpackSerializer::default();
    let mut i = 0_i64;
    loop {
        let item: Value = [
            ("id", Value::from(1_000_000 + i)),
            ("name", Value::from(format!("Ticket type number {i}"))),
            (
                "price",
                Value::Decimal(
                    format!("{}.{:02}", 10 + i % 90, i % 100)
                        .parse::<Decimal>()
                        .unwrap(),
                ),
            ),
            (
                "created",
                Value::DateTime(
                    DateTime::from_epoch_micros(1_600_000_000_000_000 + i * 7_919).unwrap(),
                ),
            ),
            ("active", Value::Bool(i % 3 != 0)),
            (
                "tags",
                Value::Array(vec!["vip".into(), "early-bird".into()]),
            ),
            ("ratio", Value::Float(i as f64 / 7.0)),
        ]
        .into_iter()
        .collect();
        items.push(item);
        i += 1;
        if i % 50 == 0 {
            let probe: Value = [("items", Value::Array(items.clone()))]
                .into_iter()
                .collect();
            if serializer.encode(&probe).unwrap().len() >= target_bytes {
                break;
            }
        }
    }
    let action: Value = [
        ("action", Value::from("list_ticket_types")),
        ("errors", Value::Array(vec![])),
        (
            "body",
            [("items", Value::Array(items))].into_iter().collect(),
        ),
    ]
    .into_iter()
    .collect();
    let body: Value = [
        ("errors", Value::Array(vec![])),
        (
            "context",
            [("correlation_id", "5a0b3c8e9d7f4e21a6b5c4d3e2f1a0b9")]
                .into_iter()
                .collect(),
        ),
        ("actions", Value::Array(vec![action])),
    ]
    .into_iter()
    .collect();
    let mut envelope = Map::new();
    envelope.push("request_id", 421_337);
    envelope.push("meta", Map::new());
    envelope.push("body", body);
    Value::Map(envelope)
}

/// Median nanoseconds per call of `f` over [`ROUNDS`] rounds.
fn measure(mut f: impl FnMut()) -> f64 {
    // Calibrate the batch size so one batch takes about a millisecond.
    let mut batch = 1_u64;
    loop {
        let start = Instant::now();
        for _ in 0..batch {
            f();
        }
        if start.elapsed() >= Duration::from_millis(1) {
            break;
        }
        batch *= 2;
    }
    let mut per_call = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut calls = 0_u64;
        while start.elapsed() < ROUND_TIME {
            for _ in 0..batch {
                f();
            }
            calls += batch;
        }
        per_call.push(start.elapsed().as_nanos() as f64 / calls as f64);
    }
    per_call.sort_by(f64::total_cmp);
    per_call[ROUNDS / 2]
}

struct Row {
    workload: &'static str,
    op: &'static str,
    bytes: usize,
    rsoa_ns: f64,
    rmpv_ns: f64,
}

fn run(workload: &'static str, value: &Value, rows: &mut Vec<Row>) {
    let serializer = MsgpackSerializer::default();
    let bytes = serializer.encode(value).unwrap();
    let rmpv_value = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
    let mut rmpv_bytes = Vec::new();
    rmpv::encode::write_value(&mut rmpv_bytes, &rmpv_value).unwrap();
    assert_eq!(
        rmpv_bytes, bytes,
        "rmpv must write the same bytes for the comparison to be fair"
    );

    let mut out = Vec::with_capacity(bytes.len());
    let rsoa_encode = measure(|| {
        out.clear();
        serializer.encode_into(black_box(value), &mut out).unwrap();
        black_box(&out);
    });
    let rmpv_encode = measure(|| {
        out.clear();
        rmpv::encode::write_value(&mut out, black_box(&rmpv_value)).unwrap();
        black_box(&out);
    });
    rows.push(Row {
        workload,
        op: "encode",
        bytes: bytes.len(),
        rsoa_ns: rsoa_encode,
        rmpv_ns: rmpv_encode,
    });

    let rsoa_decode = measure(|| {
        black_box(serializer.decode(black_box(&bytes)).unwrap());
    });
    let rmpv_decode = measure(|| {
        black_box(rmpv::decode::read_value(&mut black_box(&bytes[..])).unwrap());
    });
    rows.push(Row {
        workload,
        op: "decode",
        bytes: bytes.len(),
        rsoa_ns: rsoa_decode,
        rmpv_ns: rmpv_decode,
    });
}

fn main() {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing and should stay quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("codec bench: run with `cargo xtask bench codec`");
        return;
    }
    let mut rows = Vec::new();
    run("request ~300 B", &request_envelope(), &mut rows);
    run(
        "response ~100 KB",
        &response_envelope(100 * 1024),
        &mut rows,
    );

    println!();
    println!("| workload | op | bytes | rsoa µs/op | rsoa MB/s | rmpv µs/op | rmpv MB/s | rsoa / rmpv time |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let mbps = |ns: f64| r.bytes as f64 / ns * 1e9 / 1e6;
        println!(
            "| {} | {} | {} | {:.3} | {:.0} | {:.3} | {:.0} | {:.2}x |",
            r.workload,
            r.op,
            r.bytes,
            r.rsoa_ns / 1e3,
            mbps(r.rsoa_ns),
            r.rmpv_ns / 1e3,
            mbps(r.rmpv_ns),
            r.rsoa_ns / r.rmpv_ns
        );
    }
    let worst = rows
        .iter()
        .map(|r| r.rsoa_ns / r.rmpv_ns)
        .fold(0.0, f64::max);
    println!();
    println!("worst ratio: {worst:.2}x (target: within 1.5x of plain rmpv)");
}

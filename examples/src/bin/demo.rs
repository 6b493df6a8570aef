//! The main job: the example services and a client that calls them in every PySOA calling style, over the local
//! transport (no Redis needed). Run with `cargo run -p examples --bin demo`.
//!
//! Pass `--round-trip` to send every message through MessagePack and back, as a network transport would.

use std::time::Duration;

use examples::{local_client, SWITCH_SHOW_ROOT};
use rsoa_client::{action, CallError, CallOptions, Job};
use rsoa_protocol::{ActionResponse, JobResponse, Map, Value};

fn show(value: &Map) -> String {
    serde_json::to_string(&Value::Map(value.clone())).unwrap_or_else(|e| format!("<{e}>"))
}

fn show_action(response: &ActionResponse) -> String {
    if response.errors.is_empty() {
        format!("{} -> {}", response.action, show(&response.body))
    } else {
        let errors: Vec<String> = response.errors.iter().map(ToString::to_string).collect();
        format!("{} -> errors: {}", response.action, errors.join("; "))
    }
}

fn show_job(response: &JobResponse) {
    for error in &response.errors {
        println!("    job error: {error}");
    }
    for action in &response.actions {
        println!("    {}", show_action(action));
    }
}

#[tokio::main]
async fn main() -> Result<(), CallError> {
    let round_trip = std::env::args().any(|a| a == "--round-trip");
    let client = local_client(round_trip);
    println!(
        "rsoa demo: services {:?} over the local transport{}",
        client.services(),
        if round_trip {
            " (MessagePack round trip)"
        } else {
            ""
        }
    );

    println!("\n1. call_action: one action, one job");
    let response = client
        .call_action("example", "square", &serde_json::json!({"number": 7}))
        .await?;
    println!("    {}", show_action(&response));

    println!("\n2. call_action with a switch (12 adds the square root) and a timeout");
    let response = client
        .call_action("example", "square", &serde_json::json!({"number": 81}))
        .switch(SWITCH_SHOW_ROOT)
        .timeout(Duration::from_secs(1))
        .await?;
    println!("    {}", show_action(&response));

    println!("\n3. call_actions: three actions in one job; the job stops at the failure");
    let actions = || -> Result<Vec<_>, CallError> {
        Ok(vec![
            action("square", &serde_json::json!({"number": 2}))?,
            action("fail", &serde_json::json!({"code": "OUT_OF_STOCK"}))?,
            action("square", &serde_json::json!({"number": 3}))?,
        ])
    };
    let job = client
        .call_actions("example", actions()?)
        .raise_action_errors(false)
        .await?;
    show_job(&job);

    println!("\n4. call_actions with continue_on_error: every action runs");
    let job = client
        .call_actions("example", actions()?)
        .continue_on_error(true)
        .raise_action_errors(false)
        .await?;
    show_job(&job);

    println!("\n5. the same failure, raised as a typed error");
    match client.call_action("example", "fail", ()).await {
        Err(err @ CallError::Action { .. }) => println!("    CallError::Action: {err}"),
        other => println!("    unexpected: {other:?}"),
    }

    println!("\n6. a request that does not fit the action's types: the error names the field");
    match client
        .call_action("example", "square", &serde_json::json!({"number": "seven"}))
        .await
    {
        Err(err) => println!("    {err}"),
        Ok(response) => println!("    unexpected: {}", show_action(&response)),
    }

    println!("\n7. call_actions_parallel: one job per action, all at once, answers in order");
    let squares = (1..=5)
        .map(|n| action("square", &serde_json::json!({"number": n})))
        .collect::<Result<Vec<_>, _>>()?;
    for response in client.call_actions_parallel("example", squares).await? {
        println!("    {}", show_action(&response));
    }

    println!("\n8. call_jobs_parallel: jobs to two services at once");
    let jobs = vec![
        Job::new(
            "example",
            [action("square", &serde_json::json!({"number": 12}))?],
        ),
        Job::new("ledger", [action("whoami", ())?]),
    ];
    for job in client.call_jobs_parallel(jobs).await? {
        show_job(&job);
    }

    println!("\n9. send_request now, get_all_responses later");
    let mut ids = Vec::new();
    for n in [10, 20] {
        ids.push(
            client
                .send_request(
                    "example",
                    vec![action("square", &serde_json::json!({"number": n}))?],
                    &CallOptions::new(),
                )
                .await?,
        );
    }
    for (id, outcome) in client.get_all_responses("example", None).await? {
        println!("    request {id} (sent: {}):", ids.contains(&id));
        show_job(&outcome?);
    }

    println!(
        "\n10. context chaining: example's call_service calls ledger with this request's context"
    );
    let response = client
        .call_action("example", "call_service", ())
        .correlation_id("demo-correlation-1")
        .switch(7)
        .await?;
    println!("    {}", show_action(&response));

    println!("\n11. dates, date-times and decimals in typed bodies");
    let response = client
        .call_action(
            "example",
            "invoice",
            &serde_json::json!({
                "due": "2026-12-31",
                "lines": [{"item": "ticket", "price": "19.90", "quantity": 3}, {"item": "fee", "price": "1.25", "quantity": 1}]
            }),
        )
        .await;
    // JSON has no dates or decimals, so that request is refused with a field pointer; typed values work.
    match response {
        Err(err) => println!("    from JSON text: {err}"),
        Ok(r) => println!("    {}", show_action(&r)),
    }
    let request = examples::InvoiceRequest {
        due: rsoa_protocol::Date::new(2026, 12, 31).expect("a valid date"),
        lines: vec![
            examples::InvoiceLine {
                item: "ticket".into(),
                price: "19.90".parse().expect("a decimal"),
                quantity: 3,
            },
            examples::InvoiceLine {
                item: "fee".into(),
                price: "1.25".parse().expect("a decimal"),
                quantity: 1,
            },
        ],
    };
    let response = client.call_action("example", "invoice", &request).await?;
    println!("    {}", show_action(&response));

    println!("\n12. the built-in status and introspect actions");
    let response = client.call_action("example", "status", ()).await?;
    println!("    {}", show_action(&response));
    let response = client
        .call_action(
            "example",
            "introspect",
            &serde_json::json!({"action_name": "square"}),
        )
        .await?;
    println!("    {}", show_action(&response));

    println!("\n13. an unknown action");
    match client.call_action("example", "nope", ()).await {
        Err(err) => println!("    {err}"),
        Ok(r) => println!("    unexpected: {}", show_action(&r)),
    }
    Ok(())
}

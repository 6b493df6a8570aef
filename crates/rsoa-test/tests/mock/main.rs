//! The mock transport, and stubbing actions on clients that are already built.

use rsoa_client::stub::StubResponse;
use rsoa_client::{CallError, Client};
use rsoa_protocol::{Error as WireError, Map, Value};
use rsoa_server::{ActionContext, ActionError, Server};
use rsoa_test::mock::mock;
use rsoa_transport_local::LocalTransport;

fn body(pairs: &[(&str, i64)]) -> Map {
    pairs.iter().map(|(k, v)| (*k, Value::from(*v))).collect()
}

/// `users.get` called from a task of its own, so that the test can answer it.
fn spawn_get(
    client: &Client,
) -> tokio::task::JoinHandle<Result<rsoa_protocol::ActionResponse, CallError>> {
    let caller = client.clone();
    tokio::spawn(async move { caller.call_action("users", "get", Map::new()).await })
}

#[tokio::test]
async fn the_test_sees_each_request_and_chooses_the_reply() {
    let (transport, mut handle) = mock("users");
    let client = Client::builder().service(transport).build();
    handle.assert_no_request();

    let caller = client.clone();
    let call = tokio::spawn(async move {
        caller
            .call_actions(
                "users",
                [
                    rsoa_protocol::ActionRequest::new("a", body(&[("x", 1)])),
                    rsoa_protocol::ActionRequest::new("b", Map::new()),
                ],
            )
            .raise_action_errors(false)
            .await
    });
    let request = handle.next_request().await.expect("a request");
    assert_eq!(request.action_names(), ["a", "b"]);
    assert_eq!(request.job().actions[0].body, body(&[("x", 1)]));
    request.reply_bodies([body(&[("one", 1)]), body(&[("two", 2)])]);
    let job = call.await.expect("joined").expect("a response");
    assert_eq!(job.actions[1].body, body(&[("two", 2)]));

    let call = spawn_get(&client);
    handle
        .next_request()
        .await
        .expect("a request")
        .reply_action_errors([WireError::new("NOPE", "no")]);
    match call.await.expect("joined") {
        Err(err @ CallError::Action { .. }) => assert_eq!(err.wire_errors()[0].code, "NOPE"),
        other => panic!("{other:?}"),
    }

    let call = spawn_get(&client);
    handle
        .next_request()
        .await
        .expect("a request")
        .reply_job_errors([WireError::new("DOWN", "down")]);
    assert!(matches!(
        call.await.expect("joined"),
        Err(CallError::Job { .. })
    ));

    let call = spawn_get(&client);
    handle
        .next_request()
        .await
        .expect("a request")
        .fail(rsoa_transport::Error::connection("cable cut"));
    assert!(matches!(
        call.await.expect("joined"),
        Err(CallError::Transport { .. })
    ));

    let call = spawn_get(&client);
    drop(handle.next_request().await.expect("a request"));
    let err = call.await.expect("joined").expect_err("no reply");
    assert!(err.to_string().contains("without a reply"), "{err}");

    drop(handle);
    let err = client
        .call_action("users", "get", Map::new())
        .await
        .expect_err("nobody listens");
    assert!(err.to_string().contains("handle was dropped"), "{err}");
}

/// A server's downstream action is stubbed on its built client, for as long as the stub is held, and only the
/// stubbed action: the rest of the job goes to the real service, merged back in order.
#[tokio::test]
async fn actions_are_stubbed_on_a_built_client() {
    let downstream = Server::builder("math")
        .action_fn(
            "double",
            |req: serde_json::Value, _: ActionContext| async move {
                Ok::<_, ActionError>(serde_json::json!({"n": req["n"].as_i64().unwrap_or(0) * 2}))
            },
        )
        .action_fn(
            "triple",
            |req: serde_json::Value, _: ActionContext| async move {
                Ok::<_, ActionError>(serde_json::json!({"n": req["n"].as_i64().unwrap_or(0) * 3}))
            },
        )
        .build()
        .expect("valid");
    let client = Client::builder()
        .service(LocalTransport::new(downstream))
        .build();
    let server = Server::builder("front")
        .client(client)
        .action_fn(
            "six_times",
            |req: serde_json::Value, ctx: ActionContext| async move {
                let n = req["n"].as_i64().unwrap_or(0);
                let job = ctx
                    .client()
                    .call_actions(
                        "math",
                        [
                            rsoa_client::action("double", &serde_json::json!({"n": n}))?,
                            rsoa_client::action("triple", &serde_json::json!({"n": n}))?,
                        ],
                    )
                    .await?;
                let get = |i: usize| {
                    job.actions[i]
                        .body
                        .get("n")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                };
                Ok::<_, ActionError>(serde_json::json!({"double": get(0), "triple": get(1)}))
            },
        )
        .build()
        .expect("valid");
    let harness = rsoa_test::TestServer::new(server.clone());
    let five = serde_json::json!({"n": 5});
    let call = || harness.call_action("six_times", &five);

    let real = call().await.expect("ok");
    assert_eq!(real.body.get("double").and_then(Value::as_i64), Some(10));

    let stub =
        server
            .client()
            .stubs()
            .stub("math", "double", StubResponse::Body(body(&[("n", 1000)])));
    let stubbed = call().await.expect("ok");
    assert_eq!(
        stubbed.body.get("double").and_then(Value::as_i64),
        Some(1000)
    );
    assert_eq!(
        stubbed.body.get("triple").and_then(Value::as_i64),
        Some(15),
        "the real triple still ran"
    );
    assert_eq!(stub.call_bodies(), [body(&[("n", 5)])]);
    let record = server.client().stubs().calls();
    assert_eq!(record.len(), 1);
    assert_eq!(
        (record[0].service.as_str(), record[0].action.as_str()),
        ("math", "double")
    );
    assert_eq!(record[0].response, Ok(body(&[("n", 1000)])));

    drop(stub);
    assert!(server.client().stubs().is_empty());
    assert_eq!(
        call()
            .await
            .expect("ok")
            .body
            .get("double")
            .and_then(Value::as_i64),
        Some(10)
    );
}

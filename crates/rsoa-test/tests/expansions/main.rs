//! Expansions: follow-up calls that replace ids with objects, batched, de-duplicated and nested.

use rsoa_client::{CallError, Client, ExpansionSettings, TypeExpansion, TypeRoute};
use rsoa_protocol::{Error as WireError, Map, Value};
use rsoa_test::{StubHandle, StubResponse, StubTransport};

fn obj(entries: Vec<(&str, Value)>) -> Value {
    entries.into_iter().collect()
}

fn book(id: i64, author: i64) -> Value {
    obj(vec![
        ("_type", "book".into()),
        ("id", id.into()),
        ("author_id", author.into()),
    ])
}

fn settings(raise: bool) -> ExpansionSettings {
    let author = TypeExpansion::new("author", "authors", "author_id", "author");
    ExpansionSettings::default()
        .route(
            "authors",
            TypeRoute::new("people", "get_authors", "ids", "authors"),
        )
        .route(
            "employers",
            TypeRoute::new("companies", "get_employers", "ids", "employers"),
        )
        .expansion(
            "book",
            "author",
            if raise {
                author.raising_errors()
            } else {
                author
            },
        )
        .expansion(
            "author",
            "employer",
            TypeExpansion::new("employer", "employers", "employer_id", "employer"),
        )
}

/// `library.list_books` returns three books by two authors; `people.get_authors` and `companies.get_employers`
/// answer by id, from maps keyed by integer ids as PySOA services do.
fn library(settings: ExpansionSettings, fail_authors: bool) -> (Client, StubHandle, StubHandle) {
    let mut library = StubTransport::new("library");
    library.stub(
        "list_books",
        StubResponse::Body(
            [(
                "books",
                Value::Array(vec![book(1, 10), book(2, 11), book(3, 10)]),
            )]
            .into_iter()
            .collect(),
        ),
    );
    let mut people = StubTransport::new("people");
    let authors = if fail_authors {
        people.stub(
            "get_authors",
            StubResponse::Errors(vec![WireError::new("DOWN", "The author service is down")]),
        )
    } else {
        people.stub(
            "get_authors",
            StubResponse::from_fn(|body| {
                let mut found = Map::new();
                for id in body["ids"].as_array().into_iter().flatten() {
                    let n = id.as_i64().unwrap_or_default();
                    found.push(
                        id.clone(),
                        obj(vec![
                            ("_type", "author".into()),
                            ("name", format!("author {n}").into()),
                            ("employer_id", (n * 100).into()),
                        ]),
                    );
                }
                Ok([("authors", Value::Map(found))].into_iter().collect())
            }),
        )
    };
    let mut companies = StubTransport::new("companies");
    let employers = companies.stub(
        "get_employers",
        StubResponse::from_fn(|body| {
            let mut found = Map::new();
            for id in body["ids"].as_array().into_iter().flatten() {
                found.push(
                    id.clone(),
                    obj(vec![("_type", "employer".into()), ("id", id.clone())]),
                );
            }
            Ok([("employers", Value::Map(found))].into_iter().collect())
        }),
    );
    let client = Client::builder()
        .expansions(settings)
        .service(library)
        .service(people)
        .service(companies)
        .build();
    (client, authors, employers)
}

#[tokio::test]
async fn nested_expansions_are_batched_and_deduplicated() {
    let (client, authors, employers) = library(settings(false), false);
    let response = client
        .call_action("library", "list_books", ())
        .expand("book", ["author", "author.employer"])
        .await
        .unwrap();
    let books = response.body["books"].as_array().unwrap();
    assert_eq!(books[0]["author"]["name"].as_str(), Some("author 10"));
    assert_eq!(books[1]["author"]["name"].as_str(), Some("author 11"));
    assert_eq!(books[2]["author"]["name"].as_str(), Some("author 10"));
    assert_eq!(books[0]["author"]["employer"]["id"].as_i64(), Some(1000));
    assert_eq!(books[1]["author"]["employer"]["id"].as_i64(), Some(1100));
    // One request per route per level, each id once.
    assert_eq!(authors.call_count(), 1);
    assert_eq!(
        authors.call_bodies()[0]["ids"],
        Value::Array(vec![10.into(), 11.into()])
    );
    assert_eq!(employers.call_count(), 1);
    assert_eq!(
        employers.call_bodies()[0]["ids"],
        Value::Array(vec![1000.into(), 1100.into()])
    );
}

#[tokio::test]
async fn only_requested_expansions_run() {
    let (client, authors, employers) = library(settings(false), false);
    let response = client
        .call_action("library", "list_books", ())
        .expand("book", ["author"])
        .await
        .unwrap();
    assert!(response.body["books"][0]["author"]["employer"].is_null());
    assert_eq!((authors.call_count(), employers.call_count()), (1, 0));
    let plain = client
        .call_action("library", "list_books", ())
        .await
        .unwrap();
    assert!(plain.body["books"][0]["author"].is_null());
    assert_eq!(authors.call_count(), 1, "no expansion asked, no call made");
}

#[tokio::test]
async fn a_failing_route_leaves_fields_unset_unless_told_to_raise() {
    let (client, _, _) = library(settings(false), true);
    let response = client
        .call_action("library", "list_books", ())
        .expand("book", ["author"])
        .await
        .unwrap();
    assert!(response.body["books"][0]["author"].is_null());

    let (client, _, _) = library(settings(true), true);
    let err = client
        .call_action("library", "list_books", ())
        .expand("book", ["author"])
        .await
        .unwrap_err();
    assert!(err.has_code("DOWN"), "{err}");
}

#[tokio::test]
async fn unknown_expansions_and_bad_settings_are_refused() {
    let (client, _, _) = library(settings(false), false);
    let err = client
        .call_action("library", "list_books", ())
        .expand("book", ["publisher"])
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::InvalidExpansion(_)), "{err}");

    let same_field = ExpansionSettings::default()
        .route("r", TypeRoute::new("s", "a", "ids", "out"))
        .expansion("t", "x", TypeExpansion::new("t2", "r", "field", "field"));
    assert!(same_field.validate().is_err());
    let missing_route = ExpansionSettings::default().expansion(
        "t",
        "x",
        TypeExpansion::new("t2", "nowhere", "a", "b"),
    );
    assert!(missing_route.validate().is_err());
    assert!(settings(false).validate().is_ok());
}

#[test]
fn settings_read_pysoa_shaped_config() {
    let config = serde_json::json!({
        "type_routes": {"authors": {"service": "people", "action": "get_authors", "request_field": "ids", "response_field": "authors"}},
        "type_expansions": {"book": {"author": {"type": "author", "route": "authors", "source_field": "author_id", "destination_field": "author", "raise_action_errors": true}}}
    });
    let settings: ExpansionSettings = serde_json::from_value(config).unwrap();
    assert!(settings.type_expansions["book"]["author"].raise_action_errors);
    assert!(settings.validate().is_ok());
}

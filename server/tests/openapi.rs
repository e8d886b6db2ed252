//! The OpenAPI document and the router agree: every route is documented with its
//! method, every documented path and method is routed, and every documented
//! operation answers (not "no route", not 405) when called.

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::*;

fn documented() -> BTreeSet<(String, String)> {
    let doc = astrovec_server::openapi::document();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let routed: BTreeSet<(String, String)> = astrovec_server::routes().into_iter().collect();
    let documented = documented();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    assert!(extra.is_empty(), "documented but not routed: {extra:?}");
    assert!(routed.len() >= 17);
}

#[test]
fn every_schema_reference_resolves_and_every_property_is_described() {
    let doc = astrovec_server::openapi::document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for part in text.split("#/components/schemas/").skip(1) {
        let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
        assert!(schemas.contains_key(&name), "dangling $ref to {name}");
    }
    for (name, schema) in schemas {
        if let Some(props) = schema["properties"].as_object() {
            for (p, s) in props {
                let described = s.get("description").is_some() || s.get("$ref").is_some();
                assert!(described, "{name}.{p} has no description");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_is_answered_by_a_handler() {
    let f = build();
    let app = f.app();
    for (method, path) in documented() {
        let uri = path
            .replace("{c}", "gal")
            .replace("{id}", "1")
            .replace("{path}", "style.css");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = matches!(method, Method::POST | Method::PUT).then(|| b"{}".to_vec());
        let r = send(&app, method.clone(), &uri, body, Some(KEY)).await;
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        if r.status == StatusCode::NOT_FOUND {
            let msg = r.json()["error"]["message"]
                .as_str()
                .unwrap_or("")
                .to_string();
            assert!(!msg.starts_with("no route"), "{method} {uri}: {msg}");
        }
    }
}

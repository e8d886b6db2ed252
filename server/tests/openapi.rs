//! The OpenAPI document and the router agree: every route is documented with its
//! method, every documented path and method is routed, and every documented
//! operation answers (not "no route", not 405) when called. And the document and
//! the request types agree: each request schema and each operation's query
//! parameters name exactly the fields the server accepts.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use astrovec_server::api::{
    BatchRequest, FormatParam, ImageParams, Position, PredictRequest, PutObject, QuerySpec,
    SearchOptions, SearchRequest, SpectrumParams,
};
use astrovec_server::extract::KnownFields;
use astrovec_server::fields::serde_fields;
use astrovec_server::map::MapParams;
use astrovec_server::upload::{ImageUpload, SpectrumUpload};
use axum::http::{Method, StatusCode};
use common::*;
use serde_json::Value;

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

/// Names of the schemas a `$ref` inside `v` points at.
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.insert(r.trim_start_matches("#/components/schemas/").to_string());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// The schemas a client sends: those of request bodies and everything they refer to.
fn request_schemas(doc: &Value) -> BTreeSet<String> {
    let mut todo = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            refs(&op["requestBody"], &mut todo);
        }
    }
    let mut seen = BTreeSet::new();
    while let Some(name) = todo.pop_first() {
        if seen.insert(name.clone()) {
            refs(&doc["components"]["schemas"][&name], &mut todo);
        }
    }
    seen
}

fn sorted(mut v: Vec<&str>) -> Vec<String> {
    v.sort_unstable();
    v.into_iter().map(str::to_string).collect()
}

#[test]
fn request_schemas_name_exactly_the_fields_the_server_accepts() {
    let accepted: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("Position", Position::fields()),
        ("Query", QuerySpec::fields()),
        ("SearchRequest", SearchRequest::fields()),
        ("BatchRequest", BatchRequest::fields()),
        ("PredictRequest", PredictRequest::fields()),
        ("PutObject", PutObject::fields()),
        ("ImageUpload", ImageUpload::fields()),
        ("SpectrumUpload", SpectrumUpload::fields()),
    ]);
    let doc = astrovec_server::openapi::document();
    let schemas = request_schemas(&doc);
    assert_eq!(
        schemas,
        accepted.keys().map(|k| k.to_string()).collect(),
        "every request schema is paired with its request type here"
    );
    let mut differ = Vec::new();
    for (name, fields) in accepted {
        let documented: Vec<&str> = doc["components"]["schemas"][name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has properties"))
            .keys()
            .map(String::as_str)
            .collect();
        let (documented, fields) = (sorted(documented), sorted(fields));
        if documented != fields {
            differ.push(format!(
                "{name}: documented {documented:?}, accepted {fields:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}

#[test]
fn query_parameters_are_exactly_the_fields_the_server_accepts() {
    let accepted: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::from([
        (
            ("post", "/v1/collections/{c}/search"),
            FormatParam::fields(),
        ),
        (("get", "/v1/collections/{c}/map"), MapParams::fields()),
        (
            ("get", "/v1/collections/{c}/objects/{id}/image.png"),
            ImageParams::fields(),
        ),
        (
            ("get", "/v1/collections/{c}/objects/{id}/spectrum"),
            SpectrumParams::fields(),
        ),
    ]);
    let doc = astrovec_server::openapi::document();
    let mut documented: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        // The IVOA cone search reads its parameters by hand: the standard makes
        // their names case-insensitive (RA, DEC, SR, VERB).
        if path.starts_with("/scs/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            let names: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            if !names.is_empty() {
                documented.insert((method.clone(), path.clone()), names);
            }
        }
    }
    assert_eq!(
        documented.keys().cloned().collect::<BTreeSet<_>>(),
        accepted
            .keys()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect::<BTreeSet<_>>(),
        "every operation with query parameters is paired with its query type here"
    );
    let mut differ = Vec::new();
    for ((method, path), fields) in accepted {
        let names = sorted(documented[&(method.to_string(), path.to_string())].clone());
        let fields = sorted(fields);
        if names != fields {
            differ.push(format!(
                "{method} {path}: documented {names:?}, accepted {fields:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}

/// The field lists of plain request types are serde's own (no rename slipped in
/// between the declaration and what the deserializer reads).
#[test]
fn declared_field_lists_are_what_serde_reads() {
    let plain: [(&str, Vec<&str>, &[&str]); 8] = [
        ("Position", Position::fields(), serde_fields::<Position>()),
        (
            "QuerySpec",
            QuerySpec::fields(),
            serde_fields::<QuerySpec>(),
        ),
        (
            "SearchOptions",
            SearchOptions::fields(),
            serde_fields::<SearchOptions>(),
        ),
        (
            "PutObject",
            PutObject::fields(),
            serde_fields::<PutObject>(),
        ),
        (
            "FormatParam",
            FormatParam::fields(),
            serde_fields::<FormatParam>(),
        ),
        (
            "ImageParams",
            ImageParams::fields(),
            serde_fields::<ImageParams>(),
        ),
        (
            "SpectrumParams",
            SpectrumParams::fields(),
            serde_fields::<SpectrumParams>(),
        ),
        (
            "MapParams",
            MapParams::fields(),
            serde_fields::<MapParams>(),
        ),
    ];
    for (name, declared, read) in plain {
        assert!(!read.is_empty(), "{name}: serde lists no fields");
        assert_eq!(declared, read, "{name}");
    }
}

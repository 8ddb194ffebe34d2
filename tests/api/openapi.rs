//! `GET /api/v1/openapi.json`: a valid OpenAPI 3.1 document that lists every route the router serves.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{repo, spawn_app};

async fn document() -> Value {
    let app = spawn_app().await;
    let response = app.get(&format!("{}/api/v1/openapi.json", app.base)).await;
    assert_eq!(response.status(), 200, "served without a token");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["servers"][0]["url"], app.base.as_str(), "the deployment's public URL is the server");
    doc
}

#[tokio::test]
async fn every_route_of_the_router_is_documented() {
    let doc = document().await;
    let routes = tessera::http::routes();
    assert!(routes.len() >= 14, "the route table is read: {routes:?}");
    for (method, path) in &routes {
        let operation = &doc["paths"][*path][method.as_str().to_ascii_lowercase()];
        assert!(operation.is_object(), "{method} {path} is missing from the OpenAPI document");
        assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
    }
    // Nothing documented that the router does not serve.
    let served: BTreeSet<(String, String)> =
        routes.iter().map(|(m, p)| (m.as_str().to_ascii_lowercase(), p.to_string())).collect();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys().filter(|k| *k != "parameters") {
            assert!(served.contains(&(method.clone(), path.clone())), "{method} {path} is documented but not served");
        }
    }
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_with_every_error_code() {
    let doc = document().await;
    assert_eq!(doc["openapi"], "3.1.0");

    // The OpenAPI Initiative's JSON Schema for 3.1 documents (tests/data/README.md says where it is from).
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("tests/data/openapi-3.1-schema.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the OpenAPI 3.1 schema compiles");
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "not a valid OpenAPI 3.1 document: {errors:#?}");
    let mut broken = doc.clone();
    broken["paths"]["/healthz"]["get"]["responses"] = Value::String("none".into());
    assert!(!validator.is_valid(&broken), "the validator does refuse a broken document");

    // Every $ref points at something the document defines.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {reference}"));
        assert!(doc.pointer(pointer).is_some(), "$ref {reference} does not resolve");
    }

    // Every error code of the contract that these endpoints answer is described.
    let text = doc["components"]["responses"].to_string();
    for code in [
        "invalid-json",
        "validation-failed",
        "unauthorized",
        "bad-signature",
        "stale-signature",
        "not-found",
        "payload-too-large",
        "unsupported-media-type",
        "unavailable",
        "internal",
    ] {
        assert!(text.contains(code), "error code {code} is not documented");
    }
    let put = &doc["paths"]["/api/v1/members/{member_id}"]["put"];
    assert_eq!(put["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/MemberPut");
    assert!(put["responses"]["422"]["$ref"].as_str().is_some_and(|r| r.ends_with("/ValidationFailed")));
    assert!(doc["components"]["schemas"]["MemberView"]["properties"]["links"].is_object());

    // A second, independent validator when the machine has it (.ci/run installs it).
    let checker = std::process::Command::new("python3").args(["-c", "import openapi_spec_validator"]).output();
    if checker.is_ok_and(|o| o.status.success()) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("openapi.json");
        std::fs::write(&file, doc.to_string()).unwrap();
        let out =
            std::process::Command::new("python3").arg("-m").arg("openapi_spec_validator").arg(&file).output().unwrap();
        assert!(out.status.success(), "openapi-spec-validator: {}", String::from_utf8_lossy(&out.stdout));
    } else {
        eprintln!("note: openapi-spec-validator (PyPI) is not installed; validated with the JSON Schema only");
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

//! `GET /api/v1/openapi.json`: a valid OpenAPI 3.1 document that lists every route the router serves.

use std::collections::BTreeSet;

use serde_json::{Value, json};

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

    // A second, independent validator (.ci/run installs it).
    let checker = std::process::Command::new("python3").args(["-c", "import openapi_spec_validator"]).output();
    let installed = checker.is_ok_and(|o| o.status.success()).then_some(());
    if crate::tools::require(installed, "openapi-spec-validator (PyPI)", "the second OpenAPI validator").is_some() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("openapi.json");
        std::fs::write(&file, doc.to_string()).unwrap();
        let out =
            std::process::Command::new("python3").arg("-m").arg("openapi_spec_validator").arg(&file).output().unwrap();
        assert!(out.status.success(), "openapi-spec-validator: {}", String::from_utf8_lossy(&out.stdout));
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

/// A schema of the document with its `$ref` followed, and of an optional field the non-null branch.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema["$ref"].as_str() {
        return resolve(doc, doc.pointer(reference.trim_start_matches('#')).unwrap_or_else(|| panic!("{reference}")));
    }
    match schema["oneOf"].as_array() {
        Some(branches) if branches.len() == 2 && branches.iter().any(|b| b["type"] == "null") => {
            resolve(doc, branches.iter().find(|b| b["type"] != "null").unwrap())
        }
        _ => schema,
    }
}

/// A validator for one component schema of the document (its `$ref`s resolve within the document).
fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("the schema of {name} compiles: {e}"))
}

#[tokio::test]
async fn the_request_schemas_state_the_constraints_the_parsers_enforce() {
    let doc = document().await;
    let schemas = &doc["components"]["schemas"];
    let field = |body: &str, name: &str| resolve(&doc, &schemas[body]["properties"][name]).clone();

    let put = &doc["paths"]["/api/v1/members/{member_id}"]["put"];
    let path_id = put["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "member_id").unwrap();
    let member_id = resolve(&doc, &path_id["schema"]);
    assert_eq!(member_id["pattern"], r"^(?!\.\.?$)[A-Za-z0-9._-]{1,64}$");
    assert_eq!((&member_id["minLength"], &member_id["maxLength"]), (&json!(1), &json!(64)));
    assert_eq!(schemas["MemberPut"]["required"], json!(["name", "tier", "points"]));
    let name = field("MemberPut", "name");
    assert_eq!((&name["maxLength"], name["pattern"].is_string()), (&json!(200), true), "{name}");
    let points = field("MemberPut", "points");
    assert_eq!(
        (&points["type"], &points["minimum"], &points["maximum"]),
        (&json!("integer"), &json!(0), &json!(1_000_000_000_000i64))
    );
    assert_eq!(field("MemberPut", "tier")["pattern"], "^[a-z0-9_-]+$");
    assert_eq!(field("MemberPut", "locale")["maxLength"], 35);

    assert_eq!(schemas["LedgerEvent"]["required"], json!(["id", "member_id", "sequence", "points", "tier"]));
    assert_eq!(field("LedgerEvent", "id")["maxLength"], 128);
    assert_eq!(field("LedgerEvent", "member_id"), member_id.clone(), "one MemberId schema for the path and the event");
    assert_eq!(field("LedgerEvent", "sequence")["minimum"], 0);
    assert_eq!(field("LedgerEvent", "points"), points);
    let events = &schemas["LedgerBatch"]["properties"]["events"];
    assert_eq!((&events["minItems"], &events["maxItems"]), (&json!(1), &json!(1000)));

    assert_eq!(schemas["ScanRequest"]["required"], json!(["barcode"]));
    assert_eq!(field("ScanRequest", "barcode")["maxLength"], 256);
    assert_eq!(field("ScanRequest", "location")["maxLength"], 100);
    let push_token = field("RegisterBody", "pushToken");
    assert_eq!((&push_token["maxLength"], &push_token["pattern"]), (&json!(200), &json!("^[0-9A-Fa-f]+$")));
}

/// Each request body is judged the same by the document's schema and by the server's parser: a body the
/// schema accepts is accepted, one it refuses gets a 4xx naming the body. (Rules the schema cannot state,
/// which tiers the program has and which barcodes are cards, are left out of the tables.)
#[tokio::test]
async fn the_document_and_the_parsers_judge_bodies_alike() {
    let staff = "test-staff-token-0123456789";
    let app = crate::helpers::spawn_app_with(&[("staff_token", staff)]).await;
    let doc: Value = app.get(&format!("{}/api/v1/openapi.json", app.base)).await.json().await.unwrap();
    let ok = json!({"name": "Ann", "tier": "gold", "points": 1});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = ok.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };

    let members = [
        (ok.clone(), true),
        (with("points", json!(0)), true),
        (with("points", json!(1_000_000_000_000i64)), true),
        (with("name", json!("ก".repeat(200))), true),
        (with("locale", json!("vi-VN")), true),
        (with("locale", Value::Null), true),
        (with("attributes", json!({"expires": "2027-06-30"})), true),
        (with("program", json!("sent back from the member JSON")), true),
        (with("points", json!(-1)), false),
        (with("points", json!(1_000_000_000_001i64)), false),
        (with("points", json!(1.5)), false),
        (with("points", json!("12")), false),
        (with("name", json!("")), false),
        (with("name", json!("   ")), false),
        (with("name", json!("ก".repeat(201))), false),
        (with("name", json!("line\nbreak")), false),
        (with("name", json!(5)), false),
        (with("tier", json!("Gold")), false),
        (with("tier", json!(["gold"])), false),
        (with("locale", json!("english!")), false),
        (with("locale", json!("e")), false),
        (with("attributes", json!([1])), false),
        (without("name"), false),
        (without("points"), false),
    ];
    let schema = validator(&doc, "MemberPut");
    for (i, (body, valid)) in members.into_iter().enumerate() {
        assert_eq!(schema.is_valid(&body), valid, "the schema on {body}");
        let status = app.put_member(&format!("D-{i}"), &body).await.status();
        assert_eq!(status.is_success(), valid, "the server on {body}: {status}");
    }

    let event =
        |i: usize| json!({"id": format!("d-{i}"), "member_id": "L-1", "sequence": i, "points": 1, "tier": "gold"});
    let changed = |i: usize, key: &str, value: Value| {
        let mut body = event(i);
        body[key] = value;
        body
    };
    let ledger = [
        (event(1), true),
        (changed(2, "name", json!("Nguyễn Văn A")), true),
        (changed(3, "id", json!("x".repeat(128))), true),
        (changed(4, "member_id", json!("...")), true),
        (json!({"events": [event(5), event(6)]}), true),
        (changed(7, "id", json!("")), false),
        (changed(8, "id", json!("x".repeat(129))), false),
        (changed(9, "id", json!("a\tb")), false),
        (changed(10, "member_id", json!("M 1")), false),
        (changed(11, "member_id", json!("..")), false),
        (changed(12, "member_id", json!("x".repeat(65))), false),
        (changed(13, "sequence", json!(-1)), false),
        (changed(14, "sequence", json!("3")), false),
        (changed(15, "points", json!(-1)), false),
        (changed(16, "tier", json!("Gold")), false),
        (changed(17, "name", json!("a\tb")), false),
        (json!({"events": []}), false),
        (json!({"events": (0..1001).map(event).collect::<Vec<_>>()}), false),
        (json!({"events": [event(18), {"id": "d-19"}]}), false),
    ];
    let schema = validator(&doc, "LedgerBody");
    for (body, valid) in ledger {
        let shown = body.to_string().chars().take(200).collect::<String>();
        assert_eq!(schema.is_valid(&body), valid, "the schema on {shown}");
        let status = app.post_ledger(&body).await.status();
        assert_eq!(status.is_success(), valid, "the server on {shown}: {status}");
    }

    app.create_member("S-1", &ok).await;
    let scans = [
        (json!({"barcode": "S-1"}), true),
        (json!({"barcode": " S-1 ", "location": "Siam, counter 2"}), true),
        (json!({"barcode": "S-1", "location": "   "}), true),
        (json!({"barcode": "S-1", "location": "l".repeat(100)}), true),
        (json!({"barcode": ""}), false),
        (json!({"barcode": "   "}), false),
        (json!({"barcode": "x".repeat(257)}), false),
        (json!({"barcode": "S-1\u{0}"}), false),
        (json!({"barcode": 42}), false),
        (json!({"location": "Siam"}), false),
        (json!({"barcode": "S-1", "location": "l".repeat(101)}), false),
        (json!({"barcode": "S-1", "location": "a\nb"}), false),
        (json!({"barcode": "S-1", "location": 7}), false),
    ];
    let schema = validator(&doc, "ScanRequest");
    for (body, valid) in scans {
        assert_eq!(schema.is_valid(&body), valid, "the schema on {body}");
        let response =
            app.client.post(format!("{}/api/v1/scans", app.base)).bearer_auth(staff).json(&body).send().await.unwrap();
        assert_eq!(response.status().is_success(), valid, "the server on {body}: {}", response.status());
    }

    let pass = app.member_with_pass("R-1", &ok).await;
    let registrations = [
        (json!({"pushToken": "ABcd01"}), true),
        (json!({"pushToken": "a".repeat(200)}), true),
        (json!({"pushToken": "zz"}), false),
        (json!({"pushToken": ""}), false),
        (json!({"pushToken": "a".repeat(201)}), false),
        (json!({"pushToken": 12}), false),
        (json!({}), false),
    ];
    let schema = validator(&doc, "RegisterBody");
    for (body, valid) in registrations {
        assert_eq!(schema.is_valid(&body), valid, "the schema on {body}");
        let response = app
            .client
            .post(app.registration_url("dev-1", &pass))
            .header("authorization", format!("ApplePass {}", pass.auth))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().is_success(), valid, "the server on {body}: {}", response.status());
    }
}

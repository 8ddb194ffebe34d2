//! The admin API: PUT/GET/DELETE /api/v1/members/{member_id}, its validation and its errors.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, assert_error, spawn_app};

fn gold() -> Value {
    json!({"name": "สมชาย ใจดี", "tier": "gold", "points": 1250, "locale": "th"})
}

#[tokio::test]
async fn put_creates_then_updates_and_get_answers_the_member_json() {
    let app = spawn_app().await;

    let created = app.create_member("M-1001", &gold()).await;
    assert_eq!(created["member_id"], "M-1001");
    assert_eq!(created["name"], "สมชาย ใจดี");
    assert_eq!(created["tier"], "gold");
    assert_eq!(created["points"], 1250);
    assert_eq!(created["program"], "default");
    assert_eq!(created["locale"], "th");
    assert_eq!(created["attributes"], json!({}));
    assert_eq!(created["retired"], false);
    assert_eq!(created["apple"]["voided"], false);
    assert_eq!(created["apple"]["devices"], json!([]));
    assert!(created["apple"]["serial_number"].as_str().unwrap().len() >= 16);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(created.get("google").is_none() && created["links"].get("google").is_none(), "Google is not configured");
    let page = created["links"]["page"].as_str().unwrap();
    assert!(page.starts_with(&app.base));
    assert!(!page.contains("M-1001"), "links never carry the member ID: {page}");
    assert!(!created.to_string().contains("authentication"), "the authenticationToken is never shown");

    let updated = app
        .put_member(
            "M-1001",
            &json!({"name": "Somchai", "tier": "platinum", "points": 90, "attributes": {"expires": "2027-12-31"}}),
        )
        .await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["tier"], "platinum");
    assert_eq!(updated["points"], 90);
    assert_eq!(updated["locale"], Value::Null, "PUT replaces: an absent locale is cleared");
    assert_eq!(updated["attributes"]["expires"], "2027-12-31");
    assert_eq!(updated["apple"]["serial_number"], created["apple"]["serial_number"]);
    assert_eq!(updated["links"], created["links"]);

    let fetched = app.get_member("M-1001").await;
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.json::<Value>().await.unwrap(), updated);
}

#[tokio::test]
async fn names_are_stored_in_nfc() {
    let app = spawn_app().await;
    let member =
        app.create_member("nfc", &json!({"name": "Nguye\u{302}\u{303}n", "tier": "silver", "points": 0})).await;
    assert_eq!(member["name"], "Nguyễn");
}

#[tokio::test]
async fn delete_retires_idempotently_and_put_reinstates() {
    let app = spawn_app().await;
    app.create_member("M-2", &gold()).await;

    let retired = app.delete_member("M-2").await;
    assert_eq!(retired.status(), 200);
    let retired: Value = retired.json().await.unwrap();
    assert_eq!(retired["retired"], true);
    assert_eq!(retired["apple"]["voided"], true);

    let again = app.delete_member("M-2").await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["retired"], true);
    assert_eq!(again["updated_at"], retired["updated_at"]);

    let back = app.put_member("M-2", &gold()).await;
    assert_eq!(back.status(), 200);
    let back: Value = back.json().await.unwrap();
    assert_eq!(back["retired"], false);
    assert_eq!(back["apple"]["voided"], false);
    assert_eq!(back["apple"]["serial_number"], retired["apple"]["serial_number"]);
}

#[tokio::test]
async fn unknown_members_are_404() {
    let app = spawn_app().await;
    assert_error(app.get_member("nobody").await, 404, "not-found").await;
    assert_error(app.delete_member("nobody").await, 404, "not-found").await;
}

#[tokio::test]
async fn missing_or_wrong_admin_token_is_401() {
    let app = spawn_app().await;
    let url = app.member_url("M-1");
    let none = app.client.put(&url).json(&gold()).send().await.unwrap();
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_error(none, 401, "unauthorized").await;
    let wrong = app.client.get(&url).bearer_auth("test-admin-token-0123456780").send().await.unwrap();
    assert_error(wrong, 401, "unauthorized").await;
    let basic = app.client.get(&url).basic_auth("admin", Some(ADMIN_TOKEN)).send().await.unwrap();
    assert_error(basic, 401, "unauthorized").await;
    // Nothing was created by the refused PUT.
    assert_error(app.get_member("M-1").await, 404, "not-found").await;
}

#[tokio::test]
async fn malformed_bodies_get_400_415_and_413() {
    let app = spawn_app().await;
    assert_error(app.put_raw("M-1", "{\"name\": ", Some("application/json")).await, 400, "invalid-json").await;
    assert_error(app.put_raw("M-1", "", Some("application/json")).await, 400, "invalid-json").await;
    assert_error(
        app.put_raw("M-1", "name=x", Some("application/x-www-form-urlencoded")).await,
        415,
        "unsupported-media-type",
    )
    .await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(200_000));
    assert_error(app.put_raw("M-1", &huge, Some("application/json")).await, 413, "payload-too-large").await;
    // A body without a content type is read as JSON.
    assert_eq!(app.put_raw("M-1", &gold().to_string(), None).await.status(), 201);
}

/// Every rejected body: (body, field at fault). Each must be a 422 naming the field, and change nothing.
#[tokio::test]
async fn invalid_fields_get_422_with_the_field_and_change_nothing() {
    let app = spawn_app().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!([1, 2]), "body"),
        (json!({"tier": "gold", "points": 1}), "name"),
        (json!({"name": 5, "tier": "gold", "points": 1}), "name"),
        (json!({"name": "", "tier": "gold", "points": 1}), "name"),
        (json!({"name": "x".repeat(201), "tier": "gold", "points": 1}), "name"),
        (json!({"name": "a\u{0}b", "tier": "gold", "points": 1}), "name"),
        (json!({"name": "line\nbreak", "tier": "gold", "points": 1}), "name"),
        (json!({"name": "A", "points": 1}), "tier"),
        (json!({"name": "A", "tier": "diamond", "points": 1}), "tier"),
        (json!({"name": "A", "tier": "Gold", "points": 1}), "tier"),
        (json!({"name": "A", "tier": ["gold"], "points": 1}), "tier"),
        (json!({"name": "A", "tier": "gold"}), "points"),
        (json!({"name": "A", "tier": "gold", "points": -1}), "points"),
        (json!({"name": "A", "tier": "gold", "points": 1_000_000_000_001i64}), "points"),
        (json!({"name": "A", "tier": "gold", "points": 1e300}), "points"),
        (json!({"name": "A", "tier": "gold", "points": 1.5}), "points"),
        (json!({"name": "A", "tier": "gold", "points": "100"}), "points"),
        (json!({"name": "A", "tier": "gold", "points": 1, "locale": "not a locale"}), "locale"),
        (json!({"name": "A", "tier": "gold", "points": 1, "attributes": [1]}), "attributes"),
        (json!({"name": "A", "tier": "gold", "points": 1, "attributes": {"big": "x".repeat(5000)}}), "attributes"),
        (json!({"name": "A", "tier": "gold", "points": 1, "pionts": 2}), "pionts"),
        (json!({"name": "A", "tier": "gold", "points": 1, "member_id": "other"}), "member_id"),
    ];
    for (body, field) in cases {
        let error = assert_error(app.put_member("M-1", &body).await, 422, "validation-failed").await;
        let fields: Vec<&str> =
            error["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert!(fields.contains(&field), "{body} should fault {field}, got {fields:?}");
    }
    assert_error(app.get_member("M-1").await, 404, "not-found").await;

    // Several faults are reported together.
    let error = assert_error(
        app.put_member("M-1", &json!({"name": "", "tier": "x", "points": -5})).await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(error["details"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn member_ids_outside_the_contract_get_422() {
    let app = spawn_app().await;
    for id in ["x".repeat(65).as_str(), "a%20b", "a%2Fb", "%C3%A9", "a*b"] {
        let error = assert_error(app.put_member(id, &gold()).await, 422, "validation-failed").await;
        assert_eq!(error["details"][0]["field"], "member_id", "{id}");
    }
    assert_eq!(app.put_member(&"x".repeat(64), &gold()).await.status(), 201);
    assert_eq!(app.put_member("a.b_c-D", &gold()).await.status(), 201);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let app = spawn_app().await;
    assert_error(app.get(&format!("{}/nope", app.base)).await, 404, "not-found").await;
    let post = app.client.post(app.member_url("M-1")).bearer_auth(ADMIN_TOKEN).json(&gold()).send().await.unwrap();
    assert_error(post, 405, "method-not-allowed").await;
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let app = spawn_app().await;
    let health = app.get(&format!("{}/healthz", app.base)).await;
    assert_eq!(health.status(), 200);
    app.create_member("M-1", &gold()).await;
    let metrics = app.get(&format!("{}/metrics", app.base)).await.text().await.unwrap();
    assert!(
        metrics.contains("tessera_http_requests_total{route=\"/api/v1/members/{member_id}\",status=\"201\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains(ADMIN_TOKEN));
}

fn fault_fields(error: &Value) -> Vec<&str> {
    error["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn names_are_kept_in_nfc_and_null_fields_read_as_absent() {
    let app = spawn_app().await;
    // "é" sent as e + combining acute is stored (and shown) as one NFC character.
    let member =
        app.create_member("M-nfc", &json!({"name": "Cafe\u{301}", "tier": "gold", "points": 1, "locale": "th"})).await;
    assert_eq!(member["name"], "Café");
    let cleared: Value = app
        .put_member("M-nfc", &json!({"name": "Café", "tier": "gold", "points": 1, "locale": null, "attributes": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&cleared["locale"], &cleared["attributes"]),
        (&Value::Null, &json!({})),
        "null clears an optional field"
    );
    let error = assert_error(
        app.put_member("M-nfc", &json!({"name": null, "tier": "gold", "points": null})).await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(fault_fields(&error), ["name", "points"], "null is absent, and a required field is required");
    assert_eq!(error["details"][0]["message"], "is required");
}

#[tokio::test]
async fn unknown_fields_a_foreign_member_id_and_bad_values_are_named_together() {
    let app = spawn_app().await;
    let body = json!({"name": "A", "tier": "gold", "points": -1, "pionts": 2, "member_id": "M-other", "program": "x"});
    let error = assert_error(app.put_member("M-1", &body).await, 422, "validation-failed").await;
    let mut fields = fault_fields(&error);
    fields.sort();
    assert_eq!(fields, ["member_id", "pionts", "points"], "the read-only program is ignored: {error}");
    let unknown = error["details"].as_array().unwrap().iter().find(|d| d["field"] == "pionts").unwrap();
    assert_eq!(unknown["message"], "is not a member field (name, tier, points, locale, attributes)");
    // The member JSON, sent back as it was answered, is accepted.
    let member = app.create_member("M-2", &gold()).await;
    assert_eq!(app.put_member("M-2", &member).await.status(), 200);
}

/// Sends `request` as raw bytes on a new connection and answers (status, JSON body) of the first answer.
async fn raw_exchange(base: &str, request: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    // The server may answer and close before it has read everything; what it answered is what counts.
    let _ = conn.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(20), conn.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no answer head: {text:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{head}"));
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    (status, body)
}

#[tokio::test]
async fn heads_the_server_refuses_get_the_json_error_too() {
    let app = spawn_app().await;
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(), 414, "uri-too-long"),
        (format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(140_000)).into_bytes(), 414, "uri-too-long"),
        (
            format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(140_000)).into_bytes(),
            431,
            "headers-too-large",
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..120).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
            )
            .into_bytes(),
            431,
            "headers-too-large",
        ),
        (b"GARBAGE\x01\x02 nonsense\r\n\r\n".to_vec(), 400, "invalid-request"),
        // Only the start of a head, then nothing: the server stops waiting after 5 s.
        (b"GET /healthz HTTP/1.1\r\n".to_vec(), 408, "request-timeout"),
    ];
    for (request, status, code) in cases {
        let (got, body) = raw_exchange(&app.base, &request).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // The application's own answers are untouched, on the same kind of connection.
    let (status, body) =
        raw_exchange(&app.base, b"GET /api/v1/members/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
}

//! Per-client-address limits over HTTP: wrong admin and staff tokens (API and staff sign-in) and the
//! unauthenticated Wallet log endpoint. Clients on other loopback addresses (127.0.0.2, …) are other
//! addresses; behind a trusted proxy the client is the one X-Forwarded-For names.

use std::net::IpAddr;

use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, assert_error, spawn_app_with};
use crate::staff::STAFF_TOKEN;

/// A client whose requests come from `address` (a loopback address).
fn client_from(address: &str) -> reqwest::Client {
    let address: IpAddr = address.parse().unwrap();
    reqwest::Client::builder().local_address(address).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn get_member(client: &reqwest::Client, base: &str, token: &str) -> reqwest::Response {
    client.get(format!("{base}/api/v1/members/T-1")).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn wrong_tokens_from_one_address_get_429_and_other_addresses_are_untouched() {
    let app = spawn_app_with(&[("staff_token", STAFF_TOKEN)]).await;
    let guesser = client_from("127.0.0.2");
    for _ in 0..10 {
        assert_eq!(get_member(&guesser, &app.base, "wrong-token-0123456789").await.status(), 401);
    }
    // The eleventh wrong token is refused before it is looked at, and so is the right one from there.
    let refused = get_member(&guesser, &app.base, "wrong-token-0123456789").await;
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_error(refused, 429, "rate-limited").await;
    assert_eq!(get_member(&guesser, &app.base, ADMIN_TOKEN).await.status(), 429);
    // The staff token from the same address is refused too: one budget of failures per address.
    let scan = guesser
        .post(format!("{}/api/v1/scans", app.base))
        .bearer_auth(STAFF_TOKEN)
        .json(&json!({"barcode": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(scan.status(), 429);
    // Another address is not touched: its right token works and its wrong one is a plain 401.
    let other = client_from("127.0.0.3");
    assert_eq!(get_member(&other, &app.base, ADMIN_TOKEN).await.status(), 404, "T-1 does not exist");
    assert_eq!(get_member(&other, &app.base, "wrong-token-0123456789").await.status(), 401);
    // A missing token is no guess: it is never counted.
    let fresh = client_from("127.0.0.4");
    for _ in 0..15 {
        let answer = fresh.get(format!("{}/api/v1/members/T-1", app.base)).send().await.unwrap();
        assert_eq!(answer.status(), 401);
    }
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tessera_auth_failures_total 11"), "{metrics}");
    assert!(metrics.contains("tessera_address_limited_total 3"), "{metrics}");
}

#[tokio::test]
async fn staff_sign_ins_with_wrong_tokens_are_throttled_per_address() {
    let app = spawn_app_with(&[("staff_token", STAFF_TOKEN)]).await;
    let sign_in = |client: reqwest::Client, token: &'static str| {
        let url = format!("{}/staff/session", app.base);
        async move {
            client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={token}&lang=en"))
                .send()
                .await
                .unwrap()
        }
    };
    let guesser = client_from("127.0.0.5");
    for _ in 0..10 {
        let answer = sign_in(guesser.clone(), "not-the-staff-token").await;
        assert_eq!(answer.status(), 303);
        assert!(answer.headers()["location"].to_str().unwrap().contains("error=token"));
    }
    let refused = sign_in(guesser.clone(), STAFF_TOKEN).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "rate-limited").await;
    // Another address signs in.
    let answer = sign_in(client_from("127.0.0.6"), STAFF_TOKEN).await;
    assert_eq!(answer.status(), 303);
    assert!(answer.headers()["set-cookie"].to_str().unwrap().starts_with("tessera_staff="));
}

async fn post_log(
    client: &reqwest::Client,
    base: &str,
    lines: usize,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let logs: Vec<String> = (0..lines).map(|i| format!("line {i}")).collect();
    let mut request = client.post(format!("{base}/v1/log")).json(&json!({ "logs": logs }));
    if let Some(client_address) = forwarded_for {
        request = request.header("x-forwarded-for", format!("203.0.113.99, {client_address}"));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_wallet_log_caps_lines_and_bytes_per_address_a_minute() {
    let app = spawn_app_with(&[]).await;
    let device = client_from("127.0.0.7");
    for _ in 0..4 {
        assert_eq!(post_log(&device, &app.base, 25, None).await.status(), 200);
    }
    let refused = post_log(&device, &app.base, 1, None).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "rate-limited").await;
    // Without trusted proxies, X-Forwarded-For is the client's own word and changes nothing. (Asked at
    // once: the budget comes back at a line every 0.6 s.)
    assert_eq!(post_log(&device, &app.base, 1, Some("198.51.100.1")).await.status(), 429);
    // Bytes count too: three 30 KiB bodies of few lines pass the line cap but not the 64 KiB a minute.
    let big = client_from("127.0.0.8");
    let body = json!({ "logs": ["x".repeat(30 * 1024)] });
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(big.post(format!("{}/v1/log", app.base)).json(&body).send().await.unwrap().status().as_u16());
        }
        out
    };
    assert_eq!(statuses, [200, 200, 429]);
    // Another address is not touched.
    assert_eq!(post_log(&client_from("127.0.0.9"), &app.base, 100, None).await.status(), 200);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted() {
    let app = spawn_app_with(&[("trusted_proxies", "127.0.0.0/8, ::1")]).await;
    // Every request comes from the proxy (loopback); X-Forwarded-For's rightmost untrusted entry is
    // the client, whatever the client itself wrote to its left.
    let proxy = client_from("127.0.0.10");
    for _ in 0..4 {
        assert_eq!(post_log(&proxy, &app.base, 25, Some("198.51.100.1")).await.status(), 200);
    }
    assert_eq!(post_log(&proxy, &app.base, 1, Some("198.51.100.1")).await.status(), 429);
    assert_eq!(post_log(&proxy, &app.base, 1, Some("198.51.100.2")).await.status(), 200, "another client");
    let forged = proxy
        .post(format!("{}/v1/log", app.base))
        .header("x-forwarded-for", "198.51.100.50, 198.51.100.1, 127.0.0.1")
        .json(&json!({"logs": ["x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 429, "a trusted hop on the right is skipped; the client is still 198.51.100.1");
}

#[tokio::test]
async fn a_bad_trusted_proxies_setting_stops_the_server_with_its_name() {
    let err = tessera::settings::Settings::from_sources(
        Default::default(),
        vec![("TESSERA_TRUSTED_PROXIES".to_string(), "10.0.0.0/8, not-an-address".to_string())],
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("TESSERA_TRUSTED_PROXIES:") && text.contains("not-an-address"), "{text}");
}

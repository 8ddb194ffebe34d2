//! The staff page over HTTP: sign-in with the staff token into an HttpOnly SameSite cookie, the page's
//! scans authorized by the cookie and its CSRF token, sign-out. (The browser tests drive the same page in
//! Chromium.)

use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app_with};

pub const STAFF_TOKEN: &str = "test-staff-token-0123456789";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Signs in and answers the session cookie (`name=value`) and the page's CSRF token.
pub async fn sign_in(app: &TestApp) -> (String, String) {
    let client = no_redirects();
    let answer = client
        .post(format!("{}/staff/session", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={STAFF_TOKEN}&lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let set_cookie = answer.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "no Secure flag on plain http: {set_cookie}");
    assert!(!answer.headers()["location"].to_str().unwrap().contains(STAFF_TOKEN));
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let page = client.get(format!("{}/staff", app.base)).header("cookie", &cookie).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("id=\"scan-form\""), "{page}");
    let csrf = page
        .split("const BASE = ")
        .nth(1)
        .and_then(|r| r.split("CSRF = \"").nth(1))
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    (cookie, csrf)
}

async fn page_scan(app: &TestApp, cookie: Option<&str>, csrf: Option<&str>, barcode: &str) -> reqwest::Response {
    let mut req = app.client.post(format!("{}/staff/scan", app.base)).header("content-type", "application/json");
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    req.body(json!({ "barcode": barcode }).to_string()).send().await.unwrap()
}

#[tokio::test]
async fn staff_sign_in_with_the_token_then_scan_with_the_cookie_and_csrf_token() {
    let app = spawn_app_with(&[("staff_token", STAFF_TOKEN)]).await;
    app.create_member("P-1", &json!({"name": "Pat", "tier": "gold", "points": 30})).await;
    let signed_out = app.get(&format!("{}/staff", app.base)).await;
    assert!(signed_out.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    let signed_out = signed_out.text().await.unwrap();
    assert!(signed_out.contains("id=\"sign-in\"") && !signed_out.contains("scan-form"));

    // A wrong token: back to the sign-in with a message, no cookie.
    let wrong = no_redirects()
        .post(format!("{}/staff/session", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=nope&lang=th")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 303);
    assert!(wrong.headers().get("set-cookie").is_none());
    let again =
        app.get(&format!("{}{}", app.base, wrong.headers()["location"].to_str().unwrap())).await.text().await.unwrap();
    assert!(again.contains("รหัสพนักงานไม่ถูกต้อง"), "{again}");
    // Another site cannot sign a browser in.
    let cross = no_redirects()
        .post(format!("{}/staff/session", app.base))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={STAFF_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert!(cross.headers().get("set-cookie").is_none());

    let (cookie, csrf) = sign_in(&app).await;
    let found = page_scan(&app, Some(&cookie), Some(&csrf), "P-1").await;
    assert_eq!(found.status(), 200);
    let found: Value = found.json().await.unwrap();
    assert_eq!((found["name"].as_str(), found["points"].as_i64()), (Some("Pat"), Some(30)));
    assert_error(page_scan(&app, Some(&cookie), Some(&csrf), "NOBODY").await, 404, "not-found").await;
    assert_error(page_scan(&app, Some(&cookie), None, "P-1").await, 401, "unauthorized").await;
    assert_error(page_scan(&app, Some(&cookie), Some("0123"), "P-1").await, 401, "unauthorized").await;
    assert_error(page_scan(&app, None, Some(&csrf), "P-1").await, 401, "unauthorized").await;
    assert_error(page_scan(&app, Some("tessera_staff=9999999999.00"), Some(&csrf), "P-1").await, 401, "unauthorized")
        .await;

    // Sign out: the cookie is cleared.
    let out = no_redirects()
        .post(format!("{}/staff/signout", app.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("tessera_staff=;") && cleared.contains("Max-Age=0"), "{cleared}");
}

async fn page_redeem(app: &TestApp, cookie: Option<&str>, csrf: Option<&str>, code: &str) -> reqwest::Response {
    let mut req = app.client.post(format!("{}/staff/redeem", app.base)).header("content-type", "application/json");
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    req.header("accept-language", "th")
        .body(json!({ "code": code, "location": "Siam" }).to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_page_redeems_a_coupon_once_with_its_session_and_csrf_token_only() {
    let app = spawn_app_with(&[("staff_token", STAFF_TOKEN)]).await;
    app.create_member("P-2", &json!({"name": "Pim", "tier": "gold", "points": 30, "locale": "th"})).await;
    let (from, until) = crate::offers::window(-60, 3600);
    let offer = json!({"template": "free-drink", "valid_from": from, "valid_until": until});
    assert_eq!(crate::offers::put_offer(&app, "gift", &offer).await.status(), 201);
    assert_eq!(crate::offers::grant(&app, "gift", &["P-2"]).await.status(), 200);
    let code = crate::offers::coupons_of(&app, "P-2").await[0]["code"].as_str().unwrap().to_string();
    let (cookie, csrf) = sign_in(&app).await;

    assert_error(page_redeem(&app, None, Some(&csrf), &code).await, 401, "unauthorized").await;
    assert_error(page_redeem(&app, Some(&cookie), None, &code).await, 401, "unauthorized").await;
    assert_error(page_redeem(&app, Some(&cookie), Some("forged"), &code).await, 401, "unauthorized").await;
    assert_eq!(crate::offers::coupons_of(&app, "P-2").await[0]["state"], "active", "refused requests redeem nothing");

    let redeemed = page_redeem(&app, Some(&cookie), Some(&csrf), &code).await;
    assert_eq!(redeemed.status(), 200);
    let redeemed: Value = redeemed.json().await.unwrap();
    assert_eq!((redeemed["state"].as_str(), redeemed["redeemed_location"].as_str()), (Some("redeemed"), Some("Siam")));
    let again = assert_error(page_redeem(&app, Some(&cookie), Some(&csrf), &code).await, 409, "already-redeemed").await;
    assert_eq!(again["details"]["location"], "Siam");
    assert_error(page_redeem(&app, Some(&cookie), Some(&csrf), "not a code").await, 422, "validation-failed").await;
}

//! The staff page and the member page in real headless Chromium (browser.rs): sign in, look members up
//! by typing and with the camera (a QR code fed as a fake camera), both wallet badges and the QR image
//! on the member page, nothing loaded from another origin; phone-width screenshots under
//! target/screenshots/. Skipped, with a note, where Chromium is not installed.

use serde_json::json;

use crate::browser::{BrowserOptions, qr_y4m, start_browser};
use crate::google::spawn_app_with_google;
use crate::helpers::{TestApp, spawn_app_with};
use crate::staff::STAFF_TOKEN;

fn same_origin(urls: &[String], base: &str) {
    assert!(!urls.is_empty());
    for url in urls {
        assert!(url.starts_with(base), "{url} is not from {base}");
    }
}

async fn staff_app() -> TestApp {
    let app = spawn_app_with(&[("staff_token", STAFF_TOKEN)]).await;
    app.create_member("B-1001", &json!({"name": "สมชาย ใจดี", "tier": "gold", "points": 1250, "locale": "th"})).await;
    app.create_member("B-2002", &json!({"name": "Nguyễn Văn An", "tier": "platinum", "points": 52000})).await;
    app
}

async fn sign_in(browser: &crate::browser::Browser, app: &TestApp) {
    browser.goto(&format!("{}/staff?lang=en", app.base)).await;
    browser.type_into("#token", STAFF_TOKEN).await;
    browser.press_enter("#token").await;
    // Signed in: the scanner's form is there (text_of waits for it).
    assert!(browser.text_of("#scan-form").await.contains("Member card code"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_type_a_member_id_and_see_tier_balance_and_perks() {
    let app = staff_app().await;
    let Some(browser) =
        start_browser(BrowserOptions { accept_language: Some("en-US,en".into()), ..Default::default() }).await
    else {
        return;
    };
    browser.goto(&format!("{}/staff?lang=en", app.base)).await;
    // A wrong token first: a clear message, still signed out.
    browser.type_into("#token", "not-the-token").await;
    browser.press_enter("#token").await;
    browser.wait_for_text("#sign-in-error", "not right").await;
    sign_in(&browser, &app).await;
    // A USB scanner types the code and Enter.
    browser.type_into("#barcode", "B-2002").await;
    browser.press_enter("#barcode").await;
    browser.wait_for_text("#result-name", "Nguyễn Văn An").await;
    assert_eq!(browser.text_of("#result-tier").await, "Platinum");
    assert_eq!(browser.text_of("#result-points").await, "52,000");
    let perks = browser.text_of("#result-perks").await;
    assert!(perks.contains("Priority pick-up at the counter") && perks.contains("Free upsize"), "{perks}");
    assert!(browser.text_of("#result-state").await.contains("Active"));
    browser.wait_for_text("#recent", "B-2002").await;
    browser.screenshot("staff-scan").await;
    // A wrong id: a clear message, no card.
    browser.type_into("#barcode", "B-9999").await;
    browser.press_enter("#barcode").await;
    browser.wait_for_text("#message", "No card with this code").await;
    assert_eq!(browser.text_of("#result-name").await, "", "the previous card is hidden");
    same_origin(&browser.loaded_urls().await, &app.base);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_staff_page_decodes_a_qr_code_from_the_camera() {
    let app = staff_app().await;
    let video = tempfile::Builder::new().suffix(".y4m").tempfile().unwrap();
    qr_y4m("B-1001", video.path());
    let options = BrowserOptions {
        fake_camera: Some(video.path().to_path_buf()),
        accept_language: Some("th-TH,th".into()),
        ..Default::default()
    };
    let Some(browser) = start_browser(options).await else { return };
    browser.goto(&format!("{}/staff", app.base)).await;
    browser.type_into("#token", STAFF_TOKEN).await;
    browser.press_enter("#token").await;
    browser.click("#camera").await;
    browser.wait_for_text("#result-name", "สมชาย ใจดี").await;
    assert_eq!(browser.text_of("#result-tier").await, "โกลด์");
    assert!(browser.text_of("#result-perks").await.contains("อัปไซซ์ฟรีทุกแก้ว"));
    browser.screenshot("staff-scan-th").await;
    same_origin(&browser.loaded_urls().await, &app.base);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_page_shows_both_badges_and_the_qr_image_in_thai_and_vietnamese() {
    let g = spawn_app_with_google(&[]).await;
    let th =
        g.app.create_member("W-1", &json!({"name": "สมหญิง รักดี", "tier": "gold", "points": 1250, "locale": "th"})).await;
    let vi = g
        .app
        .create_member("W-2", &json!({"name": "Trần Thị Bình", "tier": "silver", "points": 800, "locale": "vi"}))
        .await;
    let Some(browser) = start_browser(BrowserOptions::default()).await else { return };
    for (member, name, shot) in [(&th, "สมหญิง รักดี", "member-th"), (&vi, "Trần Thị Bình", "member-vi")]
    {
        browser.goto(member["links"]["page"].as_str().unwrap()).await;
        browser.wait_for_text("main", name).await;
        assert!(browser.exists("#add-apple").await && browser.exists("#add-google").await);
        assert!(browser.exists("#barcode svg").await, "the card's barcode image");
        assert!(browser.exists("#desktop-qr svg").await, "the page's own QR code for desktops");
        let google = browser.eval("return document.querySelector('#add-google').href").await;
        assert!(google.as_str().unwrap().starts_with("https://pay.google.com/gp/v/save/"));
        same_origin(&browser.loaded_urls().await, &g.app.base);
        browser.screenshot(shot).await;
    }
    assert_eq!(
        browser.text_of("#add-google").await,
        "Thêm vào Google Wallet",
        "the last page was the Vietnamese member's"
    );
    browser.close().await;

    // On Android, Google Wallet comes first; elsewhere Apple Wallet.
    let android = BrowserOptions {
        user_agent: Some(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/148.0 Mobile Safari/537.36".into(),
        ),
        ..Default::default()
    };
    let Some(browser) = start_browser(android).await else { return };
    browser.goto(th["links"]["page"].as_str().unwrap()).await;
    let order = "return document.querySelector('#add-google').getBoundingClientRect().top < document.querySelector('#add-apple').getBoundingClientRect().top";
    assert_eq!(browser.eval(order).await, true, "Google first on Android");
    browser.close().await;
}

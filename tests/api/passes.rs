//! The member's links: the signed .pkpass, the page, unguessable links; and passes under another CA.

use serde_json::{Value, json};

use crate::helpers::{assert_error, make_ca, openssl_verify, pass_json, repo, spawn_app, spawn_app_with, tessera};

#[tokio::test]
async fn the_pass_downloads_signed_and_verifies_with_openssl_and_inspect() {
    let app = spawn_app().await;
    let member = app
        .create_member("M-1001", &json!({"name": "สมชาย ใจดี", "tier": "gold", "points": 1250, "locale": "th"}))
        .await;
    let (headers, bytes, files) = app.download_pass(&member).await;

    assert_eq!(headers["content-type"], "application/vnd.apple.pkpass");
    assert_eq!(headers["content-disposition"], "attachment; filename=\"M-1001.pkpass\"");
    assert!(headers.contains_key("last-modified"));

    for required in [
        "pass.json",
        "manifest.json",
        "signature",
        "icon.png",
        "icon@2x.png",
        "icon@3x.png",
        "logo.png",
        "logo@2x.png",
        "logo@3x.png",
        "strip.png",
        "strip@2x.png",
        "strip@3x.png",
    ] {
        assert!(files.contains_key(required), "{required} is in the pass");
    }
    let pass = pass_json(&files);
    assert_eq!(pass["passTypeIdentifier"], "pass.com.example.tessera");
    assert_eq!(pass["teamIdentifier"], "EXAMPLE123");
    assert_eq!(pass["serialNumber"], member["apple"]["serial_number"]);
    assert!(pass["authenticationToken"].as_str().unwrap().len() >= 32);
    assert_eq!(pass["webServiceURL"], app.base.as_str());
    assert_eq!(pass["barcodes"][0]["message"], "M-1001");
    assert_eq!(pass["barcodes"][0]["format"], "PKBarcodeFormatQR");
    let primary = &pass["storeCard"]["primaryFields"][0];
    assert_eq!(primary["value"], 1250);
    assert_eq!(primary["label"], "points.label");
    let secondary = pass["storeCard"]["secondaryFields"].as_array().unwrap();
    assert!(secondary.iter().any(|f| f["value"] == "สมชาย ใจดี"));
    assert!(secondary.iter().any(|f| f["value"] == "tier.gold"));
    assert!(pass["storeCard"]["auxiliaryFields"].as_array().unwrap().iter().any(|f| f["value"] == "M-1001"));
    assert!(pass["storeCard"]["backFields"].as_array().unwrap().iter().any(|f| f["value"] == "terms.text"));

    // The manifest covers every other file with its lowercase SHA-1.
    let manifest: serde_json::Map<String, Value> = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest.len(), files.len() - 2);
    for (name, data) in &files {
        if name != "manifest.json" && name != "signature" {
            assert_eq!(manifest[name], hex::encode(openssl::sha::sha1(data)), "{name}");
        }
    }

    assert!(
        openssl_verify(&files, &repo().join("certs-example/root.pem")),
        "openssl smime -verify accepts the signature"
    );

    let path = app.dir.path().join("M-1001.pkpass");
    std::fs::write(&path, &bytes).unwrap();
    let out = tessera(&["inspect", path.to_str().unwrap()], app.dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "inspect passes: {stdout}");
    assert!(stdout.contains("0 error(s)"), "{stdout}");
    assert!(stdout.contains("root other than Apple's"), "the development chain is a warning: {stdout}");
}

#[tokio::test]
async fn th_and_vi_localizations_ship_with_every_key() {
    let app = spawn_app().await;
    let member = app
        .create_member("M-loc", &json!({"name": "Trần Thị Hoa", "tier": "silver", "points": 5, "locale": "vi"}))
        .await;
    let (_, _, files) = app.download_pass(&member).await;
    let parse = |locale: &str| -> std::collections::BTreeMap<String, String> {
        let raw = files
            .get(&format!("{locale}.lproj/pass.strings"))
            .unwrap_or_else(|| panic!("{locale}.lproj is in the pass"));
        tessera::templates::parse_strings(std::str::from_utf8(raw).expect("UTF-8")).unwrap().into_iter().collect()
    };
    let (en, th, vi) = (parse("en"), parse("th"), parse("vi"));
    assert_eq!(en.keys().collect::<Vec<_>>(), th.keys().collect::<Vec<_>>());
    assert_eq!(en.keys().collect::<Vec<_>>(), vi.keys().collect::<Vec<_>>());
    assert_eq!(th["points.label"], "คะแนน");
    assert_eq!(vi["tier.gold"], "Vàng");
    for strings in [&en, &th, &vi] {
        assert!(strings["points.change"].contains("%@"));
        assert!(strings["tier.change"].contains("%@"));
    }
    // Every string key the pass uses is defined.
    let pass = pass_json(&files);
    for group in ["primaryFields", "secondaryFields", "auxiliaryFields", "backFields"] {
        for field in pass["storeCard"][group].as_array().unwrap() {
            for key in ["label", "changeMessage"] {
                if let Some(k) = field[key].as_str() {
                    assert!(th.contains_key(k) && vi.contains_key(k), "{k}");
                }
            }
        }
    }
}

#[tokio::test]
async fn a_tier_change_shows_the_new_design_and_keeps_serial_and_token() {
    let app = spawn_app().await;
    let member = app.create_member("M-tier", &json!({"name": "A", "tier": "gold", "points": 100})).await;
    let (before_headers, _, before) = app.download_pass(&member).await;
    let gold_strip = std::fs::read(repo().join("templates/default/tiers/gold/strip.png")).unwrap();
    assert_eq!(before["strip.png"], gold_strip);

    let updated: Value =
        app.put_member("M-tier", &json!({"name": "A", "tier": "platinum", "points": 5000})).await.json().await.unwrap();
    let (after_headers, _, after) = app.download_pass(&updated).await;
    let platinum_strip = std::fs::read(repo().join("templates/default/tiers/platinum/strip@2x.png")).unwrap();
    assert_eq!(after["strip@2x.png"], platinum_strip);
    let (b, a) = (pass_json(&before), pass_json(&after));
    assert_eq!(a["backgroundColor"], "rgb(36, 40, 56)");
    assert_ne!(a["backgroundColor"], b["backgroundColor"]);
    assert_eq!(a["storeCard"]["primaryFields"][0]["value"], 5000);
    assert_eq!(a["serialNumber"], b["serialNumber"]);
    assert_eq!(a["authenticationToken"], b["authenticationToken"]);

    let lm = |h: &reqwest::header::HeaderMap| {
        tessera::time_fmt::parse_http_date(h["last-modified"].to_str().unwrap()).unwrap()
    };
    assert!(lm(&after_headers) > lm(&before_headers), "every change moves Last-Modified by at least a second");
}

#[tokio::test]
async fn if_modified_since_answers_304_until_the_pass_changes() {
    let app = spawn_app().await;
    let member = app.create_member("M-304", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    let url = member["links"]["apple"].as_str().unwrap();
    let (headers, _, _) = app.download_pass(&member).await;
    let last_modified = headers["last-modified"].to_str().unwrap().to_string();
    let cached = app.client.get(url).header("if-modified-since", &last_modified).send().await.unwrap();
    assert_eq!(cached.status(), 304);
    let garbage = app.client.get(url).header("if-modified-since", "not a date").send().await.unwrap();
    assert_eq!(garbage.status(), 200);
    app.put_member("M-304", &json!({"name": "A", "tier": "gold", "points": 2})).await;
    let changed = app.client.get(url).header("if-modified-since", &last_modified).send().await.unwrap();
    assert_eq!(changed.status(), 200);
}

#[tokio::test]
async fn tampered_or_guessed_links_are_404() {
    let app = spawn_app().await;
    let member = app.create_member("M-link", &json!({"name": "A", "tier": "gold", "points": 1})).await;
    let page = member["links"]["page"].as_str().unwrap().to_string();
    let apple = member["links"]["apple"].as_str().unwrap().to_string();
    let public_id = page.rsplit('/').next().unwrap().to_string();
    assert!(public_id.len() >= 22, "at least 128 random bits");

    let mut tampered = public_id.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for url in [
        apple.replace(&public_id, &tampered),
        page.replace(&public_id, &tampered),
        format!("{}/m/M-link/pass.pkpass", app.base),
        format!("{}/m/M-link", app.base),
        format!("{}/m/{}", app.base, "x".repeat(500)),
        format!("{}/m/%FF%FE/pass.pkpass", app.base),
    ] {
        assert_error(app.get(&url).await, 404, "not-found").await;
    }
    assert_eq!(app.get(&apple).await.status(), 200);
}

#[tokio::test]
async fn the_page_is_localized_and_links_to_the_pass() {
    let app = spawn_app().await;
    let member = app
        .create_member("M-page", &json!({"name": "สมชาย <b>ใจดี</b>", "tier": "gold", "points": 1250, "locale": "th"}))
        .await;
    let page = app.get(member["links"]["page"].as_str().unwrap()).await;
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("lang=\"th\""));
    assert!(html.contains("เพิ่มไปยัง Apple Wallet"));
    let apple = member["links"]["apple"].as_str().unwrap();
    assert!(html.contains(&format!("href=\"{}\"", apple.replace('/', "&#x2f;"))), "{html}");
    assert!(html.contains("1,250"));
    assert!(html.contains("<svg"), "a QR code for desktops");
    assert!(
        html.contains("สมชาย &lt;b&gt;ใจดี&lt;&#x2f;b&gt;") || html.contains("สมชาย &lt;b&gt;ใจดี&lt;/b&gt;"),
        "names are escaped"
    );

    app.delete_member("M-page").await;
    let retired = app.get(member["links"]["page"].as_str().unwrap()).await.text().await.unwrap();
    assert!(retired.contains("บัตรนี้ถูกยกเลิกแล้ว"));
    let (_, _, files) = app.download_pass(&member).await;
    assert_eq!(pass_json(&files)["voided"], true, "a retired member's pass is voided");
}

#[tokio::test]
async fn another_cas_certificate_signs_with_its_own_identifiers() {
    let ca = tempfile::tempdir().unwrap();
    make_ca(ca.path(), "pass.org.other.loyalty", "OTHERTEAM9");
    let p = |f: &str| ca.path().join(f).display().to_string();
    let (cert, key, wwdr) = (p("pass.pem"), p("pass.key"), p("wwdr.pem"));
    let app = spawn_app_with(&[("apple_cert", &cert), ("apple_key", &key), ("apple_wwdr", &wwdr)]).await;
    let member = app.create_member("M-other", &json!({"name": "A", "tier": "silver", "points": 7})).await;
    let (_, bytes, files) = app.download_pass(&member).await;
    let pass = pass_json(&files);
    assert_eq!(pass["passTypeIdentifier"], "pass.org.other.loyalty");
    assert_eq!(pass["teamIdentifier"], "OTHERTEAM9");
    assert!(openssl_verify(&files, &ca.path().join("root.pem")), "verifies against its own CA");
    assert!(!openssl_verify(&files, &repo().join("certs-example/root.pem")), "and not against the example CA");

    let path = app.dir.path().join("other.pkpass");
    std::fs::write(&path, &bytes).unwrap();
    let out = tessera(&["inspect", path.to_str().unwrap()], app.dir.path(), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test]
async fn inspect_names_pass_json_when_one_byte_changed() {
    let app = spawn_app().await;
    let member = app.create_member("M-tamper", &json!({"name": "A", "tier": "gold", "points": 1250})).await;
    let (_, _, mut files) = app.download_pass(&member).await;
    let pass = files.get_mut("pass.json").unwrap();
    let at = pass.windows(4).position(|w| w == b"1250").unwrap();
    pass[at] = b'9';

    let path = app.dir.path().join("tampered.pkpass");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for (name, data) in &files {
        writer
            .start_file(
                name.as_str(),
                zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
            )
            .unwrap();
        std::io::Write::write_all(&mut writer, data).unwrap();
    }
    writer.finish().unwrap();

    let out = tessera(&["inspect", path.to_str().unwrap()], app.dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("error: pass.json:") && l.contains("manifest")), "{stdout}");
}

/// Every pass the server hands out, for every tier and locale and again after a points change (so the
/// per-identity SignedData is filled in for a second message digest), verifies with `openssl smime
/// -verify` and passes `tessera inspect`, from the member link and from Apple's web service.
#[tokio::test]
async fn every_served_pass_verifies_with_openssl_and_inspect() {
    let app = spawn_app().await;
    let root = repo().join("certs-example/root.pem");
    let check = |what: String, bytes: Vec<u8>| {
        let files = crate::helpers::unzip(&bytes);
        assert!(openssl_verify(&files, &root), "{what}: openssl smime -verify refuses the signature");
        let path = app.dir.path().join(format!("{}.pkpass", what.replace([' ', '/'], "_")));
        std::fs::write(&path, &bytes).unwrap();
        let out = tessera(&["inspect", path.to_str().unwrap()], app.dir.path(), &[]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success() && stdout.contains("0 error(s)"), "{what}: inspect: {stdout}");
        files
    };
    for tier in ["silver", "gold", "platinum"] {
        for locale in ["en", "th", "vi"] {
            let id = format!("SIG-{tier}-{locale}");
            let body = json!({"name": "Somchai", "tier": tier, "points": 10, "locale": locale});
            let member = app.create_member(&id, &body).await;
            let (_, first, _) = app.download_pass(&member).await;
            let files = check(format!("{id} new"), first);
            let pass = pass_json(&files);
            let changed = json!({"name": "Somchai", "tier": tier, "points": 99_999, "locale": locale});
            assert_eq!(app.put_member(&id, &changed).await.status(), 200);
            let (_, again, _) = app.download_pass(&member).await;
            let files = check(format!("{id} changed"), again);
            assert_eq!(pass_json(&files)["storeCard"]["primaryFields"][0]["value"], 99_999);
            // The same pass from the web service, as a device fetches it after a push.
            let latest = app
                .client
                .get(format!(
                    "{}/v1/passes/{}/{}",
                    app.base,
                    pass["passTypeIdentifier"].as_str().unwrap(),
                    pass["serialNumber"].as_str().unwrap()
                ))
                .header("authorization", format!("ApplePass {}", pass["authenticationToken"].as_str().unwrap()))
                .send()
                .await
                .unwrap();
            assert_eq!(latest.status(), 200);
            check(format!("{id} web service"), latest.bytes().await.unwrap().to_vec());
        }
    }
}

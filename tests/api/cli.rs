//! The built binary: --help, a bad setting, secrets, doctor, and serve on its defaults.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{copy_dir, make_ca, repo, tessera};

/// A scratch working directory laid out like a checkout: templates/ and certs-example/ (relative
/// defaults resolve against it), and nothing else.
fn checkout_like() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("templates"), dir.path().join("templates")).unwrap();
    std::os::unix::fs::symlink(repo().join("certs-example"), dir.path().join("certs-example")).unwrap();
    dir
}

#[test]
fn help_lists_every_command() {
    let out = tessera(&["--help"], &repo(), &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["serve", "migrate", "secrets", "doctor", "inspect"] {
        assert!(text.contains(command), "{command} in {text}");
    }
}

#[test]
fn a_bad_setting_stops_with_one_sentence_naming_it() {
    let dir = checkout_like();
    let out = tessera(&["serve"], dir.path(), &[("TESSERA_LISTEN", "nowhere")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TESSERA_LISTEN") && stderr.contains("host:port"), "{stderr}");

    std::fs::write(dir.path().join("tessera.toml"), "pubic_url = \"https://x\"\n").unwrap();
    let out = tessera(&["serve"], dir.path(), &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key `pubic_url`"));
}

#[test]
fn secrets_are_generated_once_and_kept_in_the_database() {
    let dir = checkout_like();
    let first = tessera(&["secrets"], dir.path(), &[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let second = tessera(&["secrets"], dir.path(), &[]);
    let (a, b) = (String::from_utf8_lossy(&first.stdout), String::from_utf8_lossy(&second.stdout));
    assert_eq!(a, b);
    for name in ["admin_token", "webhook_secret", "staff_token"] {
        assert!(a.contains(name), "{a}");
    }
    assert!(dir.path().join("tessera.db").exists(), "the default SQLite file is created in the working directory");
    let set = tessera(&["secrets"], dir.path(), &[("TESSERA_ADMIN_TOKEN", "from-the-environment-123")]);
    assert!(String::from_utf8_lossy(&set.stdout).contains("from-the-environment-123  (from TESSERA_ADMIN_TOKEN)"));
}

#[test]
fn doctor_passes_on_the_example_set_and_names_what_is_wrong() {
    let dir = checkout_like();
    let ok = tessera(&["doctor"], dir.path(), &[]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(text.contains("0 error(s)"), "{text}");
    assert!(text.contains("not Apple's"), "{text}");
    assert!(text.contains("Google Wallet is not configured"), "{text}");

    // A key that belongs to another certificate.
    let other = tempfile::tempdir().unwrap();
    make_ca(other.path(), "pass.org.other", "OTHER1");
    let key = other.path().join("pass.key");
    let bad = tessera(&["doctor"], dir.path(), &[("TESSERA_APPLE_KEY", key.to_str().unwrap())]);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(text.contains("TESSERA_APPLE_KEY does not belong to TESSERA_APPLE_CERT"), "{text}");

    // A certificate from another CA than the configured intermediate.
    let cert = other.path().join("pass.pem");
    let bad = tessera(
        &["doctor"],
        dir.path(),
        &[("TESSERA_APPLE_CERT", cert.to_str().unwrap()), ("TESSERA_APPLE_KEY", key.to_str().unwrap())],
    );
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(text.contains("was not issued by TESSERA_APPLE_WWDR"), "{text}");

    // A .p12 given where PEM is expected gets the conversion command.
    let p12_path = other.path().join("bundle.p12");
    let pem = std::fs::read(&cert).unwrap();
    let key_pem = std::fs::read(&key).unwrap();
    let p12 = openssl::pkcs12::Pkcs12::builder()
        .name("pass")
        .pkey(&openssl::pkey::PKey::private_key_from_pem(&key_pem).unwrap())
        .cert(&openssl::x509::X509::from_pem(&pem).unwrap())
        .build2("pw")
        .unwrap();
    std::fs::write(&p12_path, p12.to_der().unwrap()).unwrap();
    let bad = tessera(&["doctor"], dir.path(), &[("TESSERA_APPLE_CERT", p12_path.to_str().unwrap())]);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(text.contains("openssl pkcs12 -legacy"), "{text}");
}

#[test]
fn doctor_names_a_broken_template_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("certs-example"), dir.path().join("certs-example")).unwrap();
    copy_dir(&repo().join("templates"), &dir.path().join("templates"));
    let page = dir.path().join("templates/default/page.html");
    let text = std::fs::read_to_string(&page).unwrap().replacen("{% endif %}", "{% endiff %}", 1);
    std::fs::write(&page, text).unwrap();
    let out = tessera(&["doctor"], dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("templates/default/page.html line "), "{stdout}");

    let serve = tessera(&["serve"], dir.path(), &[("TESSERA_LISTEN", "127.0.0.1:0")]);
    assert!(!serve.status.success());
    assert!(String::from_utf8_lossy(&serve.stderr).contains("page.html line "));
}

#[test]
fn serve_runs_on_its_defaults_in_a_checkout() {
    let dir = checkout_like();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .current_dir(dir.path())
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .env_remove("TESSERA_DATABASE_URL")
        .env_remove("TESSERA_CONFIG")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut address = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("address=").nth(1) {
            address = Some(
                rest.split_whitespace()
                    .next()
                    .unwrap()
                    .trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ':')
                    .to_string(),
            );
            break;
        }
        assert!(Instant::now() < deadline, "serve did not start");
    }
    let address = address.expect("serve logs its address");
    let health = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://{address}/healthz")])
        .output()
        .unwrap();
    // SIGTERM: requests and the push round in flight finish, then a clean exit.
    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
    assert_eq!(String::from_utf8_lossy(&health.stdout), "200");
    assert!(dir.path().join("tessera.db").exists());
}

/// Runs `tessera <args>` in `dir` with `env`, and answers its exit code and stderr once it exits; fails
/// if it is still running after 30 s (a `serve` that should have refused to start).
fn exits_within_30s(args: &[&str], dir: &std::path::Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1").stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tessera {args:?} with {env:?} was still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

#[test]
fn an_unknown_tessera_variable_stops_serve_with_the_closest_name() {
    let dir = checkout_like();
    let env = [("TESSERA_LISTEN", "127.0.0.1:0"), ("TESSERA_PUBLICURL", "https://wallet.example")];
    let (code, stderr) = exits_within_30s(&["serve"], dir.path(), &env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("TESSERA_PUBLICURL") && stderr.contains("TESSERA_PUBLIC_URL"), "{stderr}");
}

#[test]
fn doctor_never_prints_a_database_password() {
    let dir = checkout_like();
    // Nothing listens on port 1: doctor reports the database it cannot open, naming it.
    let url = "postgres://u:pw@127.0.0.1:1/tessera?sslmode=disable&password=secret2";
    let out = tessera(&["doctor"], dir.path(), &[("TESSERA_DATABASE_URL", url)]);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("TESSERA_DATABASE_URL: cannot open postgres://u:***@127.0.0.1:1/tessera"), "{text}");
    assert!(!text.contains("secret2") && !text.contains(":pw@"), "{text}");
}

/// A copy of the bundled templates in `dir`/templates with `edit` applied to the default program's
/// pass.json.
fn templates_with_pass_json(dir: &std::path::Path, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let templates = dir.join("templates");
    copy_dir(&repo().join("templates"), &templates);
    let pass = templates.join("default/pass.json");
    let before = std::fs::read_to_string(&pass).unwrap();
    let after = edit(before.clone());
    assert_ne!(before, after, "the edit changes pass.json");
    std::fs::write(&pass, after).unwrap();
    templates
}

#[test]
fn doctor_names_the_fields_that_change_without_a_change_message() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("certs-example"), dir.path().join("certs-example")).unwrap();
    let templates = templates_with_pass_json(dir.path(), |text| {
        text.replace(",\n        \"changeMessage\": \"points.change\"", "")
    });
    // Loading checks the default language's messages; a translation without %@ is doctor's to find.
    let thai = templates.join("default/th.lproj/pass.strings");
    let strings = std::fs::read_to_string(&thai).unwrap();
    let (start, _) = strings.match_indices("\"tier.change\" = \"").next().expect("th has tier.change");
    let end = start + strings[start..].find(";").unwrap();
    std::fs::write(&thai, format!("{}\"tier.change\" = \"ระดับเปลี่ยนแล้ว\"{}", &strings[..start], &strings[end..]))
        .unwrap();
    let out = tessera(&["doctor"], dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "warnings only: {stdout}");
    let silent = |field: &str, change: &str| {
        stdout.lines().any(|l| {
            l.trim_start().starts_with("warning:") && l.contains(field) && l.contains(change) && l.contains("%@")
        })
    };
    assert!(silent("storeCard.primaryFields[0] (points)", "points"), "{stdout}");
    assert!(silent("storeCard.secondaryFields[1] (tier)", "th.lproj/pass.strings"), "{stdout}");

    let checkout = checkout_like();
    let quiet = tessera(&["doctor"], checkout.path(), &[]);
    let stdout = String::from_utf8_lossy(&quiet.stdout);
    assert!(quiet.status.success(), "{stdout}");
    assert!(!stdout.contains("changeMessage"), "the bundled program has every changeMessage: {stdout}");
}

#[tokio::test]
async fn inspect_warns_on_a_silent_balance_and_still_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let templates = templates_with_pass_json(dir.path(), |text| {
        text.replace(",\n        \"changeMessage\": \"points.change\"", "")
    });
    let app = crate::helpers::spawn_app_with(&[("templates_dir", templates.to_str().unwrap())]).await;
    let member = app.create_member("M-silent", &serde_json::json!({"name": "A", "tier": "gold", "points": 5})).await;
    let (_, bytes, _) = app.download_pass(&member).await;
    let path = dir.path().join("silent.pkpass");
    std::fs::write(&path, bytes).unwrap();
    let out = tessera(&["inspect", path.to_str().unwrap()], dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "a warning alone exits 0: {stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("warning: pass.json:") && l.contains("where Wallet shows the balance")),
        "{stdout}"
    );
}

//! The deployment documents cannot drift from the code: docs/tessera.service passes `systemd-analyze
//! verify`, docs/deploy.md names every metric tessera exports (and its alert rules only those), and
//! docs/tessera.toml.example sets only real settings, with values tessera accepts.

use std::collections::BTreeMap;
use std::process::Command;

use tessera::settings::{KEYS, Settings};

use crate::helpers::repo;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The metric names `/metrics` declares: the `# TYPE <name> <kind>` lines.
fn exported_metrics() -> Vec<String> {
    let metrics = tessera::metrics::Metrics::default();
    // With Google Wallet configured, its series too.
    metrics.google_enabled.store(1, std::sync::atomic::Ordering::Relaxed);
    let text = metrics.render();
    let names: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 10, "the render lists the metrics: {names:?}");
    names
}

/// Whether `text` has `word` with no identifier character right after it (so
/// `tessera_pushes_total` is not found inside `tessera_pushes_total_x`).
fn names_whole(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

#[test]
fn the_shipped_unit_keeps_its_production_paths_and_stop_timeout() {
    let unit = read("docs/tessera.service");
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for directive in [
        "User=tessera",
        "ExecStart=/usr/local/bin/tessera --config /etc/tessera/tessera.toml serve",
        "EnvironmentFile=-/etc/tessera/tessera.env",
        "WorkingDirectory=/var/lib/tessera",
        "StateDirectory=tessera",
        "ReadWritePaths=/var/lib/tessera",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "KillSignal=SIGTERM",
    ] {
        assert!(lines.contains(&directive), "docs/tessera.service lacks `{directive}`");
    }
    // `serve` lets requests in flight finish for up to 30 s (http::application), then the push round;
    // systemd must not SIGKILL it before that.
    let stop: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .expect("TimeoutStopSec is set")
        .parse()
        .expect("TimeoutStopSec in plain seconds");
    assert!(stop > 30, "TimeoutStopSec={stop} leaves no room for the 30 s drain");
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let Some(systemd_analyze) = crate::tools::require_tool("systemd-analyze", "the check of docs/tessera.service")
    else {
        return;
    };
    let unit = read("docs/tessera.service");
    // `verify` checks that ExecStart's binary exists, so the copy runs the binary cargo just built; the
    // shipped unit keeps /usr/local/bin/tessera. The copy keeps `User=tessera` too: verify does not
    // resolve User= (systemd does that when it starts the unit), so a machine without that user, like
    // this one, verifies the unit as shipped. Should a systemd version ever check it, the copy would
    // need `User=root` here while the shipped unit keeps its dedicated user.
    let shipped = "ExecStart=/usr/local/bin/tessera ";
    assert!(unit.contains(shipped), "docs/tessera.service starts {shipped}…");
    let binary = env!("CARGO_BIN_EXE_tessera");
    assert!(!binary.contains(char::is_whitespace), "the built binary's path needs no quoting: {binary}");
    let copy = unit.replace(shipped, &format!("ExecStart={binary} "));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.service");
    std::fs::write(&path, copy).unwrap();

    let out = Command::new(&systemd_analyze).arg("verify").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("systemd-analyze verify: exit {:?}, stderr: {stderr:?}", out.status.code());
    assert!(out.status.success(), "systemd-analyze verify failed: {stderr}");
    // verify exits 0 on an unknown directive or a value it cannot parse (it only logs "…, ignoring"),
    // so its messages are what tells.
    for complaint in ["Unknown key", "Unknown section", "Unknown lvalue"] {
        assert!(!stderr.contains(complaint), "systemd-analyze verify: {stderr}");
    }
    let about_ours: Vec<&str> = stderr.lines().filter(|l| l.contains(&*path.to_string_lossy())).collect();
    assert!(about_ours.is_empty(), "systemd-analyze verify has remarks on the unit: {about_ours:#?}");
}

#[test]
fn the_deploy_guide_names_every_exported_metric() {
    let guide = read("docs/deploy.md");
    let missing: Vec<String> = exported_metrics().into_iter().filter(|m| !names_whole(&guide, m)).collect();
    assert!(missing.is_empty(), "docs/deploy.md does not describe {missing:?}; add them to its metrics table");
}

#[test]
fn the_alert_rules_use_only_exported_metrics() {
    let guide = read("docs/deploy.md");
    // The ```yaml blocks: the scrape job and the Prometheus rules file.
    let blocks: Vec<&str> = guide
        .split("```yaml\n")
        .skip(1)
        .map(|rest| &rest[..rest.find("```").expect("a yaml block of docs/deploy.md ends")])
        .collect();
    assert!(
        blocks.iter().any(|b| b.contains("groups:") && b.contains("alert:")),
        "docs/deploy.md has the Prometheus alert rules as a ```yaml block"
    );
    let metrics = exported_metrics();
    let known = |name: &str| {
        metrics
            .iter()
            .any(|m| name == m || ["_bucket", "_sum", "_count"].iter().any(|suffix| name == format!("{m}{suffix}")))
    };
    let mut used = 0;
    for block in blocks {
        for (i, _) in block.match_indices("tessera_") {
            if block[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let name: String =
                block[i..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            assert!(known(&name), "docs/deploy.md's alert rules use `{name}`, which tessera does not export");
            used += 1;
        }
    }
    assert!(used > 0, "the alert rules query tessera's metrics");
}

#[test]
fn the_example_settings_file_sets_only_real_settings() {
    let text = read("docs/tessera.toml.example");
    let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("docs/tessera.toml.example is not TOML: {e}"));
    let is_key = |k: &str| KEYS.iter().any(|(key, _, _)| *key == k);

    // The settings it sets...
    let mut active = BTreeMap::new();
    for (key, value) in &table {
        assert!(is_key(key), "docs/tessera.toml.example sets `{key}`, which is not a setting (settings::KEYS)");
        let value = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            other => panic!("`{key}` = {other}: the example writes strings and whole numbers only"),
        };
        active.insert(key.clone(), value);
    }
    assert!(active.contains_key("public_url") && active.contains_key("database_url"), "{active:?}");
    // ...are values tessera accepts (no file is read: this checks the values, not the paths).
    if let Err(e) = Settings::from_sources(active, std::iter::empty()) {
        panic!("tessera refuses docs/tessera.toml.example: {e}");
    }

    // ...and the ones it shows commented out (`# key = value`) are settings written as TOML too.
    let mut commented = 0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# ") else { continue };
        let Some((key, _)) = rest.split_once(" = ") else { continue };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            continue;
        }
        let one: toml::Table = rest.parse().unwrap_or_else(|e| panic!("`{line}` is not a TOML setting: {e}"));
        assert!(one.contains_key(key), "{line}");
        assert!(is_key(key), "docs/tessera.toml.example shows `{key}`, which is not a setting (settings::KEYS)");
        commented += 1;
    }
    assert!(commented > 0, "the example shows the settings left at their defaults");
}

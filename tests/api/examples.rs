//! The README's "Integrating your backend" examples, run as written against the server: each code block
//! after a `<!-- tested: NAME -->` marker is written to a file and run with its interpreter.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, WEBHOOK_SECRET, repo, spawn_app};

struct Example {
    marker: &'static str,
    file: &'static str,
    interpreter: &'static str,
    /// Programs the example runs, checked on PATH first so a missing one fails by name.
    needs: &'static [&'static str],
}

const SH: Example = Example {
    marker: "webhook-sh",
    file: "send-event.sh",
    interpreter: "sh",
    needs: &["sh", "curl", "openssl", "awk"],
};
const PYTHON: Example =
    Example { marker: "webhook-python", file: "send_event.py", interpreter: "python3", needs: &["python3"] };
const NODE: Example = Example { marker: "webhook-node", file: "send-event.mjs", interpreter: "node", needs: &["node"] };

/// The variables the examples read; the test's own environment must not leak into them.
const VARIABLES: [&str; 6] = ["TESSERA_URL", "TESSERA_WEBHOOK_SECRET", "MEMBER_ID", "SEQUENCE", "POINTS", "TIER"];
const PROXIES: [&str; 6] = ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];

/// The indented code block after `<!-- tested: NAME -->` in README.md, without its indentation.
fn readme_block(marker: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let marker = format!("<!-- tested: {marker} -->");
    assert_eq!(readme.matches(&marker).count(), 1, "README.md has `{marker}` exactly once");
    let (_, after) = readme.split_once(&marker).unwrap();
    let lines: Vec<&str> = after
        .lines()
        .skip(1)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.trim().is_empty() || l.starts_with("    "))
        .collect();
    let code: Vec<&str> = lines.iter().map(|l| l.strip_prefix("    ").unwrap_or("")).collect();
    let code = code.join("\n").trim_end().to_string() + "\n";
    assert!(code.lines().count() > 5, "an indented code block follows `{marker}` in README.md: {code:?}");
    code
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

struct Run {
    output: Output,
    stdout: String,
    stderr: String,
}

impl Run {
    fn answer(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("the example prints the answer as JSON ({e}): {self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\nstdout: {}\nstderr: {}", self.output.status, self.stdout, self.stderr)
    }
}

impl Example {
    /// Writes the README's block to a file in `dir`, after checking that every program it needs is there.
    fn prepare(&self, dir: &Path) -> PathBuf {
        for program in self.needs {
            assert!(on_path(program), "`{program}` is not on PATH; the README's {} example needs it", self.marker);
        }
        let script = dir.join(self.file);
        std::fs::write(&script, readme_block(self.marker)).unwrap();
        script
    }

    /// Runs the example against `app`, signing with `secret`, with `vars` in its environment.
    async fn run(&self, script: &Path, app: &TestApp, secret: &str, vars: &[(&str, &str)]) -> Run {
        let mut cmd = tokio::process::Command::new(self.interpreter);
        cmd.arg(script).current_dir(script.parent().unwrap()).kill_on_drop(true);
        for name in VARIABLES.iter().chain(&PROXIES) {
            cmd.env_remove(name);
        }
        cmd.env("TESSERA_URL", &app.base).env("TESSERA_WEBHOOK_SECRET", secret).envs(vars.iter().copied());
        let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("{} {} did not finish within 60 s", self.interpreter, self.file))
            .unwrap_or_else(|e| {
                panic!("cannot run {} ({e}); the README's {} example needs it", self.interpreter, self.marker)
            });
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        Run { output, stdout, stderr }
    }
}

async fn member(app: &TestApp, id: &str) -> (Value, Value) {
    let response = app.get_member(id).await;
    assert_eq!(response.status(), 200, "GET {id}");
    let member: Value = response.json().await.unwrap();
    (member["points"].clone(), member["tier"].clone())
}

fn results(id: &str, member_id: &str, status: &str) -> Value {
    json!({"results": [{"id": id, "member_id": member_id, "status": status}]})
}

/// As written: applied (the member is created with the README's values); the same run again: duplicate;
/// with the variables set from the environment: that event applies; with a wrong secret: 401 bad-signature
/// printed and a non-zero exit, and nothing changes.
async fn check(example: Example) {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let script = example.prepare(dir.path());

    let first = example.run(&script, &app, WEBHOOK_SECRET, &[]).await;
    assert!(first.output.status.success(), "{first}");
    assert_eq!(first.answer(), results("M-1001-1", "M-1001", "applied"), "{first}");
    assert_eq!(member(&app, "M-1001").await, (json!(2000), json!("platinum")));

    let again = example.run(&script, &app, WEBHOOK_SECRET, &[]).await;
    assert!(again.output.status.success(), "{again}");
    assert_eq!(again.answer(), results("M-1001-1", "M-1001", "duplicate"), "{again}");

    let vars = [("MEMBER_ID", "M-2002"), ("SEQUENCE", "7"), ("POINTS", "350"), ("TIER", "gold")];
    let next = example.run(&script, &app, WEBHOOK_SECRET, &vars).await;
    assert!(next.output.status.success(), "{next}");
    assert_eq!(next.answer(), results("M-2002-7", "M-2002", "applied"), "{next}");
    assert_eq!(member(&app, "M-2002").await, (json!(350), json!("gold")));

    let vars = [("MEMBER_ID", "M-2002"), ("SEQUENCE", "8"), ("POINTS", "9999"), ("TIER", "silver")];
    let wrong = example.run(&script, &app, "not-the-webhook-secret-0123456789", &vars).await;
    assert!(!wrong.output.status.success(), "a refused event exits non-zero: {wrong}");
    assert_eq!(wrong.answer()["error"]["code"], "bad-signature", "{wrong}");
    assert_eq!(member(&app, "M-2002").await, (json!(350), json!("gold")), "the refused event changed nothing");
}

#[tokio::test]
async fn the_readme_shell_example_signs_and_sends_an_event() {
    check(SH).await;
}

#[tokio::test]
async fn the_readme_python_example_signs_and_sends_an_event() {
    check(PYTHON).await;
}

#[tokio::test]
async fn the_readme_node_example_signs_and_sends_an_event() {
    assert!(on_path("node"), "`node` is not on PATH; the README's webhook-node example needs Node 18 or later");
    let version = tokio::process::Command::new("node").arg("--version").output().await.unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let major: u32 = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    assert!(
        major >= 18,
        "the README's Node example needs Node 18 or later (global fetch); node --version is {version:?}"
    );
    check(NODE).await;
}

//! Throwaway PostgreSQL clusters from the installed `postgresql` package, for the test suite and the
//! benchmarks: on a free port, as the `postgres` user when running as root (initdb refuses root). No
//! `crate::` paths here but `tools` (tools.rs), so benches can include these two files too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::Connection;

pub struct Cluster {
    /// `postgres://postgres@127.0.0.1:PORT`
    pub base: String,
    /// Holds the pipe whose closing (this process ending) stops the server.
    _guard: Mutex<Child>,
    _dir: tempfile::TempDir,
}

/// What a cluster needs from the installation.
const PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// The installed PostgreSQL's bin folder: where the `initdb` on PATH really is (Debian's /usr/bin has
/// none, and a link elsewhere leads to it), else the newest `/usr/lib/postgresql/<version>/bin`.
pub fn bin_dir() -> Option<PathBuf> {
    let complete = |dir: &PathBuf| PROGRAMS.iter().all(|p| dir.join(p).is_file());
    let on_path = super::tools::find_program("initdb")
        .and_then(|initdb| std::fs::canonicalize(initdb).ok())
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .filter(complete);
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(complete)
            .collect();
        versions.sort();
        versions.pop()
    })
}

/// The bin folder, under `tools::require`'s rules: a test without PostgreSQL says it is skipped, or
/// fails under CI=true. `what` names what does not run.
pub fn require_postgres(what: &str) -> Option<PathBuf> {
    super::tools::require(
        bin_dir(),
        "PostgreSQL (initdb, pg_ctl and postgres on PATH or in /usr/lib/postgresql/*/bin)",
        what,
    )
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command run as the `postgres` user when we are root.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Starts a cluster that lives as long as this process (it stops when the process exits, however it
/// exits); None when PostgreSQL is not installed.
pub fn start() -> Option<Cluster> {
    let bin = bin_dir()?;
    let dir = tempfile::Builder::new().prefix("tessera-pg").tempdir().ok()?;
    let data = dir.path().join("data");
    if is_root() {
        let _ = Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status();
    }
    let init = as_postgres(&bin.join("initdb"))
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions", "-D"])
        .arg(&data)
        .output()
        .expect("initdb runs");
    assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    // postgres runs as a child of a shell that stops it (fast shutdown) when its stdin closes, which
    // happens when this test binary exits, however it exits.
    let server = format!(
        "'{}' -D '{}' -p {port} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=400 -c shared_buffers=64MB & pid=$!; cat >/dev/null; kill -INT $pid; wait $pid",
        bin.join("postgres").display(),
        data.display(),
        dir.path().display()
    );
    let mut shell = Command::new("sh");
    if is_root() {
        shell = Command::new("runuser");
        shell.args(["-u", "postgres", "--", "sh"]);
    }
    let mut child = shell
        .args(["-c", &server])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("postgres starts");
    let base = format!("postgres://postgres@127.0.0.1:{port}");
    wait_until_ready(&base);
    let _ = child.stdin.as_mut().map(|s| s.flush());
    Some(Cluster { base, _guard: Mutex::new(child), _dir: dir })
}

fn wait_until_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("{base}/postgres");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    loop {
        if runtime.block_on(sqlx::PgConnection::connect(&url)).is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "PostgreSQL did not accept connections within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A new, empty database in the cluster at `base` (`postgres://user@host:port`); answers its URL.
pub async fn create_database(base: &str) -> String {
    let name = format!("t_{}", &hex::encode(openssl::sha::sha256(tessera::ids::random_token(16).as_bytes()))[..16]);
    let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres")).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    format!("{base}/{name}")
}

/// A cluster of a test's own, which it can stop and start again (to take the database away).
pub struct OwnCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnCluster {
    /// None when PostgreSQL is not installed.
    pub fn start() -> Option<OwnCluster> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new().prefix("tessera-pg-own").tempdir().ok()?;
        if is_root() {
            let _ = Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status();
        }
        let init = as_postgres(&bin.join("initdb"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions", "-D"])
            .arg(dir.path().join("data"))
            .output()
            .expect("initdb runs");
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let cluster = OwnCluster { bin, dir, port };
        cluster.up();
        Some(cluster)
    }

    /// Turns TLS on with `cert` and `key` (PEM) and refuses every connection over TCP without it, then
    /// restarts the server.
    pub fn require_tls(&self, cert: &Path, key: &Path) {
        let data = self.dir.path().join("data");
        std::fs::copy(cert, data.join("server.crt")).unwrap();
        std::fs::copy(key, data.join("server.key")).unwrap();
        let mut conf = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap();
        writeln!(conf, "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'").unwrap();
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        if is_root() {
            let _ = Command::new("chown").args(["-R", "postgres"]).arg(&data).status();
        }
        let _ = Command::new("chmod").arg("600").arg(data.join("server.key")).status();
        self.down();
        self.up();
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let out = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("log"))
            .args(args)
            .output()
            .expect("pg_ctl runs");
        assert!(out.status.success(), "pg_ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts the server and waits until it accepts connections.
    pub fn up(&self) {
        self.pg_ctl(&["-w", "start"]);
        wait_until_ready(&format!("postgres://postgres@127.0.0.1:{}", self.port));
    }

    /// Stops the server (fast shutdown: open connections are cut).
    pub fn down(&self) {
        self.pg_ctl(&["-w", "-m", "fast", "stop"]);
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

//! `tessera serve` as a child process: started with a given environment, its address read from its
//! log, killed when dropped. No `crate::` paths, so benches can include this file too.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tessera serve` on a free port with the given environment; answers once it listens.
pub fn start(env: &[(&str, String)]) -> Server {
    start_logging(env, "address=")
}

/// Starts `tessera serve` and answers once a log line contains `marker`; the server's address is read
/// from an `address=` in that line when there is one.
pub fn start_logging(env: &[(&str, String)], marker: &'static str) -> Server {
    // Benches may compare another build of the same commands (benches/postgres.rs); the suite never sets it.
    let binary = std::env::var_os("BENCH_TESSERA_BINARY").unwrap_or_else(|| env!("CARGO_BIN_EXE_tessera").into());
    let mut cmd = Command::new(binary);
    cmd.arg("serve").current_dir(env!("CARGO_MANIFEST_DIR")).env("NO_COLOR", "1").stderr(Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains(marker) {
                let address = line.split("address=").nth(1).and_then(|r| r.split_whitespace().next());
                let _ = tx.send(address.unwrap_or("").to_string());
                sent = true;
            }
        }
    });
    let address = rx.recv_timeout(Duration::from_secs(30)).expect("serve logs that it started");
    Server { child, base: format!("http://{address}") }
}

/// A loopback address nothing listens on yet (another program could take it first; unlikely here).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

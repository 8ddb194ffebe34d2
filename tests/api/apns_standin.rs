//! A stand-in for APNs: a real HTTP/2 server over TLS on 127.0.0.1 that requires a client certificate
//! (or, in token mode, a valid ES256 provider token), records every push, and answers by device token: a
//! scripted list of answers for a token if one was given, else by prefix (`410…` Unregistered, `400…`
//! BadDeviceToken, `429…`, `503…`, `403…`), else 200. Self-contained, so benches can include it too.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use openssl::ssl::{AlpnError, SslAcceptor, SslMethod, SslVerifyMode};
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, SubjectAlternativeName};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509NameBuilder};

#[derive(Debug, Clone)]
pub struct Push {
    pub token: String,
    pub topic: Option<String>,
    pub push_type: Option<String>,
    pub authorization: Option<String>,
    pub body: String,
    pub path: String,
    /// The client certificate's subject, as OpenSSL prints it.
    pub client_subject: String,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    pushes: Vec<Push>,
    scripts: HashMap<String, VecDeque<(u16, &'static str)>>,
    /// Answers for these tokens are held back this long (a push in flight).
    delays: HashMap<String, Duration>,
    /// Token mode: the provider token must verify with this key.
    token_key: Option<PKey<Public>>,
}

/// A TLS server certificate for 127.0.0.1 and its CA, written to `dir`: ca.pem, server.pem, server.key.
pub fn make_server_cert(dir: &Path) {
    let rsa = || PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let name = |cn: &str| {
        let mut b = X509NameBuilder::new().unwrap();
        b.append_entry_by_text("CN", cn).unwrap();
        b.build()
    };
    let (ca_key, key) = (rsa(), rsa());
    let mut ca = X509::builder().unwrap();
    ca.set_version(2).unwrap();
    ca.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap()).unwrap();
    ca.set_subject_name(&name("Stand-in APNs CA")).unwrap();
    ca.set_issuer_name(&name("Stand-in APNs CA")).unwrap();
    ca.set_pubkey(&ca_key).unwrap();
    ca.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    ca.set_not_after(&Asn1Time::days_from_now(30).unwrap()).unwrap();
    ca.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
    ca.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let ca = ca.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(2).unwrap().to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(&name("127.0.0.1")).unwrap();
    b.set_issuer_name(ca.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap()).unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .build(&b.x509v3_context(Some(&ca), None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap()).unwrap();
    b.sign(&ca_key, MessageDigest::sha256()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("server.pem"), b.build().to_pem().unwrap()).unwrap();
    std::fs::write(dir.join("server.key"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();
}

pub struct StandIn {
    /// The URL to give TESSERA_APNS_URL.
    pub url: String,
    /// The PEM root to give TESSERA_APNS_CA.
    pub ca_path: PathBuf,
    state: Arc<Mutex<State>>,
    _dir: Option<tempfile::TempDir>,
}

impl StandIn {
    /// Starts on a free port, trusting client certificates that chain to `client_roots`.
    pub async fn start(client_roots: &[&Path]) -> StandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        make_server_cert(dir.path());
        Self::serve(listener, client_roots, dir.path().to_path_buf(), Some(dir))
    }

    /// Token mode: no client certificate; every push must carry a provider token that verifies with `key`.
    pub async fn start_token_mode(key: PKey<Public>) -> StandIn {
        let standin = Self::start(&[]).await;
        standin.state.lock().unwrap().token_key = Some(key);
        standin
    }

    /// Starts on a given address with the server certificate in `cert_dir` (made by
    /// `helpers::make_server_cert`): the crash test brings APNs back where the server expects it.
    pub async fn start_on(addr: SocketAddr, client_roots: &[&Path], cert_dir: &Path) -> StandIn {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, client_roots, cert_dir.to_path_buf(), None)
    }

    fn serve(
        listener: tokio::net::TcpListener,
        client_roots: &[&Path],
        cert_dir: PathBuf,
        owned: Option<tempfile::TempDir>,
    ) -> StandIn {
        let dir = cert_dir;
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        acceptor.set_certificate_file(dir.join("server.pem"), openssl::ssl::SslFiletype::PEM).unwrap();
        acceptor.set_private_key_file(dir.join("server.key"), openssl::ssl::SslFiletype::PEM).unwrap();
        acceptor.set_alpn_select_callback(|_, client| {
            openssl::ssl::select_next_proto(b"\x02h2", client).ok_or(AlpnError::NOACK)
        });
        let mut store = X509StoreBuilder::new().unwrap();
        for root in client_roots {
            store.add_cert(X509::from_pem(&std::fs::read(root).unwrap()).unwrap()).unwrap();
        }
        acceptor.set_verify_cert_store(store.build()).unwrap();
        if client_roots.is_empty() {
            acceptor.set_verify(SslVerifyMode::NONE);
        } else {
            acceptor.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        }
        let acceptor = Arc::new(acceptor.build());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let listener_port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let acceptor = acceptor.clone();
                let state = shared.clone();
                tokio::spawn(async move {
                    let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
                    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
                    if std::pin::Pin::new(&mut tls).accept().await.is_err() {
                        return;
                    }
                    let subject = tls
                        .ssl()
                        .peer_certificate()
                        .map(|c| {
                            c.subject_name()
                                .entries()
                                .map(|e| {
                                    format!(
                                        "{}={}",
                                        e.object().nid().short_name().unwrap_or("?"),
                                        e.data().to_string().unwrap_or_default()
                                    )
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default();
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        let subject = subject.clone();
                        async move { Ok::<_, std::convert::Infallible>(answer(req, &state, &subject).await) }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        let port = listener_port;
        StandIn { url: format!("https://127.0.0.1:{port}"), ca_path: dir.join("ca.pem"), state, _dir: owned }
    }

    /// The next answers for `token`, in order; after them, 200.
    pub fn script(&self, token: &str, answers: &[(u16, &'static str)]) {
        self.state.lock().unwrap().scripts.insert(token.to_string(), answers.iter().copied().collect());
    }

    /// Holds back the answers to `token` by `delay`, so a push stays in flight.
    pub fn delay(&self, token: &str, delay: Duration) {
        self.state.lock().unwrap().delays.insert(token.to_string(), delay);
    }

    pub fn pushes(&self) -> Vec<Push> {
        self.state.lock().unwrap().pushes.clone()
    }

    pub fn pushes_to(&self, token: &str) -> Vec<Push> {
        self.pushes().into_iter().filter(|p| p.token == token).collect()
    }

    /// Waits (polling, with a deadline) until `token` has received `n` pushes.
    pub async fn wait_for(&self, token: &str, n: usize) -> Vec<Push> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.pushes_to(token);
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{token} received {} of {n} pushes", got.len());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn answer(req: Request<hyper::body::Incoming>, state: &Mutex<State>, subject: &str) -> Response<Full<Bytes>> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (topic, push_type, authorization) = (header("apns-topic"), header("apns-push-type"), header("authorization"));
    let path = req.uri().path().to_string();
    let token = path.strip_prefix("/3/device/").unwrap_or("").to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let presented = authorization.clone();
    let delay = {
        let mut state = state.lock().unwrap();
        state.pushes.push(Push {
            token: token.clone(),
            topic,
            push_type,
            authorization,
            body: String::from_utf8_lossy(&body).to_string(),
            path,
            client_subject: subject.to_string(),
            at: Instant::now(),
        });
        state.delays.get(&token).copied()
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut state = state.lock().unwrap();
    if let Some(key) = &state.token_key {
        let valid = presented.as_deref().is_some_and(|a| verify_provider_token(a, key));
        if !valid {
            let body = Bytes::from_static(b"{\"reason\":\"InvalidProviderToken\"}");
            return Response::builder().status(403).body(Full::new(body)).unwrap();
        }
    }
    let scripted = state.scripts.get_mut(&token).and_then(VecDeque::pop_front);
    let (status, reason) = scripted.unwrap_or(match &token[..token.len().min(3)] {
        "410" => (410, "Unregistered"),
        "400" => (400, "BadDeviceToken"),
        "429" => (429, "TooManyRequests"),
        "503" => (503, "ServiceUnavailable"),
        "403" => (403, "BadCertificate"),
        _ => (200, ""),
    });
    let body = if status == 200 { Bytes::new() } else { Bytes::from(format!("{{\"reason\":\"{reason}\"}}")) };
    Response::builder()
        .status(status)
        .header("apns-id", "00000000-0000-0000-0000-000000000000")
        .body(Full::new(body))
        .unwrap()
}

/// Checks `bearer <jwt>`: ES256 over header.claims, with `kid` and `iss` present.
fn verify_provider_token(authorization: &str, key: &PKey<Public>) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Some(jwt) = authorization.strip_prefix("bearer ") else { return false };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return false;
    }
    let json = |p: &str| b64.decode(p).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let (Some(header), Some(claims), Ok(sig)) = (json(parts[0]), json(parts[1]), b64.decode(parts[2])) else {
        return false;
    };
    if header["alg"] != "ES256" || !header["kid"].is_string() || !claims["iss"].is_string() || sig.len() != 64 {
        return false;
    }
    let Ok(sig) = openssl::ecdsa::EcdsaSig::from_private_components(
        BigNum::from_slice(&sig[..32]).unwrap(),
        BigNum::from_slice(&sig[32..]).unwrap(),
    ) else {
        return false;
    };
    let digest = openssl::sha::sha256(format!("{}.{}", parts[0], parts[1]).as_bytes());
    key.ec_key().ok().is_some_and(|ec| sig.verify(&digest, &ec).unwrap_or(false))
}

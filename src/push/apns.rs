//! A small APNs client of our own on hyper/h2: long-lived HTTP/2 connections over TLS (OpenSSL), many
//! concurrent streams each, authenticated by the pass certificate as TLS client certificate or by an ES256
//! provider token. Knows no database. (a2 cannot be pointed at a test server or send `{}`; see
//! rust-stack.md.)

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::ssl::{SslConnector, SslMethod};
use openssl::x509::X509;
use tokio::sync::Mutex;

use crate::apple::SigningIdentity;

/// How long one push may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Provider tokens are reused for this long (APNs wants 20 to 60 minutes).
const TOKEN_LIFETIME: Duration = Duration::from_secs(40 * 60);

pub enum Credentials {
    /// The pass certificate and key, presented as TLS client certificate (Apple's documented way).
    Certificate,
    /// An ES256 provider token signed with a .p8 key.
    Token { key: EncodingKey, key_id: String, team_id: String },
}

/// What APNs answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApnsReply {
    pub status: u16,
    /// The `reason` of an error body (`Unregistered`, `BadDeviceToken`, …).
    pub reason: Option<String>,
}

/// What went wrong talking to APNs (or setting the client up), with its cause kept as `source()`.
#[derive(Debug, thiserror::Error)]
pub enum ApnsError {
    #[error("TESSERA_APNS_URL ({0}) must be an https URL; APNs speaks HTTP/2 over TLS only")]
    NotHttps(String),
    #[error("setting up TLS for APNs")]
    Tls(#[source] openssl::error::ErrorStack),
    #[error("TESSERA_APNS_CA ({}) cannot be read", path.display())]
    ReadCa { path: PathBuf, source: std::io::Error },
    #[error("TESSERA_APNS_CA ({}) holds no PEM certificate", .0.display())]
    NoCaCertificate(PathBuf),
    #[error("TESSERA_APNS_KEY ({}) cannot be read", path.display())]
    ReadKey { path: PathBuf, source: std::io::Error },
    #[error("TESSERA_APNS_KEY ({}) is not a PEM EC private key (an APNs .p8 key)", path.display())]
    BadKey { path: PathBuf, source: jsonwebtoken::errors::Error },
    #[error("signing the APNs provider token")]
    ProviderToken(#[source] jsonwebtoken::errors::Error),
    #[error("cannot reach APNs at {address}")]
    Connect { address: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("building the request to APNs (a device token that is not a path segment?)")]
    Build(#[source] hyper::http::Error),
    #[error("the request to APNs failed")]
    Request(#[source] hyper::Error),
    #[error("APNs did not answer within {0:?}")]
    Timeout(Duration),
}

impl ApnsError {
    /// The message with its causes (`outer: inner`), for the push's recorded reason and the log.
    pub fn chain(self) -> String {
        format!("{:#}", anyhow::Error::new(self))
    }
}

type Sender = SendRequest<Full<Bytes>>;

pub struct ApnsClient {
    host: String,
    port: u16,
    authority: String,
    topic: String,
    connector: SslConnector,
    connections: Vec<Mutex<Option<Sender>>>,
    next: AtomicUsize,
    credentials: Credentials,
    token: std::sync::Mutex<Option<(String, Instant)>>,
}

impl ApnsClient {
    /// `base_url` is `https://host[:port]`; `extra_ca` a PEM file of roots to trust besides the system's.
    pub fn new(
        base_url: &str,
        topic: &str,
        identity: &SigningIdentity,
        credentials: Credentials,
        extra_ca: Option<&Path>,
        connections: usize,
    ) -> Result<ApnsClient, ApnsError> {
        let url = crate::urls::PublicUrl::parse(base_url)
            .ok()
            .filter(|u| u.is_https())
            .ok_or_else(|| ApnsError::NotHttps(base_url.to_string()))?;
        let (host, port, authority) = (url.host(), url.port(), url.authority());
        let config = ApnsError::Tls;
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(config)?;
        builder.set_alpn_protos(b"\x02h2").map_err(config)?;
        if let Credentials::Certificate = credentials {
            builder.set_certificate(&identity.cert).map_err(config)?;
            builder.set_private_key(&identity.key).map_err(config)?;
            builder.add_extra_chain_cert(identity.wwdr.clone()).map_err(config)?;
        }
        if let Some(path) = extra_ca {
            let pem = std::fs::read(path).map_err(|source| ApnsError::ReadCa { path: path.to_path_buf(), source })?;
            let roots = X509::stack_from_pem(&pem)
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ApnsError::NoCaCertificate(path.to_path_buf()))?;
            for root in roots {
                builder.cert_store_mut().add_cert(root).map_err(config)?;
            }
        }
        Ok(ApnsClient {
            host,
            port,
            authority,
            topic: topic.to_string(),
            connector: builder.build(),
            connections: (0..connections.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            credentials,
            token: std::sync::Mutex::new(None),
        })
    }

    /// Reads a .p8 key for token authentication.
    pub fn token_credentials(p8: &Path, key_id: &str, team_id: &str) -> Result<Credentials, ApnsError> {
        let pem = std::fs::read(p8).map_err(|source| ApnsError::ReadKey { path: p8.to_path_buf(), source })?;
        let key =
            EncodingKey::from_ec_pem(&pem).map_err(|source| ApnsError::BadKey { path: p8.to_path_buf(), source })?;
        Ok(Credentials::Token { key, key_id: key_id.to_string(), team_id: team_id.to_string() })
    }

    async fn connect(&self) -> Result<Sender, ApnsError> {
        let connect = |e: Box<dyn std::error::Error + Send + Sync>| ApnsError::Connect {
            address: format!("{}:{}", self.host, self.port),
            source: e,
        };
        let tcp =
            tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await.map_err(|e| connect(e.into()))?;
        let _ = tcp.set_nodelay(true);
        let ssl = self.connector.configure().and_then(|c| c.into_ssl(&self.host)).map_err(|e| connect(e.into()))?;
        let mut tls = tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| connect(e.into()))?;
        std::pin::Pin::new(&mut tls).connect().await.map_err(|e| connect(e.into()))?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(60))
            .keep_alive_while_idle(true)
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| connect(e.into()))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "APNs connection closed");
            }
        });
        tracing::debug!(host = %self.host, port = self.port, "APNs connection open");
        Ok(sender)
    }

    /// A ready sender from the pool, opening (or reopening) its connection when needed.
    async fn sender(&self) -> Result<Sender, ApnsError> {
        let slot = &self.connections[self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len()];
        let mut guard = slot.lock().await;
        if let Some(sender) = guard.as_ref()
            && !sender.is_closed()
        {
            return Ok(sender.clone());
        }
        let sender = self.connect().await?;
        *guard = Some(sender.clone());
        Ok(sender)
    }

    fn provider_token(&self, force_new: bool) -> Result<Option<String>, ApnsError> {
        let Credentials::Token { key, key_id, team_id } = &self.credentials else { return Ok(None) };
        let mut cached = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, made)) = cached.as_ref()
            && !force_new
            && made.elapsed() < TOKEN_LIFETIME
        {
            return Ok(Some(token.clone()));
        }
        let token =
            provider_jwt(key, key_id, team_id, crate::time_fmt::now_unix()).map_err(ApnsError::ProviderToken)?;
        *cached = Some((token.clone(), Instant::now()));
        Ok(Some(token))
    }

    /// Forgets the provider token APNs called expired, so the next push signs a new one; a newer token,
    /// made meanwhile for another push, is kept (APNs refuses more than one new token per 20 minutes).
    fn forget_token(&self, expired: &str) {
        let mut cached = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if cached.as_ref().is_some_and(|(token, _)| token == expired) {
            *cached = None;
        }
    }

    /// Sends the Wallet update push (`{}`, topic = pass type identifier) to one device token.
    pub async fn push(&self, device_token: &str) -> Result<ApnsReply, ApnsError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.push_inner(device_token)).await {
            Ok(result) => result,
            Err(_) => Err(ApnsError::Timeout(REQUEST_TIMEOUT)),
        }
    }

    async fn push_inner(&self, device_token: &str) -> Result<ApnsReply, ApnsError> {
        let mut sender = self.sender().await?;
        let mut request = hyper::Request::post(format!("https://{}/3/device/{device_token}", self.authority))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("content-type", "application/json");
        let token = self.provider_token(false)?;
        if let Some(token) = &token {
            request = request.header("authorization", format!("bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::from_static(b"{}"))).map_err(ApnsError::Build)?;
        sender.ready().await.map_err(ApnsError::Request)?;
        let response = sender.send_request(request).await.map_err(ApnsError::Request)?;
        let status = response.status().as_u16();
        let body =
            Limited::new(response.into_body(), 64 * 1024).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let reason = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_string));
        if let Some(token) = &token
            && status == 403
            && reason.as_deref() == Some("ExpiredProviderToken")
        {
            self.forget_token(token);
        }
        Ok(ApnsReply { status, reason })
    }
}

/// An APNs provider token: a JWT with header `{alg: ES256, kid}` and claims `{iss: team, iat}`.
pub fn provider_jwt(
    key: &EncodingKey,
    key_id: &str,
    team_id: &str,
    iat: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iss: &'a str,
        iat: i64,
    }
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key_id.to_string());
    // Apple's documented header carries only alg and kid.
    header.typ = None;
    crate::jwt::install();
    jsonwebtoken::encode(&header, &Claims { iss: team_id, iat }, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::ecdsa::EcdsaSig;
    use openssl::nid::Nid;

    #[test]
    fn provider_tokens_are_es256_jwts_that_openssl_verifies() {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let ec = EcKey::generate(&group).unwrap();
        let p8 = openssl::pkey::PKey::from_ec_key(ec.clone()).unwrap().private_key_to_pem_pkcs8().unwrap();
        let key = EncodingKey::from_ec_pem(&p8).unwrap();
        let jwt = provider_jwt(&key, "KEY1234567", "TEAM123456", 1_795_334_400).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "ES256", "kid": "KEY1234567"}));
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims, serde_json::json!({"iss": "TEAM123456", "iat": 1_795_334_400}));
        let raw = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert_eq!(raw.len(), 64, "JWS wants raw r and s, not DER");
        let sig = EcdsaSig::from_private_components(
            openssl::bn::BigNum::from_slice(&raw[..32]).unwrap(),
            openssl::bn::BigNum::from_slice(&raw[32..]).unwrap(),
        )
        .unwrap();
        let digest = openssl::sha::sha256(format!("{}.{}", parts[0], parts[1]).as_bytes());
        assert!(sig.verify(&digest, &ec).unwrap());
    }

    #[test]
    fn errors_keep_their_causes() {
        let dir = std::env::temp_dir().join("tessera-no-such-dir");
        let Err(e) = ApnsClient::token_credentials(&dir.join("key.p8"), "K", "T") else { panic!("a missing key") };
        assert!(matches!(e, ApnsError::ReadKey { .. }));
        assert!(std::error::Error::source(&e).is_some());
        let chain = e.chain();
        assert!(chain.starts_with("TESSERA_APNS_KEY") && chain.contains("No such file"), "{chain}");
    }
}

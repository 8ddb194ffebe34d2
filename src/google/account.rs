//! The Google service account key file (JSON, as the Cloud console downloads it): the email that signs
//! save links and token requests, the RSA key, and the token endpoint.

use std::path::{Path, PathBuf};

use jsonwebtoken::EncodingKey;

/// What `doctor` and start-up say when the key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("TESSERA_GOOGLE_SERVICE_ACCOUNT: {} cannot be read; give the path of the JSON key file", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("TESSERA_GOOGLE_SERVICE_ACCOUNT: {} is not a JSON key file ({reason})", path.display())]
    NotJson { path: PathBuf, reason: String },
    #[error("TESSERA_GOOGLE_SERVICE_ACCOUNT: {} has no `{field}`; download a new JSON key for the service account", path.display())]
    Missing { path: PathBuf, field: &'static str },
    #[error(
        "TESSERA_GOOGLE_SERVICE_ACCOUNT: the private_key in {} is not an RSA key of at least 2048 bits; Google's service account keys are",
        path.display()
    )]
    NotRsa { path: PathBuf },
}

/// A loaded service account.
#[derive(Clone)]
pub struct ServiceAccount {
    pub email: String,
    pub token_uri: String,
    pub key: EncodingKey,
    pub key_id: Option<String>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount").field("email", &self.email).field("token_uri", &self.token_uri).finish()
    }
}

#[derive(serde::Deserialize)]
struct KeyFile {
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

impl ServiceAccount {
    pub fn load(path: &Path) -> Result<ServiceAccount, AccountError> {
        let bytes = std::fs::read(path).map_err(|source| AccountError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&bytes, path)
    }

    pub fn parse(bytes: &[u8], path: &Path) -> Result<ServiceAccount, AccountError> {
        let file: KeyFile = serde_json::from_slice(bytes)
            .map_err(|e| AccountError::NotJson { path: path.to_path_buf(), reason: e.to_string() })?;
        let missing = |field| AccountError::Missing { path: path.to_path_buf(), field };
        let email = file.client_email.filter(|e| e.contains('@')).ok_or_else(|| missing("client_email"))?;
        let pem = file.private_key.ok_or_else(|| missing("private_key"))?;
        let token_uri = file.token_uri.filter(|u| u.starts_with("http")).ok_or_else(|| missing("token_uri"))?;
        let not_rsa = || AccountError::NotRsa { path: path.to_path_buf() };
        // OpenSSL checks the key (jsonwebtoken only re-encodes it): an RSA key Google would accept.
        let pkey = openssl::pkey::PKey::private_key_from_pem(pem.as_bytes()).map_err(|_| not_rsa())?;
        if pkey.rsa().is_err() || pkey.bits() < 2048 {
            return Err(not_rsa());
        }
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| not_rsa())?;
        Ok(ServiceAccount { email, token_uri, key, key_id: file.private_key_id })
    }

    /// Signs `claims` with RS256 (the header names the key, as Google's libraries do).
    pub fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        crate::jwt::install();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.key_id.clone();
        jsonwebtoken::encode(&header, claims, &self.key)
    }
}

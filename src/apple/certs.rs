//! The pass signing identity: the Pass Type ID certificate, its key and the WWDR intermediate, parsed once.

use std::path::{Path, PathBuf};

use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::{X509, X509NameRef};

pub struct SigningIdentity {
    pub cert: X509,
    pub key: PKey<Private>,
    pub wwdr: X509,
    /// The extra certificates carried in every signature (the WWDR intermediate).
    pub chain: Stack<X509>,
    /// From the certificate subject's UID.
    pub pass_type_id: String,
    /// From the certificate subject's OU.
    pub team_id: String,
}

/// A problem with the certificate material, in plain words, naming the setting at fault; OpenSSL's or
/// the file system's own error is kept as the cause.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{setting} ({}) cannot be read; set {setting} to the PEM file", path.display())]
    Read { setting: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{}", p12_advice(setting, path))]
    Pkcs12 { setting: &'static str, path: PathBuf },
    #[error(
        "{setting} ({}) is not a certificate in PEM or DER form; convert a .cer with `openssl x509 -inform DER -in FILE.cer -out FILE.pem`",
        path.display()
    )]
    NotCertificate { setting: &'static str, path: PathBuf, source: openssl::error::ErrorStack },
    #[error(
        "TESSERA_APPLE_KEY ({}) is not a readable PEM private key; {}",
        path.display(),
        if *password_given { "check TESSERA_APPLE_KEY_PASSWORD" } else { "if it is encrypted, set TESSERA_APPLE_KEY_PASSWORD" }
    )]
    Key { path: PathBuf, password_given: bool, source: openssl::error::ErrorStack },
    #[error("TESSERA_APPLE_CERT has no usable public key")]
    PublicKey(#[source] openssl::error::ErrorStack),
    #[error(
        "TESSERA_APPLE_KEY does not belong to TESSERA_APPLE_CERT; export the key that was made with this certificate's signing request"
    )]
    KeyMismatch,
    #[error(
        "TESSERA_APPLE_CERT has no UID in its subject, so it is not a Pass Type ID certificate; download the certificate from the Pass Type ID's page in the Apple Developer portal"
    )]
    NoPassTypeId,
    #[error(
        "TESSERA_APPLE_CERT has no OU (team identifier) in its subject; use the Pass Type ID certificate Apple issued"
    )]
    NoTeamId,
    #[error("the certificate chain cannot be assembled")]
    Chain(#[source] openssl::error::ErrorStack),
}

pub fn name_entry(name: &X509NameRef, nid: Nid) -> Option<String> {
    name.entries_by_nid(nid).next().and_then(|e| e.data().to_string().ok())
}

/// True when the bytes look like a PKCS#12 (.p12) bundle rather than PEM.
pub fn looks_like_p12(bytes: &[u8]) -> bool {
    !bytes.starts_with(b"-----") && openssl::pkcs12::Pkcs12::from_der(bytes).is_ok()
}

pub fn p12_advice(setting: &str, path: &Path) -> String {
    let p = path.display();
    format!(
        "{setting} ({p}) is a .p12 bundle; tessera reads PEM. Convert it with \
         `openssl pkcs12 -legacy -in {p} -clcerts -nokeys -out pass.pem` and \
         `openssl pkcs12 -legacy -in {p} -nocerts -nodes -out pass.key`, then set TESSERA_APPLE_CERT and TESSERA_APPLE_KEY to them"
    )
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read { setting, path: path.to_path_buf(), source })
}

fn parse_cert(setting: &'static str, path: &Path, bytes: &[u8]) -> Result<X509, CertError> {
    if looks_like_p12(bytes) {
        return Err(CertError::Pkcs12 { setting, path: path.to_path_buf() });
    }
    X509::from_pem(bytes).or_else(|_| X509::from_der(bytes)).map_err(|source| CertError::NotCertificate {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

impl SigningIdentity {
    pub fn load(
        cert: &Path,
        key: &Path,
        wwdr: &Path,
        key_password: Option<&str>,
    ) -> Result<SigningIdentity, CertError> {
        let cert_bytes = read("TESSERA_APPLE_CERT", cert)?;
        let key_bytes = read("TESSERA_APPLE_KEY", key)?;
        let wwdr_bytes = read("TESSERA_APPLE_WWDR", wwdr)?;
        let cert_x509 = parse_cert("TESSERA_APPLE_CERT", cert, &cert_bytes)?;
        let wwdr_x509 = parse_cert("TESSERA_APPLE_WWDR", wwdr, &wwdr_bytes)?;
        if looks_like_p12(&key_bytes) {
            return Err(CertError::Pkcs12 { setting: "TESSERA_APPLE_KEY", path: key.to_path_buf() });
        }
        let key_pkey = match key_password {
            Some(pw) => PKey::private_key_from_pem_passphrase(&key_bytes, pw.as_bytes()),
            None => PKey::private_key_from_pem(&key_bytes),
        }
        .map_err(|source| CertError::Key {
            path: key.to_path_buf(),
            password_given: key_password.is_some(),
            source,
        })?;
        Self::from_parts(cert_x509, key_pkey, wwdr_x509)
    }

    pub fn from_parts(cert: X509, key: PKey<Private>, wwdr: X509) -> Result<SigningIdentity, CertError> {
        let public = cert.public_key().map_err(CertError::PublicKey)?;
        if !public.public_eq(&key) {
            return Err(CertError::KeyMismatch);
        }
        let pass_type_id = name_entry(cert.subject_name(), Nid::USERID).ok_or(CertError::NoPassTypeId)?;
        let team_id = name_entry(cert.subject_name(), Nid::ORGANIZATIONALUNITNAME).ok_or(CertError::NoTeamId)?;
        let mut chain = Stack::new().map_err(CertError::Chain)?;
        chain.push(wwdr.clone()).map_err(CertError::Chain)?;
        Ok(SigningIdentity { cert, key, wwdr, chain, pass_type_id, team_id })
    }
}

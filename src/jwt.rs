//! jsonwebtoken's crypto with OpenSSL doing RS256: the RustCrypto RSA that jsonwebtoken ships signs at
//! 13 % of OpenSSL's rate on these machines (610 against 4,630 signatures/s, BENCHMARKS.md), and every
//! Google save link and OAuth assertion is one RS256 signature. jsonwebtoken still builds and encodes the
//! tokens; every other algorithm (the APNs ES256 token) stays with its RustCrypto provider.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, rust_crypto};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::{Algorithm, EncodingKey};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};

struct OpensslRs256(PKey<Private>);

impl signature::Signer<Vec<u8>> for OpensslRs256 {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut signer =
            openssl::sign::Signer::new(MessageDigest::sha256(), &self.0).map_err(signature::Error::from_source)?;
        signer.update(message).map_err(signature::Error::from_source)?;
        signer.sign_to_vec().map_err(signature::Error::from_source)
    }
}

impl JwtSigner for OpensslRs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if *algorithm != Algorithm::RS256 {
        return (rust_crypto::DEFAULT_PROVIDER.signer_factory)(algorithm, key);
    }
    Ok(Box::new(OpensslRs256(parsed(key.as_bytes())?)))
}

/// The OpenSSL key of an RSA EncodingKey (which holds PKCS#1 DER), parsed once: parsing costs as much as
/// the signature itself. A deployment has one or two keys; a few are kept.
fn parsed(der: &[u8]) -> Result<PKey<Private>> {
    static KEYS: std::sync::Mutex<Vec<(Vec<u8>, PKey<Private>)>> = std::sync::Mutex::new(Vec::new());
    let mut keys = KEYS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, key)) = keys.iter().find(|(d, _)| d.as_slice() == der) {
        return Ok(key.clone());
    }
    let rsa = openssl::rsa::Rsa::private_key_from_der(der)
        .map_err(|_| ErrorKind::InvalidRsaKey("not a PKCS#1 RSA private key".into()))?;
    let key = PKey::from_rsa(rsa).map_err(|_| ErrorKind::InvalidRsaKey("unusable RSA key".into()))?;
    if keys.len() >= 4 {
        keys.remove(0);
    }
    keys.push((der.to_vec(), key.clone()));
    Ok(key)
}

static PROVIDER: std::sync::OnceLock<CryptoProvider> = std::sync::OnceLock::new();

/// Installs the provider for this process (once; later calls do nothing).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let provider = PROVIDER.get_or_init(|| CryptoProvider {
            signer_factory: new_signer,
            verifier_factory: rust_crypto::DEFAULT_PROVIDER.verifier_factory,
            key_utils: rust_crypto::DEFAULT_PROVIDER.key_utils.clone(),
        });
        let _ = provider.install_default();
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn rs256_tokens_signed_through_openssl_verify_with_jsonwebtoken() {
        super::install();
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let private = rsa.private_key_to_pem().unwrap();
        let public = rsa.public_key_to_pem().unwrap();
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&private).unwrap();
        let claims = serde_json::json!({"iss": "a@b", "aud": "google"});
        let token =
            jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &key).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&["google"]);
        validation.set_required_spec_claims(&["iss"]);
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.claims, claims);
    }
}

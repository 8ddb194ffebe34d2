//! jsonwebtoken's crypto on OpenSSL, which the process links already: jsonwebtoken builds and encodes the
//! tokens, OpenSSL signs and verifies them. Two algorithms are used: RS256 (every Google save link and OAuth
//! assertion) and ES256 (the APNs provider token). RustCrypto's RSA, jsonwebtoken's own provider, signed at
//! 13 % of OpenSSL's rate on these machines (610 against 4,630 signatures/s, BENCHMARKS.md), and dropping
//! that provider drops its RSA, elliptic-curve and Ed25519 crates from the build (time to green).

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey};
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private, Public};

/// ES256 signatures are r and s, 32 bytes each, side by side (RFC 7518 section 3.4), not DER.
const ES256_HALF: usize = 32;

struct OpensslSigner {
    algorithm: Algorithm,
    key: PKey<Private>,
}

impl signature::Signer<Vec<u8>> for OpensslSigner {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let failed = signature::Error::from_source;
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &self.key).map_err(failed)?;
        signer.update(message).map_err(failed)?;
        let der = signer.sign_to_vec().map_err(failed)?;
        if self.algorithm != Algorithm::ES256 {
            return Ok(der);
        }
        let sig = EcdsaSig::from_der(&der).map_err(failed)?;
        let mut raw = sig.r().to_vec_padded(ES256_HALF as i32).map_err(failed)?;
        raw.extend(sig.s().to_vec_padded(ES256_HALF as i32).map_err(failed)?);
        Ok(raw)
    }
}

impl JwtSigner for OpensslSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

struct OpensslVerifier {
    algorithm: Algorithm,
    key: PKey<Public>,
}

impl signature::Verifier<Vec<u8>> for OpensslVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let failed = signature::Error::from_source;
        let der = if self.algorithm == Algorithm::ES256 {
            if signature.len() != 2 * ES256_HALF {
                return Err(signature::Error::new());
            }
            let (r, s) = signature.split_at(ES256_HALF);
            let sig = EcdsaSig::from_private_components(
                BigNum::from_slice(r).map_err(failed)?,
                BigNum::from_slice(s).map_err(failed)?,
            )
            .map_err(failed)?;
            sig.to_der().map_err(failed)?
        } else {
            signature.clone()
        };
        let mut verifier = openssl::sign::Verifier::new(MessageDigest::sha256(), &self.key).map_err(failed)?;
        verifier.update(message).map_err(failed)?;
        match verifier.verify(&der) {
            Ok(true) => Ok(()),
            _ => Err(signature::Error::new()),
        }
    }
}

impl JwtVerifier for OpensslVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let key = match algorithm {
        Algorithm::RS256 => parsed_rsa(key.as_bytes())?,
        // jsonwebtoken keeps an EC key as PKCS#8 DER.
        Algorithm::ES256 => PKey::private_key_from_pkcs8(key.as_bytes()).map_err(|_| ErrorKind::InvalidEcdsaKey)?,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(OpensslSigner { algorithm: *algorithm, key }))
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let key = match (algorithm, key.kind()) {
        // PKCS#1 DER from `from_rsa_pem`/`from_rsa_der`.
        (Algorithm::RS256, DecodingKeyKind::SecretOrDer(der)) => openssl::rsa::Rsa::public_key_from_der_pkcs1(der)
            .and_then(PKey::from_rsa)
            .map_err(|_| ErrorKind::InvalidRsaKey("not a PKCS#1 RSA public key".into()))?,
        // The SEC1 point from `from_ec_pem`/`from_ec_der`.
        (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => p256_public_key(point)?,
        // Keys given as components come from JWKs, which tessera never reads (as `KeyUtils` below).
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(OpensslVerifier { algorithm: *algorithm, key }))
}

fn p256_public_key(point: &[u8]) -> Result<PKey<Public>> {
    let bad = |_| jsonwebtoken::errors::Error::from(ErrorKind::InvalidEcdsaKey);
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).map_err(bad)?;
    let mut context = openssl::bn::BigNumContext::new().map_err(bad)?;
    let point = openssl::ec::EcPoint::from_bytes(&group, point, &mut context).map_err(bad)?;
    let key = openssl::ec::EcKey::from_public_key(&group, &point).map_err(bad)?;
    PKey::from_ec_key(key).map_err(bad)
}

/// The OpenSSL key of an RSA EncodingKey (which holds PKCS#1 DER), parsed once: parsing costs as much as
/// the signature itself. A deployment has one or two keys; a few are kept.
fn parsed_rsa(der: &[u8]) -> Result<PKey<Private>> {
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

/// JWK helpers, which tessera never calls (it reads no JWKs): they answer that the operation is not offered.
fn no_components(_: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

fn no_ec_components(_: &[u8], _: Algorithm) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

fn no_ed_components(_: &[u8], _: &EllipticCurve) -> Result<Vec<u8>> {
    Err(ErrorKind::InvalidAlgorithm.into())
}

fn digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let md = match hash {
        ThumbprintHash::SHA256 => MessageDigest::sha256(),
        ThumbprintHash::SHA384 => MessageDigest::sha384(),
        ThumbprintHash::SHA512 => MessageDigest::sha512(),
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(openssl::hash::hash(md, data).map_err(|_| ErrorKind::InvalidAlgorithm)?.to_vec())
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: no_components,
        rsa_pub_components_from_public_key: no_components,
        ec_pub_components_from_private_key: no_ec_components,
        ed_pub_components_from_private_key: no_ed_components,
        compute_digest: digest,
    },
};

/// Installs the provider for this process (once; later calls do nothing).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = PROVIDER.install_default();
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

    #[test]
    fn es256_tokens_are_raw_r_and_s_and_verify_with_openssl_and_jsonwebtoken() {
        super::install();
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let ec = openssl::ec::EcKey::generate(&group).unwrap();
        let private = openssl::pkey::PKey::from_ec_key(ec.clone()).unwrap().private_key_to_pem_pkcs8().unwrap();
        let public = ec.public_key_to_pem().unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_pem(&private).unwrap();
        let claims = serde_json::json!({"iss": "TEAM", "iat": 1});
        let token =
            jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256), &claims, &key).unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let raw = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature).unwrap();
        assert_eq!(raw.len(), 64, "JWS ES256 is r || s, not DER");
        // What APNs does: rebuild the DER signature and verify over header.claims.
        let sig = openssl::ecdsa::EcdsaSig::from_private_components(
            openssl::bn::BigNum::from_slice(&raw[..32]).unwrap(),
            openssl::bn::BigNum::from_slice(&raw[32..]).unwrap(),
        )
        .unwrap();
        let digest = openssl::sha::sha256(signed.as_bytes());
        assert!(sig.verify(&digest, &ec).unwrap());
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_required_spec_claims(&["iss"]);
        validation.validate_exp = false;
        let decoding = jsonwebtoken::DecodingKey::from_ec_pem(&public).unwrap();
        assert_eq!(jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap().claims, claims);
        // A flipped bit in the signature does not verify.
        let mut tampered = raw.clone();
        tampered[5] ^= 1;
        let tampered =
            format!("{signed}.{}", base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, tampered));
        assert!(jsonwebtoken::decode::<serde_json::Value>(&tampered, &decoding, &validation).is_err());
    }
}

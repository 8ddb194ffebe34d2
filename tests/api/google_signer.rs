//! Plays Google in tests: a root key, listed in a keys document, and an intermediate key, which sign Wallet
//! save/delete callbacks as ECv2SigningOnly (the scheme of Tink's SenderIntermediateCertFactory and
//! PaymentMethodTokenSender, with Wallet's sender id). No `crate::` imports, so the integration tests, the
//! unit tests in src/google/ecv2.rs and the benches can all include this one file with `#[path]`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use serde_json::{Value, json};

const SENDER_ID: &str = "GooglePayPasses";
const PROTOCOL: &str = "ECv2SigningOnly";
/// 2100-01-01T00:00:00Z: "far future" without reading a clock.
const FAR_FUTURE_MS: i64 = 4_102_444_800_000;

/// Google's side of the callback protocol, with fresh random P-256 keys.
#[allow(dead_code)]
pub struct CallbackSigner {
    root: PKey<Private>,
    /// Also in the keys document, but as an ECv1 key: a verifier must not trust it for ECv2SigningOnly.
    ecv1_root: PKey<Private>,
    intermediate: PKey<Private>,
}

/// Knobs for bad cases; the default signs a genuine callback.
#[allow(dead_code)]
#[derive(Default)]
pub struct SignOptions {
    /// `keyExpiration` of the intermediate key, in ms (default: far future).
    pub intermediate_expiration_ms: Option<i64>,
    /// Sign the message for this recipient instead of the issuer id.
    pub recipient_override: Option<String>,
    /// Protocol version in the body and in both signed byte strings.
    pub protocol_override: Option<String>,
    /// Sender id in both signed byte strings instead of "GooglePayPasses".
    pub sender_override: Option<String>,
    /// Sign the message with a fresh key, not the intermediate key named in `signedKey`.
    pub foreign_intermediate: bool,
    /// Sign `signedKey` with the root listed only for ECv1.
    pub foreign_root: bool,
    /// Leave the `signature` field out.
    pub omit_signature: bool,
}

fn new_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256 group");
    PKey::from_ec_key(EcKey::generate(&group).expect("P-256 key")).expect("PKey")
}

/// The public half as Google publishes keys: base64 of DER SubjectPublicKeyInfo.
fn spki_base64(key: &PKey<Private>) -> String {
    STANDARD.encode(key.public_key_to_der().expect("SPKI DER"))
}

/// Each chunk as a 4-byte little-endian length and its UTF-8 bytes (Tink's `toLengthValue`).
fn length_value(chunks: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(&u32::try_from(chunk.len()).expect("chunk under 4 GiB").to_le_bytes());
        out.extend_from_slice(chunk.as_bytes());
    }
    out
}

/// ECDSA-SHA256 over the length-value chunks; OpenSSL gives EC signatures in DER.
fn sign_base64(key: &PKey<Private>, chunks: &[&str]) -> String {
    let mut signer = Signer::new(MessageDigest::sha256(), key).expect("signer");
    signer.update(&length_value(chunks)).expect("update");
    STANDARD.encode(signer.sign_to_vec().expect("sign"))
}

impl Default for CallbackSigner {
    fn default() -> Self {
        Self::new()
    }
}

#[allow(dead_code)]
impl CallbackSigner {
    pub fn new() -> CallbackSigner {
        CallbackSigner { root: new_key(), ecv1_root: new_key(), intermediate: new_key() }
    }

    /// The keys document as https://pay.google.com/gp/m/issuer/keys serves it.
    pub fn root_keys_json(&self) -> String {
        let expiration = FAR_FUTURE_MS.to_string();
        json!({"keys": [
            {"keyValue": spki_base64(&self.root), "protocolVersion": PROTOCOL, "keyExpiration": expiration},
            {"keyValue": spki_base64(&self.ecv1_root), "protocolVersion": "ECv1"},
        ]})
        .to_string()
    }

    /// A callback body for `issuer_id` (the recipient id), genuinely signed.
    pub fn sign(&self, issuer_id: &str, message: &Value) -> String {
        self.sign_with(issuer_id, &message.to_string(), &SignOptions::default())
    }

    /// A callback body carrying `signed_message` verbatim, signed as `options` say.
    pub fn sign_with(&self, issuer_id: &str, signed_message: &str, options: &SignOptions) -> String {
        let protocol = options.protocol_override.as_deref().unwrap_or(PROTOCOL);
        let sender = options.sender_override.as_deref().unwrap_or(SENDER_ID);
        let recipient = options.recipient_override.as_deref().unwrap_or(issuer_id);
        let expiration = options.intermediate_expiration_ms.unwrap_or(FAR_FUTURE_MS);
        let signed_key =
            json!({"keyValue": spki_base64(&self.intermediate), "keyExpiration": expiration.to_string()}).to_string();
        let root = if options.foreign_root { &self.ecv1_root } else { &self.root };
        let mut body = json!({
            "intermediateSigningKey": {
                "signedKey": signed_key,
                "signatures": [sign_base64(root, &[sender, protocol, &signed_key])],
            },
            "protocolVersion": protocol,
            "signedMessage": signed_message,
        });
        if !options.omit_signature {
            let other;
            let key = if options.foreign_intermediate {
                other = new_key();
                &other
            } else {
                &self.intermediate
            };
            body["signature"] = Value::from(sign_base64(key, &[sender, recipient, protocol, signed_message]));
        }
        body.to_string()
    }
}

/// The message Google signs: `{"classId","objectId","eventType","expTimeMillis","count":1,"nonce"}`.
#[allow(dead_code)]
pub fn callback_message(class_id: &str, object_id: &str, event_type: &str, exp_time_millis: i64, nonce: &str) -> Value {
    json!({
        "classId": class_id,
        "objectId": object_id,
        "eventType": event_type,
        "expTimeMillis": exp_time_millis,
        "count": 1,
        "nonce": nonce,
    })
}

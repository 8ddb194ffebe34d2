//! Google Wallet save/delete callbacks: verifying the ECv2SigningOnly envelope Google signs them with. This
//! follows Tink's PaymentMethodTokenRecipient, with Wallet's sender id "GooglePayPasses". The module is pure:
//! the caller fetches and caches the root keys, and passes the clock.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::sign::Verifier;
use serde::Deserialize;
use serde_json::Value;
use serde_json::error::Category;

const SENDER_ID: &str = "GooglePayPasses";
const PROTOCOL: &str = "ECv2SigningOnly";
/// Google sends one intermediate signature. The cap stops a hostile body from buying many ECDSA checks.
const MAX_SIGNATURES: usize = 8;

/// Google's root signing keys, from https://pay.google.com/gp/m/issuer/keys:
/// `{"keys":[{"keyValue": "<base64 SPKI>", "protocolVersion": "ECv2SigningOnly", "keyExpiration": "<unix ms>"}]}`.
/// Tink skips ECv2SigningOnly keys that have no `keyExpiration`, and so does this parser.
#[derive(Debug, Clone)]
pub struct RootKeys {
    /// Each key with its expiry in unix ms. Expiry is checked when verifying, because parsing has no clock.
    keys: Vec<(PKey<Public>, i64)>,
}

impl RootKeys {
    /// Keeps only the ECv2SigningOnly keys, and fails if none is usable. Other protocols' entries are not read.
    pub fn parse(json: &[u8]) -> Result<RootKeys, CallbackError> {
        let bad = |why: &str| CallbackError::BadRootKeys(why.to_owned());
        let doc: Value = serde_json::from_slice(json).map_err(|_| bad("not JSON"))?;
        let entries = doc.get("keys").and_then(Value::as_array).ok_or_else(|| bad("no keys array"))?;
        let mut keys = Vec::new();
        for entry in entries {
            if entry.get("protocolVersion").and_then(Value::as_str) != Some(PROTOCOL) {
                continue;
            }
            let Some(expiration) = entry.get("keyExpiration") else { continue };
            let expiration = millis(expiration).ok_or_else(|| bad("a keyExpiration is not a whole number of ms"))?;
            let value = entry.get("keyValue").and_then(Value::as_str).ok_or_else(|| bad("a key has no keyValue"))?;
            let key = public_key(value).map_err(|_| bad("a keyValue is not a base64 P-256 public key"))?;
            keys.push((key, expiration));
        }
        if keys.is_empty() {
            return Err(bad("no ECv2SigningOnly key with a keyExpiration"));
        }
        Ok(RootKeys { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The callback's `eventType`: "save" or "del".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackEvent {
    Save,
    Delete,
}

/// The verified `signedMessage`. De-duplicate on `nonce`, because Google retries deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackMessage {
    pub class_id: String,
    pub object_id: String,
    pub event: CallbackEvent,
    pub exp_time_millis: i64,
    pub count: Option<i64>,
    pub nonce: String,
}

/// Why a callback or a keys document was refused. Messages never quote key material or signatures.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("malformed callback: {0}")]
    Malformed(String),
    #[error("unsupported callback protocol version \"{0}\"")]
    UnsupportedProtocol(String),
    #[error("the callback's intermediate signing key is not signed by a current Google root key")]
    BadIntermediateSignature,
    #[error("the callback's intermediate signing key has expired")]
    IntermediateExpired,
    #[error("the callback's signature does not verify for this issuer")]
    BadSignature,
    #[error("the callback message has expired")]
    Expired,
    #[error("unknown callback event type \"{0}\"")]
    UnknownEvent(String),
    #[error("unusable Google root keys: {0}")]
    BadRootKeys(String),
}

// Tink's validateECV2 requires exactly these four fields, and validateIntermediateSigningKey exactly two.
// The fields are Options so that a missing field and a wrong protocol give different errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Envelope {
    protocol_version: Option<String>,
    signature: Option<String>,
    signed_message: Option<String>,
    intermediate_signing_key: Option<Intermediate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Intermediate {
    signed_key: String,
    signatures: Vec<String>,
}

// Tink allows extra fields in signedKey so the protocol can grow. Wallet messages may gain fields too.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignedKey {
    key_value: String,
    key_expiration: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    class_id: String,
    object_id: String,
    event_type: String,
    exp_time_millis: Value,
    #[serde(default)]
    count: Value,
    nonce: String,
}

/// A callback parsed whole before any key is needed: the envelope's four fields, the intermediate signing
/// key with its signatures, and the signed message with its event, all of the right shape. Only such a
/// callback is worth fetching Google's root keys for; anything else is refused as it stands.
pub struct SignedCallback {
    signature: Vec<u8>,
    signed_message: String,
    intermediate: SignedIntermediate,
    message: CallbackMessage,
}

/// `intermediateSigningKey`: the `signedKey` text as signed, its signatures and what it holds.
struct SignedIntermediate {
    signed_key: String,
    signatures: Vec<Vec<u8>>,
    key: PKey<Public>,
    expiration_ms: i64,
}

impl SignedCallback {
    /// Parses a callback body; no clock, no keys.
    pub fn parse(body: &[u8]) -> Result<SignedCallback, CallbackError> {
        let envelope: Envelope = serde_json::from_slice(body).map_err(json_error("body"))?;
        let protocol = envelope.protocol_version.ok_or_else(|| malformed("no protocolVersion"))?;
        if protocol != PROTOCOL {
            return Err(CallbackError::UnsupportedProtocol(printable(&protocol)));
        }
        let intermediate = envelope.intermediate_signing_key.ok_or_else(|| malformed("no intermediateSigningKey"))?;
        let signature = envelope.signature.ok_or_else(|| malformed("no signature"))?;
        let signed_message = envelope.signed_message.ok_or_else(|| malformed("no signedMessage"))?;
        let signature = STANDARD.decode(signature).map_err(|_| malformed("signature is not base64"))?;
        let intermediate = SignedIntermediate::parse(intermediate)?;
        let message = parse_message(&signed_message)?;
        Ok(SignedCallback { signature, signed_message, intermediate, message })
    }

    /// Verifies the callback for `recipient_id` (the issuer id) at `now_ms` with Google's root keys, and
    /// returns its message. The caller still maps the ids to its own passes and de-duplicates on `nonce`.
    pub fn verify(&self, roots: &RootKeys, recipient_id: &str, now_ms: i64) -> Result<CallbackMessage, CallbackError> {
        let key = self.intermediate.verify(roots, now_ms)?;
        // Same order as Tink's getSignedBytes: sender, recipient, protocol, message.
        let signed = length_value(&[SENDER_ID, recipient_id, PROTOCOL, &self.signed_message])?;
        if !verifies(key, &self.signature, &signed) {
            return Err(CallbackError::BadSignature);
        }
        if self.message.exp_time_millis <= now_ms {
            return Err(CallbackError::Expired);
        }
        Ok(self.message.clone())
    }
}

/// Parses and verifies a callback body in one step (see [`SignedCallback`]).
#[cfg(test)]
fn verify_callback(
    body: &[u8],
    roots: &RootKeys,
    recipient_id: &str,
    now_ms: i64,
) -> Result<CallbackMessage, CallbackError> {
    SignedCallback::parse(body)?.verify(roots, recipient_id, now_ms)
}

impl SignedIntermediate {
    fn parse(im: Intermediate) -> Result<SignedIntermediate, CallbackError> {
        if im.signatures.len() > MAX_SIGNATURES {
            return Err(malformed("too many intermediate signatures"));
        }
        let signatures = im.signatures.iter().map(|s| STANDARD.decode(s)).collect::<Result<Vec<_>, _>>();
        let signatures = signatures.map_err(|_| malformed("an intermediate signature is not base64"))?;
        let signed_key: SignedKey = serde_json::from_str(&im.signed_key).map_err(json_error("signedKey"))?;
        let expiration_ms =
            millis(&signed_key.key_expiration).ok_or_else(|| malformed("keyExpiration is not a number"))?;
        let key = public_key(&signed_key.key_value)?;
        Ok(SignedIntermediate { signed_key: im.signed_key, signatures, key, expiration_ms })
    }

    /// Checks `signedKey` against the unexpired root keys, then its expiry, and returns the intermediate key.
    fn verify(&self, roots: &RootKeys, now_ms: i64) -> Result<&PKey<Public>, CallbackError> {
        let live: Vec<&PKey<Public>> = roots.keys.iter().filter(|(_, exp)| *exp > now_ms).map(|(k, _)| k).collect();
        if live.is_empty() {
            return Err(CallbackError::BadRootKeys("every root key has expired".to_owned()));
        }
        // As Tink's SenderIntermediateCertFactory signs it: sender, protocol, signedKey, and no recipient.
        let signed = length_value(&[SENDER_ID, PROTOCOL, &self.signed_key])?;
        if !live.iter().any(|key| self.signatures.iter().any(|s| verifies(key, s, &signed))) {
            return Err(CallbackError::BadIntermediateSignature);
        }
        if self.expiration_ms <= now_ms {
            return Err(CallbackError::IntermediateExpired);
        }
        Ok(&self.key)
    }
}

/// The signed message's fields; its expiry is checked against the clock when verifying.
fn parse_message(signed_message: &str) -> Result<CallbackMessage, CallbackError> {
    let m: Message = serde_json::from_str(signed_message).map_err(json_error("signedMessage"))?;
    let exp_time_millis = millis(&m.exp_time_millis).ok_or_else(|| malformed("expTimeMillis is not a number"))?;
    if m.nonce.is_empty() {
        return Err(malformed("empty nonce"));
    }
    let event = match m.event_type.as_str() {
        "save" => CallbackEvent::Save,
        "del" => CallbackEvent::Delete,
        other => return Err(CallbackError::UnknownEvent(printable(other))),
    };
    // `count` only informs, so a strange value is dropped and the callback is not refused.
    let count = millis(&m.count);
    Ok(CallbackMessage { class_id: m.class_id, object_id: m.object_id, event, exp_time_millis, count, nonce: m.nonce })
}

/// Each chunk as a 4-byte little-endian length and its UTF-8 bytes (Tink's PaymentMethodTokenUtil.toLengthValue).
fn length_value(chunks: &[&str]) -> Result<Vec<u8>, CallbackError> {
    let mut out = Vec::with_capacity(chunks.iter().map(|c| c.len() + 4).sum());
    for chunk in chunks {
        let len = u32::try_from(chunk.len()).map_err(|_| malformed("a field is too long"))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(chunk.as_bytes());
    }
    Ok(out)
}

/// ECDSA P-256 with SHA-256 over a DER signature. Any OpenSSL error counts as "does not verify".
fn verifies(key: &PKey<Public>, signature: &[u8], data: &[u8]) -> bool {
    let Ok(mut verifier) = Verifier::new(MessageDigest::sha256(), key) else { return false };
    verifier.update(data).and_then(|()| verifier.verify(signature)).unwrap_or(false)
}

/// A base64 DER SubjectPublicKeyInfo that holds a P-256 key. Other key types and curves are refused.
fn public_key(b64: &str) -> Result<PKey<Public>, CallbackError> {
    let der = STANDARD.decode(b64).map_err(|_| malformed("a key is not base64"))?;
    let key = PKey::public_key_from_der(&der).map_err(|_| malformed("a key is not a DER public key"))?;
    if key.ec_key().ok().and_then(|k| k.group().curve_name()) != Some(Nid::X9_62_PRIME256V1) {
        return Err(malformed("a key is not a P-256 key"));
    }
    Ok(key)
}

/// Unix ms, given as a JSON integer or a decimal string like Tink's `Long.parseLong(getAsString())` accepts.
/// A float or an out-of-range value gives None.
fn millis(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_str()?.parse().ok())
}

fn malformed(why: &str) -> CallbackError {
    CallbackError::Malformed(why.to_owned())
}

/// serde's own messages can quote the input, so only the error's category is reported.
fn json_error(what: &'static str) -> impl Fn(serde_json::Error) -> CallbackError {
    move |e| match e.classify() {
        Category::Data => CallbackError::Malformed(format!("{what} has missing, unknown or mistyped fields")),
        _ => CallbackError::Malformed(format!("{what} is not JSON")),
    }
}

/// At most 40 characters, with control characters escaped, for error messages.
fn printable(s: &str) -> String {
    s.chars().take(40).flat_map(char::escape_debug).collect()
}

// The one test-side signer, shared with the integration tests. It is declared out here because a #[path]
// inside the inline `tests` module would resolve from src/google/ecv2/tests/, which does not exist.
#[cfg(test)]
#[path = "../../tests/api/google_signer.rs"]
mod signer;

#[cfg(test)]
mod tests {
    use super::signer::{CallbackSigner, SignOptions, callback_message};
    use super::*;
    use CallbackError::*;
    use std::mem::discriminant;

    const ISSUER: &str = "3388000000012345678";
    const NOW: i64 = 1_754_114_831_806;
    const LATER: i64 = NOW + 60_000;

    fn message(event: &str, exp: i64) -> String {
        callback_message(&format!("{ISSUER}.gold"), &format!("{ISSUER}.m-1"), event, exp, "nonce-1").to_string()
    }

    fn check(s: &CallbackSigner, body: &str) -> Result<CallbackMessage, CallbackError> {
        verify_callback(body.as_bytes(), &RootKeys::parse(s.root_keys_json().as_bytes()).unwrap(), ISSUER, NOW)
    }

    /// A genuine save signed with `options`, and a genuine one with a top-level field set to `value`.
    fn signed(s: &CallbackSigner, options: SignOptions) -> String {
        s.sign_with(ISSUER, &message("save", LATER), &options)
    }
    fn edited(s: &CallbackSigner, field: &str, value: &str) -> String {
        let mut body: Value = serde_json::from_str(&signed(s, SignOptions::default())).unwrap();
        body[field] = Value::from(value);
        body.to_string()
    }

    #[test]
    fn genuine_save_and_delete_verify() {
        let s = CallbackSigner::new();
        let save = check(&s, &s.sign(ISSUER, &callback_message("3388.c", "3388.o", "save", LATER, "n1"))).unwrap();
        let (class_id, object_id, nonce, event) = ("3388.c".into(), "3388.o".into(), "n1".into(), CallbackEvent::Save);
        assert_eq!(save, CallbackMessage { class_id, object_id, event, exp_time_millis: LATER, count: Some(1), nonce });
        let del = s.sign_with(ISSUER, &message("del", LATER), &SignOptions::default());
        assert_eq!(check(&s, &del).unwrap().event, CallbackEvent::Delete);
    }

    #[test]
    fn each_bad_callback_gets_its_error() {
        let s = CallbackSigner::new();
        let with = |f: fn(&mut SignOptions)| {
            let mut options = SignOptions::default();
            f(&mut options);
            signed(&s, options)
        };
        let (bad, unknown) = (Malformed(String::new()), UnknownEvent(String::new()));
        let msg = |from: &str, to: &str| {
            s.sign_with(ISSUER, &message("save", LATER).replace(from, to), &SignOptions::default())
        };
        for (name, body, want) in [
            ("not JSON", "{not json".into(), &bad),
            ("unsigned", with(|o| o.omit_signature = true), &bad),
            ("forged message", edited(&s, "signedMessage", &message("del", LATER)), &BadSignature),
            ("other intermediate", with(|o| o.foreign_intermediate = true), &BadSignature),
            ("other root", with(|o| o.foreign_root = true), &BadIntermediateSignature),
            ("expired intermediate", with(|o| o.intermediate_expiration_ms = Some(NOW)), &IntermediateExpired),
            ("expired message", s.sign_with(ISSUER, &message("save", NOW), &SignOptions::default()), &Expired),
            ("wrong recipient", with(|o| o.recipient_override = Some("1".into())), &BadSignature),
            ("wrong sender", with(|o| o.sender_override = Some("Google".into())), &BadIntermediateSignature),
            (
                "wrong protocol",
                with(|o| o.protocol_override = Some("ECv2".into())),
                &UnsupportedProtocol(String::new()),
            ),
            ("garbage base64", edited(&s, "signature", "!!not*base64"), &bad),
            ("extra field", edited(&s, "extra", "x"), &bad),
            ("huge expiry", msg(&LATER.to_string(), "99999999999999999999"), &bad),
            ("float expiry", msg(&LATER.to_string(), "1e999"), &bad),
            ("empty nonce", msg("nonce-1", ""), &bad),
            ("numeric class", msg(&format!(r#""{ISSUER}.gold""#), "1"), &bad),
            ("unknown event", msg(r#""save""#, r#""up""#), &unknown),
            ("message not an object", s.sign_with(ISSUER, "[]", &SignOptions::default()), &bad),
            ("deep nesting", "[".repeat(100_000), &bad),
            ("no fields", "{}".into(), &bad),
            ("mistyped protocol", r#"{"protocolVersion":7}"#.into(), &bad),
        ] {
            let err = check(&s, &body).expect_err(name);
            assert_eq!(discriminant(&err), discriminant(want), "{name}: {err:?}");
        }
    }

    #[test]
    fn root_keys_documents() {
        let s = CallbackSigner::new();
        assert_eq!(RootKeys::parse(s.root_keys_json().as_bytes()).unwrap().len(), 1, "the ECv1 entry is not kept");
        let bad = |json: &str| matches!(RootKeys::parse(json.as_bytes()), Err(BadRootKeys(_)));
        assert!(bad(r#"{"keys":[{"keyValue":"MFkw","protocolVersion":"ECv1"}]}"#), "no ECv2SigningOnly key");
        assert!(bad(r#"{"keys":[{"keyValue":"!!","protocolVersion":"ECv2SigningOnly","keyExpiration":"9"}]}"#));
        assert!(bad(r#"{"keys":[]}"#) && bad("not json") && bad(r#"{"keys":{}}"#) && bad("[]"));
        let mut doc: Value = serde_json::from_str(&s.root_keys_json()).unwrap();
        doc["keys"][0].as_object_mut().unwrap().remove("keyExpiration");
        assert!(bad(&doc.to_string()), "like Tink, an ECv2SigningOnly key without keyExpiration is skipped");
        let roots = RootKeys::parse(s.root_keys_json().as_bytes()).unwrap();
        let late = verify_callback(signed(&s, SignOptions::default()).as_bytes(), &roots, ISSUER, i64::MAX);
        assert!(matches!(late, Err(BadRootKeys(_))), "every root key expired");
    }

    #[test]
    fn mutated_bodies_never_verify_nor_panic() {
        let s = CallbackSigner::new();
        let roots = RootKeys::parse(s.root_keys_json().as_bytes()).unwrap();
        let body = signed(&s, SignOptions::default()).into_bytes();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        // JSON-ish bytes, but no whitespace or backslash: inserting those can leave the meaning unchanged.
        const BYTES: &[u8] = b"\"{}[],:0123456789eE+-.abcdefnulrtsACDEFGSv=/\x00\xff";
        for _ in 0..4000 {
            let mut m = body.clone();
            for _ in 0..1 + next(3) {
                let i = next(m.len().max(1));
                match next(8) {
                    _ if m.is_empty() => break,
                    0..=2 => m[i] = BYTES[next(BYTES.len())],
                    3..=5 => m.insert(i, BYTES[next(BYTES.len())]),
                    6 => drop(m.remove(i)),
                    _ => m.truncate(i),
                }
            }
            if m != body {
                assert!(verify_callback(&m, &roots, ISSUER, NOW).is_err(), "{}", String::from_utf8_lossy(&m));
            }
        }
    }
}

//! The pass signature as a prepared DER template.
//!
//! OpenSSL signs one probe manifest when the builder starts; its detached SignedData (the certificates,
//! the issuer and serial, the algorithms) is the same for every pass of that identity except three
//! fixed-length fields: the messageDigest (SHA-256 of manifest.json), the signingTime (UTCTime, 13
//! characters) and the RSA signature (the modulus' length) over the signed attributes. A pass then costs
//! one copy of the template, two SHA-256 and one RSA private-key operation on a prepared context, instead
//! of `PKCS7_sign` building and re-encoding the whole structure.
//!
//! The layout is read at fixed paths and the result is verified by OpenSSL before it is used; an identity
//! whose template cannot be made (a key that is not RSA, another digest) is refused with a typed error,
//! and the builder signs its passes with `Pkcs7::sign` instead.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use openssl::error::ErrorStack;
use openssl::md::Md;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{Id, PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sha::sha256;
use openssl::stack::Stack;
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

use super::certs::SigningIdentity;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const UTC_TIME: u8 = 0x17;
/// `[0]` constructed: SignedData's explicit content and certificates, a signer's signed attributes.
const CONTEXT_0: u8 = 0xa0;
/// `[1]` constructed: SignedData's CRLs.
const CONTEXT_1: u8 = 0xa1;

/// 1.2.840.113549.1.7.2
const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// 2.16.840.1.101.3.4.2.1
const SHA_256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// 1.2.840.113549.1.9.4
const MESSAGE_DIGEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
/// 1.2.840.113549.1.9.5
const SIGNING_TIME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05];

/// `YYMMDDHHMMSSZ`
const UTC_TIME_LEN: usize = 13;
const SHA_256_LEN: usize = 32;
/// The probe's signing time, 2030-01-01T00:00:00Z: any UTCTime will do, it is replaced per pass.
const PROBE_TIME: i64 = 1_893_456_000;

/// Why an identity gets no template (it is then signed by `Pkcs7::sign`), or why one signature failed.
#[derive(Debug, thiserror::Error)]
pub enum SignedDataError {
    #[error("the pass key is not RSA")]
    NotRsa,
    #[error("OpenSSL's SignedData does not have the expected layout: {0}")]
    Layout(&'static str),
    #[error("the template's signature does not verify")]
    SelfCheck,
    #[error("signing time {0} is outside UTCTime's years (1950 to 2049)")]
    TimeOutOfRange(i64),
    #[error("OpenSSL")]
    OpenSsl(#[from] ErrorStack),
}

/// A detached SignedData with the three per-pass fields located.
pub struct SignatureTemplate {
    der: Vec<u8>,
    /// The signer's signed attributes, `[0] IMPLICIT` header included.
    attributes: Range<usize>,
    signing_time: Range<usize>,
    message_digest: Range<usize>,
    signature: Range<usize>,
    signers: RsaSigners,
}

impl SignatureTemplate {
    pub fn new(identity: &SigningIdentity) -> Result<SignatureTemplate, SignedDataError> {
        if identity.key.id() != Id::RSA {
            return Err(SignedDataError::NotRsa);
        }
        let probe = b"{\"pass.json\":\"0000000000000000000000000000000000000000\"}";
        let flags = Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY | Pkcs7Flags::NOSMIMECAP;
        let der = Pkcs7::sign(&identity.cert, &identity.key, &identity.chain, probe, flags)?.to_der()?;
        let layout = Layout::read(&der)?;
        if der[layout.message_digest.clone()] != sha256(probe) {
            return Err(SignedDataError::Layout("the messageDigest is not the manifest's SHA-256"));
        }
        if layout.signature.len() != identity.key.size() {
            return Err(SignedDataError::Layout("the signature is not as long as the RSA modulus"));
        }
        let template = SignatureTemplate {
            der,
            attributes: layout.attributes,
            signing_time: layout.signing_time,
            message_digest: layout.message_digest,
            signature: layout.signature,
            signers: RsaSigners { key: identity.key.clone(), idle: Mutex::new(Vec::new()) },
        };
        template.self_check(&identity.cert, probe)?;
        Ok(template)
    }

    /// The detached DER signature of `manifest`, with `signed_at` (unix seconds) as its signingTime.
    pub fn sign(&self, manifest: &[u8], signed_at: i64) -> Result<Vec<u8>, SignedDataError> {
        let time = utc_time(signed_at).ok_or(SignedDataError::TimeOutOfRange(signed_at))?;
        let mut der = self.der.clone();
        der[self.message_digest.clone()].copy_from_slice(&sha256(manifest));
        der[self.signing_time.clone()].copy_from_slice(&time);
        // What is signed is the DER of the attributes as a SET, not the [0] IMPLICIT tag they carry here.
        let attributes = &mut der[self.attributes.clone()];
        attributes[0] = SET;
        let digest = sha256(attributes);
        attributes[0] = CONTEXT_0;
        self.signers.sign(&digest, &mut der[self.signature.clone()])?;
        Ok(der)
    }

    /// Signs the probe once more with another time and has OpenSSL verify it, chain aside.
    fn self_check(&self, cert: &X509, probe: &[u8]) -> Result<(), SignedDataError> {
        let der = self.sign(probe, PROBE_TIME)?;
        let pkcs7 = Pkcs7::from_der(&der)?;
        let mut certs = Stack::new()?;
        certs.push(cert.clone())?;
        let store = X509StoreBuilder::new()?.build();
        let flags = Pkcs7Flags::BINARY | Pkcs7Flags::NOVERIFY;
        pkcs7.verify(&certs, &store, Some(probe), None, flags).map_err(|_| SignedDataError::SelfCheck)
    }
}

/// Prepared RSA PKCS#1 v1.5 SHA-256 contexts, one per thread signing at once: setting one up (fetching
/// the algorithm, the padding and digest parameters) costs microseconds a pass need not pay again.
struct RsaSigners {
    key: PKey<Private>,
    idle: Mutex<Vec<PkeyCtx<Private>>>,
}

impl RsaSigners {
    fn sign(&self, digest: &[u8; SHA_256_LEN], out: &mut [u8]) -> Result<(), SignedDataError> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut ctx = match idle {
            Some(ctx) => ctx,
            None => self.context()?,
        };
        let written = ctx.sign(digest, Some(out))?;
        if written != out.len() {
            return Err(SignedDataError::Layout("the RSA signature came out shorter than the modulus"));
        }
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(ctx);
        Ok(())
    }

    fn context(&self) -> Result<PkeyCtx<Private>, ErrorStack> {
        let mut ctx = PkeyCtx::new(&self.key)?;
        ctx.sign_init()?;
        ctx.set_rsa_padding(Padding::PKCS1)?;
        ctx.set_signature_md(Md::sha256())?;
        Ok(ctx)
    }
}

/// `YYMMDDHHMMSSZ` of a unix time in 1950 to 2049, the years UTCTime holds (RFC 5280 asks for
/// GeneralizedTime after, which would change the template's length).
fn utc_time(unix: i64) -> Option<[u8; UTC_TIME_LEN]> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    if !(1950..2050).contains(&t.year()) {
        return None;
    }
    let mut out = [b'Z'; UTC_TIME_LEN];
    let parts =
        [t.year() % 100, t.month() as i32, t.day().into(), t.hour().into(), t.minute().into(), t.second().into()];
    for (i, part) in parts.into_iter().enumerate() {
        out[2 * i] = b'0' + (part / 10) as u8;
        out[2 * i + 1] = b'0' + (part % 10) as u8;
    }
    Some(out)
}

/// Where the per-pass fields are in OpenSSL's DER.
struct Layout {
    attributes: Range<usize>,
    signing_time: Range<usize>,
    message_digest: Range<usize>,
    signature: Range<usize>,
}

/// One DER element: where it starts (its tag) and where its content starts and ends.
#[derive(Clone, Copy)]
struct Element {
    tag: u8,
    at: usize,
    content: usize,
    end: usize,
}

impl Element {
    fn whole(&self) -> Range<usize> {
        self.at..self.end
    }

    fn content(&self) -> Range<usize> {
        self.content..self.end
    }
}

impl Layout {
    /// ContentInfo → [0] → SignedData → signerInfos → the one SignerInfo, at fixed paths.
    fn read(der: &[u8]) -> Result<Layout, SignedDataError> {
        let content_info = element(der, 0, der.len(), SEQUENCE, "ContentInfo")?;
        if content_info.end != der.len() {
            return Err(SignedDataError::Layout("bytes after the ContentInfo"));
        }
        let kind = element(der, content_info.content, content_info.end, OID, "content type")?;
        if der[kind.content()] != *SIGNED_DATA {
            return Err(SignedDataError::Layout("not SignedData"));
        }
        let explicit = element(der, kind.end, content_info.end, CONTEXT_0, "[0] content")?;
        let signed_data = element(der, explicit.content, explicit.end, SEQUENCE, "SignedData")?;
        let version = element(der, signed_data.content, signed_data.end, INTEGER, "version")?;
        let digests = element(der, version.end, signed_data.end, SET, "digestAlgorithms")?;
        let content = element(der, digests.end, signed_data.end, SEQUENCE, "contentInfo")?;
        let inner_type = element(der, content.content, content.end, OID, "content type")?;
        if inner_type.end != content.end {
            return Err(SignedDataError::Layout("the content is not detached"));
        }
        let mut next = element(der, content.end, signed_data.end, 0, "certificates")?;
        while next.tag == CONTEXT_0 || next.tag == CONTEXT_1 {
            next = element(der, next.end, signed_data.end, 0, "signerInfos")?;
        }
        if next.tag != SET || next.end != signed_data.end {
            return Err(SignedDataError::Layout("no signerInfos at the end of SignedData"));
        }
        let signer = element(der, next.content, next.end, SEQUENCE, "SignerInfo")?;
        if signer.end != next.end {
            return Err(SignedDataError::Layout("more than one signer"));
        }
        Self::read_signer(der, signer)
    }

    fn read_signer(der: &[u8], signer: Element) -> Result<Layout, SignedDataError> {
        let version = element(der, signer.content, signer.end, INTEGER, "signer version")?;
        let issuer = element(der, version.end, signer.end, SEQUENCE, "issuerAndSerialNumber")?;
        let digest = element(der, issuer.end, signer.end, SEQUENCE, "digestAlgorithm")?;
        let digest_oid = element(der, digest.content, digest.end, OID, "digest algorithm")?;
        if der[digest_oid.content()] != *SHA_256 {
            return Err(SignedDataError::Layout("the digest is not SHA-256"));
        }
        let attributes = element(der, digest.end, signer.end, CONTEXT_0, "signed attributes")?;
        let (mut signing_time, mut message_digest) = (None, None);
        let mut at = attributes.content;
        while at < attributes.end {
            let attribute = element(der, at, attributes.end, SEQUENCE, "attribute")?;
            let kind = element(der, attribute.content, attribute.end, OID, "attribute type")?;
            let values = element(der, kind.end, attribute.end, SET, "attribute values")?;
            let value = element(der, values.content, values.end, 0, "attribute value")?;
            match &der[kind.content()] {
                oid if oid == SIGNING_TIME && value.tag == UTC_TIME && value.content().len() == UTC_TIME_LEN => {
                    signing_time = Some(value.content());
                }
                oid if oid == MESSAGE_DIGEST && value.tag == OCTET_STRING && value.content().len() == SHA_256_LEN => {
                    message_digest = Some(value.content());
                }
                _ => {}
            }
            at = attribute.end;
        }
        let algorithm = element(der, attributes.end, signer.end, SEQUENCE, "signature algorithm")?;
        let signature = element(der, algorithm.end, signer.end, OCTET_STRING, "signature")?;
        if signature.end != signer.end {
            return Err(SignedDataError::Layout("unsigned attributes after the signature"));
        }
        Ok(Layout {
            attributes: attributes.whole(),
            signing_time: signing_time.ok_or(SignedDataError::Layout("no UTCTime signingTime"))?,
            message_digest: message_digest.ok_or(SignedDataError::Layout("no SHA-256 messageDigest"))?,
            signature: signature.content(),
        })
    }
}

/// The element at `at`, which must end by `limit` and carry `tag` (0: any tag).
fn element(der: &[u8], at: usize, limit: usize, tag: u8, what: &'static str) -> Result<Element, SignedDataError> {
    let bad = || SignedDataError::Layout(what);
    let bytes = der.get(at..limit).ok_or_else(bad)?;
    let [found, first, rest @ ..] = bytes else { return Err(bad()) };
    let (len, header) = if *first < 0x80 {
        (usize::from(*first), 2)
    } else {
        // Long form: 1 to 4 length bytes; 0x80 (indefinite) is BER, not DER.
        let count = usize::from(first & 0x7f);
        let bytes = rest.get(..count).filter(|b| (1..=4).contains(&b.len())).ok_or_else(bad)?;
        (bytes.iter().fold(0usize, |acc, &b| acc << 8 | usize::from(b)), 2 + count)
    };
    let end = (at + header).checked_add(len).filter(|&end| end <= limit).ok_or_else(bad)?;
    if tag != 0 && *found != tag {
        return Err(bad());
    }
    Ok(Element { tag: *found, at, content: at + header, end })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn example(file: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("certs-example").join(file)
    }

    fn identity() -> SigningIdentity {
        SigningIdentity::load(&example("pass.pem"), &example("pass.key"), &example("wwdr.pem"), None).unwrap()
    }

    /// OpenSSL's own verification, the chain up to certs-example's root included.
    fn verifies(signature: &[u8], manifest: &[u8]) -> bool {
        let root = X509::from_pem(&std::fs::read(example("root.pem")).unwrap()).unwrap();
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(root).unwrap();
        let pkcs7 = Pkcs7::from_der(signature).unwrap();
        let none = Stack::new().unwrap();
        pkcs7.verify(&none, &store.build(), Some(manifest), None, Pkcs7Flags::BINARY).is_ok()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    const MANIFEST: &[u8] = br#"{"icon.png":"0cf8d6a9c4a3c1e1b8d3b5d1e4f2a7c9b0e3d2f1","pass.json":"5d41402abc4b2a76b9719d911017c592aaf4c6d1"}"#;

    #[test]
    fn the_template_signature_verifies_to_the_root_with_its_time_and_the_manifest_digest() {
        let identity = identity();
        let template = SignatureTemplate::new(&identity).unwrap();
        let signed_at = 1_935_817_689; // 2031-05-06T07:08:09Z
        let signature = template.sign(MANIFEST, signed_at).unwrap();
        assert!(verifies(&signature, MANIFEST), "OpenSSL verifies it against certs-example/root.pem");
        assert!(contains(&signature, b"\x17\x0d310506070809Z"), "the signingTime is the one given");
        let digest = [&[OCTET_STRING, 32][..], &sha256(MANIFEST)].concat();
        assert!(contains(&signature, &digest), "the messageDigest is the manifest's SHA-256");
        assert!(contains(&signature, &identity.wwdr.to_der().unwrap()), "the WWDR intermediate is carried");

        let mut changed = MANIFEST.to_vec();
        changed[MANIFEST.len() - 3] ^= 1;
        assert!(!verifies(&signature, &changed), "a manifest changed by one byte does not verify");
    }

    #[test]
    fn the_template_signs_byte_for_byte_what_openssl_signs_in_the_same_second() {
        let identity = identity();
        let template = SignatureTemplate::new(&identity).unwrap();
        let flags = Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY | Pkcs7Flags::NOSMIMECAP;
        // Retried when the clock's second turns between the two signatures.
        for _ in 0..5 {
            let before = crate::time_fmt::now_unix();
            let openssl = Pkcs7::sign(&identity.cert, &identity.key, &identity.chain, MANIFEST, flags).unwrap();
            if crate::time_fmt::now_unix() == before {
                assert_eq!(template.sign(MANIFEST, before).unwrap(), openssl.to_der().unwrap());
                return;
            }
        }
        panic!("the clock's second turned during every attempt");
    }

    #[test]
    fn concurrent_signers_each_get_a_correct_signature() {
        let identity = identity();
        let template = SignatureTemplate::new(&identity).unwrap();
        std::thread::scope(|scope| {
            let template = &template;
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    scope.spawn(move || {
                        let manifest = format!("{{\"pass.json\":\"{i:040}\"}}");
                        (0..3).all(|_| {
                            verifies(&template.sign(manifest.as_bytes(), PROBE_TIME).unwrap(), manifest.as_bytes())
                        })
                    })
                })
                .collect();
            assert!(threads.into_iter().all(|t| t.join().unwrap()));
        });
        assert!(template.signers.idle.lock().unwrap().len() <= 4, "one prepared context per signer at once");
    }

    #[test]
    fn utc_time_holds_1950_to_2049_only() {
        assert_eq!(&utc_time(0).unwrap(), b"700101000000Z");
        assert_eq!(&utc_time(-631_152_000).unwrap(), b"500101000000Z");
        assert_eq!(&utc_time(2_524_607_999).unwrap(), b"491231235959Z");
        assert_eq!(utc_time(2_524_608_000), None, "2050 needs GeneralizedTime");
        assert_eq!(utc_time(-631_152_001), None);
        let template = SignatureTemplate::new(&identity()).unwrap();
        assert!(matches!(template.sign(MANIFEST, 2_524_608_000), Err(SignedDataError::TimeOutOfRange(_))));
    }

    #[test]
    fn layouts_that_are_not_a_single_detached_signer_are_refused() {
        let identity = identity();
        let flags = Pkcs7Flags::BINARY | Pkcs7Flags::NOSMIMECAP;
        let attached = Pkcs7::sign(&identity.cert, &identity.key, &identity.chain, MANIFEST, flags).unwrap();
        assert!(matches!(Layout::read(&attached.to_der().unwrap()), Err(SignedDataError::Layout(_))));
        let detached =
            Pkcs7::sign(&identity.cert, &identity.key, &identity.chain, MANIFEST, flags | Pkcs7Flags::DETACHED);
        let der = detached.unwrap().to_der().unwrap();
        for cut in [1, 100, der.len() / 2, der.len() - 1] {
            assert!(Layout::read(&der[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(Layout::read(&trailing).is_err());
        assert!(Layout::read(&der).is_ok());
    }
}

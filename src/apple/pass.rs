//! The .pkpass builder: render pass.json, hash every file into manifest.json, sign the manifest, zip.
//!
//! Pure: takes data, answers bytes, knows no database. What never changes per member (images, strings,
//! their hashes and ZIP entries, the parsed key and certificates, the SignedData around the signature) is
//! prepared once in `new`, so a pass costs one template render, one SHA-1 of pass.json, one RSA
//! signature and a copy.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};

use super::certs::SigningIdentity;
use super::signed_data::{SignatureTemplate, SignedDataError};
use super::zip::{StaticArchive, TooLarge, write_archive};
use crate::templates::{CouponContext, CouponFields, MemberFields, PassContext, PassFields, Program, TemplateError};

/// What a pass shows, whatever it is stored in.
#[derive(Debug, Clone)]
pub struct PassData<'a> {
    pub serial_number: &'a str,
    pub authentication_token: &'a str,
    pub voided: bool,
    pub member_id: &'a str,
    pub name: Option<&'a str>,
    pub tier: &'a str,
    pub points: i64,
    pub locale: Option<&'a str>,
    pub attributes: &'a serde_json::Value,
    /// The template of the latest offer granted (its title is on the card's back).
    pub latest_offer: Option<&'a str>,
    /// Unix seconds; dates the archive's entries.
    pub modified_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("unknown tier `{0}`")]
    UnknownTier(String),
    #[error("unknown offer template `{0}`")]
    UnknownOffer(String),
    #[error("template")]
    Template(#[from] TemplateError),
    #[error("signing failed")]
    Sign(#[from] openssl::error::ErrorStack),
    #[error("signing from the prepared SignedData failed")]
    SignedData(#[from] SignedDataError),
    #[error("writing the archive failed")]
    Zip(#[from] TooLarge),
}

struct TierBundle {
    entries: StaticArchive,
    /// `{"icon.png":"<sha1>",…,` — manifest.json up to the pass.json entry.
    manifest_prefix: String,
}

impl TierBundle {
    /// The static files of one design (a tier's card, an offer's coupon), zipped and hashed once.
    fn new(files: &[(String, Vec<u8>)], built_at: i64) -> Result<TierBundle, PassError> {
        let mut manifest_prefix = String::from("{");
        for (name, data) in files {
            let _ = write!(manifest_prefix, "{}:\"{}\",", serde_json::Value::from(name.as_str()), sha1_hex(data));
        }
        Ok(TierBundle { entries: StaticArchive::new(files, built_at)?, manifest_prefix })
    }
}

pub struct PassBuilder {
    identity: Arc<SigningIdentity>,
    /// The prepared SignedData; `None` for an identity it cannot be made for, whose passes
    /// `Pkcs7::sign` signs whole.
    signature: Option<SignatureTemplate>,
    program: Arc<Program>,
    web_service_url: String,
    tiers: HashMap<String, TierBundle>,
    /// Per offer template, the coupon pass's static files.
    coupons: HashMap<String, TierBundle>,
}

/// What a coupon pass shows.
#[derive(Debug, Clone)]
pub struct CouponData<'a> {
    pub serial_number: &'a str,
    pub authentication_token: &'a str,
    pub voided: bool,
    pub coupon_id: &'a str,
    pub code: &'a str,
    /// active, redeemed, expired or withdrawn.
    pub state: &'a str,
    /// Unix seconds.
    pub valid_from: i64,
    pub valid_until: i64,
    pub offer_id: &'a str,
    pub template: &'a str,
    pub member_id: &'a str,
    pub member_name: Option<&'a str>,
    pub tier: &'a str,
    pub locale: Option<&'a str>,
    pub modified_at: i64,
}

pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}

impl PassBuilder {
    pub fn new(
        identity: Arc<SigningIdentity>,
        program: Arc<Program>,
        web_service_url: &str,
    ) -> Result<PassBuilder, PassError> {
        let built_at = crate::time_fmt::now_unix();
        let mut tiers = HashMap::new();
        for tier in program.tier_names() {
            tiers.insert(tier.to_string(), TierBundle::new(&program.static_files(tier), built_at)?);
        }
        let mut coupons = HashMap::new();
        for template in program.offer_names() {
            coupons.insert(template.to_string(), TierBundle::new(&program.coupon_static_files(template), built_at)?);
        }
        let signature = SignatureTemplate::new(&identity)
            .inspect_err(|e| tracing::warn!(error = %e, "passes are signed without the prepared template (slower)"))
            .ok();
        Ok(PassBuilder { identity, signature, program, web_service_url: web_service_url.to_string(), tiers, coupons })
    }

    pub fn identity(&self) -> &SigningIdentity {
        &self.identity
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Renders the pass.json of a member (also used by tests and `inspect`'s callers).
    pub fn render_pass_json(&self, data: &PassData<'_>) -> Result<String, PassError> {
        let tier = self.program.tier(data.tier).ok_or_else(|| PassError::UnknownTier(data.tier.to_string()))?;
        let ctx = PassContext {
            pass: PassFields {
                pass_type_identifier: &self.identity.pass_type_id,
                team_identifier: &self.identity.team_id,
                serial_number: data.serial_number,
                authentication_token: data.authentication_token,
                web_service_url: &self.web_service_url,
                voided: data.voided,
            },
            member: MemberFields {
                member_id: data.member_id,
                display_name: data.name.unwrap_or(data.member_id),
                name: data.name,
                tier: data.tier,
                points: data.points,
                locale: self.program.resolve_locale(data.locale),
                attributes: data.attributes,
                latest_offer: data.latest_offer.and_then(|t| self.program.offer(t)).map(|o| o.design.title.as_str()),
            },
        };
        Ok(self.program.render_pass_json(&tier.design, &ctx)?)
    }

    /// Renders the pass.json of a coupon.
    pub fn render_coupon_json(&self, data: &CouponData<'_>) -> Result<String, PassError> {
        let offer =
            self.program.offer(data.template).ok_or_else(|| PassError::UnknownOffer(data.template.to_string()))?;
        let (valid_from, valid_until) =
            (crate::time_fmt::rfc3339(data.valid_from), crate::time_fmt::rfc3339(data.valid_until));
        let attributes = serde_json::Value::Object(Default::default());
        let ctx = CouponContext {
            pass: PassFields {
                pass_type_identifier: &self.identity.pass_type_id,
                team_identifier: &self.identity.team_id,
                serial_number: data.serial_number,
                authentication_token: data.authentication_token,
                web_service_url: &self.web_service_url,
                voided: data.voided,
            },
            coupon: CouponFields {
                coupon_id: data.coupon_id,
                code: data.code,
                state: data.state,
                valid_from: &valid_from,
                valid_until: &valid_until,
            },
            offer: offer.fields(data.offer_id),
            member: MemberFields {
                member_id: data.member_id,
                display_name: data.member_name.unwrap_or(data.member_id),
                name: data.member_name,
                tier: data.tier,
                points: 0,
                locale: self.program.resolve_locale(data.locale),
                attributes: &attributes,
                latest_offer: None,
            },
        };
        Ok(self.program.render_coupon_json(&ctx)?)
    }

    /// The signed .pkpass bytes of a coupon.
    pub fn build_coupon(&self, data: &CouponData<'_>) -> Result<Vec<u8>, PassError> {
        let bundle =
            self.coupons.get(data.template).ok_or_else(|| PassError::UnknownOffer(data.template.to_string()))?;
        let pass_json = self.render_coupon_json(data)?;
        self.assemble(bundle, &pass_json, data.modified_at)
    }

    /// The signed .pkpass bytes of a member.
    pub fn build(&self, data: &PassData<'_>) -> Result<Vec<u8>, PassError> {
        let bundle = self.tiers.get(data.tier).ok_or_else(|| PassError::UnknownTier(data.tier.to_string()))?;
        let pass_json = self.render_pass_json(data)?;
        self.assemble(bundle, &pass_json, data.modified_at)
    }

    /// The archive of a rendered pass.json: its hash appended to the bundle's manifest, the manifest
    /// signed, and the three files appended to a copy of the bundle's archive.
    fn assemble(&self, bundle: &TierBundle, pass_json: &str, modified_at: i64) -> Result<Vec<u8>, PassError> {
        let mut manifest = String::with_capacity(bundle.manifest_prefix.len() + 64);
        manifest.push_str(&bundle.manifest_prefix);
        let _ = write!(manifest, "\"pass.json\":\"{}\"}}", sha1_hex(pass_json.as_bytes()));
        let signature = self.sign(manifest.as_bytes())?;
        Ok(write_archive(
            &bundle.entries,
            &[("pass.json", pass_json.as_bytes()), ("manifest.json", manifest.as_bytes()), ("signature", &signature)],
            modified_at,
        )?)
    }

    /// A detached DER PKCS#7 signature of `manifest` by the pass certificate, carrying the WWDR
    /// intermediate and a signingTime attribute (which Wallet requires) of now.
    pub fn sign(&self, manifest: &[u8]) -> Result<Vec<u8>, PassError> {
        self.sign_at(manifest, crate::time_fmt::now_unix())
    }

    /// `sign` with `signed_at` (unix seconds) as the signingTime: from the template where there is
    /// one and the time fits its UTCTime, else by `Pkcs7::sign` (which takes the clock's time).
    pub fn sign_at(&self, manifest: &[u8], signed_at: i64) -> Result<Vec<u8>, PassError> {
        match self.signature.as_ref().map(|t| t.sign(manifest, signed_at)) {
            Some(Err(SignedDataError::TimeOutOfRange(_))) | None => {}
            Some(signed) => return Ok(signed?),
        }
        let id = &self.identity;
        let flags = Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY | Pkcs7Flags::NOSMIMECAP;
        Ok(Pkcs7::sign(&id.cert, &id.key, &id.chain, manifest, flags)?.to_der()?)
    }

    /// Whether passes are signed from the prepared template (false: `Pkcs7::sign` per pass).
    pub fn signs_from_template(&self) -> bool {
        self.signature.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::{PKey, Private};
    use openssl::stack::Stack;
    use openssl::x509::X509;
    use openssl::x509::store::X509StoreBuilder;
    use std::io::Read;
    use std::path::Path;

    fn repo(path: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    }

    fn builder(identity: SigningIdentity) -> PassBuilder {
        let program = Program::load(&repo("templates"), "default").unwrap();
        PassBuilder::new(Arc::new(identity), Arc::new(program), "https://wallet.example.com").unwrap()
    }

    fn example_identity() -> SigningIdentity {
        let c = |f: &str| repo(&format!("certs-example/{f}"));
        SigningIdentity::load(&c("pass.pem"), &c("pass.key"), &c("wwdr.pem"), None).unwrap()
    }

    fn verifies(signature: &[u8], manifest: &[u8], root: &X509) -> bool {
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(root.clone()).unwrap();
        let none = Stack::new().unwrap();
        let pkcs7 = Pkcs7::from_der(signature).unwrap();
        pkcs7.verify(&none, &store.build(), Some(manifest), None, Pkcs7Flags::BINARY).is_ok()
    }

    fn example_root() -> X509 {
        X509::from_pem(&std::fs::read(repo("certs-example/root.pem")).unwrap()).unwrap()
    }

    /// A self-signed Pass Type ID-like certificate on a P-256 key, which the template does not take.
    fn ec_identity() -> SigningIdentity {
        use openssl::ec::{EcGroup, EcKey};
        use openssl::nid::Nid;
        use openssl::x509::{X509Builder, X509NameBuilder};
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key: PKey<Private> = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::USERID, "pass.com.example.ec").unwrap();
        name.append_entry_by_nid(Nid::ORGANIZATIONALUNITNAME, "ECTEAM1").unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "EC pass").unwrap();
        let name = name.build();
        let mut cert = X509Builder::new().unwrap();
        cert.set_version(2).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap()).unwrap();
        cert.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).unwrap()).unwrap();
        cert.sign(&key, openssl::hash::MessageDigest::sha256()).unwrap();
        let cert = cert.build();
        SigningIdentity::from_parts(cert.clone(), key, cert).unwrap()
    }

    fn member(attributes: &serde_json::Value) -> PassData<'_> {
        PassData {
            serial_number: "6f1c2b9e4d3a48c7a1e0b5f2c8d9e7a3",
            authentication_token: "Zk3v9QwLr8Tn2Bx7Mc4Hp6Jd1Sy5Ua0Ge",
            voided: false,
            member_id: "M-1",
            name: Some("สมชาย ใจดี"),
            tier: "gold",
            points: 1250,
            locale: Some("th"),
            attributes,
            latest_offer: None,
            modified_at: 1_795_334_400,
        }
    }

    #[test]
    fn a_built_pass_is_signed_from_the_template_over_its_manifest() {
        let builder = builder(example_identity());
        assert!(builder.signs_from_template());
        let attributes = serde_json::json!({});
        let bytes = builder.build(&member(&attributes)).unwrap();
        let mut archive = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut read = |name: &str| {
            let mut out = Vec::new();
            archive.by_name(name).unwrap().read_to_end(&mut out).unwrap();
            out
        };
        let (pass, manifest, signature) = (read("pass.json"), read("manifest.json"), read("signature"));
        let hashes: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(hashes["pass.json"], sha1_hex(&pass));
        assert!(verifies(&signature, &manifest, &example_root()));
    }

    #[test]
    fn a_time_past_utctime_is_signed_whole_by_openssl() {
        let builder = builder(example_identity());
        let manifest = br#"{"pass.json":"5d41402abc4b2a76b9719d911017c592aaf4c6d1"}"#;
        let signature = builder.sign_at(manifest, 2_600_000_000).unwrap();
        assert!(verifies(&signature, manifest, &example_root()));
    }

    #[test]
    fn an_identity_without_a_template_is_signed_whole_by_openssl() {
        let identity = ec_identity();
        assert!(matches!(SignatureTemplate::new(&identity), Err(SignedDataError::NotRsa)));
        let root = identity.cert.clone();
        let builder = builder(identity);
        assert!(!builder.signs_from_template());
        let manifest = br#"{"pass.json":"5d41402abc4b2a76b9719d911017c592aaf4c6d1"}"#;
        let signature = builder.sign(manifest).unwrap();
        assert!(verifies(&signature, manifest, &root));
        assert!(!verifies(&signature, br#"{"pass.json":"5d41402abc4b2a76b9719d911017c592aaf4c6d2"}"#, &root));
    }
}

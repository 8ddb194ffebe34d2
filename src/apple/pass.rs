//! The .pkpass builder: render pass.json, hash every file into manifest.json, sign the manifest, zip.
//!
//! Pure: takes data, answers bytes, knows no database. What never changes per member (images, strings,
//! their hashes and ZIP entries, the parsed key and certificates) is prepared once per tier in `new`, so a
//! pass costs one template render, one SHA-1 of pass.json, one RSA signature and a copy.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use openssl::pkcs7::{Pkcs7, Pkcs7Flags};

use super::certs::SigningIdentity;
use super::zip::{StaticArchive, write_archive};
use crate::templates::{MemberFields, PassContext, PassFields, Program, TemplateError};

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
    /// Unix seconds; dates the archive's entries.
    pub modified_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("unknown tier `{0}`")]
    UnknownTier(String),
    #[error("template")]
    Template(#[from] TemplateError),
    #[error("signing failed")]
    Sign(#[from] openssl::error::ErrorStack),
    #[error("writing the archive failed")]
    Zip(#[from] zip::result::ZipError),
}

struct TierBundle {
    entries: StaticArchive,
    /// `{"icon.png":"<sha1>",…,` — manifest.json up to the pass.json entry.
    manifest_prefix: String,
}

pub struct PassBuilder {
    identity: Arc<SigningIdentity>,
    program: Arc<Program>,
    web_service_url: String,
    tiers: HashMap<String, TierBundle>,
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
            let files = program.static_files(tier);
            let mut manifest_prefix = String::from("{");
            for (name, data) in &files {
                let _ = write!(manifest_prefix, "{}:\"{}\",", serde_json::Value::from(name.as_str()), sha1_hex(data));
            }
            let entries = StaticArchive::new(&files, built_at)?;
            tiers.insert(tier.to_string(), TierBundle { entries, manifest_prefix });
        }
        Ok(PassBuilder { identity, program, web_service_url: web_service_url.to_string(), tiers })
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
            },
        };
        Ok(self.program.render_pass_json(&tier.design, &ctx)?)
    }

    /// The signed .pkpass bytes of a member.
    pub fn build(&self, data: &PassData<'_>) -> Result<Vec<u8>, PassError> {
        let bundle = self.tiers.get(data.tier).ok_or_else(|| PassError::UnknownTier(data.tier.to_string()))?;
        let pass_json = self.render_pass_json(data)?;
        let mut manifest = String::with_capacity(bundle.manifest_prefix.len() + 64);
        manifest.push_str(&bundle.manifest_prefix);
        let _ = write!(manifest, "\"pass.json\":\"{}\"}}", sha1_hex(pass_json.as_bytes()));
        let signature = self.sign(manifest.as_bytes())?;
        Ok(write_archive(
            &bundle.entries,
            &[("pass.json", pass_json.as_bytes()), ("manifest.json", manifest.as_bytes()), ("signature", &signature)],
            data.modified_at,
        )?)
    }

    /// A detached DER PKCS#7 signature of `manifest` by the pass certificate, carrying the WWDR
    /// intermediate and a signingTime attribute (which Wallet requires).
    pub fn sign(&self, manifest: &[u8]) -> Result<Vec<u8>, PassError> {
        let id = &self.identity;
        let flags = Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY | Pkcs7Flags::NOSMIMECAP;
        Ok(Pkcs7::sign(&id.cert, &id.key, &id.chain, manifest, flags)?.to_der()?)
    }
}

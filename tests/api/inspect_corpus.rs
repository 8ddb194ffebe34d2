//! `inspect` against hostile archives made from one valid pass, built in-process from the library:
//! truncations, flipped bytes, ZIP headers that lie, a deflate bomb, 10,000 entries, a 50 MB
//! pass.json, hostile names, signatures that are not Apple's kind, a looping certificate chain, and
//! a few thousand seeded random mutations.
//!
//! Every member must come back (no panic) within a time bound. The named ones must also name the file
//! at fault, in `inspect()` and in the built binary run under a 1 GiB memory cap and a deadline.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::dsa::Dsa;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::BasicConstraints;
use openssl::x509::{X509, X509Name, X509NameBuilder};
use serde_json::{Value, json};
use tessera::apple::inspect::{Report, Severity, inspect};
use tessera::apple::{PassBuilder, PassData, SigningIdentity};
use tessera::templates::Program;

use crate::helpers::repo;

/// One inspection of a hostile file may take this long in the debug build on a busy machine; an
/// unbounded read or loop takes far longer.
const TIME_BOUND: Duration = Duration::from_secs(5);
/// Seeded random mutations of the archive's bytes, and of the files inside it.
const BYTE_MUTATIONS: usize = 1_500;
const CONTENT_MUTATIONS: usize = 1_000;

fn builder(url: &str) -> PassBuilder {
    let certs = repo().join("certs-example");
    let identity =
        SigningIdentity::load(&certs.join("pass.pem"), &certs.join("pass.key"), &certs.join("wwdr.pem"), None)
            .expect("certs-example/ loads");
    let program = Program::load(&repo().join("templates"), "default").expect("templates/default loads");
    PassBuilder::new(Arc::new(identity), Arc::new(program), url).expect("the builder starts")
}

fn member<'a>(tier: &'a str, locale: &'a str, attributes: &'a Value) -> PassData<'a> {
    PassData {
        serial_number: "6f1c2b9e4d3a48c7a1e0b5f2c8d9e7a3",
        authentication_token: "Zk3v9QwLr8Tn2Bx7Mc4Hp6Jd1Sy5Ua0Ge",
        voided: false,
        member_id: "M-000123",
        name: Some("สมชาย ใจดี"),
        tier,
        points: 1250,
        locale: Some(locale),
        attributes,
        latest_offer: None,
        modified_at: 1_767_225_600,
    }
}

/// The valid pass every hostile file is made from, and its files in archive order.
struct Fixture {
    pass: Vec<u8>,
    files: Vec<(String, Vec<u8>)>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let attributes = json!({});
        let pass = builder("https://wallet.example.com").build(&member("gold", "th", &attributes)).expect("builds");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&pass)).expect("a ZIP");
        let files = (0..archive.len())
            .map(|i| {
                let mut entry = archive.by_index(i).expect("an entry");
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut data).expect("reads");
                (entry.name().expect("a name").to_string(), data)
            })
            .collect();
        Fixture { pass, files }
    })
}

fn file<'a>(files: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    files.iter().find(|(n, _)| n == name).map(|(_, d)| d.as_slice()).unwrap_or_else(|| panic!("{name} in the pass"))
}

/// Runs `inspect` the way a hostile file demands: it must return, without a panic, within the bound.
fn inspect_bounded(what: &str, bytes: &[u8]) -> Report {
    let started = Instant::now();
    let report =
        catch_unwind(AssertUnwindSafe(|| inspect(bytes))).unwrap_or_else(|_| panic!("inspect panicked on {what}"));
    let took = started.elapsed();
    assert!(took < TIME_BOUND, "inspect took {took:?} on {what}");
    report
}

fn has_error(report: &Report, file: Option<&str>, phrase: &str) -> bool {
    report.errors().any(|f| f.file.as_deref() == file && f.message.contains(phrase))
}

// ---------------------------------------------------------------------------------------------------
// A ZIP writer that writes whatever it is told, so that headers can lie.

struct RawEntry {
    name: Vec<u8>,
    method: u16,
    flags: u16,
    /// The bytes as stored (compressed for deflate).
    data: Vec<u8>,
    crc32: u32,
    size: u32,
}

impl RawEntry {
    fn stored(name: impl Into<Vec<u8>>, data: &[u8]) -> RawEntry {
        let size = u32::try_from(data.len()).expect("small");
        RawEntry { name: name.into(), method: 0, flags: 0, data: data.to_vec(), crc32: crc32fast::hash(data), size }
    }
}

/// An archive and where each entry's local and central headers start, for patching.
struct RawZip {
    bytes: Vec<u8>,
    local: Vec<usize>,
    central: Vec<usize>,
    end: usize,
}

fn raw_zip(entries: &[RawEntry]) -> RawZip {
    let u16le = |v: usize| u16::try_from(v).expect("fits").to_le_bytes();
    let u32le = |v: usize| u32::try_from(v).expect("fits").to_le_bytes();
    let mut bytes = Vec::new();
    let mut local = Vec::new();
    for e in entries {
        local.push(bytes.len());
        bytes.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        for v in [20, e.flags, e.method, 0, 0x21] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.extend_from_slice(&e.crc32.to_le_bytes());
        bytes.extend_from_slice(&u32le(e.data.len()));
        bytes.extend_from_slice(&e.size.to_le_bytes());
        bytes.extend_from_slice(&u16le(e.name.len()));
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&e.name);
        bytes.extend_from_slice(&e.data);
    }
    let directory = bytes.len();
    let mut central = Vec::new();
    for (e, offset) in entries.iter().zip(&local) {
        central.push(bytes.len());
        bytes.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        for v in [0x0314, 20, e.flags, e.method, 0, 0x21] {
            bytes.extend_from_slice(&u16::to_le_bytes(v));
        }
        bytes.extend_from_slice(&e.crc32.to_le_bytes());
        bytes.extend_from_slice(&u32le(e.data.len()));
        bytes.extend_from_slice(&e.size.to_le_bytes());
        bytes.extend_from_slice(&u16le(e.name.len()));
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        bytes.extend_from_slice(&u32le(*offset));
        bytes.extend_from_slice(&e.name);
    }
    let end = bytes.len();
    bytes.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    bytes.extend_from_slice(&u16le(entries.len()));
    bytes.extend_from_slice(&u16le(entries.len()));
    bytes.extend_from_slice(&u32le(end - directory));
    bytes.extend_from_slice(&u32le(directory));
    bytes.extend_from_slice(&[0, 0]);
    RawZip { bytes, local, central, end }
}

fn stored_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<RawEntry> = files.iter().map(|(n, d)| RawEntry::stored(n.as_bytes(), d)).collect();
    raw_zip(&entries).bytes
}

fn patch_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

/// The valid pass's files as a raw archive, and the index of `name` in it.
fn pass_zip() -> (RawZip, impl Fn(&str) -> usize) {
    let files = &fixture().files;
    let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    (raw_zip(&files.iter().map(|(n, d)| RawEntry::stored(n.as_bytes(), d)).collect::<Vec<_>>()), move |name: &str| {
        names.iter().position(|n| n == name).unwrap_or_else(|| panic!("{name} in the pass"))
    })
}

/// A raw deflate stream of `zeros` zero bytes (a multiple of 258, plus one), hand-built: one dynamic
/// Huffman block in which a 258-byte copy costs two bits, so 1 GiB fits in about 1 MB and takes no
/// compressor time to make.
fn deflated_zeros(matches: usize) -> Vec<u8> {
    struct Bits {
        bytes: Vec<u8>,
        used: u32,
    }
    impl Bits {
        fn put(&mut self, value: u32, count: u32) {
            for i in 0..count {
                if self.used == 0 {
                    self.bytes.push(0);
                }
                if (value >> i) & 1 == 1 {
                    *self.bytes.last_mut().expect("a byte") |= 1 << self.used;
                }
                self.used = (self.used + 1) % 8;
            }
        }
        /// A Huffman code: most significant bit first.
        fn code(&mut self, code: u32, len: u32) {
            for i in (0..len).rev() {
                self.put((code >> i) & 1, 1);
            }
        }
        fn zeros(&mut self, mut count: usize) {
            while self.used != 0 && count > 0 {
                self.put(0, 1);
                count -= 1;
            }
            self.bytes.resize(self.bytes.len() + count / 8, 0);
            self.put(0, u32::try_from(count % 8).expect("small"));
        }
    }
    let mut bits = Bits { bytes: Vec::with_capacity(matches / 4 + 64), used: 0 };
    bits.put(1, 1); // the final block
    bits.put(2, 2); // dynamic Huffman codes
    bits.put(29, 5); // 286 literal/length codes
    bits.put(0, 5); // 1 distance code
    bits.put(14, 4); // 18 code-length codes, in the order 16 17 18 0 8 7 9 6 10 5 11 4 12 3 13 2 14 1
    for len in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        bits.put(len, 3);
    }
    // Code lengths (18 → "0", 1 → "10", 2 → "11"): literal 0 gets 2, then 255 zeros, 256 (end) gets 2,
    // 28 zeros, 285 (length 258) gets 1; the one distance code (distance 1) gets 1.
    bits.code(0b11, 2);
    for run in [138, 117] {
        bits.code(0, 1);
        bits.put(run - 11, 7);
    }
    bits.code(0b11, 2);
    bits.code(0, 1);
    bits.put(28 - 11, 7);
    bits.code(0b10, 2);
    bits.code(0b10, 2);
    // Data: literal 0 ("10"), then each copy of 258 bytes at distance 1 is "0" + "0", then end ("11").
    bits.code(0b10, 2);
    bits.zeros(2 * matches);
    bits.code(0b11, 2);
    bits.bytes
}

/// One GiB of zeros, deflated: (stream, uncompressed size, CRC-32).
fn bomb() -> (Vec<u8>, u32, u32) {
    const MATCHES: usize = 4_161_790; // 1 + 258 × MATCHES = 1 GiB − 3
    // CRC-32 of that many zero bytes, computed once (zlib.crc32) rather than over 1 GiB per run.
    const CRC32: u32 = 0xa1e8_37cf;
    let size = u32::try_from(1 + 258 * MATCHES).expect("under 4 GiB");
    (deflated_zeros(MATCHES), size, CRC32)
}

#[test]
fn the_hand_built_bomb_is_real_deflate() {
    // Small enough to inflate here, through the zip crate: 1 + 258 × 1000 zeros.
    let data = deflated_zeros(1000);
    let zeros = vec![0u8; 1 + 258 * 1000];
    let entry = RawEntry {
        name: b"zeros".to_vec(),
        method: 8,
        flags: 0,
        data,
        crc32: crc32fast::hash(&zeros),
        size: u32::try_from(zeros.len()).expect("small"),
    };
    let bytes = raw_zip(&[entry]).bytes;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP");
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_index(0).expect("an entry"), &mut out).expect("inflates");
    assert_eq!(out, zeros);
}

// ---------------------------------------------------------------------------------------------------
// Signatures by certificates that are not Apple's kind.

fn x509_name(entries: &[(&str, &str)]) -> X509Name {
    let mut b = X509NameBuilder::new().expect("a name builder");
    for (k, v) in entries {
        b.append_entry_by_text(k, v).expect("a name entry");
    }
    b.build()
}

fn pass_subject() -> X509Name {
    x509_name(&[
        ("UID", "pass.com.example.tessera"),
        ("CN", "Pass Type ID: pass.com.example.tessera"),
        ("OU", "EXAMPLE123"),
        ("O", "Hostile Test"),
    ])
}

fn certificate(
    subject: &X509Name,
    issuer: &X509Name,
    key: &PKeyRef<impl HasPublic>,
    issuer_key: &PKey<Private>,
    ca: bool,
) -> X509 {
    let mut b = X509::builder().expect("a certificate builder");
    b.set_version(2).expect("v3");
    let mut serial = BigNum::new().expect("a number");
    serial.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false).expect("random");
    b.set_serial_number(&serial.to_asn1_integer().expect("an integer")).expect("serial");
    b.set_subject_name(subject).expect("subject");
    b.set_issuer_name(issuer).expect("issuer");
    b.set_pubkey(key).expect("key");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("now")).expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(365).expect("later")).expect("not after");
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("constraints")).expect("ca");
    }
    b.sign(issuer_key, MessageDigest::sha256()).expect("signs");
    b.build()
}

fn example_key() -> PKey<Private> {
    let pem = std::fs::read(repo().join("certs-example/pass.key")).expect("the example key");
    PKey::private_key_from_pem(&pem).expect("a PEM key")
}

/// The valid pass's files with the manifest signed by `cert` and `key`, carrying `chain`.
fn signed_by(cert: &X509, key: &PKey<Private>, chain: &[&X509]) -> Vec<u8> {
    let mut stack = Stack::new().expect("a stack");
    for c in chain {
        stack.push((*c).clone()).expect("pushes");
    }
    let manifest = file(&fixture().files, "manifest.json");
    let flags = Pkcs7Flags::DETACHED | Pkcs7Flags::BINARY | Pkcs7Flags::NOSMIMECAP;
    let signature = Pkcs7::sign(cert, key, &stack, manifest, flags).expect("signs").to_der().expect("DER");
    with_file("signature", &signature)
}

/// The valid pass's files with `name` replaced by `data`.
fn with_file(name: &str, data: &[u8]) -> Vec<u8> {
    let files: Vec<(String, Vec<u8>)> =
        fixture().files.iter().map(|(n, d)| (n.clone(), if n == name { data.to_vec() } else { d.clone() })).collect();
    stored_zip(&files)
}

/// A self-made RSA root and a leaf with the pass type's UID/OU but a key of another kind.
fn signed_by_non_rsa_key(leaf_key: PKey<Private>) -> Vec<u8> {
    let root_key = example_key();
    let root_name = x509_name(&[("CN", "Hostile Test Root"), ("O", "Hostile Test")]);
    let root = certificate(&root_name, &root_name, &root_key, &root_key, true);
    let leaf = certificate(&pass_subject(), &root_name, &leaf_key, &root_key, false);
    signed_by(&leaf, &leaf_key, &[&root])
}

fn ec_signed() -> Vec<u8> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    signed_by_non_rsa_key(PKey::from_ec_key(EcKey::generate(&group).expect("an EC key")).expect("a key"))
}

fn dsa_signed() -> Vec<u8> {
    signed_by_non_rsa_key(PKey::from_dsa(Dsa::generate(1024).expect("a DSA key")).expect("a key"))
}

/// Pass certificate issued by A, A issued by B, B issued by A.
fn loop_signed() -> Vec<u8> {
    let a_key = PKey::from_rsa(Rsa::generate(2048).expect("an RSA key")).expect("a key");
    let b_key = PKey::from_rsa(Rsa::generate(2048).expect("an RSA key")).expect("a key");
    let a_name = x509_name(&[("CN", "Loop A"), ("O", "Hostile Test")]);
    let b_name = x509_name(&[("CN", "Loop B"), ("O", "Hostile Test")]);
    let a = certificate(&a_name, &b_name, &a_key, &b_key, true);
    let b = certificate(&b_name, &a_name, &b_key, &a_key, true);
    let leaf_key = example_key();
    let leaf = certificate(&pass_subject(), &a_name, &leaf_key, &a_key, false);
    signed_by(&leaf, &leaf_key, &[&a, &b])
}

// ---------------------------------------------------------------------------------------------------
// The named hostile files.

struct Hostile {
    what: &'static str,
    bytes: Vec<u8>,
    /// The file the report must blame; `None` for the archive as a whole.
    at_fault: Option<&'static str>,
    phrase: &'static str,
}

fn hostile(what: &'static str, bytes: Vec<u8>, at_fault: Option<&'static str>, phrase: &'static str) -> Hostile {
    Hostile { what, bytes, at_fault, phrase }
}

fn header_lies() -> Vec<Hostile> {
    let mut cases = Vec::new();
    let (zip, index) = pass_zip();
    let pass = index("pass.json");
    let lie = |patch: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = zip.bytes.clone();
        patch(&mut bytes);
        bytes
    };
    let (local, central) = (zip.local[pass], zip.central[pass]);
    let size = read_u32(&zip.bytes, central + 24);
    cases.push(hostile(
        "the central directory lies about pass.json's size",
        lie(&|b| {
            patch_u32(b, central + 20, size + 1);
            patch_u32(b, central + 24, size + 1);
        }),
        Some("pass.json"),
        "disagree about its size",
    ));
    cases.push(hostile(
        "the local header lies about pass.json's size",
        lie(&|b| patch_u32(b, local + 22, size - 1)),
        Some("pass.json"),
        "disagree about its size",
    ));
    cases.push(hostile(
        "the central directory lies about pass.json's CRC-32",
        lie(&|b| {
            let crc = read_u32(b, central + 16);
            patch_u32(b, central + 16, crc ^ 1);
        }),
        Some("pass.json"),
        "disagree about its CRC-32",
    ));
    cases.push(hostile(
        "the local header names pass.json otherwise",
        lie(&|b| b[local + 30] = b'q'),
        Some("pass.json"),
        "disagree about its name",
    ));
    let signature = index("signature");
    cases.push(hostile(
        "both headers claim the signature runs past the directory",
        lie(&|b| {
            let size = read_u32(b, zip.central[signature] + 20) + 4096;
            for at in [zip.central[signature] + 20, zip.central[signature] + 24] {
                patch_u32(b, at, size);
            }
            for at in [zip.local[signature] + 18, zip.local[signature] + 22] {
                patch_u32(b, at, size);
            }
        }),
        Some("signature"),
        "runs past",
    ));
    cases.push(hostile(
        "pass.json is flagged encrypted",
        lie(&|b| {
            b[local + 6] |= 1;
            b[central + 8] |= 1;
        }),
        Some("pass.json"),
        "encrypted",
    ));
    cases.push(hostile("the end record claims ZIP64", lie(&|b| patch_u32(b, zip.end + 16, u32::MAX)), None, "ZIP64"));
    cases
}

/// Entry B's header and data sit inside entry A's data, as in non-recursive ZIP bombs.
fn overlapping() -> Vec<u8> {
    let inner = raw_zip(&[RawEntry::stored("inner.png", b"shared bytes")]);
    let inner_entry = inner.bytes[..inner.central[0]].to_vec();
    let mut files: Vec<RawEntry> = fixture().files.iter().map(|(n, d)| RawEntry::stored(n.as_bytes(), d)).collect();
    files.push(RawEntry::stored("outer.png", &inner_entry));
    let mut zip = raw_zip(&files);
    // A second central entry, for inner.png, pointing inside outer.png's data: rebuild the
    // directory by hand with one more record.
    let outer_data = zip.local[files.len() - 1] + 30 + "outer.png".len();
    let mut record = inner.bytes[inner.central[0]..inner.end].to_vec();
    patch_u32(&mut record, 42, u32::try_from(outer_data).expect("small"));
    let end_record = zip.bytes.split_off(zip.end);
    zip.bytes.extend_from_slice(&record);
    let mut end_record = end_record;
    let count = u16::try_from(files.len() + 1).expect("small").to_le_bytes();
    end_record[8..10].copy_from_slice(&count);
    end_record[10..12].copy_from_slice(&count);
    let directory_size = read_u32(&end_record, 12) + u32::try_from(record.len()).expect("small");
    patch_u32(&mut end_record, 12, directory_size);
    zip.bytes.extend_from_slice(&end_record);
    zip.bytes
}

fn bombs() -> Vec<Hostile> {
    let (stream, size, crc32) = bomb();
    let with_entry = |declared: u32| {
        let mut entries: Vec<RawEntry> =
            fixture().files.iter().map(|(n, d)| RawEntry::stored(n.as_bytes(), d)).collect();
        entries.push(RawEntry {
            name: b"background.png".to_vec(),
            method: 8,
            flags: 0,
            data: stream.clone(),
            crc32,
            size: declared,
        });
        raw_zip(&entries).bytes
    };
    vec![
        hostile(
            "a deflate bomb: 1 GiB of zeros, and its header says so",
            with_entry(size),
            Some("background.png"),
            "by its ZIP header",
        ),
        hostile(
            "a deflate bomb whose header claims 1000 bytes",
            with_entry(1000),
            Some("background.png"),
            "deflate bomb",
        ),
        hostile(
            "a deflate bomb whose header claims 15 MiB",
            with_entry(15 << 20),
            Some("background.png"),
            "deflate bomb",
        ),
    ]
}

/// Five images of 15 MiB of zeros each, deflated: the fifth takes the archive past the 64 MiB total.
fn past_the_total_cap() -> Vec<u8> {
    let matches = (15 << 20) / 258;
    let zeros = vec![0u8; 1 + 258 * matches];
    let (stream, crc32) = (deflated_zeros(matches), crc32fast::hash(&zeros));
    let size = u32::try_from(zeros.len()).expect("small");
    let mut entries: Vec<RawEntry> = fixture().files.iter().map(|(n, d)| RawEntry::stored(n.as_bytes(), d)).collect();
    for name in ["background.png", "background@2x.png", "background@3x.png", "thumbnail.png", "thumbnail@2x.png"] {
        entries.push(RawEntry { name: name.into(), method: 8, flags: 0, data: stream.clone(), crc32, size });
    }
    raw_zip(&entries).bytes
}

fn many_entries() -> Vec<u8> {
    let entries: Vec<RawEntry> = (0..10_000).map(|i| RawEntry::stored(format!("f{i:05}.png"), b"")).collect();
    raw_zip(&entries).bytes
}

fn huge_pass_json() -> Vec<u8> {
    let mut text = String::from("{\"description\": \"");
    text.push_str(&"x".repeat(50_000_000));
    text.push_str("\"}");
    with_file("pass.json", text.as_bytes())
}

fn with_extra(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut entries: Vec<RawEntry> = fixture().files.iter().map(|(n, d)| RawEntry::stored(n.as_bytes(), d)).collect();
    entries.push(RawEntry::stored(name, data));
    raw_zip(&entries).bytes
}

fn named_corpus() -> Vec<Hostile> {
    let valid = &fixture().pass;
    let mut cases = vec![
        hostile("cut in half", valid[..valid.len() / 2].to_vec(), None, "not a ZIP archive"),
        hostile("cut one byte short", valid[..valid.len() - 1].to_vec(), None, "not a ZIP archive"),
        hostile("not a ZIP at all", b"%PDF-1.7 not a pass".to_vec(), None, "not a ZIP archive"),
        hostile("an empty file", Vec::new(), None, "not a ZIP archive"),
        hostile("10,000 entries", many_entries(), None, "10000 entries"),
        hostile(
            "entries that add up past 64 MiB",
            past_the_total_cap(),
            Some("thumbnail@2x.png"),
            "past 64 MiB in all",
        ),
        hostile("a 50 MB pass.json", huge_pass_json(), Some("pass.json"), "at most 2 MiB"),
        hostile("an entry named ../evil.json", with_extra(b"../evil.json", b"{}"), Some("../evil.json"), "`..`"),
        hostile("an entry with a NUL in its name", with_extra(b"pass\0.json", b"{}"), Some("pass\\u{0}.json"), "NUL"),
        hostile("an absolute entry name", with_extra(b"/etc/passwd", b"root"), Some("/etc/passwd"), "absolute path"),
        hostile(
            "a backslash in a name",
            with_extra(b"en.lproj\\pass.strings", b""),
            Some("en.lproj\\pass.strings"),
            "backslash",
        ),
        hostile("a name that is not UTF-8", with_extra(b"icon\xff.png", b""), Some("icon\u{fffd}.png"), "not UTF-8"),
        hostile("pass.json twice", with_extra(b"pass.json", b"{}"), Some("pass.json"), "appears twice"),
        hostile("entries that share bytes", overlapping(), Some("inner.png"), "shares its bytes"),
        hostile(
            "a signature that is not PKCS#7",
            with_file("signature", b"not a signature at all"),
            Some("signature"),
            "not a DER PKCS#7",
        ),
        hostile(
            "a PEM signature",
            with_file("signature", b"-----BEGIN PKCS7-----\nMA==\n-----END PKCS7-----\n"),
            Some("signature"),
            "PEM",
        ),
        hostile("a signature by an EC key", ec_signed(), Some("signature"), "EC key"),
        hostile("a signature by a DSA key", dsa_signed(), Some("signature"), "DSA key"),
        hostile("a certificate chain that loops", loop_signed(), Some("signature"), "chain loops"),
        hostile(
            "pass.json nested 100,000 deep",
            with_file("pass.json", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes()),
            Some("pass.json"),
            "not valid JSON",
        ),
        hostile(
            "a huge number in pass.json",
            with_file("pass.json", format!("{{\"formatVersion\": 1{}}}", "0".repeat(300)).as_bytes()),
            Some("pass.json"),
            "formatVersion must be the number 1",
        ),
        hostile(
            "strings that are not UTF-8",
            with_file("th.lproj/pass.strings", b"\"a\" = \"\xc3\x28\";"),
            Some("th.lproj/pass.strings"),
            "neither UTF-8 nor UTF-16",
        ),
        hostile(
            "a manifest that is not JSON",
            with_file("manifest.json", b"{\"pass.json\":"),
            Some("manifest.json"),
            "not valid JSON",
        ),
    ];
    cases.extend(header_lies());
    cases.extend(bombs());
    cases
}

#[test]
fn every_named_hostile_file_is_an_error_naming_the_file_at_fault() {
    let corpus = named_corpus();
    for case in &corpus {
        let report = inspect_bounded(case.what, &case.bytes);
        assert!(
            has_error(&report, case.at_fault, case.phrase),
            "{}: no error on {:?} containing {:?}:\n{}",
            case.what,
            case.at_fault,
            case.phrase,
            report.lines().join("\n")
        );
    }
    run_binary_on(&corpus);
}

/// Runs the built binary on each file under a 1 GiB address-space cap and a deadline: it must exit
/// 1 (an error, not a panic's 101 or a signal) and print an error line naming the file at fault.
fn run_binary_on(corpus: &[Hostile]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut running = Vec::new();
    for (i, case) in corpus.iter().enumerate() {
        let path = dir.path().join(format!("hostile-{i}.pkpass"));
        std::fs::write(&path, &case.bytes).expect("writes");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#"ulimit -v 1048576 && exec timeout 60 "$0" inspect "$1""#)
            .arg(env!("CARGO_BIN_EXE_tessera"))
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
            command.env_remove(key);
        }
        running.push((case, command.spawn().expect("sh runs")));
    }
    for (case, child) in running {
        let out = child.wait_with_output().expect("the binary finishes");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: exit {:?}\n{stdout}\n{stderr}", case.what, out.status);
        let blamed = match case.at_fault {
            Some(file) => stdout.lines().any(|l| l.starts_with(&format!("error: {file}: ")) && l.contains(case.phrase)),
            None => stdout.lines().any(|l| l.starts_with("error: ") && l.contains(case.phrase)),
        };
        assert!(blamed, "{}: stdout does not blame {:?}:\n{stdout}", case.what, case.at_fault);
    }
}

// ---------------------------------------------------------------------------------------------------
// Truncations, flipped bytes and seeded random mutations.

/// xorshift64: a deterministic stream, so a failure reproduces from its seed and index.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).expect("fits")).expect("fits")
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Where each entry's data lies in the valid pass, by the zip crate's reading.
fn data_regions(pass: &[u8]) -> Vec<(std::ops::Range<usize>, String)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(pass)).expect("a ZIP");
    (0..archive.len())
        .map(|i| {
            let entry = archive.by_index(i).expect("an entry");
            let start = usize::try_from(entry.data_start().expect("a data offset")).expect("fits");
            let len = usize::try_from(entry.compressed_size()).expect("fits");
            (start..start + len, entry.name().expect("a name").to_string())
        })
        .collect()
}

#[test]
fn truncations_and_flipped_bytes_come_back_and_blame_the_damaged_entry() {
    let valid = &fixture().pass;
    let cuts = (0..valid.len()).step_by(41).chain(valid.len().saturating_sub(100)..valid.len());
    for cut in cuts {
        let report = inspect_bounded(&format!("the pass cut at {cut}"), &valid[..cut]);
        assert!(report.has_errors(), "cut at {cut}: {:?}", report.lines());
    }
    let regions = data_regions(valid);
    for at in (0..valid.len()).step_by(47) {
        let mut bytes = valid.clone();
        bytes[at] ^= 0x5a;
        let report = inspect_bounded(&format!("byte {at} flipped"), &bytes);
        if let Some((_, name)) = regions.iter().find(|(range, _)| range.contains(&at)) {
            assert!(
                report.errors().any(|f| f.file.as_deref() == Some(name.as_str())),
                "byte {at} of {name} flipped, yet no error names it: {:?}",
                report.lines()
            );
        }
    }
}

/// Values that break assumptions: sentinels, sizes, the archive's own length.
fn interesting_u32(rng: &mut XorShift, len: usize) -> u32 {
    let len = u32::try_from(len).expect("small");
    *rng.pick(&[0, 1, 0x7fff, 0xffff, 0x1_0000, 0x7fff_ffff, u32::MAX, len, len - 1, len + 1, 0xdead_beef])
}

/// Offsets of every `PK` signature of `kind` in `bytes` (local headers, central entries, end record).
fn signatures(bytes: &[u8], kind: [u8; 2]) -> Vec<usize> {
    bytes.windows(4).enumerate().filter(|(_, w)| w[..2] == *b"PK" && w[2..] == kind).map(|(i, _)| i).collect()
}

fn mutate_bytes(bytes: &mut Vec<u8>, rng: &mut XorShift) {
    let len = bytes.len().max(1);
    match rng.below(9) {
        0 => {
            for _ in 0..=rng.below(8) {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
        }
        1 => bytes.truncate(rng.below(len)),
        2 => {
            let at = rng.below(len);
            let junk: Vec<u8> = (0..=rng.below(64)).map(|_| rng.next() as u8).collect();
            bytes.splice(at.min(bytes.len())..at.min(bytes.len()), junk);
        }
        3 => {
            let at = rng.below(len);
            let end = (at + rng.below(256)).min(bytes.len());
            bytes.drain(at.min(end)..end);
        }
        4 => {
            let from = rng.below(len);
            let piece: Vec<u8> = bytes[from.min(bytes.len())..(from + rng.below(512)).min(bytes.len())].to_vec();
            let at = rng.below(len).min(bytes.len());
            bytes.splice(at..at, piece);
        }
        kind => {
            // A header field: anywhere (5), or in a local header (6), central entry (7) or end record (8).
            let (starts, fields): (Vec<usize>, &[usize]) = match kind {
                6 => (signatures(bytes, [3, 4]), &[6, 8, 14, 18, 22, 26, 28]),
                7 => (signatures(bytes, [1, 2]), &[8, 10, 16, 20, 24, 28, 30, 32, 42]),
                8 => (signatures(bytes, [5, 6]), &[8, 10, 12, 16, 20]),
                _ => (vec![rng.below(len)], &[0]),
            };
            if starts.is_empty() {
                return;
            }
            let at = rng.pick(&starts) + rng.pick(fields);
            let value = interesting_u32(rng, bytes.len()).to_le_bytes();
            let width = if rng.below(2) == 0 { 2 } else { 4 };
            if at + width <= bytes.len() {
                bytes[at..at + width].copy_from_slice(&value[..width]);
            }
        }
    }
}

/// The valid pass's files written by the zip crate, deflated, so mutations reach the inflater too.
fn deflated_pass() -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in &fixture().files {
        writer.start_file(name.as_str(), options).expect("starts a file");
        std::io::Write::write_all(&mut writer, data).expect("writes");
    }
    writer.finish().expect("finishes").into_inner()
}

#[test]
fn seeded_random_mutations_of_the_archive_come_back_in_time() {
    let deflated = deflated_pass();
    let clean = inspect_bounded("the deflated pass", &deflated);
    assert!(!clean.has_errors(), "{:?}", clean.lines());
    let seeds = [&fixture().pass, &deflated];
    let mut rng = XorShift(0x7e55_e7a0_c0ff_ee01);
    for i in 0..BYTE_MUTATIONS {
        let mut bytes = seeds[i % 2].clone();
        for _ in 0..=rng.below(3) {
            mutate_bytes(&mut bytes, &mut rng);
        }
        inspect_bounded(&format!("byte mutation {i}"), &bytes);
    }
}

/// A random JSON value: sentinels, formats pass.json uses, hostile strings, nesting past serde's limit.
fn random_json(rng: &mut XorShift, depth: usize) -> Value {
    let strings = [
        "",
        "x",
        "%@",
        "rgb(0, 0, 0)",
        "rgb(999, 0, 0)",
        "#fff",
        "2026-12-31T10:00Z",
        "2026-02-30T10:00Z",
        "PKBarcodeFormatQR",
        "PKDateStyleShort",
        "http://x",
        "https://",
        "points.label",
        "\u{0}\u{1b}[31m",
        "../",
        "E2C56DB5-DFFB-48D2-B060-D0F5A71096E0",
        "THB",
        "pass.com.example.tessera",
    ];
    match rng.below(if depth > 4 { 6 } else { 10 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(*rng.pick(&[0i64, -1, 1, i64::MAX, i64::MIN])),
        3 => json!(*rng.pick(&[0.5f64, 1e308, -1e-308, 1.0])),
        4 => json!(*rng.pick(&strings)),
        5 => json!("ü".repeat(rng.below(5000))),
        6 => Value::Array((0..rng.below(5)).map(|_| random_json(rng, depth + 1)).collect()),
        7 => {
            let keys =
                ["key", "value", "label", "format", "message", "dateStyle", "latitude", "storeCard", "primaryFields"];
            Value::Object(
                (0..rng.below(5)).map(|_| (rng.pick(&keys).to_string(), random_json(rng, depth + 1))).collect(),
            )
        }
        8 => (0..rng.below(200)).fold(json!(1), |inner, _| json!([inner])),
        _ => Value::Array((0..rng.below(3000)).map(|i| json!({ "key": format!("k{}", i % 7), "value": i })).collect()),
    }
}

fn json_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| json_pointers(v, format!("{at}/{k}"), out)),
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| json_pointers(v, format!("{at}/{i}"), out)),
        _ => {}
    }
    out.push(at);
}

/// A changed pass.json: a value replaced at random, or its text damaged.
fn mutate_pass_json(original: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut pass: Value = serde_json::from_slice(original).expect("valid JSON");
    if rng.below(3) > 0 {
        let mut pointers = Vec::new();
        json_pointers(&pass, String::new(), &mut pointers);
        let pointer = rng.pick(&pointers).clone();
        let replacement = random_json(rng, 0);
        match pass.pointer_mut(&pointer) {
            Some(slot) => *slot = replacement,
            None => pass = replacement,
        }
        return serde_json::to_vec(&pass).expect("serializes");
    }
    let mut text = original.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(text.len());
        let tokens: [&[u8]; 11] = [b"{", b"}", b"[", b"]", b"\"", b":", b",", b"\\", b"1e999", b"\xff", b"\0"];
        let token = *rng.pick(&tokens);
        if rng.below(2) == 0 {
            text.splice(at..at, token.iter().copied());
        } else {
            text[at] = token[0];
        }
    }
    text
}

/// A damaged file other than pass.json: its bytes changed at random.
fn mutate_file(original: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut data = original.to_vec();
    mutate_bytes(&mut data, rng);
    data
}

#[test]
fn seeded_random_mutations_of_the_files_inside_come_back_in_time() {
    let files = &fixture().files;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let mut rng = XorShift(0x5eed_0fc0_47e4_7001);
    for i in 0..CONTENT_MUTATIONS {
        let target = if rng.below(2) == 0 { "pass.json" } else { *rng.pick(&names) };
        let original = file(files, target);
        let changed =
            if target == "pass.json" { mutate_pass_json(original, &mut rng) } else { mutate_file(original, &mut rng) };
        let mutated: Vec<(String, Vec<u8>)> =
            files.iter().map(|(n, d)| (n.clone(), if n == target { changed.clone() } else { d.clone() })).collect();
        let report = inspect_bounded(&format!("content mutation {i} of {target}"), &stored_zip(&mutated));
        if changed != original && target != "signature" && target != "manifest.json" {
            assert!(
                report.errors().any(|f| f.file.as_deref() == Some(target)),
                "mutation {i} changed {target}, yet no error names it: {:?}",
                report.lines()
            );
        }
    }
}

#[test]
fn passes_from_the_default_template_are_clean() {
    let plain = json!({});
    let full = json!({ "expires": "2027-12-31", "perks": "Free coffee", "points_to_next_tier": 250 });
    for (url, expected) in [
        ("http://127.0.0.1:8080", &["webServiceURL is http", "root other than Apple's"][..]),
        ("https://wallet.example.com", &["root other than Apple's"][..]),
    ] {
        let builder = builder(url);
        for tier in ["silver", "gold", "platinum"] {
            for (locale, attributes) in [("en", &plain), ("th", &full), ("vi", &plain)] {
                let report = inspect(&builder.build(&member(tier, locale, attributes)).expect("builds"));
                let warnings: Vec<&str> = report
                    .findings
                    .iter()
                    .filter(|f| f.severity == Severity::Warning)
                    .map(|f| f.message.as_str())
                    .collect();
                assert!(!report.has_errors(), "{tier}/{locale}: {:?}", report.lines());
                assert_eq!(warnings.len(), expected.len(), "{tier}/{locale} at {url}: {:?}", report.lines());
                for phrase in expected {
                    assert!(warnings.iter().any(|w| w.contains(phrase)), "{phrase}: {:?}", report.lines());
                }
            }
        }
    }
}

#[test]
fn the_raw_writer_makes_archives_that_inspect_like_the_original() {
    // The raw writer itself makes archives the valid pass reads back from: same findings as the original.
    let original = inspect(&fixture().pass).lines();
    let rewritten = inspect(&stored_zip(&fixture().files)).lines();
    assert_eq!(original, rewritten);
}

/// A pass.json of 40,000 fields whose labels are strings keys, in 100 languages of strings files at
/// their cap: every label is looked up in every language.
fn localized_to_the_cap() -> Vec<u8> {
    let mut strings = String::new();
    let mut i = 0;
    while strings.len() < (64 << 10) - 64 {
        strings.push_str(&format!("\"key.{i}\" = \"value {i}\";\n"));
        i += 1;
    }
    let fields: Vec<Value> =
        (0..40_000).map(|i| json!({ "key": format!("f{i}"), "label": format!("key.{i}"), "value": i })).collect();
    let mut pass = fixture_pass_json();
    pass["storeCard"]["backFields"] = Value::Array(fields);
    let mut files: Vec<(String, Vec<u8>)> = fixture().files.iter().filter(|(n, _)| n != "pass.json").cloned().collect();
    files.push(("pass.json".into(), serde_json::to_vec(&pass).expect("serializes")));
    for language in 0..100 {
        files.push((format!("l{language}.lproj/pass.strings"), strings.clone().into_bytes()));
    }
    stored_zip(&files)
}

fn fixture_pass_json() -> Value {
    serde_json::from_slice(file(&fixture().files, "pass.json")).expect("JSON")
}

/// The valid pass with pass.json changed by `change`.
fn with_pass_json(change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut pass = fixture_pass_json();
    change(&mut pass);
    let raw = serde_json::to_vec(&pass).expect("serializes");
    assert!(raw.len() < 2 << 20, "{} bytes is past the pass.json cap", raw.len());
    with_file("pass.json", &raw)
}

/// The most work passes within every cap can ask for. Each must still come back in time.
#[test]
fn the_costliest_archives_within_the_caps_come_back_in_time() {
    let costly = [
        ("strings keys in 100 languages", localized_to_the_cap()),
        (
            "60,000 unknown keys",
            with_pass_json(|p| {
                for i in 0..60_000 {
                    p[format!("k{i}")] = json!(0);
                }
            }),
        ),
        (
            "10,000 barcodes, each wrong",
            with_pass_json(|p| {
                p["barcodes"] = (0..10_000)
                    .map(
                        |i| json!({ "format": "QR", "message": format!("m{i}"), "messageEncoding": "latin-9", "x": 1 }),
                    )
                    .collect();
            }),
        ),
        (
            "10,000 fields, each wrong",
            with_pass_json(|p| {
                p["storeCard"]["backFields"] = (0..10_000)
                    .map(|i| json!({ "key": "dup", "value": true, "Label": 1, "dateStyle": "x", "changeMessage": format!("c{i}") }))
                    .collect();
            }),
        ),
    ];
    for (what, bytes) in costly {
        let report = inspect_bounded(what, &bytes);
        assert!(report.has_errors(), "{what}: {:?}", report.lines());
    }
}

//! Pass build and sign throughput, next to the RSA ceiling.
//!
//! Builds the real `PassBuilder` the way the server does (certs-example/ identity, templates/default
//! program) and measures, one pass per iteration (the `thrpt` line is passes or signatures per second):
//!
//! - `pass/build`             the whole signed .pkpass: render pass.json, hash, sign, zip;
//! - `pass/render_pass_json`  the template render alone (pass.json, checked as JSON);
//! - `pass/sign`              `PassBuilder::sign` alone: the detached PKCS#7 signature of a manifest;
//! - `pass/zip`               the archive alone: the tier's static entries and the three per-pass ones;
//! - `pass/rsa2048_raw`       one RSA-2048 PKCS#1 v1.5 SHA-256 signature over 32 bytes with the same key
//!   through `openssl::sign::Signer` (a new digest and key context per signature);
//! - `pass/rsa2048_prepared`  the same signature of a 32-byte digest on a context prepared once, which is
//!   what `openssl speed rsa2048` times: the ceiling any pass build stands under.
//!
//! `pass/build` over `pass/rsa2048_prepared` is the share of the ceiling within one run. The figure
//! BENCHMARKS.md gives is against `openssl speed` itself: `scripts/bench-pass-ratio.sh` runs both,
//! pinned to core 0, in three interleaved rounds.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use openssl::hash::MessageDigest;
use openssl::md::Md;
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::Signer;
use tessera::apple::pass::sha1_hex;
use tessera::apple::zip::{StaticArchive, write_archive};
use tessera::apple::{PassBuilder, PassData, SigningIdentity};
use tessera::templates::Program;

const THAI_NAME: &str = "สมชาย ใจดี";
const SERIAL: &str = "6f1c2b9e4d3a48c7a1e0b5f2c8d9e7a3";
const AUTH_TOKEN: &str = "Zk3v9QwLr8Tn2Bx7Mc4Hp6Jd1Sy5Ua0Ge";

fn builder() -> PassBuilder {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let certs = root.join("certs-example");
    let identity =
        SigningIdentity::load(&certs.join("pass.pem"), &certs.join("pass.key"), &certs.join("wwdr.pem"), None)
            .expect("certs-example/ loads");
    let program = Program::load(&root.join("templates"), "default").expect("templates/default loads");
    PassBuilder::new(Arc::new(identity), Arc::new(program), "https://wallet.example.com").expect("the builder starts")
}

fn member<'a>(points: i64, attributes: &'a serde_json::Value) -> PassData<'a> {
    PassData {
        serial_number: SERIAL,
        authentication_token: AUTH_TOKEN,
        voided: false,
        member_id: "M-000123",
        name: Some(THAI_NAME),
        tier: "gold",
        points,
        locale: Some("th-TH"),
        attributes,
        latest_offer: None,
        modified_at: 1_767_225_600,
    }
}

/// manifest.json exactly as `PassBuilder::build` writes it: the static files' SHA-1s, then pass.json's.
fn manifest(builder: &PassBuilder, data: &PassData<'_>) -> Vec<u8> {
    let mut m = String::from("{");
    for (name, bytes) in builder.program().static_files(data.tier) {
        m.push_str(&format!("{}:\"{}\",", serde_json::Value::from(name.as_str()), sha1_hex(&bytes)));
    }
    let pass_json = builder.render_pass_json(data).expect("renders");
    m.push_str(&format!("\"pass.json\":\"{}\"}}", sha1_hex(pass_json.as_bytes())));
    m.into_bytes()
}

fn benches(c: &mut Criterion) {
    let builder = builder();
    let attributes = serde_json::json!({});

    // Sanity: a build answers a ZIP, signed from the prepared SignedData.
    let sample = builder.build(&member(1250, &attributes)).expect("builds");
    assert!(sample.starts_with(b"PK\x03\x04"), "a .pkpass is a ZIP");
    assert!(builder.signs_from_template(), "certs-example/ signs from the template");

    let mut group = c.benchmark_group("pass");
    group.throughput(Throughput::Elements(1));

    // Points change every iteration, so every pass.json (and so every manifest and signature) differs.
    let mut points = 1250i64;
    group.bench_function("build", |b| {
        b.iter(|| {
            points += 1;
            let data = member(black_box(points), &attributes);
            black_box(builder.build(&data).expect("builds"))
        })
    });

    let mut points = 1250i64;
    group.bench_function("render_pass_json", |b| {
        b.iter(|| {
            points += 1;
            let data = member(black_box(points), &attributes);
            black_box(builder.render_pass_json(&data).expect("renders"))
        })
    });

    // 256 distinct real manifests (points 1250..1506), cycled.
    let manifests: Vec<Vec<u8>> = (0..256).map(|i| manifest(&builder, &member(1250 + i, &attributes))).collect();
    let mut i = 0usize;
    group.bench_function("sign", |b| {
        b.iter(|| {
            i = (i + 1) % manifests.len();
            black_box(builder.sign(black_box(&manifests[i])).expect("signs"))
        })
    });

    // The archive of a gold pass: its static files, then pass.json, manifest.json and signature.
    let statics = StaticArchive::new(&builder.program().static_files("gold"), 1_767_225_600).expect("lays out");
    let pass_json = builder.render_pass_json(&member(1250, &attributes)).expect("renders");
    let signature = builder.sign(&manifests[0]).expect("signs");
    group.bench_function("zip", |b| {
        b.iter(|| {
            let extra: [(&str, &[u8]); 3] =
                [("pass.json", pass_json.as_bytes()), ("manifest.json", &manifests[0]), ("signature", &signature)];
            black_box(write_archive(&statics, black_box(&extra), 1_767_225_600).expect("zips"))
        })
    });

    // One RSA-2048 PKCS#1 v1.5 signature (SHA-256) over 32 bytes with the same key.
    let key = &builder.identity().key;
    let mut input = [0u8; 32];
    let mut n = 0u64;
    group.bench_function("rsa2048_raw", |b| {
        b.iter(|| {
            n += 1;
            input[..8].copy_from_slice(&n.to_le_bytes());
            let mut signer = Signer::new(MessageDigest::sha256(), key).expect("signer");
            signer.update(black_box(&input)).expect("update");
            black_box(signer.sign_to_vec().expect("signs"))
        })
    });

    // The ceiling: the same signature of a digest on a context set up once, as `openssl speed` signs.
    let mut ctx = PkeyCtx::new(key).expect("context");
    ctx.sign_init().expect("sign init");
    ctx.set_rsa_padding(Padding::PKCS1).expect("padding");
    ctx.set_signature_md(Md::sha256()).expect("digest");
    let mut out = vec![0u8; key.size()];
    group.bench_function("rsa2048_prepared", |b| {
        b.iter(|| {
            n += 1;
            input[..8].copy_from_slice(&n.to_le_bytes());
            black_box(ctx.sign(black_box(&input), Some(&mut out)).expect("signs"))
        })
    });

    group.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5)).sample_size(50)
}

criterion_group! {
    name = pass_build;
    config = config();
    targets = benches
}
criterion_main!(pass_build);

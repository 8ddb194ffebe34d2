//! Pass build and sign throughput (issue 2).
//!
//! Builds the real `PassBuilder` the way the server does (certs-example/ identity, templates/default
//! program) and measures, one pass per iteration:
//!
//! - `pass/build`            the whole signed .pkpass: render pass.json, hash, PKCS#7 sign, zip;
//! - `pass/render_pass_json` the template render alone (pass.json, checked as JSON);
//! - `pass/sign`             `PassBuilder::sign` alone: the detached PKCS#7 signature of a manifest;
//! - `pass/rsa2048_raw`      one raw RSA-2048 PKCS#1 v1.5 SHA-256 signature over 32 bytes with the
//!   same key (`openssl::sign::Signer`), the floor any pass build stands on.
//!
//! Run: `taskset -c 0 cargo bench --bench pass_build` (see BENCHMARKS.md).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use tessera::apple::pass::sha1_hex;
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

    // Sanity: a build answers a ZIP.
    let sample = builder.build(&member(1250, &attributes)).expect("builds");
    assert!(sample.starts_with(b"PK\x03\x04"), "a .pkpass is a ZIP");

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

    // The floor: one RSA-2048 PKCS#1 v1.5 signature (SHA-256) over 32 bytes with the same key.
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

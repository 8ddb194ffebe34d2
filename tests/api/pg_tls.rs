//! PostgreSQL over TLS, as a managed database requires it: a cluster of the test's own with `ssl = on`,
//! a certificate from a CA of the test's own, and every connection without TLS refused. `sslmode` and
//! `sslrootcert` in TESSERA_DATABASE_URL work as libpq documents them. Runs in the `api_postgres` binary.

use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, repo, spawn_app_with};
use crate::pg_cluster::OwnCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_requires_tls_is_reached_and_its_certificate_checked() {
    if crate::pg_cluster::require_postgres("the PostgreSQL TLS test").is_none() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    crate::apns_standin::make_server_cert(certs.path());
    let cluster = tokio::task::spawn_blocking(OwnCluster::start).await.unwrap().expect("PostgreSQL is installed");
    let (cert, key) = (certs.path().join("server.pem"), certs.path().join("server.key"));
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.require_tls(&cert, &key);
        cluster
    })
    .await
    .unwrap();
    let ca = certs.path().join("ca.pem");
    let base = cluster.url("postgres");

    // Without TLS the server refuses the connection: TLS is really required.
    let refused = tessera::store::Store::connect(&format!("{base}?sslmode=disable")).await.err();
    let refused = refused.map(|e| format!("{:#}", anyhow::Error::new(e)));
    assert!(
        refused.as_deref().is_some_and(|e| e.contains("no encryption")),
        "a plain connection is refused: {refused:?}"
    );
    // verify-full with another CA: the certificate is checked and refused.
    let other_ca = repo().join("certs-example/root.pem");
    let wrong_root = format!("{base}?sslmode=verify-full&sslrootcert={}", other_ca.display());
    assert!(tessera::store::Store::connect(&wrong_root).await.is_err(), "a certificate from another CA is refused");

    // sslmode=require (encrypted, the certificate not checked) and verify-full with the right root both
    // serve: a member written and read back, which takes the database at every step.
    for url in [format!("{base}?sslmode=require"), format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display())] {
        let app = spawn_app_with(&[("database_url", &url)]).await;
        let id = format!("TLS-{}", url.len());
        let put = app.put_member(&id, &json!({"name": "Anong", "tier": "gold", "points": 5})).await;
        assert!([200, 201].contains(&put.status().as_u16()), "{url}: {}", put.status());
        let member: serde_json::Value =
            app.client.get(app.member_url(&id)).bearer_auth(ADMIN_TOKEN).send().await.unwrap().json().await.unwrap();
        assert_eq!(member["points"], 5, "{url}: {member}");
        let health = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
        assert_eq!(health.status(), 200);
    }
}

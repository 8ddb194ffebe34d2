//! Registrations under concurrency: the same device and pass registered and unregistered four at a time
//! (across two instances on PostgreSQL, one on SQLite, whose file has one owner), never a 5xx, exactly one
//! 201 among concurrent first registrations, and the final state is what the last requests said.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{DevicePass, TestApp, push_token, spawn_app, spawn_app_with};

/// The instances of this test: two on one PostgreSQL database, or one on SQLite.
async fn instances() -> Vec<TestApp> {
    let first = spawn_app().await;
    if !first.database_url.starts_with("postgres://") {
        return vec![first];
    }
    let database = first.database_url.clone();
    let second = spawn_app_with(&[("database_url", &database)]).await;
    vec![first, second]
}

#[derive(Clone, Copy)]
enum Op {
    Register,
    Unregister,
}

/// One request; answers its status.
async fn send(app: &TestApp, op: Op, device: &str, pass: &DevicePass) -> u16 {
    let response = match op {
        Op::Register => app.register(device, pass, &push_token("cc")).await,
        Op::Unregister => app
            .client
            .delete(app.registration_url(device, pass))
            .header("authorization", format!("ApplePass {}", pass.auth))
            .send()
            .await
            .unwrap(),
    };
    let status = response.status().as_u16();
    if status >= 500 {
        eprintln!("{status}: {}", response.text().await.unwrap_or_default());
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_never_fail_and_end_as_the_last_requests_say() {
    let apps = instances().await;
    let body = |points: i64| json!({"name": "R", "tier": "gold", "points": points});
    let p0 = apps[0].member_with_pass("R-0", &body(1)).await;
    let p1 = apps[0].member_with_pass("R-1", &body(2)).await;
    let keys: [(&str, &DevicePass); 4] = [("dev-0", &p0), ("dev-1", &p0), ("dev-0", &p1), ("dev-2", &p1)];

    // 156 requests in groups of four sent together, spread over the instances: in each group three
    // touch the same device and pass (dev-0, R-0), mixing registrations and unregistrations.
    let mut statuses = Vec::new();
    for group in 0..39 {
        let other = keys[1 + group % 3];
        let ops = [
            (Op::Register, keys[0]),
            (if group % 2 == 0 { Op::Unregister } else { Op::Register }, keys[0]),
            (Op::Register, keys[0]),
            (if group % 3 == 0 { Op::Unregister } else { Op::Register }, other),
        ];
        let sent = ops.iter().enumerate().map(|(i, (op, (device, pass)))| {
            let app = &apps[(group + i) % apps.len()];
            send(app, *op, device, pass)
        });
        statuses.extend(join_all(sent).await);
    }
    // The last four, one per device and pass, together: these decide the final state.
    let last = [(Op::Register, keys[0]), (Op::Unregister, keys[1]), (Op::Register, keys[2]), (Op::Unregister, keys[3])];
    let sent = last.iter().enumerate().map(|(i, (op, (device, pass)))| send(&apps[i % apps.len()], *op, device, pass));
    statuses.extend(join_all(sent).await);

    assert_eq!(statuses.len(), 160);
    let failed: Vec<&u16> = statuses.iter().filter(|s| **s >= 500).collect();
    assert!(failed.is_empty(), "{} of 160 answered 5xx: {failed:?}", failed.len());
    assert!(statuses.iter().all(|s| [200, 201].contains(s)), "{statuses:?}");

    let serials = |list: Value| -> Vec<String> {
        let mut s: Vec<String> =
            list["serialNumbers"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        s.sort();
        s
    };
    let mut both = vec![p0.serial.clone(), p1.serial.clone()];
    both.sort();
    for app in &apps {
        let dev0 = app.list("dev-0", &p0.pass_type, None).await;
        assert_eq!(dev0.status(), 200);
        assert_eq!(serials(dev0.json().await.unwrap()), both, "dev-0 holds both passes");
        assert_eq!(app.list("dev-1", &p0.pass_type, None).await.status(), 204, "dev-1 was unregistered last");
        assert_eq!(app.list("dev-2", &p0.pass_type, None).await.status(), 204, "dev-2 was unregistered last");
        let member: Value = app.get_member("R-0").await.json().await.unwrap();
        assert_eq!(member["apple"]["devices"].as_array().unwrap().len(), 1, "{member}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_concurrent_first_registrations_is_new() {
    let apps = instances().await;
    let pass = apps[0].member_with_pass("R-first", &json!({"name": "F", "tier": "gold", "points": 1})).await;
    for round in 0..10 {
        let device = format!("first-{round}");
        let sent = (0..4).map(|i| send(&apps[i % apps.len()], Op::Register, &device, &pass));
        let mut statuses = join_all(sent).await;
        statuses.sort();
        assert_eq!(statuses, [200, 200, 200, 201], "round {round}: one new registration, three existing");
    }
}

//! Deployments: the time from a 10 MB package's upload to the new version serving on every
//! replica of an app on 3 workers (the deployment's own record: package received → live),
//! and the whole `stratus apps deploy` as a client sees it; against the cold start of the
//! same app's host measured in the same run (the part of a deployment that cannot go away).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::frontdoor::{cli, stratus, worker_cmd};
use crate::{bin_dir, cold, free_port, median, repo, spawn, stratus_cmd};

/// An app directory: the native benchmark app and `bytes` of incompressible padding seeded
/// by `seed` (so each version is a new package).
fn app_dir(at: &Path, seed: u32, bytes: usize) {
    let _ = std::fs::remove_dir_all(at);
    std::fs::create_dir_all(at.join("hello")).unwrap();
    let native = repo().join("bench/apps/native");
    std::fs::copy(native.join("host.json"), at.join("host.json")).unwrap();
    std::fs::copy(
        native.join("hello/function.json"),
        at.join("hello/function.json"),
    )
    .unwrap();
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    let padding: Vec<u8> = (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(at.join("padding.bin"), padding).unwrap();
}

pub fn run(a: &crate::Args, data: &Path) -> serde_json::Value {
    let api = free_port();
    let m = data.join("publish-manage");
    let _manage = spawn("publish-manage", {
        let mut c = stratus(&m);
        c.args(["manage", "--listen", &format!("127.0.0.1:{api}")])
            .args(["--scm-listen", "off", "--front-listen", "off"]);
        c
    });
    let token = crate::frontdoor::join_token(&m, api);
    let _workers: Vec<_> = (1..=3)
        .map(|i| {
            spawn(
                &format!("publish-worker-{i}"),
                worker_cmd(&data.join(format!("pw{i}")), api, &token, &format!("w{i}")),
            )
        })
        .collect();
    cli(
        &m,
        api,
        &["apps", "create", "big", "--min", "3", "--max", "3"],
    );
    let hello = bin_dir().join("bench-hello");
    cli(
        &m,
        api,
        &[
            "apps",
            "set",
            "big",
            "BENCH_HELLO_PATH",
            hello.to_str().unwrap(),
        ],
    );
    let dir = data.join("publish-app");
    const SIZE: usize = 10 << 20;
    app_dir(&dir, 1, SIZE);
    cli(&m, api, &["apps", "deploy", "big", dir.to_str().unwrap()]);
    // Wait for 3 ready replicas of the first version.
    let start = Instant::now();
    loop {
        let placements: serde_json::Value =
            serde_json::from_str(&cli(&m, api, &["workers", "list", "--json"])).unwrap();
        let ready = placements
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|w| w["apps"].as_array().cloned().unwrap_or_default())
            .filter(|h| h["app"] == "big" && h["ready"] == true)
            .count();
        if ready >= 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "3 replicas did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let rounds = a.rounds.max(3);
    let (mut server, mut client) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        app_dir(&dir, 2 + round as u32, SIZE);
        let started = Instant::now();
        let out = cli(&m, api, &["apps", "deploy", "big", dir.to_str().unwrap()]);
        client.push(started.elapsed().as_secs_f64() * 1000.0);
        let uploaded: serde_json::Value = serde_json::from_str(&out).unwrap();
        let id = uploaded["deployment"].as_str().unwrap();
        let d: serde_json::Value =
            serde_json::from_str(&cli(&m, api, &["apps", "deployments", "big", id])).unwrap();
        assert_eq!(d["status"], 4, "{d}");
        let received = d["log"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["message"].as_str().unwrap_or("").starts_with("Received "))
            .and_then(|e| e["time"].as_i64())
            .unwrap();
        server.push((d["end"].as_i64().unwrap() - received) as f64);
    }
    let cold_start = cold("publish-native-stratus", 5, |p| {
        (
            stratus_cmd(
                &repo().join("bench/apps/native"),
                p,
                false,
                &data.join("pc"),
            ),
            "/api/hello",
        )
    });
    let (server, client) = (median(server), median(client));
    println!("\n## deployment of a 10 MB app to 3 workers (median of {rounds})\n");
    println!("| measure | ms | ratio to one host's cold start |\n|---|---|---|");
    println!(
        "| host cold start (stratus start, spawn to first 200; baseline) | {cold_start:.0} | 1.00 |"
    );
    println!(
        "| package received → live on 3 replicas (deployment record) | {server:.0} | {:.2} |",
        server / cold_start
    );
    println!(
        "| `stratus apps deploy` from start to live (zip, upload, store, start, switch) | {client:.0} | {:.2} |",
        client / cold_start
    );
    serde_json::json!({
        "package_bytes": SIZE,
        "workers": 3,
        "cold_start_ms": cold_start,
        "received_to_live_ms": server,
        "client_deploy_to_live_ms": client,
        "ratio_received_to_live": server / cold_start,
    })
}

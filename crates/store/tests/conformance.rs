//! One suite of store behaviour, run against SQLite and against PostgreSQL.
//!
//! PostgreSQL is reached at `STRATUS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each run creates and drops its own database.

use stratus_store::{
    CreateQueue, DeleteMessage, EncryptionKey, Error, KeyScope, PeekedMessage, QueueInfo,
    SqlQueues, Store, Upsert,
};

fn key() -> EncryptionKey {
    EncryptionKey::from_base64(&EncryptionKey::generate().unwrap()).unwrap()
}

async fn suite(store: &Store) {
    keys_round_trip(store).await;
    versions_change_on_writes(store).await;
    apps_are_separate(store).await;
    leases_are_exclusive_until_they_expire(store).await;
    timer_status_round_trips(store).await;
    queues_create_list_and_carry_metadata(store).await;
    messages_round_trip(store).await;
    received_messages_stay_invisible_until_their_timeout(store).await;
    messages_expire(store).await;
    clearing_empties_a_queue(store).await;
    messages_are_limited_to_64_kib(store).await;
    accounts_and_queue_generations_are_separate(store).await;
    competing_consumers_get_each_message_once(store).await;
    batches_are_sent_and_deleted_at_once(store).await;
    concurrent_writes_each_get_their_own_outcome(store).await;
    apps_settings_and_versions(store).await;
    workers_join_with_tokens(store).await;
    deployments_finish_once_and_activate(store).await;
    publishing_credentials_and_certificates(store).await;
    portal_users_sessions_and_bootstrap(store).await;
    telemetry_records_filters_and_prunes(store).await;
}

async fn telemetry_records_filters_and_prunes(store: &Store) {
    use stratus_store::{InvocationFilter, InvocationRecord, LogLine, Retention, StatRow};
    // Pruning goes by the apps the store knows.
    store
        .apps()
        .create("shop", &stratus_store::Scale::default(), 0)
        .await
        .unwrap();
    let t = store.telemetry();
    let inv = |id: &str, function: &str, at: i64, error: Option<&str>| InvocationRecord {
        id: id.into(),
        function: function.into(),
        trigger: "httpTrigger".into(),
        started_ms: at,
        duration_us: 1500,
        error: error.map(str::to_string),
        worker: "w1".into(),
        version: 2,
    };
    let line = |id: &str, function: &str, at: i64, msg: &str| LogLine {
        seq: 0,
        function: function.into(),
        invocation_id: id.into(),
        time_ms: at,
        level: "Information".into(),
        message: msg.into(),
        worker: "w1".into(),
    };
    let stat = |function: &str, minute: i64, count: i64| StatRow {
        function: function.into(),
        minute_ms: minute,
        worker: "w1".into(),
        host: "h1".into(),
        count,
        errors: 1,
        histogram: "0,2".into(),
    };
    let batch = [
        inv("a", "hello", 1_000, None),
        inv("b", "hello", 2_000, Some("boom")),
        inv("c", "other", 3_000, None),
    ];
    let logs = [
        line("a", "hello", 1_001, "one"),
        line("b", "hello", 2_001, "two"),
        line("c", "other", 3_001, "three"),
        line("", "hello", 3_002, "handler says"),
    ];
    t.record(
        "shop",
        &batch,
        &logs,
        &[stat("hello", 0, 3), stat("hello", 60_000, 1)],
    )
    .await
    .unwrap();
    // A host's totals of a minute replace what it sent of that minute before.
    t.record("shop", &[], &[], &[stat("hello", 60_000, 2)])
        .await
        .unwrap();
    // A batch sent again keeps the first record; another app is separate.
    t.record("shop", &[inv("a", "hello", 9_999, Some("later"))], &[], &[])
        .await
        .unwrap();
    t.record(
        "other",
        &[inv("a", "x", 5, None)],
        &[line("a", "x", 5, "x")],
        &[],
    )
    .await
    .unwrap();
    let t = &t;
    let all = |f: InvocationFilter| async move {
        t.invocations("shop", &InvocationFilter { limit: 100, ..f })
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(all(InvocationFilter::default()).await, ["c", "b", "a"]);
    let hello = || InvocationFilter {
        function: Some("hello".into()),
        ..Default::default()
    };
    assert_eq!(all(hello()).await, ["b", "a"]);
    assert_eq!(
        all(InvocationFilter {
            failed: Some(true),
            ..Default::default()
        })
        .await,
        ["b"]
    );
    assert_eq!(
        all(InvocationFilter {
            before_ms: Some(2_000),
            ..Default::default()
        })
        .await,
        ["a"]
    );
    // Paging at one instant goes on by id.
    assert_eq!(
        all(InvocationFilter {
            before_ms: Some(2_000),
            before_id: Some("c".into()),
            ..Default::default()
        })
        .await,
        ["b", "a"]
    );
    assert_eq!(
        t.recorded_since("shop", Some("hello"), 1_500)
            .await
            .unwrap(),
        1
    );
    assert_eq!(t.recorded_since("shop", None, 0).await.unwrap(), 3);
    let a = t.invocation("shop", "a").await.unwrap().unwrap();
    assert_eq!((a.started_ms, a.error), (1_000, None));
    assert_eq!(
        t.invocation("shop", "b")
            .await
            .unwrap()
            .unwrap()
            .error
            .as_deref(),
        Some("boom")
    );
    assert!(t.invocation("shop", "zz").await.unwrap().is_none());
    let of_b: Vec<String> = t
        .logs_of("shop", "b")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(of_b, ["two"]);
    let stream = t.logs_after("shop", None, 0, 100).await.unwrap();
    assert_eq!(
        t.last_seq("shop").await.unwrap(),
        stream.last().unwrap().seq
    );
    assert_eq!(stream.len(), 4);
    assert!(stream.windows(2).all(|w| w[0].seq < w[1].seq));
    let after = t
        .logs_after("shop", None, stream[1].seq, 100)
        .await
        .unwrap();
    assert_eq!(after.len(), 2);
    let hello_lines = t.logs_after("shop", Some("hello"), 0, 100).await.unwrap();
    assert_eq!(hello_lines.len(), 3);
    let last: Vec<String> = t
        .last_logs("shop", None, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(last, ["three", "handler says"]);
    let stats = t.stats("shop", Some("hello"), 60_000).await.unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!((stats[0].count, stats[0].histogram.as_str()), (2, "0,2"));
    // Pruning: by age, then by count per app.
    let keep = Retention {
        max_age_ms: 10_000,
        max_invocations: 1,
        max_logs: 2,
    };
    t.prune(keep, 11_500).await.unwrap();
    assert_eq!(all(InvocationFilter::default()).await, ["c"]);
    assert_eq!(t.last_logs("shop", None, 100).await.unwrap().len(), 2);
    assert_eq!(t.stats("shop", None, 0).await.unwrap().len(), 1);
    t.forget("other").await.unwrap();
    assert!(t.invocation("other", "a").await.unwrap().is_none());
    t.forget("shop").await.unwrap();
}

async fn portal_users_sessions_and_bootstrap(store: &Store) {
    let p = store.portal();
    assert_eq!(p.user_count().await.unwrap(), 0);
    p.add_bootstrap("boot-old", 100).await.unwrap();
    p.add_bootstrap("boot", 10_000).await.unwrap();
    assert!(
        !p.bootstrap("boot-old", "ann", "h", 200).await.unwrap(),
        "expired"
    );
    assert!(
        !p.bootstrap("nope", "ann", "h", 200).await.unwrap(),
        "unknown"
    );
    assert!(p.bootstrap("boot", "ann", "h1", 200).await.unwrap());
    assert!(
        !p.bootstrap("boot", "bob", "h", 201).await.unwrap(),
        "consumed"
    );
    assert_eq!(p.users().await.unwrap(), vec!["ann"]);
    assert_eq!(p.password_hash("ann").await.unwrap().as_deref(), Some("h1"));
    assert!(p.put_user("bob", "h2", 300).await.unwrap());
    assert!(
        !p.put_user("bob", "h3", 301).await.unwrap(),
        "a new password"
    );
    assert_eq!(p.password_hash("bob").await.unwrap().as_deref(), Some("h3"));

    p.open_session("s1", "bob", "c1", 400, 1_000).await.unwrap();
    p.open_session("s0", "bob", "c0", 400, 450).await.unwrap();
    let s = p.session("s1", 500).await.unwrap().unwrap();
    assert_eq!((s.user.as_str(), s.csrf.as_str()), ("bob", "c1"));
    assert!(p.session("s0", 500).await.unwrap().is_none(), "expired");
    assert!(
        p.session("s1", 1_000).await.unwrap().is_none(),
        "expired at its time"
    );
    p.close_session("s1", 500).await.unwrap();
    assert!(p.session("s1", 500).await.unwrap().is_none());
    p.open_session("s2", "bob", "c2", 600, 2_000).await.unwrap();
    assert!(p.delete_user("bob").await.unwrap());
    assert!(
        p.session("s2", 700).await.unwrap().is_none(),
        "gone with its user"
    );
    assert!(!p.delete_user("bob").await.unwrap());
}

async fn deployments_finish_once_and_activate(store: &Store) {
    use stratus_store::{Begin, DeployOrigin, DeployStatus, Finish, LogKind, Scale};
    let apps = store.apps();
    let deployments = store.deployments();
    let t = 50_000;
    assert!(apps.create("shop", &Scale::default(), t).await.unwrap());
    let sha = apps.put_package(b"PK shop", t).await.unwrap();
    let v1 = apps
        .add_version("shop", &sha, "a", "m", true, t)
        .await
        .unwrap()
        .unwrap();
    let origin = DeployOrigin {
        author: "ann".into(),
        author_email: "ann@example.com".into(),
        deployer: "ZipDeploy".into(),
        message: "Created via a push deployment".into(),
    };
    assert_eq!(
        deployments.begin("nope", "d0", &origin, t).await.unwrap(),
        Begin::NoApp
    );
    let Begin::Started(d1) = deployments.begin("shop", "d1", &origin, t).await.unwrap() else {
        panic!("first deployment starts");
    };
    assert_eq!((d1.status, d1.complete), (DeployStatus::Pending, false));
    assert_eq!(d1.origin, origin);
    assert_eq!(
        deployments
            .begin("shop", "d2", &origin, t + 1)
            .await
            .unwrap(),
        Begin::Busy("d1".into()),
        "one unfinished deployment per app"
    );
    let v2 = apps
        .add_version("shop", &sha, "a", "m", false, t + 2)
        .await
        .unwrap()
        .unwrap();
    assert!(
        deployments
            .advance("d1", DeployStatus::Deploying, "Deploying", Some(v2), t + 3)
            .await
            .unwrap()
    );
    deployments
        .log("d1", LogKind::Message, "stored", t + 3)
        .await
        .unwrap();
    deployments
        .log("d1", LogKind::Warning, "careful", t + 4)
        .await
        .unwrap();
    assert_eq!(
        apps.get("shop").await.unwrap().unwrap().active_version,
        Some(v1),
        "not live before it finishes"
    );
    assert_eq!(deployments.all_unfinished().await.unwrap().len(), 1);
    assert_eq!(
        deployments
            .finish("d1", true, "Success", t + 5)
            .await
            .unwrap(),
        Finish::Done
    );
    assert_eq!(
        deployments
            .finish("d1", false, "late", t + 6)
            .await
            .unwrap(),
        Finish::AlreadyFinished,
        "finished once"
    );
    assert_eq!(
        apps.get("shop").await.unwrap().unwrap().active_version,
        Some(v2)
    );
    let d1 = deployments.get("shop", "d1").await.unwrap().unwrap();
    assert_eq!(
        (d1.status, d1.complete, d1.end_ms, d1.version),
        (DeployStatus::Success, true, Some(t + 5), Some(v2))
    );
    let log = deployments.log_entries("d1").await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[1].kind, log[1].message.as_str()),
        (LogKind::Warning, "careful")
    );

    // A deployment whose receiver went silent fails; the active version stays.
    let Begin::Started(_) = deployments
        .begin("shop", "d3", &origin, t + 10)
        .await
        .unwrap()
    else {
        panic!("starts after the first finished");
    };
    assert!(
        deployments
            .fail_abandoned(t + 5, t + 20)
            .await
            .unwrap()
            .is_empty(),
        "touched recently"
    );
    assert!(deployments.touch("d3", t + 30).await.unwrap());
    assert_eq!(
        deployments.fail_abandoned(t + 31, t + 40).await.unwrap(),
        vec!["d3"]
    );
    let d3 = deployments.get("shop", "d3").await.unwrap().unwrap();
    assert_eq!(d3.status, DeployStatus::Failed);
    assert_eq!(
        deployments.log_entries("d3").await.unwrap()[0].kind,
        LogKind::Error
    );
    assert_eq!(
        apps.get("shop").await.unwrap().unwrap().active_version,
        Some(v2)
    );
    // Another version went live meanwhile (out of band): the deployment fails, superseded.
    let Begin::Started(_) = deployments
        .begin("shop", "d4", &origin, t + 41)
        .await
        .unwrap()
    else {
        panic!("starts");
    };
    assert!(apps.activate("shop", v1, t + 42).await.unwrap());
    deployments
        .advance("d4", DeployStatus::Deploying, "Deploying", Some(v2), t + 43)
        .await
        .unwrap();
    let Finish::Superseded(why) = deployments
        .finish("d4", true, "Success", t + 44)
        .await
        .unwrap()
    else {
        panic!("superseded");
    };
    assert!(why.contains("version 1"), "{why}");
    assert_eq!(
        apps.get("shop").await.unwrap().unwrap().active_version,
        Some(v1)
    );
    assert_eq!(
        deployments.get("shop", "d4").await.unwrap().unwrap().status,
        DeployStatus::Failed
    );
    // A deployment recorded from outside; the history lists the newest first.
    assert!(
        deployments
            .record("shop", "ext", &origin, true, t + 50)
            .await
            .unwrap()
    );
    let ids: Vec<String> = deployments
        .list("shop")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, vec!["ext", "d4", "d3", "d1"]);
    assert!(apps.delete("shop").await.unwrap());
    assert!(deployments.list("shop").await.unwrap().is_empty());
}

async fn publishing_credentials_and_certificates(store: &Store) {
    use stratus_store::Certificate;
    let p = store.publishing();
    assert!(p.credential("web").await.unwrap().is_none());
    let c = p.set_credential("web", "s1", "h1", false, 1).await.unwrap();
    assert_eq!((c.salt.as_str(), c.hash.as_str()), ("s1", "h1"));
    let kept = p.set_credential("web", "s2", "h2", false, 2).await.unwrap();
    assert_eq!(
        kept.salt, "s1",
        "an existing credential stays unless replaced"
    );
    let rotated = p.set_credential("web", "s3", "h3", true, 3).await.unwrap();
    assert_eq!((rotated.salt.as_str(), rotated.updated_ms), ("s3", 3));

    let first = Certificate {
        cert_pem: "CERT A".into(),
        key_pem: "KEY A".into(),
    };
    let second = Certificate {
        cert_pem: "CERT B".into(),
        key_pem: "KEY B".into(),
    };
    assert_eq!(p.put_certificate("ca", &first, 1).await.unwrap(), first);
    assert_eq!(
        p.put_certificate("ca", &second, 2).await.unwrap(),
        first,
        "the first one stored wins"
    );
    assert_eq!(p.certificate("ca").await.unwrap(), Some(first));
    assert!(p.certificate("server").await.unwrap().is_none());
}

async fn workers_join_with_tokens(store: &Store) {
    use stratus_store::WorkerSpec;
    let workers = store.workers();
    let t = 5_000;
    let (id, token) = workers.create_token("night shift", t).await.unwrap();
    assert!(token.starts_with("sjt_") && token.len() > 30, "{token}");
    assert_eq!(
        workers.admit(&token).await.unwrap().as_deref(),
        Some(id.as_str())
    );
    assert_eq!(workers.admit("sjt_wrong").await.unwrap(), None);
    let listed = workers.tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].revoked_ms),
        ("night shift", None)
    );

    let spec = WorkerSpec {
        name: "box-1".into(),
        cpu_millis: 2000,
        memory_mib: 4096,
        max_apps: 8,
        labels: vec![("zone".into(), "a".into()), ("disk".into(), "ssd".into())],
        window: Some("22:00-06:00".into()),
        version: "0.1.0".into(),
    };
    let w1 = workers.join(&spec, &id, t + 1).await.unwrap();
    let got = workers.get(&w1).await.unwrap().unwrap();
    assert_eq!(got.spec.labels[0], ("disk".to_string(), "ssd".to_string()));
    assert_eq!(got.spec.window.as_deref(), Some("22:00-06:00"));
    assert_eq!(
        (got.joined_ms, got.heartbeat_ms, got.draining),
        (t + 1, t + 1, false)
    );
    // Joining again under the same name replaces the record.
    let w2 = workers.join(&spec, &id, t + 2).await.unwrap();
    assert_ne!(w1, w2);
    assert!(workers.get(&w1).await.unwrap().is_none());
    assert_eq!(workers.list().await.unwrap().len(), 1);
    assert_eq!(workers.get(&w2).await.unwrap().unwrap().status, "{}");
    assert!(
        workers
            .heartbeat(&w2, r#"{"hosts":[]}"#, t + 10)
            .await
            .unwrap()
    );
    let beat = workers.get(&w2).await.unwrap().unwrap();
    assert_eq!(
        (beat.heartbeat_ms, beat.status.as_str()),
        (t + 10, r#"{"hosts":[]}"#)
    );
    assert!(workers.set_draining(&w2, true).await.unwrap());
    assert!(workers.get(&w2).await.unwrap().unwrap().draining);

    // A revoked token admits no one, and its workers' heartbeats are refused.
    assert!(workers.revoke_token(&id, t + 20).await.unwrap());
    assert!(!workers.revoke_token(&id, t + 21).await.unwrap());
    assert_eq!(workers.admit(&token).await.unwrap(), None);
    assert!(!workers.heartbeat(&w2, "{}", t + 30).await.unwrap());
    assert!(workers.remove(&w2).await.unwrap());
    assert!(!workers.remove(&w2).await.unwrap());
    assert!(workers.list().await.unwrap().is_empty());

    // Placements are replaced as a set; the ones kept keep their time.
    let set = |pairs: &[(&str, &str)]| -> std::collections::BTreeSet<(String, String)> {
        pairs
            .iter()
            .map(|(a, w)| (a.to_string(), w.to_string()))
            .collect()
    };
    assert_eq!(
        workers
            .set_placements(&set(&[("a", "w1"), ("a", "w2")]), t + 40)
            .await
            .unwrap(),
        (2, 0)
    );
    assert_eq!(
        workers
            .set_placements(&set(&[("a", "w2"), ("a", "w3")]), t + 50)
            .await
            .unwrap(),
        (1, 1)
    );
    assert_eq!(
        workers.placements().await.unwrap(),
        vec![
            ("a".to_string(), "w2".to_string(), t + 40),
            ("a".to_string(), "w3".to_string(), t + 50)
        ]
    );
    assert_eq!(
        workers.set_placements(&set(&[]), t + 60).await.unwrap(),
        (0, 2)
    );
}

async fn apps_settings_and_versions(store: &Store) {
    use stratus_store::Scale;
    let apps = store.apps();
    let t = 1_000;
    let scale = Scale {
        min_replicas: 2,
        max_replicas: 4,
        labels: vec![("zone".into(), "b".into()), ("gpu".into(), "no".into())],
    };
    assert!(apps.create("orders", &scale, t).await.unwrap());
    assert!(
        !apps
            .create("orders", &Scale::default(), t + 1)
            .await
            .unwrap(),
        "exists"
    );
    assert!(apps.create("billing", &Scale::default(), t).await.unwrap());
    let listed: Vec<String> = apps
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(listed, vec!["billing", "orders"]);
    let orders = apps.get("orders").await.unwrap().unwrap();
    assert_eq!((orders.min_replicas, orders.max_replicas), (2, 4));
    assert_eq!(
        orders.labels[0],
        ("gpu".to_string(), "no".to_string()),
        "labels sorted"
    );
    assert_eq!(orders.active_version, None);
    assert!(apps.get("nope").await.unwrap().is_none());

    // Settings: encrypted, case-insensitive names, the latest spelling kept; changes bump the
    // generation.
    assert!(
        apps.set_setting("orders", "DB_PASSWORD", "s3cret", t + 2)
            .await
            .unwrap()
    );
    assert!(
        apps.set_setting("orders", "Region", "eu", t + 2)
            .await
            .unwrap()
    );
    assert!(
        apps.set_setting("orders", "region", "us", t + 3)
            .await
            .unwrap()
    );
    assert!(!apps.set_setting("nope", "x", "y", t).await.unwrap());
    assert_eq!(
        apps.settings("orders").await.unwrap(),
        vec![
            ("DB_PASSWORD".to_string(), "s3cret".to_string()),
            ("region".to_string(), "us".to_string())
        ]
    );
    assert!(
        apps.delete_setting("orders", "REGION", t + 4)
            .await
            .unwrap()
    );
    assert!(
        !apps
            .delete_setting("orders", "region", t + 4)
            .await
            .unwrap()
    );
    let after = apps.get("orders").await.unwrap().unwrap();
    assert!(after.generation > orders.generation);
    assert_eq!(after.updated_ms, t + 4);

    // Packages once per content; versions numbered per app, activated, rolled back.
    let zip_a = b"PK\x03\x04 version a".to_vec();
    let zip_b = b"PK\x03\x04 version b".to_vec();
    let a = apps.put_package(&zip_a, t).await.unwrap();
    assert_eq!(
        a,
        apps.put_package(&zip_a, t + 1).await.unwrap(),
        "stored once"
    );
    assert_eq!(a.len(), 64);
    let b = apps.put_package(&zip_b, t).await.unwrap();
    assert_eq!(apps.package(&a).await.unwrap().unwrap(), zip_a);
    assert!(apps.package(&"0".repeat(64)).await.unwrap().is_none());
    assert_eq!(
        apps.add_version("orders", &a, "ann", "first", true, t + 5)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        apps.add_version("orders", &b, "bo", "second", false, t + 6)
            .await
            .unwrap(),
        Some(2)
    );
    assert_eq!(
        apps.add_version("billing", &a, "cy", "shared package", true, t + 6)
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        apps.add_version("nope", &a, "x", "", true, t)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        apps.add_version("orders", &"f".repeat(64), "x", "", true, t)
            .await
            .unwrap_err(),
        Error::PackageNotFound(_)
    ));
    let versions = apps.versions("orders").await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.number).collect::<Vec<_>>(),
        vec![2, 1]
    );
    assert_eq!(versions[0].sha256, b);
    assert_eq!(versions[0].size, zip_b.len() as i64);
    assert_eq!(
        (versions[1].author.as_str(), versions[1].message.as_str()),
        ("ann", "first")
    );
    assert_eq!(
        apps.get("orders").await.unwrap().unwrap().active_version,
        Some(1)
    );
    assert!(apps.activate("orders", 2, t + 7).await.unwrap());
    assert!(
        !apps.activate("orders", 3, t + 7).await.unwrap(),
        "no such version"
    );
    assert_eq!(
        apps.get("orders").await.unwrap().unwrap().active_version,
        Some(2)
    );

    // Versions added at the same time still get distinct numbers.
    let adds = (0..6).map(|i| {
        let apps = apps.clone();
        let a = a.clone();
        async move {
            apps.add_version("billing", &a, "ci", &format!("v{i}"), false, t + 10)
                .await
                .unwrap()
                .unwrap()
        }
    });
    let mut numbers = futures_util::future::join_all(adds).await;
    numbers.sort();
    assert_eq!(numbers, vec![2, 3, 4, 5, 6, 7]);

    // Deleting an app takes its settings and versions; packages go once nothing points at them.
    assert!(apps.delete("orders").await.unwrap());
    assert!(!apps.delete("orders").await.unwrap());
    assert!(apps.settings("orders").await.unwrap().is_empty());
    assert!(apps.versions("orders").await.unwrap().is_empty());
    assert_eq!(
        apps.collect_packages().await.unwrap(),
        1,
        "b: only orders used it"
    );
    assert!(
        apps.package(&a).await.unwrap().is_some(),
        "billing still uses a"
    );
    assert!(apps.package(&b).await.unwrap().is_none());
}

/// Single puts and deletes sent together are committed together; each still learns what
/// became of it (queue missing, stale receipt, deleted).
async fn concurrent_writes_each_get_their_own_outcome(store: &Store) {
    use stratus_store::DeleteMessage;
    let queues = store.queues();
    let acct = "acct-group";
    let t0 = 9_000_000;
    queues.create_queue(acct, "here", &[]).await.unwrap();
    let puts = (0..60).map(|i| {
        let queues = queues.clone();
        async move {
            let q = if i % 3 == 0 { "missing" } else { "here" };
            (i, queues.put(acct, q, &format!("m{i}"), 0, None, t0).await)
        }
    });
    let results = futures_util::future::join_all(puts).await;
    for (i, r) in &results {
        match r {
            Ok(m) => assert!(i % 3 != 0 && m.text == format!("m{i}")),
            Err(e) => assert!(i % 3 == 0 && is_queue_not_found(e), "{e}"),
        }
    }
    let got = queues.get(acct, "here", 32, 60_000, t0).await.unwrap();
    assert_eq!(got.len(), 32);
    let mut rest = queues.get(acct, "here", 32, 60_000, t0).await.unwrap();
    assert_eq!(rest.len(), 8);
    rest.extend(got);
    let deletes = rest.iter().enumerate().map(|(i, m)| {
        let queues = queues.clone();
        async move {
            let receipt = if i % 4 == 0 {
                "stale"
            } else {
                m.pop_receipt.as_str()
            };
            (
                i,
                queues.delete(acct, "here", &m.id, receipt).await.unwrap(),
            )
        }
    });
    for (i, outcome) in futures_util::future::join_all(deletes).await {
        let expected = if i % 4 == 0 {
            DeleteMessage::PopReceiptMismatch
        } else {
            DeleteMessage::Deleted
        };
        assert_eq!(outcome, expected, "delete {i}");
    }
    let left = queues.peek(acct, "here", 32, t0 + 120_000).await.unwrap();
    assert_eq!(
        left.len(),
        10,
        "the deletes with a stale receipt left their message"
    );
}

async fn leases_are_exclusive_until_they_expire(store: &Store) {
    let leases = store.leases();
    let t0 = 1_000_000;
    assert!(leases.acquire("timer:a", "p1", t0, 60_000).await.unwrap());
    assert!(
        !leases
            .acquire("timer:a", "p2", t0 + 1, 60_000)
            .await
            .unwrap(),
        "held"
    );
    assert!(
        leases
            .acquire("timer:a", "p1", t0 + 30_000, 60_000)
            .await
            .unwrap(),
        "renewed"
    );
    assert!(
        !leases
            .acquire("timer:a", "p2", t0 + 60_000, 60_000)
            .await
            .unwrap(),
        "the renewal moved the expiry"
    );
    assert!(
        leases
            .acquire("timer:a", "p2", t0 + 90_000, 60_000)
            .await
            .unwrap(),
        "taken over"
    );
    let held = leases.get("timer:a").await.unwrap().unwrap();
    assert_eq!(
        (held.holder.as_str(), held.expires_at_ms),
        ("p2", t0 + 150_000)
    );
    assert!(
        !leases.release("timer:a", "p1").await.unwrap(),
        "only the holder releases"
    );
    assert!(leases.release("timer:a", "p2").await.unwrap());
    assert!(
        leases
            .acquire("timer:a", "p1", t0 + 91_000, 60_000)
            .await
            .unwrap()
    );
    // Contenders at the same instant: exactly one wins.
    let (a, b, c) = tokio::join!(
        leases.acquire("timer:b", "x", t0, 1_000),
        leases.acquire("timer:b", "y", t0, 1_000),
        leases.acquire("timer:b", "z", t0, 1_000),
    );
    let winners = [a.unwrap(), b.unwrap(), c.unwrap()]
        .iter()
        .filter(|w| **w)
        .count();
    assert_eq!(winners, 1);
}

async fn timer_status_round_trips(store: &Store) {
    use stratus_store::TimerStatus;
    let timers = store.timers();
    assert_eq!(
        timers.get("app1", "Host.Functions.Nightly").await.unwrap(),
        None
    );
    let first = TimerStatus {
        last_ms: None,
        next_ms: 2_000,
        last_updated_ms: 1_000,
    };
    timers
        .put("app1", "Host.Functions.Nightly", first)
        .await
        .unwrap();
    assert_eq!(
        timers.get("app1", "Host.Functions.Nightly").await.unwrap(),
        Some(first)
    );
    let later = TimerStatus {
        last_ms: Some(2_000),
        next_ms: 3_000,
        last_updated_ms: 2_000,
    };
    timers
        .put("app1", "Host.Functions.Nightly", later)
        .await
        .unwrap();
    assert_eq!(
        timers.get("app1", "Host.Functions.Nightly").await.unwrap(),
        Some(later)
    );
    assert_eq!(
        timers.get("app2", "Host.Functions.Nightly").await.unwrap(),
        None
    );
}

async fn keys_round_trip(store: &Store) {
    let keys = store.keys();
    assert_eq!(keys.load("app1").await.unwrap(), Default::default());
    assert_eq!(
        keys.put("app1", KeyScope::Master, "ignored", "m1")
            .await
            .unwrap(),
        Upsert::Created
    );
    assert_eq!(
        keys.put("app1", KeyScope::Master, "", "m2").await.unwrap(),
        Upsert::Replaced
    );
    assert_eq!(
        keys.put("app1", KeyScope::HostFunction, "default", "h1")
            .await
            .unwrap(),
        Upsert::Created
    );
    assert_eq!(
        keys.put("app1", KeyScope::System, "blobs_extension", "s1")
            .await
            .unwrap(),
        Upsert::Created
    );
    assert_eq!(
        keys.put("app1", KeyScope::Function("Hello"), "Default", "f1")
            .await
            .unwrap(),
        Upsert::Created
    );
    assert_eq!(
        keys.put("app1", KeyScope::Function("hello"), "default", "f2")
            .await
            .unwrap(),
        Upsert::Replaced
    );
    let all = keys.load("app1").await.unwrap();
    assert_eq!(all.master.as_deref(), Some("m2"));
    assert_eq!(all.function_keys[0].value, "h1");
    assert_eq!(all.system_keys[0].name, "blobs_extension");
    let hello = &all.functions["hello"];
    assert_eq!(hello.len(), 1);
    assert_eq!(
        (hello[0].name.as_str(), hello[0].value.as_str()),
        ("default", "f2")
    );
    assert!(
        keys.delete("app1", KeyScope::Function("HELLO"), "DEFAULT")
            .await
            .unwrap()
    );
    assert!(
        !keys
            .delete("app1", KeyScope::Function("hello"), "default")
            .await
            .unwrap()
    );
    assert!(
        !keys
            .load("app1")
            .await
            .unwrap()
            .functions
            .contains_key("hello")
    );
}

async fn versions_change_on_writes(store: &Store) {
    let keys = store.keys();
    let v0 = keys.version("app2").await.unwrap();
    assert_eq!(v0, 0);
    keys.put("app2", KeyScope::HostFunction, "a", "1")
        .await
        .unwrap();
    let v1 = keys.version("app2").await.unwrap();
    assert!(v1 > v0);
    assert!(
        !keys
            .delete("app2", KeyScope::HostFunction, "missing")
            .await
            .unwrap()
    );
    assert_eq!(
        keys.version("app2").await.unwrap(),
        v1,
        "a no-op delete changes nothing"
    );
    keys.delete("app2", KeyScope::HostFunction, "a")
        .await
        .unwrap();
    assert!(keys.version("app2").await.unwrap() > v1);
}

async fn apps_are_separate(store: &Store) {
    let keys = store.keys();
    keys.put("app3", KeyScope::Master, "", "x").await.unwrap();
    keys.put("app4", KeyScope::Master, "", "y").await.unwrap();
    assert_eq!(
        keys.load("app3").await.unwrap().master.as_deref(),
        Some("x")
    );
    assert_eq!(
        keys.load("app4").await.unwrap().master.as_deref(),
        Some("y")
    );
}

// ---- Storage queues ----

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn is_queue_not_found(e: &Error) -> bool {
    matches!(e, Error::QueueNotFound { .. })
}

async fn queues_create_list_and_carry_metadata(store: &Store) {
    let queues = store.queues();
    let acct = "acct-create";
    let m1 = meta(&[("Color", "red"), ("size", "L")]);
    assert_eq!(
        queues.create_queue(acct, "jobs", &m1).await.unwrap(),
        CreateQueue::Created
    );
    assert_eq!(
        queues
            .create_queue(acct, "jobs", &meta(&[("SIZE", "L"), ("color", "red")]))
            .await
            .unwrap(),
        CreateQueue::Exists {
            same_metadata: true
        },
        "names compare without case, in any order"
    );
    assert_eq!(
        queues
            .create_queue(acct, "jobs", &meta(&[("Color", "blue")]))
            .await
            .unwrap(),
        CreateQueue::Exists {
            same_metadata: false
        }
    );
    assert_eq!(
        queues.create_queue(acct, "jobs", &[]).await.unwrap(),
        CreateQueue::Exists {
            same_metadata: false
        }
    );
    assert_eq!(
        queues
            .create_queue("acct-create-2", "jobs", &[])
            .await
            .unwrap(),
        CreateQueue::Created,
        "queues are per account"
    );

    let props = queues.get_metadata(acct, "jobs", 0).await.unwrap().unwrap();
    assert_eq!(props.metadata, m1, "kept as given");
    assert_eq!(props.approximate_message_count, 0);
    let m2 = meta(&[("owner", "ops")]);
    queues.set_metadata(acct, "jobs", &m2).await.unwrap();
    assert_eq!(
        queues
            .get_metadata(acct, "jobs", 0)
            .await
            .unwrap()
            .unwrap()
            .metadata,
        m2
    );
    assert!(is_queue_not_found(
        &queues.set_metadata(acct, "nope", &m2).await.unwrap_err()
    ));
    assert_eq!(queues.get_metadata(acct, "nope", 0).await.unwrap(), None);

    // Listing: name (byte) order, prefix, paging with markers.
    let acct = "acct-list";
    for name in ["qa", "q-b", "q0", "other", "q1"] {
        queues
            .create_queue(acct, name, &meta(&[("n", name)]))
            .await
            .unwrap();
    }
    let names = |page: &[QueueInfo]| page.iter().map(|q| q.name.clone()).collect::<Vec<_>>();
    let (all, next) = queues.list_queues(acct, "", None, 5000).await.unwrap();
    assert_eq!(names(&all), ["other", "q-b", "q0", "q1", "qa"]);
    assert_eq!(next, None);
    assert_eq!(all[1].metadata, meta(&[("n", "q-b")]));
    let (page, next) = queues.list_queues(acct, "q", None, 2).await.unwrap();
    assert_eq!(names(&page), ["q-b", "q0"]);
    let next = next.expect("more to come");
    let (page, next) = queues.list_queues(acct, "q", Some(&next), 2).await.unwrap();
    assert_eq!(names(&page), ["q1", "qa"]);
    assert_eq!(next, None, "exactly a page left");
    let (page, _) = queues.list_queues(acct, "q0", None, 10).await.unwrap();
    assert_eq!(names(&page), ["q0"]);
    let (page, _) = queues.list_queues(acct, "z", None, 10).await.unwrap();
    assert!(page.is_empty());
    let (page, _) = queues.list_queues("acct-none", "", None, 10).await.unwrap();
    assert!(page.is_empty());

    assert!(queues.delete_queue(acct, "q0").await.unwrap());
    assert!(!queues.delete_queue(acct, "q0").await.unwrap());
    let (all, _) = queues.list_queues(acct, "", None, 10).await.unwrap();
    assert_eq!(names(&all), ["other", "q-b", "q1", "qa"]);
}

async fn messages_round_trip(store: &Store) {
    let queues = store.queues();
    let acct = "acct-msgs";
    let t0 = 1_000_000;
    assert!(is_queue_not_found(
        &queues
            .put(acct, "inbox", "x", 0, None, t0)
            .await
            .unwrap_err()
    ));
    queues.create_queue(acct, "inbox", &[]).await.unwrap();

    let m1 = queues
        .put(acct, "inbox", "hello <world> & ünïcode", 0, None, t0)
        .await
        .unwrap();
    assert_eq!(m1.text, "hello <world> & ünïcode");
    assert_eq!(
        (
            m1.insertion_ms,
            m1.expiration_ms,
            m1.next_visible_ms,
            m1.dequeue_count
        ),
        (t0, t0 + 7 * DAY_MS, t0, 0)
    );
    assert_eq!(m1.id.len(), 36);
    assert!(!m1.pop_receipt.is_empty());
    let m2 = queues.put(acct, "inbox", "two", 0, None, t0).await.unwrap();
    let m3 = queues
        .put(acct, "inbox", "three", 0, None, t0)
        .await
        .unwrap();
    let later = queues
        .put(acct, "inbox", "later", 10_000, None, t0)
        .await
        .unwrap();
    assert_eq!(later.next_visible_ms, t0 + 10_000);
    assert_ne!(m1.id, m2.id);

    // Peek: visible messages in order, nothing changes.
    let peeked = queues.peek(acct, "inbox", 32, t0).await.unwrap();
    let ids = |v: &[PeekedMessage]| v.iter().map(|m| m.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&peeked),
        [m1.id.as_str(), m2.id.as_str(), m3.id.as_str()]
    );
    assert_eq!(peeked[0].text, m1.text);
    assert_eq!(peeked[0].dequeue_count, 0);
    assert_eq!(
        (peeked[0].insertion_ms, peeked[0].expiration_ms),
        (t0, t0 + 7 * DAY_MS)
    );
    assert_eq!(
        ids(&queues.peek(acct, "inbox", 1, t0).await.unwrap()),
        [m1.id.as_str()]
    );
    assert_eq!(
        queues.peek(acct, "inbox", 32, t0).await.unwrap(),
        peeked,
        "peeking changes nothing"
    );
    assert_eq!(
        ids(&queues.peek(acct, "inbox", 32, t0 + 10_000).await.unwrap()),
        [
            m1.id.as_str(),
            m2.id.as_str(),
            m3.id.as_str(),
            later.id.as_str()
        ],
        "visible once its initial visibility timeout has passed"
    );

    // Get: the oldest visible ones, invisible for the timeout, counted, with new receipts.
    let got = queues.get(acct, "inbox", 2, 30_000, t0 + 1).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((&got[0].id, &got[1].id), (&m1.id, &m2.id));
    assert_eq!(got[0].text, m1.text);
    for g in &got {
        assert_eq!(g.dequeue_count, 1);
        assert_eq!(g.next_visible_ms, t0 + 1 + 30_000);
        assert_eq!(g.insertion_ms, t0);
        assert_eq!(g.expiration_ms, t0 + 7 * DAY_MS);
    }
    assert_ne!(got[0].pop_receipt, m1.pop_receipt);
    assert_ne!(got[0].pop_receipt, got[1].pop_receipt);
    assert_eq!(
        ids(&queues.peek(acct, "inbox", 32, t0 + 1).await.unwrap()),
        [m3.id.as_str()]
    );
    assert_eq!(
        queues
            .get_metadata(acct, "inbox", t0 + 1)
            .await
            .unwrap()
            .unwrap()
            .approximate_message_count,
        4,
        "invisible messages count"
    );

    // Delete needs the latest receipt.
    assert_eq!(
        queues
            .delete(acct, "inbox", &m1.id, &m1.pop_receipt)
            .await
            .unwrap(),
        DeleteMessage::PopReceiptMismatch
    );
    assert_eq!(
        queues
            .delete(acct, "inbox", &m1.id, &got[0].pop_receipt)
            .await
            .unwrap(),
        DeleteMessage::Deleted
    );
    assert_eq!(
        queues
            .delete(acct, "inbox", &m1.id, &got[0].pop_receipt)
            .await
            .unwrap(),
        DeleteMessage::NotFound
    );
    assert!(is_queue_not_found(
        &queues
            .delete(acct, "missing", &m1.id, &got[0].pop_receipt)
            .await
            .unwrap_err()
    ));
    // A message of another queue is not found through this one.
    queues.create_queue(acct, "other", &[]).await.unwrap();
    assert_eq!(
        queues
            .delete(acct, "other", &m2.id, &got[1].pop_receipt)
            .await
            .unwrap(),
        DeleteMessage::NotFound
    );

    // Update: new text and visibility, new receipt; the old one stops working.
    let up = queues
        .update(
            acct,
            "inbox",
            &m2.id,
            &got[1].pop_receipt,
            Some("two, edited"),
            0,
            t0 + 2,
        )
        .await
        .unwrap();
    assert_eq!(up.next_visible_ms, t0 + 2);
    assert_ne!(up.pop_receipt, got[1].pop_receipt);
    assert!(matches!(
        queues
            .update(acct, "inbox", &m2.id, &got[1].pop_receipt, None, 0, t0 + 3)
            .await
            .unwrap_err(),
        Error::PopReceiptMismatch { .. }
    ));
    assert!(matches!(
        queues
            .update(
                acct,
                "inbox",
                "no-such-id",
                &up.pop_receipt,
                None,
                0,
                t0 + 3
            )
            .await
            .unwrap_err(),
        Error::MessageNotFound { .. }
    ));
    assert!(is_queue_not_found(
        &queues
            .update(acct, "missing", &m2.id, &up.pop_receipt, None, 0, t0 + 3)
            .await
            .unwrap_err()
    ));
    // Order: by the time messages became visible, then by insertion.
    let peeked = queues.peek(acct, "inbox", 32, t0 + 3).await.unwrap();
    assert_eq!(ids(&peeked), [m3.id.as_str(), m2.id.as_str()]);
    assert_eq!(peeked[1].text, "two, edited");
    assert_eq!(
        peeked[1].dequeue_count, 1,
        "updates do not count as dequeues"
    );
    // Updating only the visibility keeps the text.
    let up2 = queues
        .update(acct, "inbox", &m2.id, &up.pop_receipt, None, 5_000, t0 + 3)
        .await
        .unwrap();
    assert_eq!(
        ids(&queues.peek(acct, "inbox", 32, t0 + 3).await.unwrap()),
        [m3.id.as_str()]
    );
    let got = queues
        .get(acct, "inbox", 32, 1_000, t0 + 10_000)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        [m2.id.as_str(), m3.id.as_str(), later.id.as_str()],
        "a batch comes in insertion order"
    );
    assert_eq!(got[0].text, "two, edited");
    assert_eq!(got[0].dequeue_count, 2);
    assert_ne!(got[0].pop_receipt, up2.pop_receipt);
    for m in &got {
        assert_eq!(
            queues
                .delete(acct, "inbox", &m.id, &m.pop_receipt)
                .await
                .unwrap(),
            DeleteMessage::Deleted
        );
    }
    assert!(
        queues
            .get(acct, "inbox", 32, 1_000, t0 + 100_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(is_queue_not_found(
        &queues.get(acct, "missing", 1, 1_000, t0).await.unwrap_err()
    ));
    assert!(is_queue_not_found(
        &queues.peek(acct, "missing", 1, t0).await.unwrap_err()
    ));
    // A sent message can be deleted or updated with the receipt the put returned.
    let m = queues
        .put(acct, "inbox", "short-lived", 0, None, t0)
        .await
        .unwrap();
    let up = queues
        .update(acct, "inbox", &m.id, &m.pop_receipt, None, 0, t0)
        .await
        .unwrap();
    assert_eq!(
        queues
            .delete(acct, "inbox", &m.id, &up.pop_receipt)
            .await
            .unwrap(),
        DeleteMessage::Deleted
    );
}

async fn received_messages_stay_invisible_until_their_timeout(store: &Store) {
    let queues = store.queues();
    let acct = "acct-visibility";
    let t0 = 2_000_000;
    queues.create_queue(acct, "q", &[]).await.unwrap();
    let sent = queues.put(acct, "q", "m", 0, None, t0).await.unwrap();
    let first = queues.get(acct, "q", 1, 10_000, t0).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].dequeue_count, 1);
    assert!(
        queues
            .get(acct, "q", 1, 10_000, t0 + 9_999)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        queues
            .peek(acct, "q", 1, t0 + 9_999)
            .await
            .unwrap()
            .is_empty()
    );
    let second = queues
        .get(acct, "q", 32, 10_000, t0 + 10_000)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, sent.id);
    assert_eq!(second[0].dequeue_count, 2);
    assert_eq!(second[0].next_visible_ms, t0 + 20_000);
    assert_ne!(second[0].pop_receipt, first[0].pop_receipt);
    assert_eq!(
        queues
            .delete(acct, "q", &sent.id, &first[0].pop_receipt)
            .await
            .unwrap(),
        DeleteMessage::PopReceiptMismatch,
        "the old receipt no longer deletes it"
    );
    // A message that came back but was not received again keeps its receipt.
    assert_eq!(
        queues.peek(acct, "q", 1, t0 + 20_000).await.unwrap().len(),
        1
    );
    assert_eq!(
        queues
            .delete(acct, "q", &sent.id, &second[0].pop_receipt)
            .await
            .unwrap(),
        DeleteMessage::Deleted
    );
}

async fn messages_expire(store: &Store) {
    let queues = store.queues();
    let acct = "acct-ttl";
    let t0 = 3_000_000;
    queues.create_queue(acct, "q", &[]).await.unwrap();
    let short = queues
        .put(acct, "q", "short", 0, Some(1_000), t0)
        .await
        .unwrap();
    assert_eq!(short.expiration_ms, t0 + 1_000);
    let forever = queues
        .put(acct, "q", "forever", 0, Some(-1), t0)
        .await
        .unwrap();
    assert_eq!(forever.expiration_ms, i64::MAX);
    let default = queues.put(acct, "q", "week", 0, None, t0).await.unwrap();
    assert_eq!(default.expiration_ms, t0 + 7 * DAY_MS);

    let count = |now| {
        let queues = queues.clone();
        async move {
            queues
                .get_metadata(acct, "q", now)
                .await
                .unwrap()
                .unwrap()
                .approximate_message_count
        }
    };
    assert_eq!(count(t0 + 999).await, 3);
    assert_eq!(queues.peek(acct, "q", 32, t0 + 999).await.unwrap().len(), 3);
    assert_eq!(count(t0 + 1_000).await, 2, "expired messages do not count");
    let texts = |now| {
        let queues = queues.clone();
        async move {
            queues
                .peek(acct, "q", 32, now)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.text)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(texts(t0 + 1_000).await, ["forever", "week"]);
    // An expired message is never received, nor updated.
    let got = queues.get(acct, "q", 32, 0, t0 + 1_000).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["forever", "week"]
    );
    assert!(matches!(
        queues
            .update(
                acct,
                "q",
                &short.id,
                &short.pop_receipt,
                None,
                0,
                t0 + 1_000
            )
            .await
            .unwrap_err(),
        Error::MessageNotFound { .. }
    ));
    assert_eq!(texts(t0 + 7 * DAY_MS).await, ["forever"]);
    assert_eq!(count(t0 + 7 * DAY_MS).await, 1);
    // Purging reclaims the space of expired messages (of every queue).
    // (Only this test's message expires this early: each test has its own times.)
    assert_eq!(queues.purge_expired(t0 + 1_000).await.unwrap(), 1);
    assert_eq!(queues.purge_expired(t0 + 1_000).await.unwrap(), 0);
    assert_eq!(count(t0).await, 2);
    assert_eq!(
        queues
            .delete(acct, "q", &short.id, &short.pop_receipt)
            .await
            .unwrap(),
        DeleteMessage::NotFound
    );
    assert_eq!(texts(i64::MAX - 1).await, ["forever"]);
}

async fn clearing_empties_a_queue(store: &Store) {
    let queues = store.queues();
    let acct = "acct-clear";
    let t0 = 4_000_000;
    queues.create_queue(acct, "q", &[]).await.unwrap();
    queues.create_queue(acct, "keep", &[]).await.unwrap();
    for i in 0..3 {
        queues
            .put(acct, "q", &format!("m{i}"), 0, None, t0)
            .await
            .unwrap();
    }
    queues.put(acct, "keep", "k", 0, None, t0).await.unwrap();
    queues.get(acct, "q", 1, 60_000, t0).await.unwrap();
    assert_eq!(
        queues.clear(acct, "q").await.unwrap(),
        3,
        "invisible ones too"
    );
    assert!(
        queues
            .peek(acct, "q", 32, t0 + 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        queues
            .get_metadata(acct, "q", t0)
            .await
            .unwrap()
            .unwrap()
            .approximate_message_count,
        0
    );
    assert_eq!(queues.clear(acct, "q").await.unwrap(), 0);
    assert!(is_queue_not_found(
        &queues.clear(acct, "missing").await.unwrap_err()
    ));
    assert_eq!(queues.peek(acct, "keep", 32, t0).await.unwrap().len(), 1);
}

async fn messages_are_limited_to_64_kib(store: &Store) {
    let queues = store.queues();
    let acct = "acct-size";
    let t0 = 5_000_000;
    queues.create_queue(acct, "q", &[]).await.unwrap();
    let largest = "a".repeat(64 * 1024);
    let m = queues.put(acct, "q", &largest, 0, None, t0).await.unwrap();
    assert_eq!(
        queues.get(acct, "q", 1, 1_000, t0).await.unwrap()[0].text,
        largest
    );
    let too_large = "a".repeat(64 * 1024 + 1);
    let err = queues
        .put(acct, "q", &too_large, 0, None, t0)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::MessageTooLarge {
                size: 65537,
                limit: 65536
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("65537") && err.to_string().contains("65536"));
    // Bytes count, not characters.
    let wide = "é".repeat(32 * 1024 + 1);
    assert!(matches!(
        queues.put(acct, "q", &wide, 0, None, t0).await.unwrap_err(),
        Error::MessageTooLarge { size: 65538, .. }
    ));
    let got = queues.get(acct, "q", 1, 1_000, t0 + 1_000).await.unwrap();
    assert!(matches!(
        queues
            .update(
                acct,
                "q",
                &m.id,
                &got[0].pop_receipt,
                Some(&too_large),
                0,
                t0 + 1_000
            )
            .await
            .unwrap_err(),
        Error::MessageTooLarge { .. }
    ));
}

async fn accounts_and_queue_generations_are_separate(store: &Store) {
    let queues = store.queues();
    let t0 = 6_000_000;
    for acct in ["acct-a", "acct-b"] {
        queues.create_queue(acct, "shared", &[]).await.unwrap();
        queues.put(acct, "shared", acct, 0, None, t0).await.unwrap();
    }
    let a = queues.peek("acct-a", "shared", 32, t0).await.unwrap();
    assert_eq!(
        a.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["acct-a"]
    );
    // Deleting a queue deletes its messages; a new queue of that name starts empty.
    assert!(queues.delete_queue("acct-a", "shared").await.unwrap());
    assert!(is_queue_not_found(
        &queues.peek("acct-a", "shared", 32, t0).await.unwrap_err()
    ));
    queues.create_queue("acct-a", "shared", &[]).await.unwrap();
    assert!(
        queues
            .peek("acct-a", "shared", 32, t0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        queues.peek("acct-b", "shared", 32, t0).await.unwrap().len(),
        1
    );
}

async fn competing_consumers_get_each_message_once(store: &Store) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MESSAGES: usize = 300;
    let queues = store.queues();
    let acct = "acct-compete";
    let t0 = 7_000_000;
    queues.create_queue(acct, "work", &[]).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..MESSAGES {
        sent.push(
            queues
                .put(acct, "work", &format!("job {i}"), 0, None, t0)
                .await
                .unwrap()
                .id,
        );
    }
    let received = Arc::new(AtomicUsize::new(0));
    let mut consumers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let queues = queues.clone();
        let received = received.clone();
        consumers.spawn(async move {
            let mut mine = Vec::new();
            let started = std::time::Instant::now();
            while received.load(Ordering::SeqCst) < MESSAGES {
                let got = queues.get(acct, "work", 8, 600_000, t0).await.unwrap();
                if got.is_empty() {
                    // Others hold the rest; a guard against hanging, not a schedule.
                    assert!(
                        started.elapsed() < std::time::Duration::from_secs(60),
                        "the queue never drained"
                    );
                    tokio::task::yield_now().await;
                    continue;
                }
                received.fetch_add(got.len(), Ordering::SeqCst);
                for m in got {
                    assert_eq!(m.dequeue_count, 1, "received once");
                    assert_eq!(
                        queues
                            .delete(acct, "work", &m.id, &m.pop_receipt)
                            .await
                            .unwrap(),
                        DeleteMessage::Deleted
                    );
                    mine.push(m.id);
                }
            }
            mine
        });
    }
    let mut all = Vec::new();
    let mut per_consumer = Vec::new();
    while let Some(mine) = consumers.join_next().await {
        let mine = mine.unwrap();
        per_consumer.push(mine.len());
        all.extend(mine);
    }
    assert_eq!(all.len(), MESSAGES, "no message twice ({per_consumer:?})");
    all.sort();
    sent.sort();
    assert_eq!(all, sent, "every message once");
    assert!(
        queues
            .peek(acct, "work", 32, t0 + DAY_MS)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn batches_are_sent_and_deleted_at_once(store: &Store) {
    let queues = store.queues();
    let acct = "acct-batch";
    let t0 = 8_000_000;
    assert!(is_queue_not_found(
        &queues
            .put_many(acct, "q", &["a"], 0, None, t0)
            .await
            .unwrap_err()
    ));
    queues.create_queue(acct, "q", &[]).await.unwrap();
    assert!(
        queues
            .put_many(acct, "q", &[], 0, None, t0)
            .await
            .unwrap()
            .is_empty()
    );
    let too_large = "a".repeat(64 * 1024 + 1);
    assert!(matches!(
        queues
            .put_many(acct, "q", &["fine", &too_large], 0, None, t0)
            .await
            .unwrap_err(),
        Error::MessageTooLarge { .. }
    ));
    assert!(
        queues.peek(acct, "q", 32, t0).await.unwrap().is_empty(),
        "all or nothing"
    );
    let texts: Vec<String> = (0..40).map(|i| format!("m{i} \"quoted\" ü")).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let sent = queues
        .put_many(acct, "q", &texts, 1_000, Some(60_000), t0)
        .await
        .unwrap();
    assert_eq!(sent.len(), 40);
    assert_eq!(sent[3].text, texts[3]);
    assert_eq!(
        (sent[3].next_visible_ms, sent[3].expiration_ms),
        (t0 + 1_000, t0 + 60_000)
    );
    assert!(queues.peek(acct, "q", 32, t0).await.unwrap().is_empty());
    let got = queues.get(acct, "q", 32, 30_000, t0 + 1_000).await.unwrap();
    assert_eq!(
        got.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        texts[..32],
        "in the order given"
    );
    let mut acks: Vec<(&str, &str)> = got
        .iter()
        .map(|m| (m.id.as_str(), m.pop_receipt.as_str()))
        .collect();
    acks[1].1 = &sent[1].pop_receipt; // stale
    acks.push(("no-such-id", "x"));
    let deleted = queues.delete_many(acct, "q", &acks).await.unwrap();
    assert_eq!(deleted.len(), 33);
    assert!(!deleted[1] && !deleted[32]);
    assert_eq!(deleted.iter().filter(|d| **d).count(), 31);
    assert_eq!(
        queues
            .get_metadata(acct, "q", t0 + 1_000)
            .await
            .unwrap()
            .unwrap()
            .approximate_message_count,
        9
    );
    assert_eq!(
        queues.delete_many(acct, "q", &acks).await.unwrap(),
        vec![false; 33]
    );
    assert!(is_queue_not_found(
        &queues
            .delete_many(acct, "missing", &acks)
            .await
            .unwrap_err()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("store.db").display());
    let k = key();
    let store = Store::open(&url, k.clone()).await.unwrap();
    suite(&store).await;
    store.close().await;
    // Reopening runs no migration twice and reads what was written.
    let store = Store::open(&url, k).await.unwrap();
    assert_eq!(
        store.keys().load("app3").await.unwrap().master.as_deref(),
        Some("x")
    );
    // The values are encrypted: another key cannot read them.
    store.close().await;
    let other = Store::open(&url, key()).await.unwrap();
    assert!(other.keys().load("app3").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    let db = TestDatabase::create("suite").await;
    let k = key();
    let store = Store::open(&db.url, k.clone())
        .await
        .expect("PostgreSQL must be running for the store suite");
    suite(&store).await;
    // A second process opening the same database concurrently must not break migrations.
    let (a, b) = tokio::join!(Store::open(&db.url, k.clone()), Store::open(&db.url, k));
    a.unwrap().close().await;
    b.unwrap().close().await;
    store.close().await;
    db.drop().await;
}

/// A PostgreSQL database of its own for one test, dropped by `drop`.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create(tag: &str) -> TestDatabase {
        let admin_url = std::env::var("STRATUS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
        let name = format!("stratus_test_{}_{tag}", std::process::id());
        {
            let admin = sqlx_admin(&admin_url).await;
            admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            admin(&format!("CREATE DATABASE {name}")).await;
        }
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin_url);
        let url = format!("{base}/{name}");
        TestDatabase {
            admin_url,
            name,
            url,
        }
    }

    async fn drop(self) {
        let admin = sqlx_admin(&self.admin_url).await;
        admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await;
    }
}

/// Runs administrative statements (CREATE/DROP DATABASE) on the admin database.
async fn sqlx_admin(
    url: &str,
) -> impl Fn(&str) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
    use sqlx::Connection as _;
    let url = url.to_string();
    move |sql: &str| {
        let url = url.clone();
        let sql = sql.to_string();
        Box::pin(async move {
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .expect("PostgreSQL must be running for the store suite");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.as_str()))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let _ = conn.close().await;
        })
    }
}

/// Ad-hoc measurement, not a test: `cargo test -p stratus-store --release --test conformance
/// -- --ignored --nocapture --test-threads 1 throughput`. Prints messages per second for each
/// way of sending and acknowledging.
async fn queue_throughput(store: &Store) {
    use std::time::Instant;

    const MESSAGES: usize = 10_000;
    let queues = store.queues();
    let now = 1_000_000;
    let text = "x".repeat(200);
    let mut report = Vec::new();
    for (label, queue, produce, consume) in [
        ("put", "put", Some(Sending::One), None),
        ("get 32 + delete each", "put", None, Some(Ack::Each)),
        (
            "put + get 32 + delete each",
            "e2e",
            Some(Sending::One),
            Some(Ack::Each),
        ),
        (
            "put + get 32 + delete_many",
            "e2e-acks",
            Some(Sending::One),
            Some(Ack::Batch),
        ),
        (
            "put_many 32 + get 32 + delete_many",
            "e2e-batches",
            Some(Sending::Batch),
            Some(Ack::Batch),
        ),
    ] {
        queues.create_queue("acct-bench", queue, &[]).await.unwrap();
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(how) = produce {
            tasks.spawn(produce_messages(
                queues.clone(),
                queue,
                text.clone(),
                MESSAGES,
                how,
                now,
            ));
        }
        if let Some(how) = consume {
            tasks.spawn(consume_messages(queues.clone(), queue, MESSAGES, how, now));
        }
        tasks.join_all().await;
        let rate = MESSAGES as f64 / start.elapsed().as_secs_f64();
        report.push(format!("{label}: {rate:.0}/s"));
    }
    println!(
        "{} ({MESSAGES} messages of {} bytes; 8 producers, 4 consumers): {}",
        store.engine(),
        text.len(),
        report.join("; ")
    );
}

#[derive(Clone, Copy)]
enum Sending {
    One,
    Batch,
}

#[derive(Clone, Copy)]
enum Ack {
    /// Each message of a batch deleted on its own, all at once (as the batch's invocations
    /// complete).
    Each,
    /// The batch acknowledged with one `delete_many`.
    Batch,
}

/// Sends `total` messages from 8 producers.
async fn produce_messages(
    queues: SqlQueues,
    queue: &'static str,
    text: String,
    total: usize,
    how: Sending,
    now: i64,
) {
    const PRODUCERS: usize = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..PRODUCERS {
        let queues = queues.clone();
        let text = text.clone();
        tasks.spawn(async move {
            let mine = total / PRODUCERS + usize::from(p < total % PRODUCERS);
            let mut sent = 0;
            while sent < mine {
                match how {
                    Sending::One => {
                        queues
                            .put("acct-bench", queue, &text, 0, None, now)
                            .await
                            .unwrap();
                        sent += 1;
                    }
                    Sending::Batch => {
                        let batch = vec![text.as_str(); (mine - sent).min(32)];
                        queues
                            .put_many("acct-bench", queue, &batch, 0, None, now)
                            .await
                            .unwrap();
                        sent += batch.len();
                    }
                }
            }
        });
    }
    tasks.join_all().await;
}

/// Receives and deletes `total` messages with 4 consumers.
async fn consume_messages(
    queues: SqlQueues,
    queue: &'static str,
    total: usize,
    how: Ack,
    now: i64,
) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const CONSUMERS: usize = 4;
    let received = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONSUMERS {
        let queues = queues.clone();
        let received = received.clone();
        tasks.spawn(async move {
            while received.load(Ordering::SeqCst) < total {
                let got = queues
                    .get("acct-bench", queue, 32, 600_000, now)
                    .await
                    .unwrap();
                if got.is_empty() {
                    // The trigger backs off after an empty poll (100 ms at first); a
                    // shorter pause keeps the measurement from idling.
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                    continue;
                }
                received.fetch_add(got.len(), Ordering::SeqCst);
                match how {
                    Ack::Each => {
                        let mut deletes = tokio::task::JoinSet::new();
                        for m in got {
                            let queues = queues.clone();
                            deletes.spawn(async move {
                                queues
                                    .delete("acct-bench", queue, &m.id, &m.pop_receipt)
                                    .await
                                    .unwrap()
                            });
                        }
                        deletes.join_all().await;
                    }
                    Ack::Batch => {
                        let acks: Vec<_> = got
                            .iter()
                            .map(|m| (m.id.as_str(), m.pop_receipt.as_str()))
                            .collect();
                        queues
                            .delete_many("acct-bench", queue, &acks)
                            .await
                            .unwrap();
                    }
                }
            }
        });
    }
    tasks.join_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn queue_throughput_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("store.db").display());
    let store = Store::open(&url, key()).await.unwrap();
    queue_throughput(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement; run with --ignored --nocapture"]
async fn queue_throughput_postgres() {
    let db = TestDatabase::create("throughput").await;
    let store = Store::open(&db.url, key()).await.unwrap();
    queue_throughput(&store).await;
    store.close().await;
    db.drop().await;
}

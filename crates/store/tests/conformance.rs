//! One suite of store behaviour, run against SQLite and against PostgreSQL.
//!
//! PostgreSQL is reached at `STRATUS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each run creates and drops its own database.

use stratus_store::{EncryptionKey, KeyScope, Store, Upsert};

fn key() -> EncryptionKey {
    EncryptionKey::from_base64(&EncryptionKey::generate().unwrap()).unwrap()
}

async fn suite(store: &Store) {
    keys_round_trip(store).await;
    versions_change_on_writes(store).await;
    apps_are_separate(store).await;
    leases_are_exclusive_until_they_expire(store).await;
    timer_status_round_trips(store).await;
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

#[tokio::test]
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

#[tokio::test]
async fn postgres() {
    let admin_url = std::env::var("STRATUS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let db = format!("stratus_test_{}", std::process::id());
    let admin = sqlx_admin(&admin_url).await;
    admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    admin(&format!("CREATE DATABASE {db}")).await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(&admin_url);
    let url = format!("{base}/{db}");
    let k = key();
    let store = Store::open(&url, k.clone())
        .await
        .expect("PostgreSQL must be running for the store suite");
    suite(&store).await;
    // A second process opening the same database concurrently must not break migrations.
    let (a, b) = tokio::join!(Store::open(&url, k.clone()), Store::open(&url, k));
    a.unwrap().close().await;
    b.unwrap().close().await;
    store.close().await;
    admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
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

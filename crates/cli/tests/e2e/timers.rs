//! Timers across processes: two `stratus start` of one app on one PostgreSQL database fire
//! each occurrence once between them, and the survivor takes over when the holder dies.

use std::time::{Duration, Instant};

use crate::support::{Database, Options, Stratus, eventually, signal, test_app};

fn ticks(s: &Stratus) -> usize {
    s.logs().matches("timer tick IsPastDue=False").count()
}

#[test]
fn two_processes_fire_each_occurrence_once_and_the_survivor_takes_over() {
    let db = Database::create("timers");
    let opts = || {
        Options::default()
            .env("STRATUS_DATABASE_URL", &db.url())
            .env("STRATUS_TIMER_LEASE_SECONDS", "3")
    };
    let app = test_app("timer-cluster");
    let mut a = Stratus::start(&app, opts());
    let mut b = Stratus::start(&app, opts());
    // Every two seconds, for about eight seconds: four or so firings in all, from one holder.
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    let (ta, tb) = (ticks(&a), ticks(&b));
    let window = started.elapsed().as_secs_f64();
    let expected = (window / 2.0).floor() as usize;
    assert!(
        (expected.saturating_sub(1)..=expected + 1).contains(&(ta + tb)),
        "{ta} + {tb} firings in {window:.1} s\n{}\n{}",
        a.logs(),
        b.logs()
    );
    assert!(ta == 0 || tb == 0, "both processes fired: {ta} and {tb}");

    // The holder dies without a word; the other takes its lease over once it expires.
    let (holder, survivor) = if ta > 0 { (&mut a, &b) } else { (&mut b, &a) };
    signal(holder.child.id(), "KILL");
    let _ = holder.child.wait();
    let before = ticks(survivor);
    let killed = Instant::now();
    eventually(Duration::from_secs(15), || {
        (ticks(survivor) >= before + 2).then_some(())
    });
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "taken over within the lease (3 s) and a retry"
    );
}

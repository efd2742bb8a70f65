//! The timer trigger, as the Azure host runs it: one listener per timer function, held by a
//! single process through a lease; schedule status (`useMonitor`) for past-due detection;
//! `runOnStartup`; the `TimerInfo` value the function receives.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};
use stratus_model::schedule::Schedule;
use stratus_store::TimerStatus;

use super::state::{LeaseStore, TimerStatusStore};
use crate::app::{App, Function};
use crate::clock::Clock;

/// How long a listener lease lasts by default (the host's singleton lease); it is renewed
/// at a quarter of that.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// A timer function, ready to run.
#[derive(Debug, Clone)]
pub struct TimerFunction {
    pub function: Arc<Function>,
    pub schedule: Schedule,
    pub run_on_startup: bool,
    pub use_monitor: bool,
}

/// What every timer listener of an app shares.
#[derive(Debug, Clone)]
pub struct TimerContext {
    pub host_id: String,
    pub tz: Tz,
    pub invoker: super::Invoker,
    pub status: Arc<dyn TimerStatusStore>,
    pub leases: Arc<dyn LeaseStore>,
    pub clock: Arc<dyn Clock>,
    /// This process, as a lease holder.
    pub instance: String,
    /// How long a listener lease lasts without renewal.
    pub lease_ttl: Duration,
    /// How often a process that does not hold a listener's lease tries again.
    pub lease_retry: Duration,
}

/// The time zone of the app's schedules: `WEBSITE_TIME_ZONE`, else `TZ` (IANA names), else UTC.
pub fn time_zone(app: &App) -> Result<Tz, String> {
    for name in ["WEBSITE_TIME_ZONE", "TZ"] {
        if let Some(v) = app
            .settings
            .get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return v.parse::<Tz>().map_err(|_| {
                format!(
                    "{name}: expected an IANA time zone such as \"Europe/Berlin\", found \"{v}\" \
                     (Windows zone names are not supported)"
                )
            });
        }
    }
    Ok(Tz::UTC)
}

/// The timer functions of `app`, with their schedules resolved (`%Setting%`) and parsed; a
/// function whose schedule is invalid is returned with its error.
pub fn timer_functions(app: &App) -> (Vec<TimerFunction>, Vec<(String, String)>) {
    let mut timers = Vec::new();
    let mut errors = Vec::new();
    for f in &app.functions {
        if f.config.timer().is_none() {
            continue;
        }
        match timer_function(app, f) {
            Ok(t) => timers.push(t),
            Err(e) => errors.push((f.name.clone(), e)),
        }
    }
    (timers, errors)
}

fn timer_function(app: &App, f: &Arc<Function>) -> Result<TimerFunction, String> {
    let trigger = f
        .config
        .timer()
        .ok_or_else(|| format!("{} has no timer trigger", f.name))?;
    let file = format!("{}/function.json", f.name);
    let resolved = trigger
        .resolve(&file, &f.config.trigger_path(), |n| {
            app.settings.get(n).map(str::to_string)
        })
        .map_err(|e| e.to_string())?;
    Ok(TimerFunction {
        function: f.clone(),
        schedule: resolved.schedule,
        run_on_startup: resolved.run_on_startup,
        use_monitor: resolved.use_monitor,
    })
}

/// A time as the host serialises the `DateTime`s of `TimerInfo`: local time with its offset,
/// the fraction without trailing zeros.
pub fn timer_time(t: DateTime<Utc>, tz: Tz) -> String {
    use chrono::Timelike as _;
    let local = t.with_timezone(&tz);
    let mut s = local.format("%Y-%m-%dT%H:%M:%S").to_string();
    // .NET ticks: seven digits of fraction, trailing zeros dropped.
    let fraction = format!("{:07}", local.nanosecond() % 1_000_000_000 / 100);
    let fraction = fraction.trim_end_matches('0');
    if !fraction.is_empty() {
        s.push('.');
        s.push_str(fraction);
    }
    s.push_str(&local.format("%:z").to_string());
    s
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The `TimerInfo` a function receives.
pub fn timer_info(
    schedule: &Schedule,
    status: Option<TimerStatus>,
    past_due: bool,
    tz: Tz,
) -> Value {
    let status = status.map(|s| {
        json!({
            "Last": timer_time(s.last_ms.map_or(DateTime::<Utc>::MIN_UTC, from_ms), tz),
            "Next": timer_time(from_ms(s.next_ms), tz),
            "LastUpdated": timer_time(from_ms(s.last_updated_ms), tz),
        })
    });
    json!({
        "Schedule": { "AdjustForDST": schedule.adjust_for_dst() },
        "ScheduleStatus": status.unwrap_or(Value::Null),
        "IsPastDue": past_due,
    })
}

/// The name the host gives a timer in its status records and locks.
pub fn timer_name(function: &Function) -> String {
    format!("Host.Functions.{}", function.name)
}

/// One timer function's listener.
#[derive(Debug)]
pub struct Listener {
    pub timer: TimerFunction,
    pub ctx: TimerContext,
}

impl Listener {
    fn next_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.timer
            .schedule
            .next_after(t, self.ctx.tz)
            // A schedule with no further occurrence: far enough never to fire.
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn lock_name(&self) -> String {
        format!(
            "locks/{}/{}.Listener",
            self.ctx.host_id,
            timer_name(&self.timer.function)
        )
    }

    /// Runs until `stop` completes: waits for the listener lease, then fires on schedule.
    pub async fn run(self, stop: tokio::sync::watch::Receiver<bool>) {
        let lock = self.lock_name();
        let mut stop = stop;
        loop {
            if *stop.borrow() {
                return;
            }
            let now = self.ctx.clock.now();
            let held = self
                .ctx
                .leases
                .acquire(&lock, &self.ctx.instance, ms(now), i64::try_from(self.ctx.lease_ttl.as_millis()).unwrap_or(i64::MAX))
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(function = %self.timer.function.name, "cannot take the timer's lease: {e}");
                    false
                });
            if held {
                tracing::debug!(function = %self.timer.function.name, "timer listener lease acquired");
                let lost = self.serve(&lock, &mut stop).await;
                if !lost {
                    let _ = self.ctx.leases.release(&lock, &self.ctx.instance).await;
                    return;
                }
                continue;
            }
            let retry = now + chrono::Duration::from_std(self.ctx.lease_retry).unwrap_or_default();
            tokio::select! {
                () = self.ctx.clock.sleep_until(retry) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Fires on schedule while the lease holds; true when the lease was lost, false on stop.
    async fn serve(&self, lock: &str, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
        let name = timer_name(&self.timer.function);
        let renew_every = chrono::Duration::from_std(self.ctx.lease_ttl / 4).unwrap_or_default();
        let mut renew_at = self.ctx.clock.now() + renew_every;

        let mut status = if self.timer.use_monitor {
            self.check_past_due(&name).await
        } else {
            Startup {
                status: None,
                past_due: false,
            }
        };
        if status.past_due {
            status.status = self.fire(&name, status.status, true, false).await;
        } else if self.timer.run_on_startup {
            status.status = self.fire(&name, status.status, false, false).await;
        }
        let mut current = status.status;
        loop {
            let now = self.ctx.clock.now();
            let due = match current {
                Some(s) => from_ms(s.next_ms),
                None => self.next_after(now),
            };
            let wake = due.min(renew_at);
            tokio::select! {
                () = self.ctx.clock.sleep_until(wake) => {}
                _ = stop.changed() => return false,
            }
            let now = self.ctx.clock.now();
            if now >= renew_at {
                let renewed = self
                    .ctx
                    .leases
                    .acquire(
                        lock,
                        &self.ctx.instance,
                        ms(now),
                        i64::try_from(self.ctx.lease_ttl.as_millis()).unwrap_or(i64::MAX),
                    )
                    .await
                    .unwrap_or(false);
                if !renewed {
                    tracing::warn!(function = %self.timer.function.name, "the timer's lease was lost; another process runs it");
                    return true;
                }
                renew_at = now + renew_every;
            }
            if now >= due {
                let before = current.or(Some(TimerStatus {
                    last_ms: None,
                    next_ms: ms(due),
                    last_updated_ms: ms(now),
                }));
                current = self.fire(&name, before, false, true).await;
            }
        }
    }

    /// The host's start-up check: record a status when there is none; fix it when the
    /// schedule changed; past due when the recorded next occurrence has gone by.
    async fn check_past_due(&self, name: &str) -> Startup {
        let now = self.ctx.clock.now();
        let stored = match self.ctx.status.get(&self.ctx.host_id, name).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(function = %self.timer.function.name, "cannot read the timer's status: {e}");
                None
            }
        };
        let Some(mut status) = stored else {
            let fresh = TimerStatus {
                last_ms: None,
                next_ms: ms(self.next_after(now)),
                last_updated_ms: ms(now),
            };
            self.save(name, fresh).await;
            return Startup {
                status: Some(fresh),
                past_due: false,
            };
        };
        let from = from_ms(status.last_ms.unwrap_or(status.last_updated_ms));
        let expected = self.next_after(from);
        if ms(expected) != status.next_ms {
            // The schedule changed since the status was written.
            status.next_ms = if expected < now {
                ms(self.next_after(now))
            } else {
                ms(expected)
            };
            status.last_updated_ms = ms(now);
            self.save(name, status).await;
            return Startup {
                status: Some(status),
                past_due: false,
            };
        }
        Startup {
            status: Some(status),
            past_due: ms(now) > status.next_ms,
        }
    }

    async fn save(&self, name: &str, status: TimerStatus) {
        if let Err(e) = self.ctx.status.put(&self.ctx.host_id, name, status).await {
            tracing::warn!(function = %self.timer.function.name, "cannot record the timer's status: {e}");
        }
    }

    /// Runs the function once and records the new status.
    async fn fire(
        &self,
        name: &str,
        status: Option<TimerStatus>,
        past_due: bool,
        on_schedule: bool,
    ) -> Option<TimerStatus> {
        let now = self.ctx.clock.now();
        let monitor = self.timer.use_monitor;
        let info = timer_info(
            &self.timer.schedule,
            if monitor { status } else { None },
            past_due,
            self.ctx.tz,
        );
        let mut metadata = Map::new();
        metadata.insert(
            "TimerTrigger".into(),
            Value::String(
                now.with_timezone(&self.ctx.tz)
                    .format("%m/%d/%Y %H:%M:%S")
                    .to_string(),
            ),
        );
        let reason = format!("Timer fired at {}", timer_time(now, self.ctx.tz));
        let function = self.timer.function.clone();
        if function.disabled {
            tracing::debug!(function = %function.name, "a disabled timer function is not run");
        } else if let Err(e) = self
            .ctx
            .invoker
            .invoke(function, info, metadata, &reason)
            .await
        {
            // Failures are logged (by the pipeline), not retried, as in the host.
            tracing::debug!(function = %self.timer.function.name, "the timer invocation failed: {e}");
        }
        // A scheduled run that fired early (clock skew) counts as the scheduled time; past-due
        // and start-up runs count as now.
        let last = match status {
            Some(s) if on_schedule && from_ms(s.next_ms) > now => from_ms(s.next_ms),
            _ => now,
        };
        let next = TimerStatus {
            last_ms: Some(ms(last)),
            next_ms: ms(self.next_after(last)),
            last_updated_ms: ms(last),
        };
        if monitor {
            self.save(name, next).await;
        }
        Some(next)
    }
}

struct Startup {
    status: Option<TimerStatus>,
    past_due: bool,
}

/// Starts a listener per timer function; they stop when `stop` turns true.
pub fn start(
    timers: Vec<TimerFunction>,
    ctx: &TimerContext,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    timers
        .into_iter()
        .map(|timer| {
            let listener = Listener {
                timer,
                ctx: ctx.clone(),
            };
            tokio::spawn(listener.run(stop.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone as _;
    use parking_lot::Mutex;

    use super::*;
    use crate::clock::ManualClock;
    use crate::executor::{TriggerCall, TriggerOutcome};
    use crate::triggers::state::MemoryState;

    /// Records the values timer invocations receive.
    type Calls = Arc<Mutex<Vec<(String, Value)>>>;

    fn recorder(calls: Calls) -> Arc<dyn crate::executor::Executor> {
        Arc::new(crate::test_support::FnExecutor(move |call: TriggerCall| {
            calls.lock().push((call.function.name.clone(), call.value));
            Ok(TriggerOutcome::default())
        }))
    }

    fn function(name: &str) -> Arc<Function> {
        Arc::new(crate::test_support::function(
            name,
            serde_json::json!([{"type":"timerTrigger","name":"myTimer","direction":"in","schedule":"0 0 2 * * *"}]),
        ))
    }

    struct Rig {
        clock: ManualClock,
        state: Arc<MemoryState>,
        calls: Calls,
    }

    impl Rig {
        fn new(start: DateTime<Utc>) -> Rig {
            Rig {
                clock: ManualClock::new(start),
                state: Arc::new(MemoryState::default()),
                calls: Calls::default(),
            }
        }

        fn listener(&self, schedule: &str, run_on_startup: bool, instance: &str) -> Listener {
            let ctx = TimerContext {
                host_id: "host1".into(),
                tz: Tz::UTC,
                invoker: super::super::Invoker {
                    executor: recorder(self.calls.clone()),
                    timeout: None,
                    outputs: None,
                    clock: Arc::new(self.clock.clone()),
                },
                status: self.state.clone(),
                leases: self.state.clone(),
                clock: Arc::new(self.clock.clone()),
                instance: instance.into(),
                lease_ttl: LEASE_TTL,
                lease_retry: Duration::from_secs(15),
            };
            Listener {
                timer: TimerFunction {
                    function: function("nightly"),
                    schedule: Schedule::parse(schedule).unwrap(),
                    run_on_startup,
                    use_monitor: true,
                },
                ctx,
            }
        }

        fn calls(&self) -> Vec<Value> {
            self.calls.lock().iter().map(|(_, v)| v.clone()).collect()
        }

        /// Lets the listeners run until `n` calls were made (or fails).
        async fn wait_calls(&self, n: usize) {
            for _ in 0..500 {
                if self.calls.lock().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            panic!("expected {n} calls, got {:?}", self.calls());
        }

        /// Lets pending work run, then checks that nothing more fired.
        async fn settle(&self) {
            for _ in 0..20 {
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[tokio::test]
    async fn a_missed_occurrence_fires_once_as_past_due() {
        let rig = Rig::new(utc(2024, 1, 2, 5, 0, 0));
        rig.state
            .put(
                "host1",
                "Host.Functions.nightly",
                TimerStatus {
                    last_ms: Some(utc(2024, 1, 1, 2, 0, 0).timestamp_millis()),
                    next_ms: utc(2024, 1, 2, 2, 0, 0).timestamp_millis(),
                    last_updated_ms: utc(2024, 1, 1, 2, 0, 0).timestamp_millis(),
                },
            )
            .await
            .unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(rig.listener("0 0 2 * * *", false, "p1").run(stopped));
        rig.wait_calls(1).await;
        rig.settle().await;
        let calls = rig.calls();
        assert_eq!(calls.len(), 1, "one past-due run: {calls:?}");
        assert_eq!(calls[0]["IsPastDue"], true);
        assert_eq!(calls[0]["Schedule"]["AdjustForDST"], true);
        assert_eq!(
            calls[0]["ScheduleStatus"]["Next"],
            "2024-01-02T02:00:00+00:00"
        );
        let status = rig
            .state
            .get("host1", "Host.Functions.nightly")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            status.last_ms,
            Some(utc(2024, 1, 2, 5, 0, 0).timestamp_millis())
        );
        assert_eq!(status.next_ms, utc(2024, 1, 3, 2, 0, 0).timestamp_millis());

        // The next occurrence fires on time, not past due.
        rig.clock.set(utc(2024, 1, 3, 2, 0, 0));
        rig.wait_calls(2).await;
        assert_eq!(rig.calls()[1]["IsPastDue"], false);
        let _ = stop.send(true);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn run_on_startup_fires_once_then_the_schedule_follows() {
        let rig = Rig::new(utc(2024, 3, 1, 10, 0, 0));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(rig.listener("0 */5 * * * *", true, "p1").run(stopped));
        rig.wait_calls(1).await;
        rig.settle().await;
        assert_eq!(rig.calls().len(), 1);
        assert_eq!(rig.calls()[0]["IsPastDue"], false);
        rig.clock.set(utc(2024, 3, 1, 10, 5, 0));
        rig.wait_calls(2).await;
        rig.clock.set(utc(2024, 3, 1, 10, 7, 0));
        rig.settle().await;
        assert_eq!(rig.calls().len(), 2, "nothing between occurrences");
        let _ = stop.send(true);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn one_process_fires_each_occurrence_and_another_takes_over() {
        let rig = Rig::new(utc(2024, 3, 1, 10, 0, 0));
        let (stop_a, stopped_a) = tokio::sync::watch::channel(false);
        let (stop_b, stopped_b) = tokio::sync::watch::channel(false);
        let a = tokio::spawn(rig.listener("0 */5 * * * *", false, "a").run(stopped_a));
        rig.settle().await;
        let b = tokio::spawn(rig.listener("0 */5 * * * *", false, "b").run(stopped_b));
        rig.settle().await;
        for minute in [5, 10] {
            rig.clock.set(utc(2024, 3, 1, 10, minute, 0));
            rig.wait_calls(minute as usize / 5).await;
            rig.settle().await;
        }
        assert_eq!(rig.calls().len(), 2, "each occurrence once");
        // `a` stops without releasing (as if killed): its lease expires, `b` takes over.
        a.abort();
        rig.clock.set(utc(2024, 3, 1, 10, 11, 30));
        rig.settle().await;
        rig.clock.set(utc(2024, 3, 1, 10, 12, 0));
        rig.settle().await;
        rig.clock.set(utc(2024, 3, 1, 10, 15, 0));
        rig.wait_calls(3).await;
        rig.settle().await;
        assert_eq!(rig.calls().len(), 3);
        let _ = stop_a.send(true);
        let _ = stop_b.send(true);
        b.await.unwrap();
    }

    #[test]
    fn timer_times_are_local_with_their_offset() {
        let t = utc(2024, 7, 1, 12, 0, 0) + chrono::Duration::microseconds(3045);
        assert_eq!(timer_time(t, Tz::UTC), "2024-07-01T12:00:00.003045+00:00");
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            timer_time(utc(2024, 7, 1, 12, 0, 0), berlin),
            "2024-07-01T14:00:00+02:00"
        );
    }
}

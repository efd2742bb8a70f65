//! Timer schedules as the Azure Functions timer trigger reads them (NCRONTAB expressions and
//! constant `TimeSpan` intervals), their next occurrence in the app's time zone with the
//! extension's daylight-saving rules, and the `timerTrigger` binding's settings.
//!
//! The rules follow webjobs-sdk-extensions `Extensions/Timers/Scheduling` (`TimerSchedule`,
//! `CronSchedule`, `ConstantSchedule`) and NCrontab 3.3.3, the version the extension uses.

use std::fmt;
use std::time::Duration;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

use crate::error::{ModelError, Result};
use crate::function_json::Binding;
use crate::json::Nested;
use crate::settings::resolve_names;
use crate::timespan;

/// A timer trigger's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// An NCRONTAB expression; occurrences are wall-clock times of the app's time zone.
    Cron(Cron),
    /// A `TimeSpan`: a constant interval after the previous occurrence.
    Constant(Duration),
}

impl Schedule {
    /// Parses a schedule whose `%Setting%` names are already resolved, as the extension does:
    /// an NCRONTAB expression first (6 fields, or 5 without seconds), then a `TimeSpan`.
    ///
    /// A `TimeSpan` must be longer than zero (the extension would fire without pause).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = text.split(' ').filter(|f| !f.is_empty()).collect();
        let cron = Cron::parse(&fields);
        let cron_error = match cron {
            Ok(c) => return Ok(Schedule::Cron(c)),
            Err(e) => e,
        };
        match timespan::parse(text) {
            Ok(span) if span.negative || span.duration.is_zero() => Err(format!(
                "expected a TimeSpan longer than zero, found \"{}\"",
                text.trim()
            )),
            Ok(span) => Ok(Schedule::Constant(span.duration)),
            Err(span_error) => Err(match fields.len() {
                5 | 6 => cron_error,
                0 => "expected a schedule: an NCRONTAB expression such as \"0 */5 * * * *\" or a \
                      TimeSpan such as \"00:05:00\", found nothing"
                    .to_string(),
                1 => span_error,
                n => format!(
                    "expected an NCRONTAB expression of 6 fields ({{second}} {{minute}} {{hour}} \
                     {{day}} {{month}} {{day-of-week}}) or 5 (without seconds), or a TimeSpan such \
                     as \"00:05:00\"; found {n} fields"
                ),
            }),
        }
    }

    /// The next occurrence strictly after `after`.
    ///
    /// A cron schedule is evaluated on the wall clock of `tz`; across daylight-saving changes it
    /// behaves like the extension's `CronSchedule`: a time skipped when clocks go forward is read
    /// with the offset in force before the change (a 02:30 schedule fires at 03:30), and a time
    /// repeated when clocks go back fires once for point-in-time schedules while interval
    /// schedules keep their cadence through both passes. A `TimeSpan` schedule adds its interval.
    ///
    /// `None` when the schedule has no further occurrence (e.g. `0 0 0 30 2 *`) or the time is
    /// beyond what .NET can represent (year 9999).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(cron) => cron.next_after(after, tz),
            Schedule::Constant(interval) => {
                after.checked_add_signed(TimeDelta::from_std(*interval).ok()?)
            }
        }
    }

    /// `TimerInfo.Schedule.AdjustForDST`: true for cron schedules, false for `TimeSpan`s.
    pub fn adjust_for_dst(&self) -> bool {
        matches!(self, Schedule::Cron(_))
    }

    /// Whether the schedule fires more often than once a minute, the rule by which the
    /// extension turns `useMonitor` off: a `TimeSpan` under a minute, or a six-field cron
    /// expression whose minute-and-above fields all match every value and whose second field
    /// has more than one value.
    pub fn fires_more_than_once_a_minute(&self) -> bool {
        match self {
            Schedule::Cron(cron) => cron.fires_more_than_once_a_minute(),
            Schedule::Constant(interval) => *interval < Duration::from_secs(60),
        }
    }

    /// The interval of a `TimeSpan` schedule.
    pub fn interval(&self) -> Option<Duration> {
        match self {
            Schedule::Constant(d) => Some(*d),
            Schedule::Cron(_) => None,
        }
    }
}

/// As the extension's `TimerSchedule.ToString()`: `Cron: '<expanded expression>'` or
/// `Constant: <TimeSpan>`.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Cron(c) => write!(f, "Cron: '{c}'"),
            Schedule::Constant(d) => write!(f, "Constant: {}", format_timespan(*d)),
        }
    }
}

/// .NET's `TimeSpan.ToString()` ("c"): `[d.]hh:mm:ss[.fffffff]`.
fn format_timespan(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let mut out = String::new();
    if days > 0 {
        out.push_str(&format!("{days}."));
    }
    out.push_str(&format!(
        "{:02}:{:02}:{:02}",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60
    ));
    let ticks = d.subsec_nanos() / 100;
    if ticks > 0 {
        out.push_str(&format!(".{ticks:07}"));
    }
    out
}

/// One field of a cron expression: its name and range, and the names NCrontab accepts.
struct Kind {
    name: &'static str,
    min: u32,
    max: u32,
    /// Full names; any non-empty prefix of one is accepted, case-insensitively.
    names: &'static [&'static str],
}

const SECOND: Kind = Kind {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: Kind = Kind {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Kind = Kind {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: Kind = Kind {
    name: "day",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Kind = Kind {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
};
const DAY_OF_WEEK: Kind = Kind {
    name: "day-of-week",
    min: 0,
    max: 6,
    names: &[
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ],
};

const KINDS: [&Kind; 6] = [&SECOND, &MINUTE, &HOUR, &DAY, &MONTH, &DAY_OF_WEEK];

impl Kind {
    fn all(&self) -> u64 {
        (self.min..=self.max).fold(0, |bits, v| bits | 1 << v)
    }
}

/// A parsed NCRONTAB expression: the set of values of each field, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cron {
    /// Second, minute, hour, day, month, day of week; bit `v` set when value `v` matches.
    fields: [u64; 6],
    /// Six fields were written; otherwise the second is always 0.
    has_seconds: bool,
    /// `CronSchedule.IsInterval`, see [`Cron::is_interval`].
    interval: bool,
}

const S: usize = 0;
const MI: usize = 1;
const H: usize = 2;
const D: usize = 3;
const MO: usize = 4;
const DW: usize = 5;

/// Most occurrences a point-in-time schedule can have in a repeated hour (30 seconds by 30
/// minutes); bounds the search past it.
const AMBIGUOUS_STEPS: usize = 4_000;

impl Cron {
    fn parse(tokens: &[&str]) -> Result<Cron, String> {
        // As CronSchedule.HasSeconds: every count but 5 is read as six fields.
        let has_seconds = tokens.len() != 5;
        if tokens.len() != 5 && tokens.len() != 6 {
            return Err(format!(
                "expected 6 fields ({{second}} {{minute}} {{hour}} {{day}} {{month}} \
                 {{day-of-week}}) or 5 (without seconds), found {}",
                tokens.len()
            ));
        }
        let offset = if has_seconds { 0 } else { 1 };
        let mut fields = [1u64, 0, 0, 0, 0, 0];
        for (i, token) in tokens.iter().enumerate() {
            let kind = KINDS[i + offset];
            fields[i + offset] = parse_field(kind, token).map_err(|problem| {
                let hint = if token.contains(char::is_whitespace) {
                    " (only spaces separate fields)"
                } else {
                    ""
                };
                format!("field {} ({}): {problem}{hint}", i + 1, kind.name)
            })?;
        }
        let mut cron = Cron {
            fields,
            has_seconds,
            interval: false,
        };
        let parts = cron.parts();
        let n = if has_seconds { 3 } else { 2 };
        cron.interval = parts[..n]
            .iter()
            .any(|p| p.contains('*') || p.contains('/') || p.contains('-'));
        Ok(cron)
    }

    /// The expression as NCrontab writes it back (`CrontabSchedule.ToString()`): numbers only,
    /// runs of consecutive values as ranges, `*` for a field that matches every value.
    fn parts(&self) -> Vec<String> {
        let from = if self.has_seconds { 0 } else { 1 };
        (from..6)
            .map(|i| format_field(KINDS[i], self.fields[i]))
            .collect()
    }

    /// `CronSchedule.IsInterval`: a `*`, `-` or `/` in the written-back second, minute or hour
    /// field (minute or hour for five fields). Decides how the repeated hour is handled.
    pub fn is_interval(&self) -> bool {
        self.interval
    }

    /// `TimerSchedule.ShouldDisableScheduleMonitor`, without its clock: the extension counts
    /// the occurrences in the minute after "now"; this answers for any minute, which agrees
    /// except when "now" falls exactly on one of two occurrences a minute.
    fn fires_more_than_once_a_minute(&self) -> bool {
        self.has_seconds
            && (MI..=DW).all(|i| self.fields[i] == KINDS[i].all())
            && self.fields[S].count_ones() > 1
    }

    fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        if !(1..=9999).contains(&after.year()) {
            return None;
        }
        let now = after.with_timezone(&tz);
        let now_wall = now.naive_local();
        let now_offset = now.offset().fix().local_minus_utc();
        let next_wall = self.next_wall(now_wall)?;
        let next = dotnet_local(next_wall, tz)?;
        let next_offset = offset_at(next, tz);
        let now_ambiguous = is_ambiguous(now_wall, tz);
        let next_ambiguous = is_ambiguous(next.with_timezone(&tz).naive_local(), tz);
        let shift = TimeDelta::seconds(i64::from(next_offset - now_offset));
        // CronSchedule.TryAdjustAmbiguousTime.
        let adjusted = if !now_ambiguous && !next_ambiguous {
            None
        } else if !self.is_interval() && next_ambiguous && next_offset != now_offset {
            // A point-in-time occurrence in the repeated hour: its first pass.
            next.checked_add_signed(shift)
        } else if !self.is_interval() && next_ambiguous {
            // Already in the second pass: assume the first one fired, go past the hour.
            let mut wall = next.with_timezone(&tz).naive_local();
            let mut steps = 0;
            while is_ambiguous(wall, tz) && steps < AMBIGUOUS_STEPS {
                wall = self.next_wall(wall)?;
                steps += 1;
            }
            dotnet_local(wall, tz)
        } else if self.is_interval() && next_offset != now_offset {
            // An interval schedule crossing into or out of the repeated hour keeps its cadence.
            next.checked_add_signed(shift)
        } else {
            None
        };
        match adjusted.filter(|t| *t > after) {
            Some(t) => Some(t),
            None if next > after => Some(next),
            None => self.first_after(next_wall, after, tz),
        }
    }

    /// The first wall-clock occurrence after `wall` whose instant is after `after`; only for
    /// time zones whose transitions defeat the rules above.
    fn first_after(
        &self,
        mut wall: NaiveDateTime,
        after: DateTime<Utc>,
        tz: Tz,
    ) -> Option<DateTime<Utc>> {
        for _ in 0..AMBIGUOUS_STEPS {
            wall = self.next_wall(wall)?;
            if let Some(t) = dotnet_local(wall, tz).filter(|t| *t > after) {
                return Some(t);
            }
        }
        None
    }

    /// NCrontab's `GetNextOccurrence`: the first matching wall-clock time after `base` (whole
    /// seconds; the day of month and the day of week must both match). `None` past year 9999,
    /// or when nothing matches in a full 400-year cycle of the calendar.
    fn next_wall(&self, base: NaiveDateTime) -> Option<NaiveDateTime> {
        let f = &self.fields;
        let base_date = base.date();
        let base_time = (base.hour(), base.minute(), base.second());
        let first_year = base_date.year();
        let last_year = first_year.checked_add(400)?.min(9999);
        for year in first_year..=last_year {
            let first_month = if year == first_year {
                base_date.month()
            } else {
                1
            };
            for month in first_month..=12 {
                if !has(f[MO], month) {
                    continue;
                }
                let first_day = if year == first_year && month == base_date.month() {
                    base_date.day()
                } else {
                    1
                };
                let mut day = first_day;
                while let Some(d) = next_value(f[D], day) {
                    let Some(date) = NaiveDate::from_ymd_opt(year, month, d) else {
                        break;
                    };
                    day = d + 1;
                    if !has(f[DW], date.weekday().num_days_from_sunday()) {
                        continue;
                    }
                    let after = (date == base_date).then_some(base_time);
                    if let Some((h, m, s)) = self.first_time(after) {
                        return NaiveTime::from_hms_opt(h, m, s).map(|t| date.and_time(t));
                    }
                }
            }
        }
        None
    }

    /// The first matching time of a day, or the first after `after` on that day.
    fn first_time(&self, after: Option<(u32, u32, u32)>) -> Option<(u32, u32, u32)> {
        let f = &self.fields;
        let (fh, fm, fs) = (first(f[H]), first(f[MI]), first(f[S]));
        let Some((h, m, s)) = after else {
            return Some((fh, fm, fs));
        };
        if has(f[H], h) {
            if has(f[MI], m)
                && let Some(s2) = next_value(f[S], s + 1)
            {
                return Some((h, m, s2));
            }
            if let Some(m2) = next_value(f[MI], m + 1) {
                return Some((h, m2, fs));
            }
        }
        next_value(f[H], h + 1).map(|h2| (h2, fm, fs))
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts().join(" "))
    }
}

fn has(bits: u64, v: u32) -> bool {
    v < 64 && bits & (1 << v) != 0
}

fn first(bits: u64) -> u32 {
    bits.trailing_zeros()
}

/// The smallest value in `bits` that is at least `from`.
fn next_value(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = bits & (u64::MAX << from);
    (rest != 0).then(|| rest.trailing_zeros())
}

/// NCrontab's field syntax: a list of `*`, `n`, `a-b` (either way round), each with an optional
/// `/step`; `n/step` runs from `n` to the field's maximum. Month and day-of-week fields accept
/// names, or any prefix of one, in any case.
fn parse_field(kind: &Kind, text: &str) -> Result<u64, String> {
    if text.contains(',') {
        text.split(',')
            .try_fold(0, |bits, item| Ok(bits | parse_item(kind, item)?))
    } else {
        parse_item(kind, text)
    }
}

fn parse_item(kind: &Kind, item: &str) -> Result<u64, String> {
    if item.is_empty() {
        return Err("expected a value between the commas, found nothing".to_string());
    }
    let (base, step) = match item.find('/') {
        Some(0) => {
            return Err(format!(
                "expected a value, a range or '*' before '/', found \"{item}\""
            ));
        }
        Some(i) => {
            let step = dotnet_int(&item[i + 1..]).ok_or_else(|| {
                format!(
                    "expected a whole number after '/', found \"{}\"",
                    &item[i + 1..]
                )
            })?;
            (&item[..i], Some(step))
        }
        None => (item, None),
    };
    if base == "*" {
        return accumulate(kind, None, step.unwrap_or(1));
    }
    if let Some(dash) = base.find('-').filter(|&d| d > 0) {
        let first = parse_value(kind, &base[..dash])?;
        let last = parse_value(kind, &base[dash + 1..])?;
        return accumulate(kind, Some((first, last)), step.unwrap_or(1));
    }
    let value = parse_value(kind, base)?;
    match step {
        None => accumulate(kind, Some((value, value)), 1),
        Some(step) => accumulate(kind, Some((value, i64::from(kind.max))), step),
    }
}

/// `CrontabField.Accumulate`: every `step`th value of a range (`None`: the whole field).
/// A range written backwards is swapped; a step below 1 counts as 1.
fn accumulate(kind: &Kind, range: Option<(i64, i64)>, step: i64) -> Result<u64, String> {
    let (min, max) = (i64::from(kind.min), i64::from(kind.max));
    let out_of_range = |v: i64| {
        let hint = if kind.name == DAY_OF_WEEK.name && v == 7 {
            " (0 is Sunday; 7 is not accepted)"
        } else {
            ""
        };
        format!("{v} is out of range {min}-{max}{hint}")
    };
    let (start, end) = match range {
        None => (min, max),
        Some((a, b)) => {
            let (a, b) = if a > b { (b, a) } else { (a, b) };
            if a < min {
                return Err(out_of_range(a));
            }
            if b > max {
                return Err(out_of_range(b));
            }
            (a, b)
        }
    };
    let step = usize::try_from(step.max(1)).unwrap_or(usize::MAX);
    Ok((start..=end).step_by(step).fold(0, |bits, v| bits | 1 << v))
}

/// `CrontabFieldImpl.ParseValue`: a number when the text starts with a digit, else a name.
fn parse_value(kind: &Kind, text: &str) -> Result<i64, String> {
    if text.is_empty() {
        return Err("expected a value on each side of '-', found nothing".to_string());
    }
    if text.as_bytes()[0].is_ascii_digit() {
        return dotnet_int(text).ok_or_else(|| format!("\"{text}\" is not a whole number"));
    }
    if kind.names.is_empty() {
        return Err(format!(
            "\"{text}\" is not a number (expected {}-{})",
            kind.min, kind.max
        ));
    }
    kind.names
        .iter()
        .position(|name| {
            text.len() <= name.len()
                && name.as_bytes()[..text.len()].eq_ignore_ascii_case(text.as_bytes())
        })
        .map(|i| i as i64 + i64::from(kind.min))
        .ok_or_else(|| {
            let (a, b) = (kind.names[0], kind.names[kind.names.len() - 1]);
            format!(
                "\"{text}\" is not a number ({}-{}) or a {} name ({}..{})",
                kind.min,
                kind.max,
                kind.name,
                &a[..3].to_ascii_uppercase(),
                &b[..3].to_ascii_uppercase()
            )
        })
}

/// .NET's `int.Parse` with the invariant culture: surrounding white space, an optional sign,
/// digits, within the range of an `Int32`.
fn dotnet_int(text: &str) -> Option<i64> {
    let t = text.trim_matches(|c: char| c == ' ' || ('\t'..='\r').contains(&c));
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'+') => (false, &t[1..]),
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut value: i64 = 0;
    for b in digits.bytes() {
        value = value.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
        if value > 1 << 31 {
            return None;
        }
    }
    let value = if negative { -value } else { value };
    i32::try_from(value).ok().map(i64::from)
}

/// `CrontabFieldImpl.Format`: `*` for every value, else runs of consecutive values as `a-b`.
fn format_field(kind: &Kind, bits: u64) -> String {
    if bits == kind.all() {
        return "*".to_string();
    }
    let mut parts = Vec::new();
    let mut v = next_value(bits, 0);
    while let Some(start) = v {
        let mut end = start;
        while has(bits, end + 1) {
            end += 1;
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        v = next_value(bits, end + 1);
    }
    parts.join(",")
}

fn offset_at(t: DateTime<Utc>, tz: Tz) -> i32 {
    tz.offset_from_utc_datetime(&t.naive_utc())
        .fix()
        .local_minus_utc()
}

fn is_ambiguous(wall: NaiveDateTime, tz: Tz) -> bool {
    matches!(tz.from_local_datetime(&wall), LocalResult::Ambiguous(..))
}

/// The instant .NET gives a local `DateTime` built from its fields (`new DateTimeOffset(dt)`):
/// a repeated time is read as standard time (its later instant); a skipped time with the offset
/// in force before the change, which lands as far after the change as it was into the gap.
fn dotnet_local(wall: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.max(b).with_timezone(&Utc)),
        LocalResult::None => {
            // Real transitions are months apart: a day and a half before is the old offset.
            let before = wall.checked_sub_signed(TimeDelta::hours(36))?;
            let offset = tz.offset_from_utc_datetime(&before).fix().local_minus_utc();
            let instant = wall.checked_sub_signed(TimeDelta::seconds(i64::from(offset)))?;
            let t = Utc.from_utc_datetime(&instant);
            if t.with_timezone(&tz).naive_local() > wall {
                return Some(t);
            }
            // Otherwise the first valid time after the gap.
            let mut probe = wall;
            for _ in 0..(48 * 60) {
                probe = probe.checked_add_signed(TimeDelta::minutes(1))?;
                match tz.from_local_datetime(&probe) {
                    LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
                    LocalResult::Ambiguous(a, b) => return Some(a.min(b).with_timezone(&Utc)),
                    LocalResult::None => {}
                }
            }
            None
        }
    }
}

/// The timer trigger's settings as written in a `timerTrigger` binding, before the schedule's
/// `%Setting%` names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerTrigger {
    /// `schedule` as written.
    pub schedule: String,
    /// `runOnStartup` (default false).
    pub run_on_startup: bool,
    /// `useMonitor` as written (default true).
    pub use_monitor: bool,
}

/// A timer trigger ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTimer {
    pub schedule: Schedule,
    pub run_on_startup: bool,
    /// `useMonitor`, turned off when the schedule fires more often than once a minute.
    pub use_monitor: bool,
}

impl TimerTrigger {
    /// Reads a `timerTrigger` binding; `path` is the binding's JSON path (`$.bindings[0]`).
    pub fn parse(file: &str, path: &str, binding: &Binding) -> Result<TimerTrigger> {
        let nested = Nested {
            map: &binding.raw,
            file,
            path: path.to_string(),
        };
        let o = nested.view();
        let schedule = match o.str("schedule")? {
            Some(s) if !s.is_empty() => s.to_string(),
            found => {
                let key = o.get("schedule").map_or("schedule", |(k, _)| k);
                return Err(o.error(
                    key,
                    format!(
                        "expected a schedule: an NCRONTAB expression such as \"0 */5 * * * *\" or \
                         a TimeSpan such as \"00:05:00\", found {}",
                        if found.is_some() { "\"\"" } else { "nothing" }
                    ),
                ));
            }
        };
        Ok(TimerTrigger {
            schedule,
            run_on_startup: o.bool("runOnStartup")?.unwrap_or(false),
            use_monitor: o.bool("useMonitor")?.unwrap_or(true),
        })
    }

    /// Resolves the schedule's `%Setting%` names with `settings` and parses it; `file` and
    /// `path` (the binding's JSON path) name the schedule in errors.
    pub fn resolve(
        &self,
        file: &str,
        path: &str,
        settings: impl Fn(&str) -> Option<String>,
    ) -> Result<ResolvedTimer> {
        let at = format!("{path}.schedule");
        let text =
            resolve_names(&self.schedule, settings).map_err(|e| ModelError::new(file, &at, e))?;
        let schedule = Schedule::parse(&text).map_err(|e| {
            let source = if text == self.schedule {
                format!("\"{text}\"")
            } else {
                format!("\"{text}\" (from \"{}\")", self.schedule)
            };
            ModelError::new(file, &at, format!("{e}, in {source}"))
        })?;
        Ok(ResolvedTimer {
            use_monitor: self.use_monitor && !schedule.fires_more_than_once_a_minute(),
            schedule,
            run_on_startup: self.run_on_startup,
        })
    }
}

/// Reads a `timerTrigger` binding and resolves its schedule in one step.
pub fn timer_trigger(
    binding: &Binding,
    file: &str,
    path: &str,
    settings: impl Fn(&str) -> Option<String>,
) -> Result<ResolvedTimer> {
    TimerTrigger::parse(file, path, binding)?.resolve(file, path, settings)
}

#[cfg(test)]
mod tests;

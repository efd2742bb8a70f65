//! Tests of timer schedules: parsing, NCrontab's evaluation table, time zones and DST, the
//! once-a-minute rule and the `timerTrigger` settings.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::America::{Los_Angeles, New_York};
use chrono_tz::Europe::Berlin;
use chrono_tz::Tz;

use super::*;

fn parse(text: &str) -> Schedule {
    Schedule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn cron(text: &str) -> Cron {
    match parse(text) {
        Schedule::Cron(c) => c,
        other => panic!("{text}: not a cron schedule: {other:?}"),
    }
}

fn error(text: &str) -> String {
    match Schedule::parse(text) {
        Ok(s) => panic!("{text}: parsed as {s:?}"),
        Err(e) => e,
    }
}

/// An instant written with its offset, e.g. `2018-03-11T00:00:00-08:00`.
fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .with_timezone(&Utc)
}

fn show(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// The next `n` occurrences after `start`, each computed from the previous one, as local
/// times with their offsets.
fn occurrences(schedule: &str, start: &str, tz: Tz, n: usize) -> Vec<String> {
    let s = parse(schedule);
    let mut t = at(start);
    (0..n)
        .map(|_| {
            t = s.next_after(t, tz).expect("an occurrence");
            show(t, tz)
        })
        .collect()
}

/// Every occurrence in (`from`, `to`), checked to be increasing.
fn firings(schedule: &str, from: &str, to: &str, tz: Tz) -> Vec<DateTime<Utc>> {
    let s = parse(schedule);
    let (mut t, end) = (at(from), at(to));
    let mut out = Vec::new();
    while let Some(next) = s.next_after(t, tz) {
        assert!(next > t, "{schedule}: {next} after {t}");
        if next >= end {
            break;
        }
        out.push(next);
        t = next;
    }
    out
}

#[test]
fn fields_and_forms() {
    let c = cron("0 */5 * * * *");
    assert!(c.has_seconds);
    assert_eq!(c.to_string(), "0 0,5,10,15,20,25,30,35,40,45,50,55 * * * *");
    // Five fields: no seconds (always 0).
    let c = cron("*/5 * * * *");
    assert!(!c.has_seconds);
    assert_eq!(c.fields[S], 1);
    // Spaces anywhere.
    assert_eq!(
        cron("  */5    * *      * * *").to_string(),
        "0,5,10,15,20,25,30,35,40,45,50,55 * * * * *"
    );
    // a/n runs from a to the maximum; a-b/n; backwards ranges are swapped.
    assert_eq!(cron("0 5/15 * * * *").to_string(), "0 5,20,35,50 * * * *");
    assert_eq!(cron("0 10-40/15 * * * *").to_string(), "0 10,25,40 * * * *");
    assert_eq!(cron("0 0 17-9 * * *").to_string(), "0 0 9-17 * * *");
    assert_eq!(cron("0 0 0 * * FRI-MON").to_string(), "0 0 0 * * 1-5");
    // A step below 1 counts as 1; a step past the range keeps the start only.
    assert_eq!(cron("*/0 * * * * *").to_string(), "* * * * * *");
    assert_eq!(cron("*/-3 * * * * *").to_string(), "* * * * * *");
    assert_eq!(cron("0 */100 * * * *").to_string(), "0 0 * * * *");
    // Lists of anything.
    assert_eq!(
        cron("0 1,*/20,45-46 * * * *").to_string(),
        "0 0-1,20,40,45-46 * * * *"
    );
    // int.Parse tolerates white space around numbers (not around '*' or names).
    assert_eq!(cron("0 0 9 * * 1-5\t").to_string(), "0 0 9 * * 1-5");
    assert_eq!(cron("0 */+15 * * * *").to_string(), "0 0,15,30,45 * * * *");
    assert_eq!(cron("007 0 0 * * *").to_string(), "7 0 0 * * *");
}

#[test]
fn names() {
    // Any prefix of a name, in any case; the first name it begins wins.
    for (text, expected) in [
        ("0 0 0 * JAN *", "1"),
        ("0 0 0 * jan *", "1"),
        ("0 0 0 * January *", "1"),
        ("0 0 0 * J *", "1"),
        ("0 0 0 * Ju *", "6"),
        ("0 0 0 * Jul *", "7"),
        ("0 0 0 * DECEM *", "12"),
        ("0 0 0 * SEPT-October *", "9-10"),
    ] {
        assert_eq!(cron(text).parts()[4], expected, "{text}");
    }
    for (text, expected) in [
        ("0 0 0 * * SUN", "0"),
        ("0 0 0 * * sunday", "0"),
        ("0 0 0 * * T", "2"),
        ("0 0 0 * * Th", "4"),
        ("0 0 0 * * S", "0"),
        ("0 0 0 * * MON-FRI", "1-5"),
        ("0 0 0 * * mon,wed/2", "1,3,5"),
    ] {
        assert_eq!(cron(text).parts()[5], expected, "{text}");
    }
    assert!(error("0 0 0 * * Sundays").contains("is not a number (0-6) or a day-of-week name"));
    assert!(error("0 0 0 * * Sundays").contains("SUN..SAT"));
    assert!(error("0 0 JAN * * *").contains("field 3 (hour): \"JAN\" is not a number"));
}

#[test]
fn ncrontab_formatting() {
    // NCrontab's CrontabScheduleTests.Formatting.
    for (expected, text) in [
        ("* 1-3 * * *", "* 1-2,3 * * *"),
        ("* * * 1,3,5,7,9,11 *", "* * * */2 *"),
        ("10,25,40 * * * *", "10-40/15 * * * *"),
        ("* * * 1,3,8 1-2,5", "* * * Mar,Jan,Aug Fri,Mon-Tue"),
        ("1 * 1-3 * * *", "1 * 1-2,3 * * *"),
        ("22 * * * 1,3,5,7,9,11 *", "22 * * * */2 *"),
        ("33 10,25,40 * * * *", "33 10-40/15 * * * *"),
        ("55 * * * 1,3,8 1-2,5", "55 * * * Mar,Jan,Aug Fri,Mon-Tue"),
    ] {
        assert_eq!(cron(text).to_string(), expected, "{text}");
    }
    assert_eq!(
        parse("0 59 11 * * 1-5").to_string(),
        "Cron: '0 59 11 * * 1-5'"
    );
}

#[test]
fn bad_expressions() {
    for (text, expected) in [
        ("0 0 25 * * *", "field 3 (hour): 25 is out of range 0-23"),
        ("60 * * * * *", "field 1 (second): 60 is out of range 0-59"),
        ("0 0 0 0 * *", "field 4 (day): 0 is out of range 1-31"),
        ("0 0 0 32 * *", "field 4 (day): 32 is out of range 1-31"),
        ("0 0 0 * 13 *", "field 5 (month): 13 is out of range 1-12"),
        (
            "0 0 0 * * 7",
            "field 6 (day-of-week): 7 is out of range 0-6 (0 is Sunday; 7 is not accepted)",
        ),
        (
            "0 0 0 * * 0-7",
            "field 6 (day-of-week): 7 is out of range 0-6",
        ),
        (
            "0 0 0 1/2 * 9/1",
            "field 6 (day-of-week): 9 is out of range 0-6",
        ),
        ("0 0 0 0/5 * *", "field 4 (day): 0 is out of range 1-31"),
        (
            "* 1,2,3,456,7 * * * *",
            "field 2 (minute): 456 is out of range 0-59",
        ),
        ("61 * * * *", "field 1 (minute): 61 is out of range 0-59"),
        (
            "bad * * * * *",
            "field 1 (second): \"bad\" is not a number (expected 0-59)",
        ),
        ("* 1,Z,3 * * * *", "field 2 (minute): \"Z\" is not a number"),
        (
            "* 1/Z * * * *",
            "field 2 (minute): expected a whole number after '/', found \"Z\"",
        ),
        ("* 3-l2 * * * *", "field 2 (minute): \"l2\" is not a number"),
        (
            "* 1,,2 * * * *",
            "field 2 (minute): expected a value between the commas",
        ),
        (
            "* 1, * * * *",
            "field 2 (minute): expected a value between the commas",
        ),
        (
            "* ,1 * * * *",
            "field 2 (minute): expected a value between the commas",
        ),
        (
            "* 5- * * * *",
            "field 2 (minute): expected a value on each side of '-'",
        ),
        ("* -5 * * * *", "field 2 (minute): \"-5\" is not a number"),
        (
            "* /5 * * * *",
            "field 2 (minute): expected a value, a range or '*' before '/'",
        ),
        (
            "* 1/2/3 * * * *",
            "field 2 (minute): expected a whole number after '/', found \"2/3\"",
        ),
        (
            "* 1-2-3 * * * *",
            "field 2 (minute): \"2-3\" is not a whole number",
        ),
        (
            "* */ * * * *",
            "field 2 (minute): expected a whole number after '/', found \"\"",
        ),
        (
            "0 0 99999999999 * * *",
            "field 3 (hour): \"99999999999\" is not a whole number",
        ),
        (
            "* */99999999999 * * * *",
            "expected a whole number after '/'",
        ),
        ("* *-5 * * * *", "field 2 (minute): \"*\" is not a number"),
        (
            "0 */5 * * * *\n",
            "field 6 (day-of-week): \"*\n\" is not a number (0-6) or a day-of-week name (SUN..SAT) (only spaces separate fields)",
        ),
        ("0\t*/5 * * * *", "(only spaces separate fields)"),
        ("* * *", "found 3 fields"),
        ("* * * * * * *", "found 7 fields"),
        ("", "found nothing"),
        ("   ", "found nothing"),
        ("invalid", "expected a TimeSpan"),
        ("25:00:00", "expected a TimeSpan"),
        (
            "00:00:00",
            "expected a TimeSpan longer than zero, found \"00:00:00\"",
        ),
        ("-00:05:00", "expected a TimeSpan longer than zero"),
        ("-1", "expected a TimeSpan longer than zero"),
    ] {
        let e = error(text);
        assert!(e.contains(expected), "{text:?}: {e}");
    }
}

#[test]
fn timespans() {
    for (text, secs) in [
        ("00:05:00", 300.0),
        ("00:00:45", 45.0),
        ("12:00:00", 43_200.0),
        ("1.00:00", 86_400.0),
        ("1.00:00:00", 86_400.0),
        ("1", 86_400.0),
        (" 00:01:00 ", 60.0),
        ("00:00:00.5", 0.5),
    ] {
        let s = parse(text);
        assert_eq!(s.interval().map(|d| d.as_secs_f64()), Some(secs), "{text}");
        assert!(!s.adjust_for_dst());
    }
    assert_eq!(parse("00:05:00").to_string(), "Constant: 00:05:00");
    assert_eq!(parse("1.02:03:04").to_string(), "Constant: 1.02:03:04");
    assert_eq!(
        parse("00:00:00.5").to_string(),
        "Constant: 00:00:00.5000000"
    );
    // A constant interval from the previous occurrence, whatever the clocks do.
    let s = parse("01:00:00");
    let t = at("2024-03-10T01:30:00-05:00");
    let next = s.next_after(t, New_York).unwrap();
    assert_eq!(show(next, New_York), "2024-03-10T03:30:00-04:00");
    assert_eq!(
        occurrences("00:45:00", "2024-11-03T00:30:00-04:00", New_York, 4),
        [
            "2024-11-03T01:15:00-04:00",
            "2024-11-03T01:00:00-05:00",
            "2024-11-03T01:45:00-05:00",
            "2024-11-03T02:30:00-05:00",
        ]
    );
    assert_eq!(s.next_after(DateTime::<Utc>::MAX_UTC, Berlin), None);
}

#[test]
fn cron_first_then_timespan() {
    assert!(matches!(parse("0 0 * * * *"), Schedule::Cron(_)));
    assert!(parse("0 0 * * * *").adjust_for_dst());
    assert!(matches!(parse("00:05:00"), Schedule::Constant(_)));
}

fn wall(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%d/%m/%Y %H:%M:%S").unwrap()
}

#[test]
fn ncrontab_evaluations() {
    // NCrontab 3.3.3's CrontabScheduleTests.Evaluations (start, expression, next).
    let table = [
        ("01/01/2003 00:00:00", "* * * * *", "01/01/2003 00:01:00"),
        ("01/01/2003 00:01:00", "* * * * *", "01/01/2003 00:02:00"),
        ("01/01/2003 00:59:00", "* * * * *", "01/01/2003 01:00:00"),
        ("01/01/2003 23:59:00", "* * * * *", "02/01/2003 00:00:00"),
        ("31/12/2003 23:59:00", "* * * * *", "01/01/2004 00:00:00"),
        ("28/02/2003 23:59:00", "* * * * *", "01/03/2003 00:00:00"),
        ("28/02/2004 23:59:00", "* * * * *", "29/02/2004 00:00:00"),
        ("01/01/2003 00:00:00", "45 * * * * *", "01/01/2003 00:00:45"),
        (
            "01/01/2003 00:00:00",
            "45-47,48,49 * * * * *",
            "01/01/2003 00:00:45",
        ),
        (
            "01/01/2003 00:00:45",
            "45-47,48,49 * * * * *",
            "01/01/2003 00:00:46",
        ),
        (
            "01/01/2003 00:00:49",
            "45-47,48,49 * * * * *",
            "01/01/2003 00:01:45",
        ),
        (
            "01/01/2003 00:00:00",
            "2/5 * * * * *",
            "01/01/2003 00:00:02",
        ),
        (
            "01/01/2003 00:00:02",
            "2/5 * * * * *",
            "01/01/2003 00:00:07",
        ),
        (
            "01/01/2003 00:00:57",
            "2/5 * * * * *",
            "01/01/2003 00:01:02",
        ),
        (
            "24/02/2021 09:50:35",
            "* 0-1 10 * * *",
            "24/02/2021 10:00:00",
        ),
        ("01/01/2003 00:00:00", "45 * * * *", "01/01/2003 00:45:00"),
        (
            "01/01/2003 00:49:00",
            "45-47,48,49 * * * *",
            "01/01/2003 01:45:00",
        ),
        ("01/01/2003 00:57:00", "2/5 * * * *", "01/01/2003 01:02:00"),
        ("24/02/2021 09:50:35", "* * 10 * * *", "24/02/2021 10:00:00"),
        ("24/02/2021 09:50:35", "* 55 * * * *", "24/02/2021 09:55:00"),
        ("01/01/2003 00:00:30", "3 45 * * * *", "01/01/2003 00:45:03"),
        (
            "01/01/2003 00:49:30",
            "6 45-47,48,49 * * * *",
            "01/01/2003 01:45:06",
        ),
        (
            "01/01/2003 00:57:30",
            "9 2/5 * * * *",
            "01/01/2003 01:02:09",
        ),
        ("20/12/2003 10:00:00", " * 3/4 * * *", "20/12/2003 11:00:00"),
        ("20/12/2003 00:30:00", " * 3   * * *", "20/12/2003 03:00:00"),
        ("20/12/2003 01:45:00", "30 3   * * *", "20/12/2003 03:30:00"),
        ("07/01/2003 00:00:00", "30  *  1 * *", "01/02/2003 00:30:00"),
        ("01/02/2003 00:30:00", "30  *  1 * *", "01/02/2003 01:30:00"),
        (
            "01/01/2003 00:00:00",
            "10  * 22    * *",
            "22/01/2003 00:10:00",
        ),
        (
            "01/01/2003 00:01:00",
            " *  * 21    * *",
            "21/01/2003 00:00:00",
        ),
        (
            "10/07/2003 00:00:00",
            " *  * 30,31 * *",
            "30/07/2003 00:00:00",
        ),
        ("28/02/2002 23:59:59", "* * * 3 *", "01/03/2002 00:00:00"),
        ("29/02/2004 23:59:59", "* * * 3 *", "01/03/2004 00:00:00"),
        ("31/03/2002 23:59:59", "* * * 4 *", "01/04/2002 00:00:00"),
        ("30/04/2002 23:59:59", "* * * 5 *", "01/05/2002 00:00:00"),
        (
            "01/01/2000 00:00:00",
            "0 0 15,30,31 * *",
            "15/01/2000 00:00:00",
        ),
        (
            "31/01/2000 00:00:00",
            "0 0 15,30,31 * *",
            "15/02/2000 00:00:00",
        ),
        (
            "15/02/2000 00:00:00",
            "0 0 15,30,31 * *",
            "15/03/2000 00:00:00",
        ),
        (
            "31/03/2000 00:00:00",
            "0 0 15,30,31 * *",
            "15/04/2000 00:00:00",
        ),
        (
            "30/04/2000 00:00:00",
            "0 0 15,30,31 * *",
            "15/05/2000 00:00:00",
        ),
        (
            "30/12/2000 00:00:00",
            "0 0 15,30,31 * *",
            "31/12/2000 00:00:00",
        ),
        (
            "31/12/2000 00:00:00",
            "0 0 15,30,31 * *",
            "15/01/2001 00:00:00",
        ),
        ("01/12/2003 05:00:00", "10 * * 6 *", "01/06/2004 00:10:00"),
        ("04/01/2003 00:00:00", " 1 2 3 * *", "03/02/2003 02:01:00"),
        (
            "01/07/2002 05:00:00",
            "10 * * February,April-Jun *",
            "01/02/2003 00:10:00",
        ),
        ("01/01/2003 00:00:00", "0 12 1 6 *", "01/06/2003 12:00:00"),
        ("11/09/1988 14:23:00", "* 12 1 6 *", "01/06/1989 12:00:00"),
        ("11/03/1988 14:23:00", "* 12 1 6 *", "01/06/1988 12:00:00"),
        (
            "11/03/1988 14:23:00",
            "* 2,4-8,15 * 6 *",
            "01/06/1988 02:00:00",
        ),
        (
            "11/03/1988 14:23:00",
            "20 * * january,FeB,Mar,april,May,JuNE,July,Augu,SEPT-October,Nov,DECEM *",
            "11/03/1988 15:20:00",
        ),
        ("26/06/2003 10:00:00", "30 6 * * 0", "29/06/2003 06:30:00"),
        (
            "26/06/2003 10:00:00",
            "30 6 * * sunday",
            "29/06/2003 06:30:00",
        ),
        (
            "26/06/2003 10:00:00",
            "30 6 * * SUNDAY",
            "29/06/2003 06:30:00",
        ),
        ("19/06/2003 00:00:00", "1 12 * * 2", "24/06/2003 12:01:00"),
        ("24/06/2003 12:01:00", "1 12 * * 2", "01/07/2003 12:01:00"),
        (
            "01/06/2003 14:55:00",
            "15 18 * * Mon",
            "02/06/2003 18:15:00",
        ),
        (
            "30/06/2003 18:15:00",
            "15 18 * * Mon",
            "07/07/2003 18:15:00",
        ),
        ("01/01/2003 00:00:00", "* * * * Mon", "06/01/2003 00:00:00"),
        (
            "01/01/2003 12:00:00",
            "45 16 1 * Mon",
            "01/09/2003 16:45:00",
        ),
        (
            "01/09/2003 23:45:00",
            "45 16 1 * Mon",
            "01/12/2003 16:45:00",
        ),
        ("01/01/2000 12:00:00", "1 12 29 2 *", "29/02/2000 12:01:00"),
        ("29/02/2000 12:01:00", "1 12 29 2 *", "29/02/2004 12:01:00"),
        ("29/02/2004 12:01:00", "1 12 29 2 *", "29/02/2008 12:01:00"),
        ("01/01/2000 12:00:00", "1 12 28 2 *", "28/02/2000 12:01:00"),
        ("28/02/2000 12:01:00", "1 12 28 2 *", "28/02/2001 12:01:00"),
        ("29/02/2004 12:01:00", "1 12 28 2 *", "28/02/2005 12:01:00"),
        (
            "01/01/2000 12:00:00",
            "40 14/1 * * *",
            "01/01/2000 14:40:00",
        ),
        (
            "01/01/2000 14:40:00",
            "40 14/1 * * *",
            "01/01/2000 15:40:00",
        ),
        (
            "01/01/2003 00:00:00",
            "10 30 12 * * Mon",
            "06/01/2003 12:30:10",
        ),
        (
            "01/01/2000 00:00:00",
            "0 0 0 29 Feb Mon",
            "29/02/2016 00:00:00",
        ),
        (
            "01/01/9000 00:00:00",
            "0 0 29 Feb Mon",
            "29/02/9008 00:00:00",
        ),
    ];
    for (start, expr, expected) in table {
        let next = cron(expr).next_wall(wall(start));
        assert_eq!(next, Some(wall(expected)), "{expr} after {start}");
    }
    // Never: February 31st; and nothing past year 9999 (NCrontab's last Monday, Feb 29 is 9988).
    assert_eq!(
        cron("* * 31 Feb *").next_wall(wall("01/01/2001 00:00:00")),
        None
    );
    assert_eq!(
        cron("* * * 31 Feb *").next_wall(wall("01/01/2001 00:00:00")),
        None
    );
    assert_eq!(
        cron("0 0 29 Feb Mon").next_wall(wall("29/02/9988 00:00:00")),
        None
    );
}

#[test]
fn next_occurrences_in_utc() {
    let utc: Tz = Tz::UTC;
    // Strictly after, from the whole second.
    assert_eq!(
        occurrences("0 */5 * * * *", "2024-05-01T12:03:10Z", utc, 3),
        [
            "2024-05-01T12:05:00+00:00",
            "2024-05-01T12:10:00+00:00",
            "2024-05-01T12:15:00+00:00"
        ]
    );
    let s = parse("0 */5 * * * *");
    let next = s.next_after(at("2024-05-01T12:05:00Z"), utc).unwrap();
    assert_eq!(show(next, utc), "2024-05-01T12:10:00+00:00");
    let next = s.next_after(at("2024-05-01T12:04:59.999Z"), utc).unwrap();
    assert_eq!(show(next, utc), "2024-05-01T12:05:00+00:00");
    assert_eq!(
        occurrences("*/5 * * * *", "2024-05-01T12:03:10Z", utc, 2),
        ["2024-05-01T12:05:00+00:00", "2024-05-01T12:10:00+00:00"]
    );
    // Weekdays at 09:30, from a Friday morning.
    assert_eq!(
        occurrences("0 30 9 * * 1-5", "2024-05-31T10:00:00Z", utc, 3),
        [
            "2024-06-03T09:30:00+00:00",
            "2024-06-04T09:30:00+00:00",
            "2024-06-05T09:30:00+00:00"
        ]
    );
    // The 31st skips shorter months.
    assert_eq!(
        occurrences("0 0 0 31 * *", "2024-01-31T00:00:00Z", utc, 3),
        [
            "2024-03-31T00:00:00+00:00",
            "2024-05-31T00:00:00+00:00",
            "2024-07-31T00:00:00+00:00"
        ]
    );
    // February 29th only in leap years (2100 is not one).
    assert_eq!(
        occurrences("0 0 12 29 2 *", "2021-03-01T00:00:00Z", utc, 2),
        ["2024-02-29T12:00:00+00:00", "2028-02-29T12:00:00+00:00"]
    );
    assert_eq!(
        occurrences("0 0 12 29 2 *", "2096-03-01T00:00:00Z", utc, 1),
        ["2104-02-29T12:00:00+00:00"]
    );
    // Day of month AND day of week (NCrontab), not Vixie cron's OR: Friday the 13th.
    assert_eq!(
        occurrences("0 0 0 13 * FRI", "2024-01-01T00:00:00Z", utc, 2),
        ["2024-09-13T00:00:00+00:00", "2024-12-13T00:00:00+00:00"]
    );
    // Impossible dates never fire.
    assert_eq!(
        parse("0 0 0 30 2 *").next_after(at("2024-01-01T00:00:00Z"), utc),
        None
    );
    assert_eq!(
        parse("0 0 0 31 4,6,9,11 *").next_after(at("2024-01-01T00:00:00Z"), utc),
        None
    );
    // Out of .NET's range.
    assert_eq!(
        parse("* * * * * *").next_after(DateTime::<Utc>::MAX_UTC, utc),
        None
    );
    assert_eq!(
        parse("* * * * * *").next_after(DateTime::<Utc>::MIN_UTC, utc),
        None
    );
    assert_eq!(
        parse("0 0 0 1 1 *").next_after(at("9999-06-01T00:00:00Z"), utc),
        None
    );
}

#[test]
fn wall_clock_of_the_time_zone() {
    assert_eq!(
        occurrences("0 30 9 * * *", "2024-06-01T00:00:00Z", Berlin, 1),
        ["2024-06-01T09:30:00+02:00"]
    );
    assert_eq!(
        occurrences("0 30 9 * * *", "2024-01-10T12:00:00Z", New_York, 1),
        ["2024-01-10T09:30:00-05:00"]
    );
}

#[test]
fn azure_pacific_dst_cases() {
    // webjobs-sdk-extensions CronScheduleTests, with the local zone set to Pacific time.
    assert_eq!(
        occurrences("0 30 * * * *", "2018-03-11T00:00:00-08:00", Los_Angeles, 5),
        [
            "2018-03-11T00:30:00-08:00",
            "2018-03-11T01:30:00-08:00",
            "2018-03-11T03:30:00-07:00",
            "2018-03-11T04:30:00-07:00",
            "2018-03-11T05:30:00-07:00",
        ]
    );
    assert_eq!(
        occurrences("0 30 1 * * *", "2018-03-10T00:00:00-08:00", Los_Angeles, 5),
        [
            "2018-03-10T01:30:00-08:00",
            "2018-03-11T01:30:00-08:00",
            "2018-03-12T01:30:00-07:00",
            "2018-03-13T01:30:00-07:00",
            "2018-03-14T01:30:00-07:00",
        ]
    );
    assert_eq!(
        occurrences(
            "0 */20 * * * *",
            "2018-11-04T00:30:00-07:00",
            Los_Angeles,
            9
        ),
        [
            "2018-11-04T00:40:00-07:00",
            "2018-11-04T01:00:00-07:00",
            "2018-11-04T01:20:00-07:00",
            "2018-11-04T01:40:00-07:00",
            "2018-11-04T01:00:00-08:00",
            "2018-11-04T01:20:00-08:00",
            "2018-11-04T01:40:00-08:00",
            "2018-11-04T02:00:00-08:00",
            "2018-11-04T02:20:00-08:00",
        ]
    );
    assert_eq!(
        occurrences("0 30 * * * *", "2018-11-04T00:00:00-07:00", Los_Angeles, 5),
        [
            "2018-11-04T00:30:00-07:00",
            "2018-11-04T01:30:00-07:00",
            "2018-11-04T01:30:00-08:00",
            "2018-11-04T02:30:00-08:00",
            "2018-11-04T03:30:00-08:00",
        ]
    );
    assert_eq!(
        occurrences("0 30 1 * * *", "2018-11-03T00:00:00-07:00", Los_Angeles, 5),
        [
            "2018-11-03T01:30:00-07:00",
            "2018-11-04T01:30:00-07:00",
            "2018-11-05T01:30:00-08:00",
            "2018-11-06T01:30:00-08:00",
            "2018-11-07T01:30:00-08:00",
        ]
    );
}

#[test]
fn spring_forward() {
    // A daily 02:30 on the day 02:00-03:00 is skipped fires at 03:30 (read before the change).
    assert_eq!(
        occurrences("0 30 2 * * *", "2024-03-09T12:00:00-05:00", New_York, 3),
        [
            "2024-03-10T03:30:00-04:00",
            "2024-03-11T02:30:00-04:00",
            "2024-03-12T02:30:00-04:00",
        ]
    );
    assert_eq!(
        occurrences("0 30 2 * * *", "2024-03-30T12:00:00+01:00", Berlin, 3),
        [
            "2024-03-31T03:30:00+02:00",
            "2024-04-01T02:30:00+02:00",
            "2024-04-02T02:30:00+02:00",
        ]
    );
    // Every 30 minutes: 02:00 becomes 03:00 and 02:30 is gone; 23 hours, 46 firings.
    for (tz, from, to) in [
        (
            New_York,
            "2024-03-10T00:00:00-05:00",
            "2024-03-11T00:00:00-04:00",
        ),
        (
            Berlin,
            "2024-03-31T00:00:00+01:00",
            "2024-04-01T00:00:00+02:00",
        ),
    ] {
        let start = at(from) - TimeDelta::seconds(1);
        let f = firings("0 */30 * * * *", &start.to_rfc3339(), to, tz);
        assert_eq!(f.len(), 46, "{tz}");
        assert!(
            f.windows(2).all(|w| w[1] - w[0] == TimeDelta::minutes(30)),
            "{tz}"
        );
    }
}

#[test]
fn fall_back() {
    // A daily 01:30 (New York) / 02:30 (Berlin) fires once on the day that hour repeats.
    assert_eq!(
        occurrences("0 30 1 * * *", "2024-11-02T12:00:00-04:00", New_York, 3),
        [
            "2024-11-03T01:30:00-04:00",
            "2024-11-04T01:30:00-05:00",
            "2024-11-05T01:30:00-05:00",
        ]
    );
    assert_eq!(
        occurrences("0 30 2 * * *", "2024-10-26T12:00:00+02:00", Berlin, 3),
        [
            "2024-10-27T02:30:00+02:00",
            "2024-10-28T02:30:00+01:00",
            "2024-10-29T02:30:00+01:00",
        ]
    );
    // Started during the second pass: the first one is assumed to have fired.
    assert_eq!(
        occurrences("0 30 1 * * *", "2024-11-03T01:29:00-05:00", New_York, 1),
        ["2024-11-04T01:30:00-05:00"]
    );
    // Started during the first pass, after the time: tomorrow.
    assert_eq!(
        occurrences("0 30 1 * * *", "2024-11-03T01:40:00-04:00", New_York, 1),
        ["2024-11-04T01:30:00-05:00"]
    );
    // Every 30 minutes through both passes: 25 hours, 50 firings, evenly spaced.
    for (tz, from, to) in [
        (
            New_York,
            "2024-11-03T00:00:00-04:00",
            "2024-11-04T00:00:00-05:00",
        ),
        (
            Berlin,
            "2024-10-27T00:00:00+02:00",
            "2024-10-28T00:00:00+01:00",
        ),
    ] {
        let start = at(from) - TimeDelta::seconds(1);
        let f = firings("0 */30 * * * *", &start.to_rfc3339(), to, tz);
        assert_eq!(f.len(), 50, "{tz}");
        assert!(
            f.windows(2).all(|w| w[1] - w[0] == TimeDelta::minutes(30)),
            "{tz}"
        );
    }
}

#[test]
fn interval_or_point_in_time() {
    // webjobs-sdk-extensions CronScheduleTests.IsInterval_ReturnsExpectedValue.
    for (text, expected) in [
        ("* * * * * *", true),
        ("0 * * * * *", true),
        ("0 0 * * * *", true),
        ("0 0-15 * * * *", true),
        ("0 0 * * * 0", true),
        ("0 0 1-3 * * 0", true),
        ("0 0 0 * * *", false),
        ("0 0 0 1 * *", false),
        ("0 0 0 1 1 *", false),
        ("0 0 0 * * 1", false),
        ("* * * * *", true),
        ("0 * * * *", true),
        ("0-15 * * * *", true),
        ("0 * * * 0", true),
        ("0 1-3 * * 0", true),
        (" 0 1 * * *", false),
        ("0 0 * * *", false),
        ("0 0 1 * *", false),
        ("0 0 1 1 *", false),
        ("0 0 * * 1", false),
        // Decided on the written-back form: consecutive values become a range.
        ("0 0,1 2 * * *", true),
        ("0 0,30 2 * * *", false),
        ("0 0 */2 * * *", false),
    ] {
        assert_eq!(cron(text).is_interval(), expected, "{text}");
    }
}

#[test]
fn more_than_once_a_minute() {
    // webjobs-sdk-extensions TimerScheduleTests.ShouldDisableScheduleMonitor_ReturnsExpectedValue.
    for (text, expected) in [
        ("* * * * * *", true),
        ("*/5 * * * * *", true),
        ("  */5    * *      * * *", true),
        ("10,20,45 * * * * *", true),
        ("*/15 * * * * *", true),
        ("0 */5 * * * *", false),
        ("0 30 * * * *", false),
        ("* 30 * * * *", false),
        ("* */30 * * * *", false),
        ("0 * * * * *", false),
        ("30 * * * * *", false),
        ("* 1-5 * * * *", false),
        ("* */20 * * * *", false),
        ("* * 12 * * Mon", false),
        ("* 59 11 * * 1,2,3,4,5", false),
        ("0 0 * * * *", false),
        // Written back as '*': every value of the field.
        ("*/30 0-59 */1 1-31 JAN-DEC SUN-SAT", true),
        // Five fields fire at most once a minute.
        ("* * * * *", false),
        ("00:00:59", true),
        ("00:00:00.5", true),
        ("00:01:00", false),
        ("01:00:00", false),
    ] {
        assert_eq!(
            parse(text).fires_more_than_once_a_minute(),
            expected,
            "{text}"
        );
    }
}

fn timer_binding(raw: serde_json::Value) -> Binding {
    let serde_json::Value::Object(map) = raw else {
        unreachable!()
    };
    Binding {
        type_name: "timerTrigger".to_string(),
        direction: crate::function_json::Direction::In,
        name: "t".to_string(),
        data_type: None,
        raw: map,
    }
}

#[test]
fn timer_trigger_settings() {
    let b = timer_binding(
        serde_json::json!({"type":"timerTrigger","name":"t","schedule":"0 */5 * * * *"}),
    );
    let t = TimerTrigger::parse("F/function.json", "$.bindings[0]", &b).unwrap();
    assert_eq!(
        t,
        TimerTrigger {
            schedule: "0 */5 * * * *".to_string(),
            run_on_startup: false,
            use_monitor: true
        }
    );
    let r = timer_trigger(&b, "F/function.json", "$.bindings[0]", |_| None).unwrap();
    assert_eq!(r.schedule, parse("0 */5 * * * *"));
    assert!(r.use_monitor && !r.run_on_startup);

    // useMonitor off as written, and off for frequent schedules.
    let b =
        timer_binding(serde_json::json!({"schedule":"%S%","RunOnStartup":true,"useMonitor":false}));
    let r = timer_trigger(&b, "F/function.json", "$.bindings[1]", |n| {
        (n == "S").then(|| "01:00:00".to_string())
    })
    .unwrap();
    assert_eq!(r.schedule.interval(), Some(Duration::from_secs(3600)));
    assert!(r.run_on_startup && !r.use_monitor);
    let b = timer_binding(serde_json::json!({"schedule":"00:00:10"}));
    assert!(
        !timer_trigger(&b, "f", "$.bindings[0]", |_| None)
            .unwrap()
            .use_monitor
    );

    // Errors name the file, the schedule's path and what was wrong.
    let b = timer_binding(serde_json::json!({"schedule":"%S%"}));
    let e = timer_trigger(&b, "F/function.json", "$.bindings[0]", |_| {
        Some("0 0 25 * * *".into())
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "F/function.json: $.bindings[0].schedule: field 3 (hour): 25 is out of range 0-23, \
         in \"0 0 25 * * *\" (from \"%S%\")"
    );
    let b = timer_binding(serde_json::json!({"schedule":"0 0 9 * * 8"}));
    let e = timer_trigger(&b, "F/function.json", "$.bindings[2]", |_| None).unwrap_err();
    assert_eq!(e.path, "$.bindings[2].schedule");
    assert!(e.problem.ends_with("in \"0 0 9 * * 8\""), "{e}");
    let e = timer_trigger(
        &timer_binding(serde_json::json!({"schedule":""})),
        "f",
        "$.bindings[0]",
        |_| None,
    )
    .unwrap_err();
    assert!(e.problem.ends_with("found \"\""), "{e}");
    let e = timer_trigger(
        &timer_binding(serde_json::json!({"schedule":5})),
        "f",
        "$.bindings[0]",
        |_| None,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "f: $.bindings[0].schedule: expected a string, found a number"
    );
    let e = timer_trigger(
        &timer_binding(serde_json::json!({"schedule":"0 * * * * *","runOnStartup":3})),
        "f",
        "$.bindings[0]",
        |_| None,
    )
    .unwrap_err();
    assert_eq!(e.path, "$.bindings[0].runOnStartup");
}

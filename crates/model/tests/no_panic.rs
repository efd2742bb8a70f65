//! Property tests: no input makes the model panic, whatever the bytes.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use stratus_model::route::{RouteTable, path, template, tokenize};
use stratus_model::{FunctionConfig, HostConfig, HttpTrigger, LocalSettings, Schedule, json};

/// JSON-ish text: mostly structural characters and the keys the parsers look for.
fn jsonish() -> impl Strategy<Value = String> {
    let atoms = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\"version\"".to_string()),
        Just("\"2.0\"".to_string()),
        Just("\"bindings\"".to_string()),
        Just("\"type\"".to_string()),
        Just("\"httpTrigger\"".to_string()),
        Just("\"route\"".to_string()),
        Just("\"methods\"".to_string()),
        Just("\"authLevel\"".to_string()),
        Just("\"name\"".to_string()),
        Just("\"direction\"".to_string()),
        Just("\"customHandler\"".to_string()),
        Just("\"description\"".to_string()),
        Just("\"extensions\"".to_string()),
        Just("\"http\"".to_string()),
        Just("\"functionTimeout\"".to_string()),
        Just("\"retry\"".to_string()),
        Just("\"Values\"".to_string()),
        Just("\"Host\"".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("-1".to_string()),
        Just("1e400".to_string()),
        "\"[a-z{}:?*()/=.-]{0,8}\"".prop_map(|s| s),
        any::<u8>().prop_map(|b| (b as char).to_string()),
    ];
    prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
}

/// Schedule-ish text: cron fields, names, TimeSpans and the odd stray character.
fn scheduleish() -> impl Strategy<Value = String> {
    let atoms = prop_oneof![
        Just(" ".to_string()),
        Just(" ".to_string()),
        Just("*".to_string()),
        Just("/".to_string()),
        Just("-".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just(".".to_string()),
        Just("\t".to_string()),
        Just("JAN".to_string()),
        Just("feb".to_string()),
        Just("Sun".to_string()),
        Just("t".to_string()),
        Just("29".to_string()),
        Just("31".to_string()),
        Just("99999999999".to_string()),
        "[0-9]{1,2}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(atoms, 0..24).prop_map(|v| v.concat())
}

/// Cron expressions that parse: six fields of numbers, ranges and steps.
fn cronish() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("*".to_string()),
        "[0-9]{1,2}".prop_map(|s| s),
        "[0-9]{1,2}-[0-9]{1,2}".prop_map(|s| s),
        "\\*/[0-9]{1,2}".prop_map(|s| s),
        "[0-9]{1,2}/[0-9]{1,2}".prop_map(|s| s),
        "[0-9]{1,2},[0-9]{1,2}".prop_map(|s| s),
    ];
    prop::collection::vec(field, 5..=6).prop_map(|v| v.join(" "))
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        // Years 1 to 9999, and around the DST changes of recent years.
        (-62_135_596_800i64..253_402_300_800).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap()),
        (1_700_000_000i64..1_800_000_000, 0u32..1_000_000_000)
            .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap()),
        Just(DateTime::<Utc>::MIN_UTC),
        Just(DateTime::<Utc>::MAX_UTC),
    ]
}

fn zone() -> impl Strategy<Value = Tz> {
    prop::sample::select(vec![
        Tz::UTC,
        chrono_tz::America::New_York,
        chrono_tz::Europe::Berlin,
        chrono_tz::Europe::Dublin,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Antarctica::Troll,
        chrono_tz::Pacific::Apia,
        chrono_tz::America::St_Johns,
    ])
}

/// Route-template-ish text.
fn templatish() -> impl Strategy<Value = String> {
    "[a-z{}:?*()/=.,~\\-0-9\\\\^$]{0,24}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn documents_never_panic(text in jsonish()) {
        if let Ok(doc) = json::parse_document("f.json", &text) {
            let _ = HostConfig::parse(doc.clone());
            let _ = FunctionConfig::parse("Fn", "Fn/function.json", doc.clone());
            let _ = LocalSettings::parse(&doc);
        }
    }

    #[test]
    fn templates_and_matching_never_panic(t in templatish(), p in "[/a-zA-Z0-9%.\\-]{0,24}") {
        if let Ok(tmpl) = template::parse(&t)
            && let Ok(decoded) = path::decode(&p) {
                let _ = tmpl.match_path(&decoded, &tokenize(&decoded));
            }
        let trigger = HttpTrigger { auth_level: stratus_model::AuthLevel::Anonymous, methods: None, route: Some(t.clone()) };
        let (table, _) = RouteTable::build("api", [("F", &trigger, ())]);
        if let Ok(decoded) = path::decode(&p) {
            let _ = table.find("GET", &decoded);
        }
    }

    #[test]
    fn schedules_never_panic(text in prop_oneof![scheduleish(), cronish()], t in instant(), tz in zone()) {
        if let Ok(schedule) = Schedule::parse(&text) {
            let _ = schedule.fires_more_than_once_a_minute();
            let _ = schedule.to_string();
            let mut after = t;
            for _ in 0..3 {
                let Some(next) = schedule.next_after(after, tz) else { break };
                prop_assert!(next > after, "{text}: {next} after {after} in {tz}");
                after = next;
            }
        }
    }

    #[test]
    fn arbitrary_unicode_paths(p in "\\PC{0,32}") {
        if let Ok(decoded) = path::decode(&p) {
            let tmpl = template::parse("api/{a}-{b}/{c}.{d?}/{*rest}").unwrap();
            let _ = tmpl.match_path(&decoded, &tokenize(&decoded));
        }
    }
}

//! Property tests: no input makes the model panic, whatever the bytes.

use proptest::prelude::*;
use stratus_model::route::{RouteTable, path, template, tokenize};
use stratus_model::{FunctionConfig, HostConfig, HttpTrigger, LocalSettings, json};

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
    fn arbitrary_unicode_paths(p in "\\PC{0,32}") {
        if let Ok(decoded) = path::decode(&p) {
            let tmpl = template::parse("api/{a}-{b}/{c}.{d?}/{*rest}").unwrap();
            let _ = tmpl.match_path(&decoded, &tokenize(&decoded));
        }
    }
}

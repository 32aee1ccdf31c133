//! OpenLineage event bodies from untrusted bytes (`custody_lineage::parse_event`: serde_json's
//! syntax into the light tree, the envelope walk, the typed facets). Must never panic, and an
//! accepted event's id must not depend on how its JSON was written.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = custody_lineage::parse_event(data) else { return };
    let value: serde_json::Value = serde_json::from_slice(data).expect("an accepted body is JSON");
    let compact = value.to_string();
    let again = custody_lineage::parse_event(compact.as_bytes()).expect("accepted once, accepted again");
    assert_eq!(parsed.event.id, again.event.id, "the id changed with the formatting");
    assert_eq!(parsed.event.id, custody_lineage::EventId::of_json(&value));
});

//! Any string: the cron parser returns a spec or an error whose offset lies
//! within the string, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    match schedule_sync::cron::parse(text) {
        Ok(_) => {}
        Err(error) => assert!(error.offset <= text.chars().count(), "{error:?} for {text:?}"),
    }
});

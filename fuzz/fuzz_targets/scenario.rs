//! Fuzz target for the scenario parser: any text must parse or be rejected with a located
//! error, never panic, because scenario files come from users and CI alike.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Scenario files are read as UTF-8 text, so other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = edgesim::scenario::parse("fuzz.toml", text) {
        // A line past the end (plus one for a missing final newline) would point nowhere.
        let lines = text.matches('\n').count() + 1;
        assert!(
            (1..=lines).contains(&error.line),
            "error line {} outside 1..={lines}: {error}",
            error.line
        );
        assert!(!error.message.is_empty(), "an error without a message");
    }
});

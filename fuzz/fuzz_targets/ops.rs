//! Fuzz target for the `.ops` conformance-script parser: any text must parse or be rejected
//! with the line at fault, never panic, because a bad script must not half-run.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Scripts are read as UTF-8 text, so other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match edgesim::conform::parse(text) {
        Ok(script) => {
            // Every operation line points into the text, and every name it uses exists.
            let lines = text.lines().count();
            for line in &script.lines {
                assert!((1..=lines).contains(&line.number), "line {}", line.number);
                assert!(!line.text.is_empty());
            }
        }
        Err(error) => {
            let lines = text.lines().count().max(1);
            assert!(
                (1..=lines).contains(&error.line),
                "error line {} outside 1..={lines}: {error}",
                error.line
            );
            assert!(!error.message.is_empty(), "an error without a message");
        }
    }
});

//! Any text as a config file: a config or a list of located errors, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| (name == "DTSWATCH_FUZZ_SET").then(|| "value".to_string());
    match dtswatch::config::parse(text, Path::new("fuzz.toml"), &env) {
        Ok(config) => {
            let _ = config.summary();
        }
        Err(errors) => {
            assert!(!errors.errors.is_empty());
            assert!(!errors.to_string().is_empty());
        }
    }
});

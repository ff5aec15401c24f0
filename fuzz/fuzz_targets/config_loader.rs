//! The manifest loader on any text (as UTF-8, lossily), with a secrets directory holding the
//! keys the example manifests name.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use aws_event_adapter::config::LoadOptions;
use aws_event_adapter::manifest::{self, Config};
use libfuzzer_sys::fuzz_target;

fn secrets_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("adapter-fuzz-secrets-{}", std::process::id()));
        let aws = dir.join("aws");
        std::fs::create_dir_all(&aws).expect("secrets directory");
        for key in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ] {
            std::fs::write(aws.join(key), "x").expect("secret file");
        }
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let options = LoadOptions {
        secrets_dir: secrets_dir().clone(),
    };
    let mut config = Config::default();
    let mut problems = Vec::new();
    manifest::load_text(&text, "fuzz.yaml", &options, &mut config, &mut problems);
    for problem in &problems {
        let _ = problem.to_string();
    }
});

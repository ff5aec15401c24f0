//! The binary run as a command, as a user runs it: what it printed and how it exited.

use std::path::Path;
use std::process::Command;

/// The adapter binary cargo built for the integration tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_aws-event-adapter");
/// sysexits' EX_CONFIG: the configuration cannot be used.
pub const EXIT_CONFIG: i32 = 78;

/// What a finished command showed its user.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn of(output: std::process::Output) -> Outcome {
        Outcome {
            code: output
                .status
                .code()
                .expect("exited, not killed by a signal"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The `error: ...` lines of stderr.
    pub fn errors(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|line| line.starts_with("error: "))
            .collect()
    }

    /// Asserts that exactly one problem line starts with `prefix` and returns it.
    pub fn problem(&self, prefix: &str) -> &str {
        let found: Vec<&str> = self
            .errors()
            .into_iter()
            .filter(|line| line.starts_with(prefix))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one line starting with {prefix:?}; stderr:\n{}",
            self.stderr
        );
        found[0]
    }

    /// Asserts the run failed on its configuration with `count` problems and nothing on stdout.
    pub fn assert_config_error(&self, count: usize) {
        assert_eq!(self.code, EXIT_CONFIG, "stderr:\n{}", self.stderr);
        assert_eq!(
            self.stdout, "",
            "nothing is printed on stdout when validation fails"
        );
        assert_eq!(self.errors().len(), count, "stderr:\n{}", self.stderr);
        let summary = format!("{count} problem(s) found");
        assert_eq!(
            self.stderr.lines().last(),
            Some(summary.as_str()),
            "stderr:\n{}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
    }
}

/// Writes `text` to `dir/name`, creating parent directories.
pub fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("a parent directory")).expect("mkdir");
    std::fs::write(path, text).expect("write a test file");
}

/// Runs the binary in `dir` with `args` and waits for it.
pub fn run_in(dir: &Path, args: &[&str]) -> Outcome {
    let output = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .expect("run aws-event-adapter");
    Outcome::of(output)
}

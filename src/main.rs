//! The `aws-event-adapter` command line: `run`, `validate` and `display`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use aws_event_adapter::app::{self, RunError, RunOptions};
use aws_event_adapter::config::{self, LoadOptions};
use aws_event_adapter::http::bearer::BearerAuth;
use aws_event_adapter::http::server::ListenError;
use aws_event_adapter::manifest;
use aws_event_adapter::provisioning::ProvisionError;
use aws_event_adapter::targets::ingress::Limits;

/// mimalloc instead of glibc's malloc: per-event work allocates from every worker thread, and
/// glibc's arenas showed up in profiles as lock contention and a fifth of the CPU (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use aws_event_adapter::telemetry::{LogFormat, init_logging};

/// Exit codes, chosen from the kind of the error (sysexits where one fits):
/// a configuration that cannot be used (manifests, flags, credentials setup) — EX_CONFIG;
const EXIT_CONFIG: u8 = 78;
/// a listener address that is taken or forbidden, a runtime that cannot start — EX_OSERR;
const EXIT_OS: u8 = 71;
/// a bug (a component panicked, a second metrics recorder) — EX_SOFTWARE;
const EXIT_BUG: u8 = 70;
/// AWS refusing `provision`/`deprovision` (permissions, a queue we do not own) — 1.
const EXIT_REFUSED: u8 = 1;

#[derive(Parser)]
#[command(
    name = "aws-event-adapter",
    version,
    about = "Data plane between AWS (S3 notifications on SQS) and CloudEvents"
)]
struct Cli {
    /// Log format: json (default when stdout is not a terminal) or text.
    #[arg(long, value_enum, default_value = "auto", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the components of one or more manifest files.
    /// Without --config: TriggerMesh's environment-variable mode (K_COMPONENT, ARN, K_SINK...).
    Run {
        /// A YAML file of manifests (AWSS3Source, AWSSQSTarget, AWSS3Target); may be repeated.
        #[arg(long = "config")]
        config: Vec<PathBuf>,
        /// Where `valueFromSecret` files are mounted: <dir>/<secret name>/<key>.
        #[arg(long, default_value = "/var/run/secrets/aws-event-adapter")]
        secrets_dir: PathBuf,
        /// Address of the targets, health (/healthz, /health) and readiness (/readyz).
        #[arg(long, default_value = "0.0.0.0:8080")]
        http_addr: SocketAddr,
        /// Address of the Prometheus /metrics endpoint [default: 0.0.0.0:9092, or
        /// METRICS_PROMETHEUS_PORT in environment-variable mode].
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
        /// Time allowed to drain on SIGTERM: "30s", "PT30S".
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        shutdown_grace: Duration,
        /// Largest request body the targets accept (413 beyond).
        #[arg(long, default_value_t = 4 * 1024 * 1024)]
        max_request_bytes: usize,
        /// Target requests processed at once (503 with Retry-After beyond).
        #[arg(long, default_value_t = 1024)]
        max_concurrent_requests: usize,
        /// Bytes of target request bodies held at once (503 with Retry-After beyond); at least
        /// --max-request-bytes.
        #[arg(long, default_value_t = 64 * 1024 * 1024)]
        max_request_bytes_in_flight: usize,
        /// Connections open at once on --http-addr (more wait until one closes).
        #[arg(long, default_value_t = 1024)]
        max_connections: usize,
        /// A file holding a token that every target request must carry as
        /// `Authorization: Bearer <token>` (re-read when the file changes).
        #[arg(long)]
        bearer_token_file: Option<PathBuf>,
        /// Serve HTTPS with this PEM certificate chain (with --tls-key-file); both files are
        /// read again when they change.
        #[arg(long, requires = "tls_key_file")]
        tls_cert_file: Option<PathBuf>,
        /// The PEM private key of --tls-cert-file.
        #[arg(long, requires = "tls_cert_file")]
        tls_key_file: Option<PathBuf>,
    },
    /// Check manifest files and report every problem; exits non-zero if there is any.
    Validate {
        #[command(flatten)]
        files: ConfigFiles,
    },
    /// Create the queue and bucket notification of every AWSS3Source without a destination.
    Provision {
        #[command(flatten)]
        files: ConfigFiles,
    },
    /// Remove what `provision` created: the notification entry, then the queue we own.
    Deprovision {
        #[command(flatten)]
        files: ConfigFiles,
    },
    /// A CloudEvents sink that prints every event it receives.
    Display {
        #[arg(long, default_value = "127.0.0.1:8081")]
        addr: SocketAddr,
    },
}

#[derive(clap::Args)]
struct ConfigFiles {
    /// A YAML file of manifests (AWSS3Source, ...); may be repeated.
    #[arg(long = "config", required = true)]
    config: Vec<PathBuf>,
    /// Where `valueFromSecret` files are mounted: <dir>/<secret name>/<key>.
    #[arg(long, default_value = "/var/run/secrets/aws-event-adapter")]
    secrets_dir: PathBuf,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    config::duration::parse(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Validate { files } => validate(&files),
        Command::Run {
            config,
            secrets_dir,
            http_addr,
            metrics_addr,
            shutdown_grace,
            max_request_bytes,
            max_concurrent_requests,
            max_request_bytes_in_flight,
            max_connections,
            bearer_token_file,
            tls_cert_file,
            tls_key_file,
        } => {
            if max_request_bytes_in_flight < max_request_bytes {
                eprintln!(
                    "error: --max-request-bytes-in-flight ({max_request_bytes_in_flight}) is smaller than --max-request-bytes ({max_request_bytes}): the largest request could never be taken"
                );
                return ExitCode::from(EXIT_CONFIG);
            }
            if max_connections == 0 || max_concurrent_requests == 0 {
                eprintln!(
                    "error: --max-connections and --max-concurrent-requests must be at least 1"
                );
                return ExitCode::from(EXIT_CONFIG);
            }
            let env = manifest::env::ProcessEnv;
            let from_env = config.is_empty();
            let config = if from_env {
                if !manifest::env::present(&env) {
                    eprintln!(
                        "error: run needs --config FILE, or TriggerMesh's environment variables (K_COMPONENT, ARN, ...)"
                    );
                    return ExitCode::from(EXIT_CONFIG);
                }
                match manifest::env::load(&env) {
                    Ok(config) => config,
                    Err(problems) => return report(&problems),
                }
            } else {
                match load(&ConfigFiles {
                    config,
                    secrets_dir,
                }) {
                    Ok(config) => config,
                    Err(code) => return code,
                }
            };
            let metrics_addr = metrics_addr.unwrap_or_else(|| {
                let port = manifest::env::metrics_port(&env)
                    .filter(|_| from_env)
                    .unwrap_or(9092);
                SocketAddr::from(([0, 0, 0, 0], port))
            });
            let bearer = match bearer_token_file.map(BearerAuth::from_file).transpose() {
                Ok(bearer) => bearer.map(Arc::new),
                Err(err) => {
                    eprintln!("error: --bearer-token-file: {err}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let tls = match tls_cert_file.zip(tls_key_file) {
                Some((cert, key)) => match aws_event_adapter::http::tls::acceptor(cert, key) {
                    Ok(acceptor) => Some(acceptor),
                    Err(err) => {
                        eprintln!("error: --tls-cert-file/--tls-key-file: {err}");
                        return ExitCode::from(EXIT_CONFIG);
                    }
                },
                None => None,
            };
            let options = RunOptions {
                tls,
                http_addr,
                metrics_addr,
                shutdown_grace,
                limits: Limits {
                    max_body_bytes: max_request_bytes,
                    max_concurrent_requests,
                    max_body_bytes_in_flight: max_request_bytes_in_flight,
                    max_connections,
                    bearer,
                },
            };
            let result = block_on(async move {
                let shutdown = aws_event_adapter::shutdown::on_signal();
                app::run(config, options, shutdown).await
            });
            exit(result, |err| match err {
                RunError::Source { .. } | RunError::Target { .. } => EXIT_CONFIG,
                RunError::Listen(_) => EXIT_OS,
                RunError::Metrics(_) | RunError::Panicked(_) => EXIT_BUG,
            })
        }
        Command::Provision { files } => match load(&files) {
            Ok(config) => provisioned(block_on(aws_event_adapter::provisioning::provision_all(
                config,
            ))),
            Err(code) => code,
        },
        Command::Deprovision { files } => match load(&files) {
            Ok(config) => provisioned(block_on(aws_event_adapter::provisioning::deprovision_all(
                config,
            ))),
            Err(code) => code,
        },
        Command::Display { addr } => {
            let result = block_on(async move {
                let shutdown = aws_event_adapter::shutdown::on_signal();
                aws_event_adapter::display::run(addr, shutdown).await
            });
            exit(result, |_: &ListenError| EXIT_OS)
        }
    }
}

fn load(files: &ConfigFiles) -> Result<manifest::Config, ExitCode> {
    let options = LoadOptions::new(files.secrets_dir.clone());
    manifest::load(&files.config, &options).map_err(|problems| report(&problems))
}

/// `provision`'s outcome: one `error:` line per source that failed.
fn provisioned(result: Result<Result<(), ProvisionError>, ExitCode>) -> ExitCode {
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) => {
            for (name, why) in &err.failures {
                eprintln!("error: {name}: {why}");
            }
            ExitCode::from(EXIT_REFUSED)
        }
        Err(code) => code,
    }
}

/// Prints the final error once and exits with the code its kind calls for.
fn exit<E: std::fmt::Display>(
    result: Result<Result<(), E>, ExitCode>,
    code_of: impl FnOnce(&E) -> u8,
) -> ExitCode {
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(err)) => {
            eprintln!("error: {err}");
            ExitCode::from(code_of(&err))
        }
        Err(code) => code,
    }
}

/// Prints every problem and gives the exit code for a configuration that cannot be used.
fn report(problems: &[config::decode::Problem]) -> ExitCode {
    for problem in problems {
        eprintln!("error: {problem}");
    }
    eprintln!("{} problem(s) found", problems.len());
    ExitCode::from(EXIT_CONFIG)
}

fn validate(files: &ConfigFiles) -> ExitCode {
    match load(files) {
        Ok(config) => {
            for line in &config.skipped {
                println!("{line}");
            }
            println!("ok: {} component(s)", config.component_count());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Runs `work` on a multi-threaded runtime; `Err` only when the runtime cannot start.
fn block_on<T>(work: impl Future<Output = T>) -> Result<T, ExitCode> {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return Err(ExitCode::from(EXIT_OS));
        }
    };
    let result = runtime.block_on(work);
    // Do not wait for stray blocking work (e.g. a DNS lookup) beyond a moment.
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(result)
}

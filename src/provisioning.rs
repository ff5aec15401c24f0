//! The `provision` and `deprovision` commands: for every `AWSS3Source` of the configuration,
//! create (or remove) its queue and bucket notification, printing each change.

use tracing::Instrument;

use crate::aws::credentials;
use crate::manifest::Config;
use crate::sources::s3::config::S3SourceConfig;
use crate::sources::s3::provision;
use crate::telemetry::Component;

/// The sources whose resources could not be created or removed, each with its reason; the
/// others were handled.
#[derive(Debug, thiserror::Error)]
#[error("{}", failures.iter().map(|(name, why)| format!("{name}: {why}")).collect::<Vec<_>>().join("\n"))]
pub struct ProvisionError {
    pub failures: Vec<(String, String)>,
}

async fn credentials_for(source: &S3SourceConfig) -> Result<credentials::Refreshing, String> {
    let component = Component::of(source.kind(), &source.metadata);
    let credentials =
        credentials::for_component(&component, &source.auth, &crate::aws::default_region())
            .await
            .map_err(|err| err.to_string())?;
    credentials
        .refresh_now()
        .await
        .map_err(|err| format!("no AWS credentials: {err}"))?;
    Ok(credentials)
}

fn span(source: &S3SourceConfig) -> tracing::Span {
    Component::of(source.kind(), &source.metadata).span()
}

pub async fn provision_all(config: Config) -> Result<(), ProvisionError> {
    let mut failures = Vec::new();
    for source in &config.s3_sources {
        let name = &source.metadata.name;
        if let Some(queue) = &source.queue {
            println!("{name}: uses the existing queue {queue}; nothing to provision");
            continue;
        }
        let result = async {
            let credentials = credentials_for(source).await?;
            provision::provision(source, &credentials)
                .await
                .map_err(|e| e.to_string())
        }
        .instrument(span(source))
        .await;
        match result {
            Ok(done) if done.changes.is_empty() => {
                println!(
                    "{name}: queue {} and its notification are up to date; nothing to change",
                    done.queue
                )
            }
            Ok(done) => {
                for change in done.changes {
                    println!("{name}: {change}");
                }
            }
            Err(err) => failures.push((name.clone(), err)),
        }
    }
    finish(failures)
}

pub async fn deprovision_all(config: Config) -> Result<(), ProvisionError> {
    let mut failures = Vec::new();
    for source in &config.s3_sources {
        let name = &source.metadata.name;
        let result = async {
            let credentials = credentials_for(source).await?;
            provision::deprovision(source, &credentials)
                .await
                .map_err(|e| e.to_string())
        }
        .instrument(span(source))
        .await;
        match result {
            Ok(done) => {
                for line in done {
                    println!("{name}: {line}");
                }
            }
            Err(err) => failures.push((name.clone(), err)),
        }
    }
    finish(failures)
}

fn finish(failures: Vec<(String, String)>) -> Result<(), ProvisionError> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ProvisionError { failures })
    }
}

//! The `provision` and `deprovision` commands: for every `AWSS3Source` of the configuration,
//! create (or remove) its queue and bucket notification, printing each change.

use crate::aws::credentials;
use crate::config::Config;
use crate::sources::s3::config::{COMPONENT, S3SourceConfig};
use crate::sources::s3::provision;

async fn credentials_for(source: &S3SourceConfig) -> Result<credentials::Refreshing, String> {
    let component = source.metadata.component(COMPONENT);
    let credentials =
        credentials::for_component(&component, &source.auth, &crate::aws::default_region()).await?;
    credentials.refresh_now().await.map_err(|err| {
        format!(
            "source {:?}: no AWS credentials: {err}",
            source.metadata.name
        )
    })?;
    Ok(credentials)
}

pub async fn provision_all(config: Config) -> Result<(), String> {
    let mut failures = Vec::new();
    for source in &config.s3_sources {
        let name = &source.metadata.name;
        if let Some(queue) = &source.queue {
            println!("{name}: uses the existing queue {queue}; nothing to provision");
            continue;
        }
        let result = match credentials_for(source).await {
            Ok(credentials) => provision::provision(source, &credentials)
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err),
        };
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
            Err(err) => failures.push(format!("{name}: {err}")),
        }
    }
    finish(failures)
}

pub async fn deprovision_all(config: Config) -> Result<(), String> {
    let mut failures = Vec::new();
    for source in &config.s3_sources {
        let name = &source.metadata.name;
        let result = match credentials_for(source).await {
            Ok(credentials) => provision::deprovision(source, &credentials)
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err),
        };
        match result {
            Ok(done) => {
                for line in done {
                    println!("{name}: {line}");
                }
            }
            Err(err) => failures.push(format!("{name}: {err}")),
        }
    }
    finish(failures)
}

fn finish(failures: Vec<String>) -> Result<(), String> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

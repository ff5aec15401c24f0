//! Counting every AWS call by component, operation and outcome, as an SDK interceptor on each
//! client — one place, so no call site can forget it.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::telemetry::Component;

/// Counts `aws_event_adapter_aws_calls_total{component,name,service,operation,outcome}`.
#[derive(Debug, Clone)]
pub struct CallMetrics {
    kind: &'static str,
    name: String,
}

impl CallMetrics {
    pub fn new(component: &Component) -> Self {
        CallMetrics {
            kind: component.kind,
            name: component.name.clone(),
        }
    }
}

impl Intercept for CallMetrics {
    fn name(&self) -> &'static str {
        "CallMetrics"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "success",
            _ => "error",
        };
        metrics::counter!(
            "aws_event_adapter_aws_calls_total",
            "component" => self.kind,
            "name" => self.name.clone(),
            "service" => service,
            "operation" => operation,
            "outcome" => outcome
        )
        .increment(1);
        Ok(())
    }
}

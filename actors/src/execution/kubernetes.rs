//! The Kubernetes scale target: a service is a Deployment whose `scale`
//! subresource is patched; readiness comes from the Deployment's status.

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};

use super::target::{ScaleTarget, TargetState};
use crate::error::ActorError;

/// Scales Deployments of one namespace; the service name is the Deployment name.
pub struct KubernetesTarget {
    deployments: Api<Deployment>,
    field_manager: String,
}

impl KubernetesTarget {
    /// A target for `namespace` through `client`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        KubernetesTarget {
            deployments: Api::namespaced(client, namespace),
            field_manager: "predictive-scaler".into(),
        }
    }

    /// A client from the environment: in-cluster service account, `kubeconfig`
    /// (a path), or the usual inference (KUBECONFIG, ~/.kube/config).
    pub async fn connect(namespace: &str, in_cluster: bool, kubeconfig: &str) -> Result<Self, ActorError> {
        let config = if in_cluster {
            kube::Config::incluster().map_err(|e| ActorError::Target(format!("in-cluster config: {e}")))?
        } else if !kubeconfig.is_empty() {
            let kc = kube::config::Kubeconfig::read_from(kubeconfig)
                .map_err(|e| ActorError::Target(format!("kubeconfig {kubeconfig}: {e}")))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| ActorError::Target(format!("kubeconfig {kubeconfig}: {e}")))?
        } else {
            kube::Config::infer()
                .await
                .map_err(|e| ActorError::Target(format!("kubernetes config: {e}")))?
        };
        let client =
            kube::Client::try_from(config).map_err(|e| ActorError::Target(format!("kubernetes client: {e}")))?;
        Ok(Self::new(client, namespace))
    }
}

fn target_error(what: &str, service: &str, e: kube::Error) -> ActorError {
    match e {
        kube::Error::Api(s) if s.code == 404 => {
            ActorError::Target(format!("deployment `{service}` not found ({what})"))
        }
        other => ActorError::Target(format!("{what} deployment `{service}`: {other}")),
    }
}

#[async_trait]
impl ScaleTarget for KubernetesTarget {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    async fn scale(&self, service: &str, replicas: u32) -> Result<(), ActorError> {
        let patch = serde_json::json!({"spec": {"replicas": replicas}});
        let params = PatchParams::apply(&self.field_manager);
        self.deployments
            .patch_scale(service, &PatchParams { force: false, ..params }, &Patch::Merge(&patch))
            .await
            .map_err(|e| target_error("scaling", service, e))?;
        Ok(())
    }

    async fn state(&self, service: &str) -> Result<TargetState, ActorError> {
        let d = self
            .deployments
            .get_status(service)
            .await
            .map_err(|e| target_error("reading", service, e))?;
        let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as u32;
        let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0).max(0) as u32;
        Ok(TargetState { desired, ready })
    }
}

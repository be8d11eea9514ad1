//! The AWS IoT control-plane API (the `iot` service, restJson1), wire-compatible with boto3,
//! `aws iot --endpoint-url ...` and `aws-sdk-iot`: things, certificates, policies and their versions,
//! attachments, TestAuthorization, DescribeEndpoint and the template's topic rules, all over the one
//! [`Registry`] the broker authorizes with, so a change made here applies to the running broker at once.
//!
//! One module per resource, each a set of handlers over the registry: `things`, `certificates`, `policies`,
//! `attachments`, `authorization` (TestAuthorization), `rules`, `endpoint`. `wire` holds the restJson1
//! plumbing, `arns` the ARNs (the registry is ARN-free), `error` the error shape.
//!
//! GetThingConnectivityData (`connectivity`) answers from the broker's sessions, given with
//! [`ControlPlane::with_broker`].
//!
//! Requests are not authenticated: any SigV4 signature (or none) is accepted, as by the data plane. Method,
//! URI, query, header and body member names are botocore's service model (`iot/2015-05-28/service-2.json`).

mod arns;
mod attachments;
mod authorization;
mod certificates;
mod connectivity;
mod endpoint;
mod error;
mod policies;
mod rules;
mod things;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get, post, put};

pub use arns::Arns;
pub use error::ControlPlaneError;
pub use wire::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

use crate::broker::Broker;
use crate::dataplane::DataPlaneError;
use crate::identity::EmulatorCa;
use crate::registry::Registry;
use crate::rules::TopicRuleDefinition;

/// Largest request body. The largest members are a CSR (4,096 characters) and a policy document (2,048
/// characters without whitespace, any amount of whitespace); bigger bodies are answered 413.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// What the control plane answers about the emulator around it.
#[derive(Debug, Clone)]
pub struct ControlPlaneSettings {
    /// ARNs and `ownedBy` use the broker's region and account.
    pub region: String,
    pub account: String,
    /// The MQTT listener's host, which DescribeEndpoint answers (AWS answers a host name without a port).
    pub mqtt_host: String,
    /// The stack's topic rules (ListTopicRules, GetTopicRule).
    pub rules: Vec<TopicRuleDefinition>,
}

/// The control-plane front-end; clone it freely (two `Arc`s).
#[derive(Clone)]
pub struct ControlPlane {
    shared: Arc<Shared>,
    /// For GetThingConnectivityData; without it that operation is an internal error.
    broker: Option<Broker>,
}

struct Shared {
    registry: Arc<Registry>,
    ca: Arc<EmulatorCa>,
    arns: Arns,
    mqtt_host: String,
    rules: rules::LoadedRules,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("arns", &self.shared.arns)
            .field("mqtt_host", &self.shared.mqtt_host)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    pub fn new(
        registry: Arc<Registry>,
        ca: Arc<EmulatorCa>,
        settings: ControlPlaneSettings,
    ) -> ControlPlane {
        let arns = Arns::new(&settings.region, &settings.account);
        let rules = rules::LoadedRules::new(settings.rules, crate::clock::now_millis());
        ControlPlane {
            broker: None,
            shared: Arc::new(Shared {
                registry,
                ca,
                arns,
                mqtt_host: settings.mqtt_host,
                rules,
            }),
        }
    }

    /// The broker whose sessions GetThingConnectivityData reads.
    pub fn with_broker(mut self, broker: Broker) -> ControlPlane {
        self.broker = Some(broker);
        self
    }

    fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    fn arns(&self) -> &Arns {
        &self.shared.arns
    }

    /// The axum router; serve it on its own port and point clients at it with `endpoint_url` /
    /// `AWS_ENDPOINT_URL_IOT` or `aws --endpoint-url http://127.0.0.1:<port> iot ...`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/endpoint", resource(get(endpoint::describe_endpoint)))
            .route("/things", resource(get(things::list_things)))
            .route(
                "/things/{thing_name}",
                resource(
                    post(things::create_thing)
                        .get(things::describe_thing)
                        .patch(things::update_thing)
                        .delete(things::delete_thing),
                ),
            )
            .route(
                "/things/{thing_name}/connectivity-data",
                resource(post(connectivity::get_thing_connectivity_data)),
            )
            .route(
                "/things/{thing_name}/principals",
                resource(
                    put(attachments::attach_thing_principal)
                        .delete(attachments::detach_thing_principal)
                        .get(attachments::list_thing_principals),
                ),
            )
            .route(
                "/principals/things",
                resource(get(attachments::list_principal_things)),
            )
            .route(
                "/keys-and-certificate",
                resource(post(certificates::create_keys_and_certificate)),
            )
            .route(
                "/certificates",
                resource(
                    post(certificates::create_certificate_from_csr)
                        .get(certificates::list_certificates),
                ),
            )
            .route(
                "/certificates/{certificate_id}",
                resource(
                    get(certificates::describe_certificate)
                        .put(certificates::update_certificate)
                        .delete(certificates::delete_certificate),
                ),
            )
            .route("/policies", resource(get(policies::list_policies)))
            .route(
                "/policies/{policy_name}",
                resource(
                    post(policies::create_policy)
                        .get(policies::get_policy)
                        .delete(policies::delete_policy),
                ),
            )
            .route(
                "/policies/{policy_name}/version",
                resource(post(policies::create_policy_version).get(policies::list_policy_versions)),
            )
            .route(
                "/policies/{policy_name}/version/{version_id}",
                resource(
                    get(policies::get_policy_version)
                        .patch(policies::set_default_policy_version)
                        .delete(policies::delete_policy_version),
                ),
            )
            .route(
                "/target-policies/{policy_name}",
                resource(put(attachments::attach_policy).post(attachments::detach_policy)),
            )
            .route(
                "/attached-policies/{target}",
                resource(post(attachments::list_attached_policies)),
            )
            .route(
                "/policy-targets/{policy_name}",
                resource(post(attachments::list_targets_for_policy)),
            )
            .route(
                "/principal-policies",
                resource(get(attachments::list_principal_policies)),
            )
            .route(
                "/principal-policies/{policy_name}",
                resource(
                    put(attachments::attach_principal_policy)
                        .delete(attachments::detach_principal_policy),
                ),
            )
            .route(
                "/test-authorization",
                resource(post(authorization::test_authorization)),
            )
            .route("/rules", resource(get(rules::list_topic_rules)))
            .route("/rules/{rule_name}", resource(get(rules::get_topic_rule)))
            .fallback(|method: Method, uri: Uri| async move {
                ControlPlaneError::UnknownOperation {
                    method,
                    path: uri.path().to_owned(),
                }
                .into_response()
            })
            .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
            .with_state(self.clone())
    }
}

/// A path's methods, with AWS's 405 for the others rather than axum's empty one.
fn resource(methods: MethodRouter<ControlPlane>) -> MethodRouter<ControlPlane> {
    methods.fallback(|| async { DataPlaneError::method_not_allowed().into_response() })
}

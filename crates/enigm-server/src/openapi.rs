//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::handlers::{
    approvals, attestation, audit, auth, devices, eligibility, lifecycle, meta, releases, sessions,
    tuf, users,
};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Enigm Command API", description = "Control plane of the Enigm device-trust platform."),
    paths(
        meta::healthz, meta::openapi, meta::routes,
        auth::login, auth::logout, auth::whoami, auth::change_password, auth::set_pin, auth::totp_enroll,
        auth::totp_confirm, auth::totp_remove, auth::own_sessions, auth::close_own_session,
        users::list, users::create, users::read, users::disable, users::enable, users::unlock_pin, users::request_totp_reset,
        users::request_role_grant, users::revoke_role,
        sessions::list, sessions::close,
        approvals::list, approvals::read, approvals::approve, approvals::reject, approvals::rules,
        approvals::request_rule_change,
        audit::list, audit::checkpoint, audit::log_key, audit::leaves, audit::leaf, audit::consistency,
        audit::retention, audit::set_legal_hold,
        devices::create_token, devices::list, devices::read, devices::enroll, devices::check_in,
        attestation::challenge, attestation::attest,
        eligibility::decide, lifecycle::change, lifecycle::commands, lifecycle::acknowledge,
        releases::create, releases::upload_artifact, releases::list, releases::read,
        releases::hand_in_signatures, releases::publish, releases::put_root, releases::put_targets, releases::online_keys,
        releases::repository_view, releases::device_report, tuf::metadata, tuf::target,
    ),
    components(schemas(enigm_api::ErrorBody, enigm_types::Permission, enigm_types::Role)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

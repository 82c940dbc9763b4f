//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::Modify;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use crate::handlers::{
    approvals, attestation, audit, auth, devices, eligibility, lifecycle, meta, network, policies,
    proxy, releases, rollouts, sessions, tuf, users, vpn,
};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Enigm Command API", description = "Control plane of the Enigm device-trust platform."),
    paths(
        meta::healthz, meta::openapi, meta::routes,
        auth::login, auth::logout, auth::whoami, auth::change_password, auth::set_pin, auth::set_duress_pin, auth::totp_enroll,
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
        eligibility::decide, network::decide, lifecycle::change, lifecycle::commands, lifecycle::acknowledge,
        releases::create, releases::upload_artifact, releases::list, releases::read,
        releases::hand_in_signatures, releases::publish, releases::put_root, releases::put_targets, releases::online_keys,
        releases::repository_view, releases::device_report, tuf::metadata, tuf::target,
        rollouts::read, rollouts::set_plan, rollouts::act, rollouts::pins, rollouts::pin,
        rollouts::unpin, rollouts::device_offer,
        policies::list, policies::create, policies::read, policies::create_version, policies::version,
        policies::diff, policies::assign, policies::unassign, policies::assignments,
        policies::bundles,
        vpn::list_gateways, vpn::create_gateway, vpn::update_gateway, vpn::gateway_peers, vpn::switch,
        proxy::issue, proxy::credential_key, proxy::revocations,
    ),
    components(schemas(enigm_api::ErrorBody, enigm_types::Permission, enigm_types::Role)),
    modifiers(&BearerAuth, &EdgeResponses, &NoNulInText)
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

/// The answers every operation of a kind can give, documented from what the operation declares
/// instead of repeated on each handler: the guard's 401/403 (and the PIN's 403/423) on secured
/// operations, the device guard's 400/401/403/409 on signed device operations, the path and
/// query extractors' 400 (an id that does not parse, an unknown or malformed query parameter)
/// and 404 for an id that names nothing, and the JSON extractor's 400/413/415/422 on operations
/// with a JSON body. A response a handler documents itself is kept as it is.
struct EdgeResponses;

impl Modify for EdgeResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item).into_iter().flatten() {
                add_edge_responses(operation);
            }
        }
    }
}

/// Command refuses U+0000 in any text it takes in (path, query, body: see
/// `extract::holds_nul`), so every string schema says so: a string without a pattern of its own
/// gets one that excludes it. (The patterns handlers declare already exclude control characters.)
struct NoNulInText;

/// Any text without U+0000.
const NO_NUL_PATTERN: &str = r"^[^\u0000]*$";

impl Modify for NoNulInText {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.schemas.values_mut().for_each(exclude_nul);
        }
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item).into_iter().flatten() {
                for parameter in operation.parameters.iter_mut().flatten() {
                    parameter.schema.iter_mut().for_each(exclude_nul);
                }
                if let Some(body) = operation.request_body.as_mut() {
                    for content in body.content.values_mut() {
                        content.schema.iter_mut().for_each(exclude_nul);
                    }
                }
            }
        }
    }
}

fn exclude_nul(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else {
        return; // a reference: its component is visited on its own
    };
    match schema {
        Schema::Object(object) => {
            let text = match &object.schema_type {
                SchemaType::Type(kind) => *kind == Type::String,
                SchemaType::Array(kinds) => kinds.contains(&Type::String),
                SchemaType::AnyValue => false,
            };
            if text && object.pattern.is_none() && object.enum_values.is_none() {
                object.pattern = Some(NO_NUL_PATTERN.to_owned());
            }
            object.properties.values_mut().for_each(exclude_nul);
            if let Some(extra) = object.additional_properties.as_deref_mut()
                && let AdditionalProperties::RefOr(extra) = extra
            {
                exclude_nul(extra);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                exclude_nul(items);
            }
        }
        Schema::OneOf(one_of) => one_of.items.iter_mut().for_each(exclude_nul),
        Schema::AllOf(all_of) => all_of.items.iter_mut().for_each(exclude_nul),
        Schema::AnyOf(any_of) => any_of.items.iter_mut().for_each(exclude_nul),
        _ => {}
    }
}

fn operations_mut(item: &mut PathItem) -> [Option<&mut Operation>; 5] {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
}

fn add_edge_responses(operation: &mut Operation) {
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let critical = parameters.iter().any(|parameter| {
        parameter.parameter_in == ParameterIn::Header && parameter.name == enigm_api::PIN_HEADER
    });
    let has_path = parameters
        .iter()
        .any(|parameter| parameter.parameter_in == ParameterIn::Path);
    let has_path_or_query = parameters.iter().any(|parameter| {
        matches!(
            parameter.parameter_in,
            ParameterIn::Path | ParameterIn::Query
        )
    });
    // A device route: the device guard checks the RFC 9421 signature before the handler runs.
    let signed = parameters.iter().any(|parameter| {
        parameter.parameter_in == ParameterIn::Header && parameter.name == "signature"
    });
    let json_body = operation.request_body.as_ref().is_some_and(|body| {
        body.content
            .keys()
            .any(|content_type| content_type == "application/json")
    });
    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description));
    };
    if secured {
        add("401", "no session, or an expired or closed one");
        add(
            "403",
            "the caller's roles do not hold the permission this needs",
        );
    }
    if critical {
        add(
            "423",
            "critical operations are locked after too many wrong PINs",
        );
    }
    if signed {
        add("400", "the signed request or its body is malformed");
        add("401", "unknown device, wrong signature or enrollment token");
        add(
            "403",
            "the device may not do this (revoked, not active, attestation required)",
        );
        add(
            "409",
            "a replayed nonce, or a change the device's state does not allow",
        );
    }
    if has_path_or_query || json_body || signed {
        add("400", "a malformed parameter or body");
    }
    if has_path {
        add("404", "nothing has that id or name");
    }
    if json_body {
        add("413", "the body is larger than the limit");
        add("415", "the body is not `application/json`");
        add("422", "the body is JSON of the wrong shape");
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

//! The OpenAPI document is generated from the handlers; these tests hold it to the router's
//! route table and check the schemas for fields that must never exist.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

use enigm_server::openapi::ApiDoc;
use enigm_server::routes::route_table;
use serde_json::Value;
use utoipa::OpenApi as _;

fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

/// A router path as the document spells it: OpenAPI has no catch-all, so axum's `{*rest}` is
/// documented as `{rest}`.
fn documented(path: &str) -> String {
    path.replace("{*", "{")
}

/// The `{name}` placeholders of a path template.
fn placeholders(template: &str) -> Vec<String> {
    template
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// Every operation of the document: (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            all.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    all
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let table = route_table();
    for route in &table {
        let method = route.method.as_str().to_lowercase();
        assert!(
            paths
                .get(&documented(route.path))
                .and_then(|item| item.get(&method))
                .is_some(),
            "{} {} is routed but not in the OpenAPI document",
            route.method,
            route.path
        );
    }
    let documented: usize = paths
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        table.len(),
        "the document lists operations the router does not have"
    );
}

#[test]
fn authenticated_routes_declare_bearer_security_and_critical_ones_the_pin() {
    let doc = document();
    for route in route_table() {
        let operation = &doc["paths"][documented(route.path)][route.method.as_str().to_lowercase()];
        match route.access {
            enigm_server::routes::Access::Public => {
                assert!(operation.get("security").is_none(), "{}", route.path)
            }
            enigm_server::routes::Access::Authenticated { critical, .. } => {
                assert!(
                    operation["security"][0].get("bearer").is_some(),
                    "{} {} lacks bearer security",
                    route.method,
                    route.path
                );
                let has_pin = operation["parameters"].as_array().is_some_and(|params| {
                    params
                        .iter()
                        .any(|p| p["name"] == enigm_api::PIN_HEADER && p["in"] == "header")
                });
                assert_eq!(
                    has_pin, critical,
                    "{} {}: PIN header documented = {has_pin}",
                    route.method, route.path
                );
            }
        }
    }
}

/// Every property name of every schema in the document.
fn property_names(doc: &Value) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for (schema_name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        collect(schema_name, schema, &mut names);
    }
    names
}

fn collect(schema_name: &str, value: &Value, names: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                for name in properties.keys() {
                    names.push((schema_name.to_owned(), name.clone()));
                }
            }
            for child in map.values() {
                collect(schema_name, child, names);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| collect(schema_name, item, names)),
        _ => {}
    }
}

#[test]
fn no_schema_carries_identity_documents_secrets_or_scores() {
    let doc = document();
    let names = property_names(&doc);
    assert!(!names.is_empty());
    let forbidden = [
        "email",
        "phone",
        "identity_document",
        "password_hash",
        "pin_hash",
        "token_digest",
        "totp_sealed",
        "score",
        "rating",
        "percentage",
        "serial",
        "imei",
        "public_key",
        "hardware",
    ];
    for (schema, name) in &names {
        let lower = name.to_lowercase();
        assert!(
            !forbidden.iter().any(|bad| lower.contains(bad)),
            "schema {schema} has a forbidden field `{name}`"
        );
    }
}

#[test]
fn account_requests_have_exactly_username_and_password() {
    let doc = document();
    for schema in ["CreateUserRequest", "LoginRequest"] {
        let properties: Vec<&str> = doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let expected: &[&str] = if schema == "LoginRequest" {
            &["password", "totp", "username"]
        } else {
            &["password", "username"]
        };
        let mut sorted = properties.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, expected, "{schema}");
    }
}

#[test]
fn path_parameters_are_exactly_the_placeholders_of_their_path() {
    let doc = document();
    for (path, method, operation) in operations(&doc) {
        assert!(
            !path.contains('*'),
            "{path}: not a valid OpenAPI path template"
        );
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut declared: Vec<String> = parameters
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        declared.sort_unstable();
        let mut expected = placeholders(&path);
        expected.sort_unstable();
        assert_eq!(
            declared, expected,
            "{method} {path}: path parameters do not match the template"
        );
        for parameter in &parameters {
            let location = parameter["in"].as_str().unwrap();
            assert!(
                ["path", "query", "header"].contains(&location),
                "{method} {path}: parameter in {location}"
            );
            if location == "path" {
                assert_eq!(parameter["required"], true, "{method} {path}");
            }
        }
    }
}

#[test]
fn query_structs_document_their_fields_as_query_parameters() {
    let doc = document();
    let query = |path: &str| -> Vec<String> {
        let mut names: Vec<String> = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort_unstable();
        names
    };
    assert_eq!(
        query(enigm_api::paths::AUDIT_EVENTS),
        [
            "action", "actor", "after", "before", "limit", "order", "outcome", "since"
        ]
    );
    assert_eq!(query(enigm_api::paths::APPROVALS), ["since", "state"]);
    assert_eq!(
        query(enigm_api::paths::DEVICES),
        [
            "after",
            "group",
            "limit",
            "order",
            "since",
            "state",
            "trust_state"
        ]
    );
    assert_eq!(query(enigm_api::paths::AUDIT_LEAVES), ["limit", "start"]);
    assert_eq!(
        query(enigm_api::paths::AUDIT_CONSISTENCY),
        ["first", "second"]
    );
}

/// The schema's `enum` of a component, as strings.
fn enum_values(doc: &Value, schema: &str) -> Vec<String> {
    doc["components"]["schemas"][schema]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("schema {schema} is not a documented enum"))
        .iter()
        .map(|value| value.as_str().unwrap().to_owned())
        .collect()
}

fn serde_spellings<T: serde::Serialize>(values: &[T]) -> Vec<String> {
    values
        .iter()
        .map(|value| {
            serde_json::to_value(value)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn enums_are_documented_with_the_spellings_the_api_sends() {
    use enigm_types::*;
    let doc = document();
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("AuditAction", serde_spellings(AuditAction::ALL)),
        ("Role", serde_spellings(&Role::ALL)),
        ("TrustState", serde_spellings(&TrustState::ALL)),
        ("DeviceState", serde_spellings(&DeviceState::ALL)),
        ("SignalKind", serde_spellings(&SignalKind::ALL)),
        ("SignalSource", serde_spellings(&SignalSource::ALL)),
        ("FindingKind", serde_spellings(&FindingKind::ALL)),
        ("ProductionGate", serde_spellings(&ProductionGate::ALL)),
        ("GateResult", serde_spellings(&GateResult::ALL)),
        ("SignalCheck", serde_spellings(&SignalCheck::ALL)),
        ("PatchLevelCheck", serde_spellings(&PatchLevelCheck::ALL)),
        ("LauncherSummary", serde_spellings(&LauncherSummary::ALL)),
        ("Severity", serde_spellings(&Severity::ALL)),
        ("ReleaseState", serde_spellings(&ReleaseState::ALL)),
        ("ApprovalKind", serde_spellings(&ApprovalKind::ALL)),
        ("ApprovalState", serde_spellings(&ApprovalState::ALL)),
        ("InstallOutcome", serde_spellings(&InstallOutcome::ALL)),
        ("Permission", serde_spellings(&Permission::ALL)),
    ];
    for (schema, spellings) in cases {
        assert_eq!(enum_values(&doc, schema), spellings, "{schema}");
    }
}

#[test]
fn production_gates_are_documented_with_why() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let status = &schemas["GateStatus"];
    assert!(status["properties"]["because"].is_object(), "{status}");
    let evidence = serde_json::to_string(&schemas["GateEvidence"]).unwrap();
    // The three kinds of entry, by their tag, and what a signal entry names.
    for word in [
        "\"signal\"",
        "\"patch-level\"",
        "\"not-managed\"",
        "\"evidence\"",
        "\"check\"",
        "\"source\"",
        "\"value\"",
    ] {
        assert!(evidence.contains(word), "{word} in {evidence}");
    }
}

#[test]
fn edge_answers_are_documented_where_they_happen() {
    let doc = document();
    for (path, method, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().unwrap();
        let has = |status: &str| responses.contains_key(status);
        if operation.get("security").is_some() {
            assert!(has("401") && has("403"), "{method} {path}: 401/403");
        }
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if parameters
            .iter()
            .any(|p| p["name"] == enigm_api::PIN_HEADER)
        {
            assert!(has("423"), "{method} {path}: 423 (PIN locked)");
        }
        if parameters
            .iter()
            .any(|p| p["in"] == "path" || p["in"] == "query")
        {
            assert!(has("400"), "{method} {path}: 400 (malformed parameter)");
        }
        if operation["requestBody"]["content"]
            .get("application/json")
            .is_some()
        {
            for status in ["400", "413", "415", "422"] {
                assert!(has(status), "{method} {path}: {status} (JSON body)");
            }
        }
    }
}

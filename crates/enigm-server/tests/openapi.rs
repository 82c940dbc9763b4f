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
                .get(route.path)
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
        let operation = &doc["paths"][route.path][route.method.as_str().to_lowercase()];
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

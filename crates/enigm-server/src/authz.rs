//! The one authorization decision of Command: may this administrator perform this action?
//!
//! Decided by Cedar over the policy set in `policies/command.cedar`, parsed and validated against
//! its schema once at start-up. Anything the policies do not permit is denied.

use std::collections::HashSet;
use std::str::FromStr;

use cedar_policy::{
    Authorizer as CedarAuthorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicySet, Request, Schema, ValidationMode, Validator,
};
use enigm_types::{AdminId, Permission, Role};

const POLICIES: &str = include_str!("../policies/command.cedar");
const SCHEMA: &str = include_str!("../policies/command.cedarschema");

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("authorization schema does not parse: {0}")]
    Schema(String),
    #[error("authorization policies do not parse: {0}")]
    Parse(String),
    #[error("authorization policies do not validate against the schema: {0}")]
    Validation(String),
    #[error("authorization entity name is invalid: {0}")]
    Name(String),
}

/// Cedar policies, parsed once.
pub struct Authorizer {
    policies: PolicySet,
    schema: Schema,
    cedar: CedarAuthorizer,
    admin_type: EntityTypeName,
    role_type: EntityTypeName,
    action_type: EntityTypeName,
    command: EntityUid,
}

impl Authorizer {
    pub fn new() -> Result<Self, PolicyError> {
        let (schema, _warnings) = Schema::from_cedarschema_str(SCHEMA)
            .map_err(|error| PolicyError::Schema(error.to_string()))?;
        let policies =
            PolicySet::from_str(POLICIES).map_err(|error| PolicyError::Parse(error.to_string()))?;
        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !validation.validation_passed() {
            let errors: Vec<String> = validation
                .validation_errors()
                .map(|error| error.to_string())
                .collect();
            return Err(PolicyError::Validation(errors.join("; ")));
        }
        let name = |text: &str| {
            EntityTypeName::from_str(text).map_err(|error| PolicyError::Name(error.to_string()))
        };
        let command_type = name("Enigm::Command")?;
        Ok(Authorizer {
            policies,
            schema,
            cedar: CedarAuthorizer::new(),
            admin_type: name("Enigm::Admin")?,
            role_type: name("Enigm::Role")?,
            action_type: name("Enigm::Action")?,
            command: EntityUid::from_type_name_and_id(command_type, EntityId::new("command")),
        })
    }

    /// Whether an administrator holding `roles` may perform `permission`. Any failure to build
    /// the request denies.
    pub fn is_allowed(&self, admin: AdminId, roles: &[Role], permission: Permission) -> bool {
        let principal = EntityUid::from_type_name_and_id(
            self.admin_type.clone(),
            EntityId::new(admin.to_string()),
        );
        let action = EntityUid::from_type_name_and_id(
            self.action_type.clone(),
            EntityId::new(permission.as_str()),
        );
        let parents: HashSet<EntityUid> = roles
            .iter()
            .map(|role| {
                EntityUid::from_type_name_and_id(
                    self.role_type.clone(),
                    EntityId::new(role.as_str()),
                )
            })
            .collect();
        let mut entities: Vec<Entity> = parents
            .iter()
            .map(|role| Entity::with_uid(role.clone()))
            .collect();
        entities.push(Entity::new_no_attrs(principal.clone(), parents));
        entities.push(Entity::with_uid(self.command.clone()));
        // The entities are built here from typed values, so validating them against the schema on
        // every request would only cost time; the request itself is still schema-checked.
        let Ok(entities) = Entities::from_entities(entities, None) else {
            return false;
        };
        let Ok(request) = Request::new(
            principal,
            action,
            self.command.clone(),
            Context::empty(),
            Some(&self.schema),
        ) else {
            return false;
        };
        self.cedar
            .is_authorized(&request, &self.policies, &entities)
            .decision()
            == Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_validate() {
        assert!(Authorizer::new().is_ok());
    }

    #[test]
    fn every_permission_is_an_action_of_the_schema() {
        let authorizer = Authorizer::new().unwrap();
        let admin = AdminId::random();
        // Owners hold every non-self permission and everybody holds the self ones, so a
        // permission missing from the schema would show up as a denial for an owner.
        for permission in Permission::ALL {
            assert!(
                authorizer.is_allowed(admin, &[Role::Owner], permission),
                "{permission}"
            );
        }
    }

    #[test]
    fn no_roles_means_only_self_service() {
        let authorizer = Authorizer::new().unwrap();
        let admin = AdminId::random();
        for permission in Permission::ALL {
            let expected = permission.as_str().starts_with("self.");
            assert_eq!(
                authorizer.is_allowed(admin, &[], permission),
                expected,
                "{permission}"
            );
        }
    }

    #[test]
    fn default_approval_rules_name_only_roles_that_decide_approvals() {
        let authorizer = Authorizer::new().unwrap();
        for kind in enigm_types::ApprovalKind::ALL {
            for role in enigm_types::ApprovalRule::default_for(kind).approver_roles() {
                assert!(
                    authorizer.is_allowed(AdminId::random(), &[*role], Permission::ApprovalsDecide),
                    "the default `{kind}` rule names `{role}`, which cannot decide approvals"
                );
            }
        }
    }

    #[test]
    fn auditors_only_read() {
        let authorizer = Authorizer::new().unwrap();
        let admin = AdminId::random();
        for permission in Permission::ALL {
            if authorizer.is_allowed(admin, &[Role::Auditor], permission)
                && !permission.as_str().starts_with("self.")
            {
                assert!(permission.is_read_only(), "auditor may {permission}");
            }
        }
    }
}

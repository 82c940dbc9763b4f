//! The device lifecycle against an independent transition table written from enigm-docs §20
//! item 11: PendingEnrollment→Trusted|Retired; Trusted→Restricted|Revoked|Replaced|Retired;
//! Restricted→Trusted|Revoked|Retired; Revoked→Retired; Replaced→Retired; Retired is terminal.
//! Anything else is refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::collections::{BTreeSet, HashSet};

use enigm_trust::{
    DeviceCommand, DeviceState, Lifecycle, LifecycleAction, LifecycleError, LifecycleRefusal,
};
use proptest::prelude::*;

use DeviceState as D;
use LifecycleAction as A;

/// The spec's edges, exactly as item 11 lists them.
const SPEC_EDGES: [(DeviceState, DeviceState); 11] = [
    (D::PendingEnrollment, D::Trusted),
    (D::PendingEnrollment, D::Retired),
    (D::Trusted, D::Restricted),
    (D::Trusted, D::Revoked),
    (D::Trusted, D::Replaced),
    (D::Trusted, D::Retired),
    (D::Restricted, D::Trusted),
    (D::Restricted, D::Revoked),
    (D::Restricted, D::Retired),
    (D::Revoked, D::Retired),
    (D::Replaced, D::Retired),
];

/// Which action takes each edge: the action names the target state, with activation out of
/// pending enrollment and reactivation out of restriction both leading to `Trusted`.
fn expected(from: DeviceState, action: LifecycleAction) -> Option<DeviceState> {
    let allowed: &[(DeviceState, LifecycleAction, DeviceState)] = &[
        (D::PendingEnrollment, A::Activate, D::Trusted),
        (D::PendingEnrollment, A::Retire, D::Retired),
        (D::Trusted, A::Restrict, D::Restricted),
        (D::Trusted, A::Revoke, D::Revoked),
        (D::Trusted, A::Replace, D::Replaced),
        (D::Trusted, A::Retire, D::Retired),
        (D::Restricted, A::Reactivate, D::Trusted),
        (D::Restricted, A::Revoke, D::Revoked),
        (D::Restricted, A::Retire, D::Retired),
        (D::Revoked, A::Retire, D::Retired),
        (D::Replaced, A::Retire, D::Retired),
    ];
    allowed
        .iter()
        .find(|(state, act, _)| *state == from && *act == action)
        .map(|(_, _, to)| *to)
}

#[test]
fn every_state_and_action_follows_the_table() {
    let mut allowed = 0;
    for from in DeviceState::ALL {
        for action in LifecycleAction::ALL {
            let got = from.apply(action);
            match expected(from, action) {
                Some(to) => {
                    allowed += 1;
                    assert_eq!(got, Ok(to), "{from} {action}");
                }
                None => assert_eq!(got, Err(LifecycleError { from, action }), "{from} {action}"),
            }
        }
    }
    assert_eq!(allowed, SPEC_EDGES.len());
}

#[test]
fn the_reachable_graph_is_the_specs() {
    let graph: BTreeSet<(&str, &str)> = DeviceState::ALL
        .into_iter()
        .flat_map(|from| {
            LifecycleAction::ALL
                .into_iter()
                .filter_map(move |action| from.apply(action).ok().map(|to| (from, to)))
        })
        .map(|(from, to)| (from.as_str(), to.as_str()))
        .collect();
    let spec: BTreeSet<(&str, &str)> = SPEC_EDGES
        .iter()
        .map(|(from, to)| (from.as_str(), to.as_str()))
        .collect();
    assert_eq!(graph, spec);
    // No self loops: an action always changes the state.
    assert!(graph.iter().all(|(from, to)| from != to));
}

#[test]
fn everything_starts_at_pending_enrollment_and_ends_at_retired() {
    // Every state is reachable from pending enrollment, and retirement from every state.
    let mut reached = HashSet::from([D::PendingEnrollment]);
    let mut frontier = vec![D::PendingEnrollment];
    while let Some(state) = frontier.pop() {
        for action in LifecycleAction::ALL {
            if let Ok(next) = state.apply(action)
                && reached.insert(next)
            {
                frontier.push(next);
            }
        }
    }
    assert_eq!(reached, DeviceState::ALL.into_iter().collect());
    for state in DeviceState::ALL {
        if state != D::Retired {
            assert_eq!(state.apply(A::Retire), Ok(D::Retired), "{state}");
        }
    }
    for action in LifecycleAction::ALL {
        assert_eq!(
            D::Retired.apply(action),
            Err(LifecycleError {
                from: D::Retired,
                action
            })
        );
    }
    // Revoked and replaced devices never come back.
    for from in [D::Revoked, D::Replaced] {
        for action in LifecycleAction::ALL {
            assert!(
                matches!(from.apply(action), Err(_) | Ok(D::Retired)),
                "{from} {action}"
            );
        }
    }
}

#[test]
fn guarded_actions() {
    for action in LifecycleAction::ALL {
        assert_eq!(
            action.requires_approval(),
            matches!(action, A::Reactivate | A::Revoke),
            "{action}"
        );
        assert_eq!(
            action.requires_device_acknowledgement(),
            action == A::Retire,
            "{action}"
        );
    }
}

#[test]
fn only_trusted_and_restricted_devices_are_active() {
    for state in DeviceState::ALL {
        assert_eq!(
            state.is_active(),
            matches!(state, D::Trusted | D::Restricted),
            "{state}"
        );
    }
}

#[test]
fn names_round_trip() {
    let states = [
        (D::PendingEnrollment, "pending-enrollment"),
        (D::Trusted, "trusted"),
        (D::Restricted, "restricted"),
        (D::Revoked, "revoked"),
        (D::Replaced, "replaced"),
        (D::Retired, "retired"),
    ];
    assert_eq!(states.map(|(state, _)| state), DeviceState::ALL);
    for (state, name) in states {
        assert_eq!(state.to_string(), name);
        assert_eq!(name.parse::<DeviceState>(), Ok(state));
        assert_eq!(state.to_string().parse::<DeviceState>(), Ok(state));
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            format!("\"{name}\"")
        );
        assert_eq!(
            serde_json::from_str::<DeviceState>(&format!("\"{name}\"")).unwrap(),
            state
        );
    }
    for wrong in [
        "Trusted",
        "pending_enrollment",
        "PendingEnrollment",
        "",
        "trusted ",
    ] {
        assert!(wrong.parse::<DeviceState>().is_err(), "{wrong}");
    }

    let actions = [
        (A::Activate, "activate"),
        (A::Restrict, "restrict"),
        (A::Reactivate, "reactivate"),
        (A::Revoke, "revoke"),
        (A::Replace, "replace"),
        (A::Retire, "retire"),
    ];
    assert_eq!(actions.map(|(action, _)| action), LifecycleAction::ALL);
    for (action, name) in actions {
        // `LifecycleAction` has no `FromStr`; its serde name is the one that parses.
        assert_eq!(action.to_string(), name);
        assert_eq!(action.as_str(), name);
        let json = serde_json::to_string(&action).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(
            serde_json::from_str::<LifecycleAction>(&json).unwrap(),
            action
        );
    }
    assert!(serde_json::from_str::<LifecycleAction>("\"Revoke\"").is_err());
}

#[test]
fn refusals_say_what_was_refused() {
    let error = D::Retired.apply(A::Reactivate).unwrap_err();
    assert_eq!(error.to_string(), "cannot reactivate a retired device");
    let error = D::Revoked.apply(A::Reactivate).unwrap_err();
    assert_eq!(error.to_string(), "cannot reactivate a revoked device");
    let error = D::PendingEnrollment.apply(A::Replace).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot replace a pending-enrollment device"
    );
}

proptest! {
    /// Any sequence of actions, applied to the machine and to the table, ends the same way;
    /// a refused action leaves the state as it was.
    #[test]
    fn action_sequences_follow_the_table(
        start in prop::sample::select(DeviceState::ALL.to_vec()),
        actions in prop::collection::vec(prop::sample::select(LifecycleAction::ALL.to_vec()), 0..24),
    ) {
        let mut machine = start;
        let mut model = start;
        for action in actions {
            match machine.apply(action) {
                Ok(next) => machine = next,
                Err(error) => prop_assert_eq!(error, LifecycleError { from: machine, action }),
            }
            if let Some(next) = expected(model, action) {
                model = next;
            }
            prop_assert_eq!(machine, model);
            prop_assert!(SPEC_EDGES.iter().any(|(_, to)| *to == machine) || machine == start);
        }
    }
}

#[test]
fn lifecycle_actions_parse_from_their_names() {
    for action in LifecycleAction::ALL {
        assert_eq!(action.to_string().parse::<LifecycleAction>(), Ok(action));
    }
    assert!("Revoke".parse::<LifecycleAction>().is_err());
    assert!("".parse::<LifecycleAction>().is_err());
}

/// One step of the two-phase lifecycle: an immediate action, a command issued (with or without
/// the wipe opt-in), or a device acknowledgement.
#[derive(Debug, Clone, Copy)]
enum Step {
    Apply(LifecycleAction),
    Issue(DeviceCommand, bool),
    Acknowledge(DeviceCommand),
}

fn steps() -> Vec<Step> {
    let mut steps: Vec<Step> = LifecycleAction::ALL.into_iter().map(Step::Apply).collect();
    for command in DeviceCommand::ALL {
        steps.push(Step::Issue(command, false));
        steps.push(Step::Issue(command, true));
        steps.push(Step::Acknowledge(command));
    }
    steps
}

/// The two-phase model, written independently of `Lifecycle`: (confirmed, pending) pairs.
fn model_step(
    (confirmed, pending): (DeviceState, Option<DeviceCommand>),
    step: Step,
) -> Option<(DeviceState, Option<DeviceCommand>)> {
    match step {
        Step::Apply(action) => {
            if pending.is_some() && action != A::Revoke {
                return None;
            }
            expected(confirmed, action).map(|next| (next, pending))
        }
        Step::Issue(command, opt_in) => {
            let wipe_ok = command != DeviceCommand::Wipe || opt_in;
            (pending.is_none() && confirmed != D::Retired && wipe_ok)
                .then_some((confirmed, Some(command)))
        }
        Step::Acknowledge(command) => {
            (pending == Some(command) && confirmed != D::Retired).then_some((D::Retired, None))
        }
    }
}

fn machine_step(lifecycle: Lifecycle, step: Step) -> Result<Lifecycle, LifecycleRefusal> {
    match step {
        Step::Apply(action) => lifecycle.apply(action),
        Step::Issue(command, opt_in) => lifecycle.issue(command, opt_in),
        Step::Acknowledge(command) => lifecycle.acknowledge(command),
    }
}

#[test]
fn two_phase_lifecycle_follows_the_model_for_every_state_pending_command_and_step() {
    let pendings = [None, Some(DeviceCommand::Retire), Some(DeviceCommand::Wipe)];
    for confirmed in DeviceState::ALL {
        for pending in pendings {
            for step in steps() {
                let lifecycle = Lifecycle { confirmed, pending };
                let got = machine_step(lifecycle, step)
                    .ok()
                    .map(|next| (next.confirmed, next.pending));
                assert_eq!(
                    got,
                    model_step((confirmed, pending), step),
                    "{confirmed} {pending:?} {step:?}"
                );
            }
        }
    }
}

#[test]
fn requested_and_confirmed_states_stay_apart_until_the_device_acknowledges() {
    let issued = Lifecycle::new(D::Trusted)
        .issue(DeviceCommand::Retire, false)
        .unwrap();
    assert_eq!(issued.confirmed, D::Trusted);
    assert_eq!(issued.requested(), D::Retired);
    assert_eq!(
        issued.apply(A::Restrict),
        Err(LifecycleRefusal::CommandPending(DeviceCommand::Retire))
    );
    assert_eq!(
        issued.acknowledge(DeviceCommand::Wipe),
        Err(LifecycleRefusal::NotIssued(DeviceCommand::Wipe))
    );
    // Revocation still works, and the retirement still completes afterwards.
    let revoked = issued.apply(A::Revoke).unwrap();
    assert_eq!(revoked.confirmed, D::Revoked);
    assert_eq!(revoked.requested(), D::Retired);
    let done = revoked.acknowledge(DeviceCommand::Retire).unwrap();
    assert_eq!(done, Lifecycle::new(D::Retired));
    assert_eq!(done.requested(), D::Retired);

    assert_eq!(
        Lifecycle::new(D::Trusted).issue(DeviceCommand::Wipe, false),
        Err(LifecycleRefusal::NoWipeOptIn)
    );
    let wipe = Lifecycle::new(D::Restricted)
        .issue(DeviceCommand::Wipe, true)
        .unwrap();
    assert_eq!(
        wipe.acknowledge(DeviceCommand::Wipe).unwrap().confirmed,
        D::Retired
    );
    assert!(matches!(
        Lifecycle::new(D::Retired).issue(DeviceCommand::Retire, true),
        Err(LifecycleRefusal::NotAllowed(_))
    ));
    for command in DeviceCommand::ALL {
        assert_eq!(command.to_string().parse::<DeviceCommand>(), Ok(command));
        assert_eq!(command.requires_approval(), command == DeviceCommand::Wipe);
        assert_eq!(
            command.requires_wipe_opt_in(),
            command == DeviceCommand::Wipe
        );
    }
}

proptest! {
    /// Any sequence of steps keeps the machine and the model together; a pending command never
    /// outlives its device's retirement.
    #[test]
    fn two_phase_sequences_follow_the_model(
        start in prop::sample::select(DeviceState::ALL.to_vec()),
        picks in prop::collection::vec(0usize..12, 0..32),
    ) {
        let all = steps();
        let mut machine = Lifecycle::new(start);
        let mut model = (start, None);
        for pick in picks {
            let step = all[pick % all.len()];
            if let Ok(next) = machine_step(machine, step) {
                machine = next;
            }
            if let Some(next) = model_step(model, step) {
                model = next;
            }
            prop_assert_eq!((machine.confirmed, machine.pending), model);
            prop_assert!(!(machine.confirmed == D::Retired && machine.pending.is_some()));
        }
    }
}

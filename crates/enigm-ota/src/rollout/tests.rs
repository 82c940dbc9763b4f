use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const STABLE: RolloutModel = RolloutModel::StableRollout;

fn handle(n: u8) -> DeviceHandle {
    DeviceHandle::from_digest(&[n; 20])
}

#[test]
fn every_skip_and_every_step_back_is_refused() {
    for from in ReleaseStage::ALL {
        for to in ReleaseStage::ALL {
            let result = check_step(from, to, STABLE, RolloutStatus::Active);
            let from_index = ReleaseStage::ALL.iter().position(|s| *s == from).unwrap();
            let to_index = ReleaseStage::ALL.iter().position(|s| *s == to).unwrap();
            let operator_step = to_index == from_index + 1 && to > ReleaseStage::Registered;
            assert_eq!(result.is_ok(), operator_step, "{from} -> {to}: {result:?}");
            if let Err(error) = result {
                assert_eq!(error.reason(), ReasonCategory::InvalidTransition);
            }
        }
    }
}

#[test]
fn stages_up_to_registered_follow_from_signing_and_publishing() {
    use ReleaseStage as S;
    use ReleaseState as R;
    assert_eq!(stage_of(R::Draft, false, None), S::Build);
    assert_eq!(stage_of(R::Draft, true, None), S::ArtifactPrepared);
    assert_eq!(stage_of(R::Approved, true, None), S::ManifestCreated);
    assert_eq!(stage_of(R::Signed, true, None), S::Signed);
    assert_eq!(stage_of(R::Published, true, None), S::Registered);
    assert_eq!(stage_of(R::Published, true, Some(S::Stable)), S::Stable);
    // A stored operator stage means nothing before the release is published.
    assert_eq!(stage_of(R::Signed, true, Some(S::Stable)), S::Signed);
    assert_eq!(
        check_step(S::Signed, S::Registered, STABLE, RolloutStatus::Active),
        Err(StageError::NotAnOperatorStep { to: S::Registered })
    );
}

#[test]
fn a_draft_plan_never_starts_and_a_withdrawn_release_never_moves() {
    use ReleaseStage as S;
    let draft = check_step(
        S::Validated,
        S::ControlledRollout,
        RolloutModel::Draft,
        RolloutStatus::Active,
    );
    assert_eq!(draft, Err(StageError::DraftPlan));
    assert_eq!(
        draft.unwrap_err().reason(),
        ReasonCategory::RolloutDraftPlan
    );
    // Validating a release under a draft plan is allowed: nothing is offered either way.
    assert!(
        check_step(
            S::Registered,
            S::Validated,
            RolloutModel::Draft,
            RolloutStatus::Active
        )
        .is_ok()
    );
    for to in [S::Validated, S::ControlledRollout, S::Stable] {
        let from = next_stage_before(to);
        assert_eq!(
            check_step(from, to, STABLE, RolloutStatus::Withdrawn),
            Err(StageError::Withdrawn)
        );
    }
}

fn next_stage_before(stage: ReleaseStage) -> ReleaseStage {
    *ReleaseStage::ALL
        .iter()
        .find(|candidate| next_stage(**candidate) == Some(stage))
        .unwrap()
}

#[test]
fn a_paused_or_halted_rollout_does_not_widen() {
    use ReleaseStage as S;
    for status in [RolloutStatus::Paused, RolloutStatus::Halted] {
        for (from, to) in [
            (S::Validated, S::ControlledRollout),
            (S::ControlledRollout, S::Stable),
        ] {
            let refused = check_step(from, to, STABLE, status);
            assert_eq!(refused, Err(StageError::Paused));
            assert_eq!(refused.unwrap_err().reason(), ReasonCategory::RolloutPaused);
        }
        assert!(check_step(S::Registered, S::Validated, STABLE, status).is_ok());
    }
}

#[test]
fn approvals_are_needed_for_stable_and_for_a_security_rollout_only() {
    for model in RolloutModel::ALL {
        for to in ReleaseStage::ALL {
            let expected = to == ReleaseStage::Stable
                || (to == ReleaseStage::ControlledRollout
                    && model == RolloutModel::SecurityRollout);
            assert_eq!(step_needs_approval(to, model), expected, "{model} {to}");
        }
    }
}

#[test]
fn presets_are_valid_plans() {
    for model in RolloutModel::ALL {
        let groups = if model == RolloutModel::Validation {
            vec!["lab".to_owned()]
        } else {
            Vec::new()
        };
        RolloutPlan::preset(model, groups).validate().unwrap();
    }
    let mut plan = RolloutPlan::preset(STABLE, Vec::new());
    plan.waves[1].share_bp = plan.waves[0].share_bp;
    assert_eq!(plan.validate(), Err(PlanError::WaveShares));
    let mut plan = RolloutPlan::preset(STABLE, Vec::new());
    plan.waves.pop();
    assert_eq!(plan.validate(), Err(PlanError::IncompleteWaves));
    let mut plan = RolloutPlan::preset(STABLE, Vec::new());
    plan.halt.max_failure_percent = 0;
    assert_eq!(plan.validate(), Err(PlanError::HaltRule));
    assert_eq!(
        RolloutPlan::preset(RolloutModel::Validation, Vec::new()).validate(),
        Err(PlanError::ValidationGroups)
    );
}

#[test]
fn a_place_depends_on_release_and_handle_only() {
    assert_eq!(place(b"r1", &handle(1)), place(b"r1", &handle(1)));
    assert_ne!(place(b"r1", &handle(1)), place(b"r2", &handle(1)));
    assert_ne!(place(b"r1", &handle(1)), place(b"r1", &handle(2)));
}

#[test]
fn the_halt_waits_for_its_sample_and_then_trips_above_the_threshold() {
    let rule = HaltRule {
        max_failure_percent: 10,
        min_reports: 10,
    };
    let reports = |installed, failed, rolled_back| WaveReports {
        installed,
        failed,
        rolled_back,
    };
    assert!(!should_halt(reports(0, 5, 4), rule), "sample too small");
    assert!(should_halt(reports(0, 5, 5), rule));
    assert!(
        !should_halt(reports(9, 1, 0), rule),
        "exactly 10 % is allowed"
    );
    assert!(should_halt(reports(8, 1, 1), rule));
    assert!(!should_halt(reports(u64::MAX, u64::MAX / 20, 0), rule));
}

#[test]
fn the_next_wave_waits_for_the_soak_and_an_active_rollout() {
    let plan = RolloutPlan::preset(STABLE, Vec::new());
    let day = Duration::from_secs(86_400);
    let rolling = ReleaseStage::ControlledRollout;
    assert_eq!(
        check_advance(&plan, rolling, RolloutStatus::Active, 0, Duration::ZERO),
        Ok(0)
    );
    assert_eq!(
        check_advance(&plan, rolling, RolloutStatus::Active, 1, day / 2),
        Err(AdvanceError::SoakNotElapsed { remaining: day / 2 })
    );
    assert_eq!(
        check_advance(&plan, rolling, RolloutStatus::Active, 1, day),
        Ok(1)
    );
    assert_eq!(
        check_advance(&plan, rolling, RolloutStatus::Active, 3, day),
        Err(AdvanceError::NoNextWave)
    );
    for status in [
        RolloutStatus::Paused,
        RolloutStatus::Halted,
        RolloutStatus::Withdrawn,
    ] {
        assert_eq!(
            check_advance(&plan, rolling, status, 1, day),
            Err(AdvanceError::NotActive(status))
        );
    }
    assert_eq!(
        check_advance(
            &plan,
            ReleaseStage::Validated,
            RolloutStatus::Active,
            0,
            day
        ),
        Err(AdvanceError::NotRollingOut)
    );
}

struct Fixture {
    plan: RolloutPlan,
    models: Vec<String>,
    cuts: Vec<Cut>,
}

impl Fixture {
    fn new(model: RolloutModel) -> Fixture {
        Fixture {
            plan: RolloutPlan::preset(model, vec!["lab".to_owned()]),
            models: vec!["pixel-8".to_owned()],
            cuts: vec![Cut::Below(u64::MAX / 10)],
        }
    }

    fn release(&self, stage: ReleaseStage, status: RolloutStatus) -> RolloutStanding<'_> {
        RolloutStanding {
            stage,
            status,
            plan: &self.plan,
            cuts: &self.cuts,
            channel: "stable",
            models: &self.models,
            rollback_index: 5,
            release_version: "2.0",
        }
    }
}

fn trusted_device(place: u64) -> DeviceStanding<'static> {
    DeviceStanding {
        lifecycle: DeviceState::Trusted,
        ota_eligibility: Ok(()),
        group: "fleet",
        pinned_version: None,
        model: "pixel-8",
        channel: "stable",
        installed_rollback_index: 4,
        place,
    }
}

#[test]
fn offers_follow_the_stage_the_waves_and_the_validation_groups() {
    let fixture = Fixture::new(STABLE);
    let inside = trusted_device(1);
    let outside = trusted_device(u64::MAX - 1);
    let lab = DeviceStanding {
        group: "lab",
        ..outside
    };
    use ReleaseStage as S;
    let active = RolloutStatus::Active;
    for stage in [S::Build, S::Signed, S::Registered] {
        for device in [&inside, &outside, &lab] {
            assert_eq!(
                decide_offer(&fixture.release(stage, active), device),
                OfferDecision::NoOffer(ReasonCategory::RolloutNotOffered)
            );
        }
    }
    let validated = fixture.release(S::Validated, active);
    assert_eq!(
        decide_offer(&validated, &lab),
        OfferDecision::Offer { wave: None }
    );
    assert_eq!(
        decide_offer(&validated, &inside),
        OfferDecision::NoOffer(ReasonCategory::NotInWave)
    );
    let rolling = fixture.release(S::ControlledRollout, active);
    assert_eq!(
        decide_offer(&rolling, &inside),
        OfferDecision::Offer { wave: Some(0) }
    );
    assert_eq!(
        decide_offer(&rolling, &outside),
        OfferDecision::NoOffer(ReasonCategory::NotInWave)
    );
    let stable = fixture.release(S::Stable, active);
    assert_eq!(
        decide_offer(&stable, &outside),
        OfferDecision::Offer { wave: None }
    );
    for (status, reason) in [
        (RolloutStatus::Paused, ReasonCategory::RolloutPaused),
        (RolloutStatus::Halted, ReasonCategory::RolloutPaused),
        (RolloutStatus::Withdrawn, ReasonCategory::RolloutWithdrawn),
    ] {
        assert_eq!(
            decide_offer(&fixture.release(S::Stable, status), &inside),
            OfferDecision::NoOffer(reason)
        );
    }
    let draft = Fixture::new(RolloutModel::Draft);
    assert_eq!(
        decide_offer(&draft.release(S::Stable, active), &inside),
        OfferDecision::NoOffer(ReasonCategory::RolloutNotOffered)
    );
}

#[test]
fn a_pinned_group_gets_its_version_only() {
    let fixture = Fixture::new(STABLE);
    let stable = fixture.release(ReleaseStage::Stable, RolloutStatus::Active);
    let pinned_elsewhere = DeviceStanding {
        pinned_version: Some("1.9"),
        ..trusted_device(1)
    };
    assert_eq!(
        decide_offer(&stable, &pinned_elsewhere),
        OfferDecision::NoOffer(ReasonCategory::VersionPinned)
    );
    let pinned_here = DeviceStanding {
        pinned_version: Some("2.0"),
        ..trusted_device(1)
    };
    assert_eq!(
        decide_offer(&stable, &pinned_here),
        OfferDecision::Offer { wave: None }
    );
}

fn untrusted_standing() -> impl Strategy<Value = (DeviceStanding<'static>, ReasonCategory)> {
    let base = trusted_device(0);
    prop_oneof![
        Just((
            DeviceStanding {
                lifecycle: DeviceState::Revoked,
                ..base
            },
            ReasonCategory::DeviceRevoked
        )),
        Just((
            DeviceStanding {
                lifecycle: DeviceState::Restricted,
                ..base
            },
            ReasonCategory::DeviceRestricted
        )),
        Just((
            DeviceStanding {
                lifecycle: DeviceState::Retired,
                ..base
            },
            ReasonCategory::DeviceNotActive
        )),
        Just((
            DeviceStanding {
                lifecycle: DeviceState::PendingEnrollment,
                ..base
            },
            ReasonCategory::DeviceNotActive
        )),
        Just((
            DeviceStanding {
                ota_eligibility: Err(ReasonCategory::TrustInactive),
                ..base
            },
            ReasonCategory::TrustInactive
        )),
        Just((
            DeviceStanding {
                ota_eligibility: Err(ReasonCategory::AttestationRequired),
                ..base
            },
            ReasonCategory::AttestationRequired
        )),
        Just((
            DeviceStanding {
                model: "other-phone",
                ..base
            },
            ReasonCategory::IncompatibleHardware
        )),
        Just((
            DeviceStanding {
                channel: "beta",
                ..base
            },
            ReasonCategory::ChannelMismatch
        )),
        Just((
            DeviceStanding {
                installed_rollback_index: 5,
                ..base
            },
            ReasonCategory::UpdateNotFound
        )),
    ]
}

proptest! {
    /// A revoked, restricted, inactive, unattested, wrong-model or up-to-date device is never
    /// offered, whatever its place, group, the stage or the plan.
    #[test]
    fn an_untrusted_device_is_never_offered(
        (device, reason) in untrusted_standing(),
        place in any::<u64>(),
        lab in any::<bool>(),
        stage in prop::sample::select(ReleaseStage::ALL.to_vec()),
        model in prop::sample::select(RolloutModel::ALL.to_vec()),
    ) {
        let fixture = Fixture { cuts: vec![Cut::Everyone], ..Fixture::new(model) };
        let device = DeviceStanding { place, group: if lab { "lab" } else { "fleet" }, ..device };
        let decision = decide_offer(&fixture.release(stage, RolloutStatus::Active), &device);
        prop_assert!(matches!(decision, OfferDecision::NoOffer(_)));
        // Lifecycle and Command's own eligibility decide before anything about the release.
        if device.lifecycle != DeviceState::Trusted || device.ota_eligibility.is_err() {
            prop_assert_eq!(decision, OfferDecision::NoOffer(reason));
        }
    }

    /// Waves are cumulative, their union is every device, a device never moves to a later
    /// wave, and each wave takes in its share of the devices known when it opened, rounded up.
    #[test]
    fn waves_cover_the_fleet_in_order_and_to_the_device(
        places in prop::collection::btree_set(any::<u64>(), 0..400),
        shares in prop::collection::btree_set(1u16..WHOLE_FLEET_BP, 0..6),
    ) {
        let mut waves: Vec<u16> = shares.into_iter().collect();
        waves.push(WHOLE_FLEET_BP);
        let known: Vec<u64> = places.iter().copied().collect();
        let mut cuts: Vec<Cut> = Vec::new();
        let mut first_wave: Vec<Option<usize>> = vec![None; known.len()];
        for (index, share) in waves.iter().enumerate() {
            let mut scratch = known.clone();
            let cut = open_wave(&mut scratch, *share, cuts.last().copied());
            prop_assert!(cuts.last().is_none_or(|previous| *previous <= cut));
            cuts.push(cut);
            let inside = known.iter().filter(|place| cut.includes(**place)).count();
            let wanted = (known.len() * usize::from(*share)).div_ceil(usize::from(WHOLE_FLEET_BP));
            prop_assert_eq!(inside, wanted);
            for (device, place) in known.iter().enumerate() {
                let wave = wave_of(&cuts, *place);
                match (first_wave[device], wave) {
                    (Some(before), now) => prop_assert_eq!(Some(before), now),
                    (None, Some(now)) => {
                        prop_assert_eq!(now, index);
                        first_wave[device] = Some(now);
                    }
                    (None, None) => {}
                }
            }
        }
        let reached: BTreeSet<u64> = known.iter().copied().filter(|place| wave_of(&cuts, *place).is_some()).collect();
        prop_assert_eq!(reached, places);
    }

    /// Random operator steps against a model of the stage machine: a stage index that moves by
    /// one from `registered` on, never once the release is withdrawn, and never into the
    /// rollout or stable while paused or halted.
    #[test]
    fn random_steps_follow_the_model(
        steps in prop::collection::vec(
            (0usize..ReleaseStage::ALL.len(), prop::sample::select(RolloutStatus::ALL.to_vec())),
            0..40,
        ),
        model in prop::sample::select(RolloutModel::ALL.to_vec()),
    ) {
        let registered = 4;
        let mut model_index = registered;
        let mut stage = ReleaseStage::Registered;
        let mut status = RolloutStatus::Active;
        for (target, next_status) in steps {
            // Withdrawal is final; any other status may come and go.
            if status != RolloutStatus::Withdrawn {
                status = next_status;
            }
            let to = ReleaseStage::ALL[target];
            let widening = target >= 6;
            let allowed = status != RolloutStatus::Withdrawn
                && target == model_index + 1
                && !(widening && model == RolloutModel::Draft)
                && !(widening && status != RolloutStatus::Active);
            let result = check_step(stage, to, model, status);
            prop_assert_eq!(result.is_ok(), allowed, "{} -> {}: {:?}", stage, to, result);
            if result.is_ok() {
                stage = to;
                model_index = target;
            }
            prop_assert_eq!(ReleaseStage::ALL[model_index], stage);
        }
    }
}

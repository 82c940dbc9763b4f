//! The tamper-evident audit log through the real router, against SQLite and PostgreSQL: every
//! audit event becomes a leaf, proofs from the API verify against signed checkpoints, bad input
//! is refused without side effects, reads are audited, and group commit stores concurrent events
//! exactly once with dense leaf indexes. Retention and the legal hold are in
//! `audit_retention.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod support;

use std::collections::{HashMap, HashSet};

use axum::http::{Method, StatusCode};
use enigm_api::proofs::BodyCheck;
use enigm_api::{
    AuditCheckpointView, AuditConsistencyView, AuditInclusionView, AuditLeavesPage,
    AuditLogKeyView, AuditRetentionView, paths,
};
use enigm_auditlog::{
    Checkpoint, Hash, Log, MemoryStore, NoteVerifier, leaf_hash, open_checkpoint,
};
use enigm_server::state::AppState;
use enigm_store::NoProgress;
use enigm_test_support::{Backend, backend_tests};
use enigm_types::{
    Actor, AuditAction, AuditEvent, AuditEventId, AuditTarget, Clock as _, Outcome, Permission,
    ReasonCategory, Role,
};
use serde_json::json;
use sqlx::{Connection as _, Row as _};
use support::audit::{
    all_leaves, body_of, consistency_path, create_user, fetch, flip_bit, leaf_path, leaves_path,
    open, size_of, sync, verifier,
};
use support::{Admin, TestApp};

backend_tests!(
    every_audit_event_is_a_leaf,
    proofs_verify_against_signed_checkpoints,
    bad_input_is_refused_and_changes_nothing,
    reading_the_log_is_audited,
    group_commit_stores_every_event_once,
    checkpoints_keep_coming_under_sustained_load,
    tree_sizes_come_only_from_signed_checkpoints,
    anonymous_requests_are_counted_not_logged,
    rows_command_did_not_write_are_never_signed,
);

/// Issue 18 item 4: 5,000 anonymous requests used to add 5,000 leaves. Refused requests of
/// callers nobody authenticated (no token, an unknown token, a throttled login) are counted per
/// window and client network; decisions about authenticated callers stay one leaf each.
async fn anonymous_requests_are_counted_not_logged(backend: Backend) {
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;

    let app = TestApp::new(backend).await;
    let skip = app.audit_events().await.len();
    let unknown_token = enigm_crypto::BearerToken::generate(&mut rand::rngs::OsRng)
        .expose()
        .to_owned();
    let peers: [std::net::SocketAddr; 3] = [
        "203.0.113.7:4000".parse().unwrap(),
        "203.0.113.200:4001".parse().unwrap(),
        "[2001:db8:5:6::77]:4002".parse().unwrap(),
    ];
    let mut refused = 0u64;
    for i in 0..450usize {
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri(paths::AUDIT_EVENTS);
        if i % 2 == 1 {
            builder = builder.header("authorization", format!("Bearer {unknown_token}"));
        }
        let mut request = builder.body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(peers[i % peers.len()]));
        let response = app.send(request).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
        refused += 1;
    }
    // Wrong passwords for an unknown user until the throttle refuses; then 50 more refused.
    let mut guesses = 0;
    let mut throttled = 0u64;
    while throttled < 50 {
        let response = app.try_login("nobody", "not-a-password").await;
        match response.status {
            StatusCode::UNAUTHORIZED => guesses += 1,
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            other => panic!("login answered {other}"),
        }
        assert!(guesses < 100, "the throttle never refused");
    }
    refused += throttled;
    assert_eq!(refused, 500);
    // What graceful shutdown does (and the timer, once the window has closed).
    app.state.anonymous.flush(true).await;

    let events = events_after(&app, skip).await;
    let counted: Vec<&AuditEvent> = events
        .iter()
        .filter(|event| matches!(event.target, AuditTarget::AnonymousRequests { .. }))
        .collect();
    assert!(counted.len() <= 4, "a handful of events: {counted:?}");
    let total: u64 = counted
        .iter()
        .map(|event| match event.target {
            AuditTarget::AnonymousRequests { count, .. } => count,
            _ => 0,
        })
        .sum();
    assert_eq!(total, 500);
    let by_network: HashMap<(String, Option<ReasonCategory>), u64> = counted
        .iter()
        .map(|event| match event.target {
            AuditTarget::AnonymousRequests { network, count, .. } => {
                ((network.to_string(), event.reason), count)
            }
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        by_network,
        HashMap::from([
            (
                (
                    "203.0.113.0/24".to_owned(),
                    Some(ReasonCategory::Unauthenticated)
                ),
                300
            ),
            (
                (
                    "2001:db8:5:6::/64".to_owned(),
                    Some(ReasonCategory::Unauthenticated)
                ),
                150
            ),
            (("unknown".to_owned(), Some(ReasonCategory::Throttled)), 50),
        ])
    );
    for event in &counted {
        assert_eq!(
            (event.actor, event.outcome),
            (Actor::Anonymous, Outcome::Denied)
        );
    }
    // The wrong passwords before the throttle are decisions about a login attempt, one each
    // (the throttle bounds them); nothing else was written.
    assert_eq!(events.len(), counted.len() + guesses, "{events:?}");
    // The counted events are leaves like any other, signed into the next checkpoint.
    let size = sync(&app).await.tree_size;
    assert_eq!(size, size_of(app.store.count_audit().await.unwrap()));

    // Authenticated callers' refusals are still one event each.
    let operator = app.admin_with_roles("oper", &[Role::DeviceOperator]).await;
    let skip = app.audit_events().await.len();
    for _ in 0..5 {
        let response = app.get(paths::AUDIT_EVENTS, &operator).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN);
    }
    let denials = events_after(&app, skip).await;
    assert_eq!(denials.len(), 5, "{denials:?}");
    assert!(
        denials
            .iter()
            .all(|event| event.actor == Actor::Admin(operator.id)
                && event.outcome == Outcome::Denied)
    );
    // Nothing was left counting for them.
    app.state.anonymous.flush(true).await;
    assert_eq!(events_after(&app, skip).await.len(), 5);
}

/// Issue 18: a row a database writer inserts has no tag of the audit event key; the sequencer
/// signs everything Command wrote before it and nothing from it on, and the API serves none
/// of it. (The store's own test covers the verifier and forged tags.)
async fn rows_command_did_not_write_are_never_signed(backend: Backend) {
    let app = TestApp::new(backend).await;
    let signed = sync(&app).await.tree_size;
    create_user(&app, "bob").await;
    let forger = enigm_store::Store::connect(app.db.url()).await.unwrap();
    let forged = AuditEvent::new(
        app.clock_now(),
        Actor::System,
        AuditAction::AuditLegalHold,
        AuditTarget::AuditLog,
        Outcome::Success,
    );
    forger
        .append_audit(std::slice::from_ref(&forged))
        .await
        .unwrap();
    let forged_index = app.store.audit_leaf_count().await.unwrap() - 1;
    create_user(&app, "carol").await;

    let checkpoint = sync(&app).await;
    assert!(checkpoint.tree_size > signed);
    assert_eq!(
        checkpoint.tree_size, forged_index,
        "signed up to the forged row"
    );
    assert!(app.store.audit_leaf_count().await.unwrap() > forged_index + 1);
    // It stays so, however often the sequencer runs.
    assert_eq!(sync(&app).await.tree_size, forged_index);
    let page: AuditLeavesPage = fetch(&app, &leaves_path(0, 1000), &app.owner).await;
    assert_eq!(page.tree_size, forged_index);
    assert!(page.leaves.iter().all(|leaf| body_of(leaf).id != forged.id));
    let outcome = app
        .store
        .verify_audit_log(&verifier(&app), Some(&app.event_key()), None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        outcome.findings,
        vec![enigm_store::Finding::EventUnauthenticated {
            index: forged_index
        }]
    );
}

/// The largest audit log position the API documents (`int64`).
const INT64_MAX: u64 = 9_223_372_036_854_775_807;

/// Issue 18 item 7: `?start=18446744073709551614` answered that number as the tree size. Every
/// size an answer states is the latest signed checkpoint's, even while the sequencer has folded
/// in more leaves than any checkpoint covers, and positions beyond it are refused.
async fn tree_sizes_come_only_from_signed_checkpoints(backend: Backend) {
    let app = TestApp::new(backend).await;
    let signed = sync(&app).await.tree_size;
    // More leaves, folded into the tree but not yet signed.
    create_user(&app, "bob").await;
    while app.store.integrate_audit(1000).await.unwrap().is_some() {}
    let integrated = app.store.audit_tree_size().await.unwrap();
    assert!(integrated > signed + 1, "{integrated} > {signed} + 1");

    let page: AuditLeavesPage = fetch(&app, &leaves_path(0, 1000), &app.owner).await;
    assert_eq!(page.tree_size, signed);
    assert_eq!(size_of(page.leaves.len() as i64), signed);
    let end: AuditLeavesPage = fetch(&app, &leaves_path(signed, 10), &app.owner).await;
    assert_eq!((end.leaves.len(), end.tree_size), (0, signed));
    let tail: AuditLeavesPage = fetch(&app, &leaves_path(signed - 1, 10), &app.owner).await;
    assert_eq!((tail.leaves.len(), tail.tree_size), (1, signed));
    let checkpoint: AuditCheckpointView = fetch(&app, paths::AUDIT_CHECKPOINT, &app.owner).await;
    assert_eq!(checkpoint.tree_size, signed);
    let inclusion: AuditInclusionView = fetch(&app, &leaf_path(0, None), &app.owner).await;
    assert_eq!(inclusion.tree_size, signed);

    for (path, status, code) in [
        // Beyond int64 the query itself is refused (openapi_conformance.rs says more).
        (
            leaves_path(u64::MAX - 1, 10),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            leaves_path(INT64_MAX, 10),
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            leaves_path(signed + 1, 10),
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            leaves_path(integrated - 1, 10),
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            leaf_path(signed, None),
            StatusCode::NOT_FOUND,
            "beyond_tree",
        ),
        (
            leaf_path(0, Some(signed + 1)),
            StatusCode::NOT_FOUND,
            "beyond_tree",
        ),
        (
            consistency_path(1, signed + 1),
            StatusCode::NOT_FOUND,
            "beyond_tree",
        ),
        (
            consistency_path(1, u64::MAX),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            consistency_path(1, INT64_MAX),
            StatusCode::NOT_FOUND,
            "beyond_tree",
        ),
        // RFC 9162 has no proof from the empty tree.
        (
            consistency_path(0, signed),
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
    ] {
        let response = app.get(&path, &app.owner).await;
        assert_eq!(
            (response.status, response.code()),
            (status, code),
            "{path}: {:?}",
            response.body
        );
    }

    // Once signed, the new leaves are served.
    let newer = sync(&app).await.tree_size;
    assert!(newer > integrated);
    let page: AuditLeavesPage = fetch(&app, &leaves_path(signed, 1000), &app.owner).await;
    assert_eq!(page.tree_size, newer);
    assert_eq!(size_of(page.leaves.len() as i64), newer - signed);
}

async fn every_audit_event_is_a_leaf(backend: Backend) {
    let app = TestApp::new(backend).await;
    // A mix of what gets audited: failed logins, a user created, denials, an approval flow.
    let wrong = app.try_login("owner", "not-the-password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let unknown = app.try_login("nobody", "whatever-password").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let bob = create_user(&app, "bob").await;
    let denied = app.get(paths::AUDIT_EVENTS, &bob).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let anonymous = app
        .call(Method::GET, &leaves_path(0, 10), None, None, None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let security = app.admin_with_roles("sec", &[Role::SecurityAdmin]).await;
    let request = app
        .call(
            Method::POST,
            &paths::fill(paths::USER_ROLES, &[&bob.id.to_string()]),
            Some(&app.owner),
            None,
            Some(json!({"role": "auditor", "justification": "covers the audit rotation"})),
        )
        .await;
    assert_eq!(request.status, StatusCode::ACCEPTED, "{:?}", request.body);
    let approval = request.body["id"].as_str().unwrap().to_owned();
    let approved = app
        .call(
            Method::POST,
            &paths::fill(paths::APPROVAL_APPROVE, &[&approval]),
            Some(&security),
            Some(security.pin),
            None,
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    assert_eq!(
        app.get(paths::AUDIT_EVENTS, &bob).await.status,
        StatusCode::OK
    );
    // The anonymous refusal is counted; its window's event is written at shutdown (or when the
    // window closes) and is a leaf like any other.
    app.state.anonymous.flush(true).await;

    sync(&app).await;
    let rows = size_of(app.store.count_audit().await.unwrap());
    assert_eq!(app.store.audit_leaf_count().await.unwrap(), rows);
    assert_eq!(app.store.audit_tree_size().await.unwrap(), rows);
    let events = app.audit_events().await;
    assert_eq!(size_of(i64::try_from(events.len()).unwrap()), rows);
    for (action, outcome) in [
        (AuditAction::BootstrapOwner, Outcome::Success),
        (AuditAction::AuthLogin, Outcome::Denied),
        (AuditAction::UserCreate, Outcome::Success),
        (AuditAction::Authorize, Outcome::Denied),
        (AuditAction::AuthSession, Outcome::Denied),
        (AuditAction::ApprovalRequest, Outcome::Success),
        (AuditAction::ApprovalExecute, Outcome::Success),
        (AuditAction::RoleGrant, Outcome::Success),
    ] {
        assert!(
            events
                .iter()
                .any(|event| event.action == action && event.outcome == outcome),
            "{action:?} {outcome:?} is among the events"
        );
    }

    // The leaves are exactly the events, each body hashing to its leaf.
    let page: AuditLeavesPage = fetch(&app, &leaves_path(0, 1000), &app.owner).await;
    assert_eq!(page.tree_size, rows);
    let leaves = page.leaves;
    assert_eq!(leaves.len(), events.len());
    let mut from_leaves = HashSet::new();
    for (position, leaf) in leaves.iter().enumerate() {
        assert_eq!(leaf.index, u64::try_from(position).unwrap());
        assert_eq!(leaf.check_body(), Ok(BodyCheck::Matches));
        assert!(!leaf.purged);
        let event = body_of(leaf);
        assert_eq!(
            leaf.body.as_deref().unwrap().as_bytes(),
            event.canonical_bytes().as_slice(),
            "the body is the event's one canonical encoding"
        );
        assert_eq!(
            leaf.decode_leaf_hash().unwrap(),
            leaf_hash(&event.canonical_bytes())
        );
        assert!(from_leaves.insert(event.id), "one leaf per event");
    }
    let stored: HashSet<AuditEventId> = events.iter().map(|event| event.id).collect();
    assert_eq!(from_leaves, stored);

    // The signed checkpoint covers all of them, under the log's key.
    let view: AuditCheckpointView = fetch(&app, paths::AUDIT_CHECKPOINT, &app.owner).await;
    let checkpoint = open(&app, &view.note);
    assert_eq!(checkpoint.size(), rows);
    assert_eq!(view.tree_size, rows);
    assert_eq!(checkpoint.root().to_base64(), view.root);
    assert_eq!(checkpoint.origin(), verifier(&app).name());
    let mut memory = Log::new(MemoryStore::new());
    let hashes: Vec<Hash> = leaves
        .iter()
        .map(|leaf| leaf.decode_leaf_hash().unwrap())
        .collect();
    memory.append_leaves(&hashes).unwrap();
    assert_eq!(memory.root().unwrap(), *checkpoint.root());
    let key: AuditLogKeyView = fetch(&app, paths::AUDIT_LOG_KEY, &app.owner).await;
    let published = NoteVerifier::from_key_string(&key.verifier_key).unwrap();
    assert_eq!(key.verifier_key, verifier(&app).to_key_string());
    assert!(open_checkpoint(&view.note, &published).is_ok());

    // The reads just made are events too, and become leaves at the next sync.
    let grown = sync(&app).await;
    assert!(grown.tree_size > rows);
    assert_eq!(
        grown.tree_size,
        size_of(app.store.count_audit().await.unwrap())
    );
}

async fn proofs_verify_against_signed_checkpoints(backend: Backend) {
    let app = TestApp::new(backend).await;
    // Three checkpoints of growing trees, with odd sizes in between.
    let _bob = create_user(&app, "bob").await;
    sync(&app).await;
    for _ in 0..3 {
        app.get(paths::WHOAMI, &app.owner).await;
    }
    sync(&app).await;
    app.try_login("owner", "not-the-password").await;
    for _ in 0..5 {
        app.get(paths::WHOAMI, &app.owner).await;
    }
    sync(&app).await;
    let stored = app.store.audit_checkpoints(None, 100).await.unwrap();
    assert_eq!(stored.len(), 3);
    let checkpoints: Vec<Checkpoint> = stored.iter().map(|cp| open(&app, &cp.note)).collect();
    let latest = checkpoints.last().unwrap().clone();
    let oldest = checkpoints[0].clone();
    assert!(oldest.size() > 1);

    // Every leaf against the latest checkpoint (the default), then against the oldest.
    for index in 0..latest.size() {
        let view: AuditInclusionView = fetch(&app, &leaf_path(index, None), &app.owner).await;
        assert_eq!(view.tree_size, latest.size());
        assert_eq!(view.leaf.index, index);
        assert_eq!(view.leaf.check_body(), Ok(BodyCheck::Matches));
        let (leaf, proof) = view.decode().unwrap();
        let verified = proof.verify(&leaf, latest.root()).unwrap();
        assert_eq!(verified.index(), index);
    }
    for index in 0..oldest.size() {
        let view: AuditInclusionView =
            fetch(&app, &leaf_path(index, Some(oldest.size())), &app.owner).await;
        assert_eq!(view.tree_size, oldest.size());
        let (leaf, proof) = view.decode().unwrap();
        proof.verify(&leaf, oldest.root()).unwrap();
        assert!(proof.verify(&leaf, latest.root()).is_err());
    }

    // Consistency between every pair of published checkpoints.
    for old in &checkpoints {
        for new in &checkpoints {
            if old.size() > new.size() {
                continue;
            }
            let view: AuditConsistencyView =
                fetch(&app, &consistency_path(old.size(), new.size()), &app.owner).await;
            let proof = view.decode().unwrap();
            proof.verify(old.root(), new.root()).unwrap();
            if old.size() < new.size() {
                assert!(proof.verify(new.root(), old.root()).is_err());
            }
        }
    }

    // One flipped bit anywhere makes verification fail.
    let view: AuditInclusionView = fetch(&app, &leaf_path(1, None), &app.owner).await;
    let (leaf, proof) = view.decode().unwrap();
    assert!(!proof.path().is_empty());
    for position in 0..proof.path().len() {
        let mut path = proof.path().to_vec();
        path[position] = flip_bit(&path[position]);
        let forged = enigm_auditlog::InclusionProof::new(proof.index(), proof.size(), path);
        assert!(forged.verify(&leaf, latest.root()).is_err(), "{position}");
    }
    assert!(proof.verify(&flip_bit(&leaf), latest.root()).is_err());
    assert!(proof.verify(&leaf, &flip_bit(latest.root())).is_err());
    let view: AuditConsistencyView = fetch(
        &app,
        &consistency_path(oldest.size(), latest.size()),
        &app.owner,
    )
    .await;
    let proof = view.decode().unwrap();
    assert!(!proof.path().is_empty());
    for position in 0..proof.path().len() {
        let mut path = proof.path().to_vec();
        path[position] = flip_bit(&path[position]);
        let forged =
            enigm_auditlog::ConsistencyProof::new(proof.old_size(), proof.new_size(), path);
        assert!(
            forged.verify(oldest.root(), latest.root()).is_err(),
            "{position}"
        );
    }
    assert!(
        proof
            .verify(&flip_bit(oldest.root()), latest.root())
            .is_err()
    );
}

/// `(action, outcome, reason, target)` of the events after the first `skip`.
async fn events_after(app: &TestApp, skip: usize) -> Vec<AuditEvent> {
    app.audit_events().await.into_iter().skip(skip).collect()
}

async fn bad_input_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let operator = app.admin_with_roles("oper", &[Role::DeviceOperator]).await;
    let auditor = app.admin_with_roles("aud", &[Role::Auditor]).await;
    let before = sync(&app).await;
    let size = before.tree_size;
    let leaves_before = all_leaves(&app).await;
    let skip = app.audit_events().await.len();

    let huge = u64::MAX.to_string();
    for (path, status, code) in [
        (leaf_path(size, None), StatusCode::NOT_FOUND, "beyond_tree"),
        (
            leaf_path(size + 100, None),
            StatusCode::NOT_FOUND,
            "beyond_tree",
        ),
        (
            leaf_path(u64::MAX, None),
            StatusCode::NOT_FOUND,
            "beyond_tree",
        ),
        (
            leaf_path(0, Some(size + 1)),
            StatusCode::NOT_FOUND,
            "beyond_tree",
        ),
        (leaf_path(3, Some(3)), StatusCode::NOT_FOUND, "beyond_tree"),
        (
            consistency_path(0, size + 1),
            StatusCode::NOT_FOUND,
            "beyond_tree",
        ),
        (
            consistency_path(3, 2),
            StatusCode::BAD_REQUEST,
            "invalid_range",
        ),
        (
            format!("{}?start=0&bogus=1", paths::AUDIT_LEAVES),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            paths::AUDIT_LEAVES.to_owned(),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{}?start=-1", paths::AUDIT_LEAVES),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{}?start={huge}0", paths::AUDIT_LEAVES),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{}&verbose=true", leaf_path(0, Some(1))),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{}?tree_size=ten", leaf_path(0, None)),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            format!("{}?first=1", paths::AUDIT_CONSISTENCY),
            StatusCode::BAD_REQUEST,
            "invalid_query",
        ),
        (
            paths::fill(paths::AUDIT_LEAF, &["abc"]),
            StatusCode::BAD_REQUEST,
            "invalid_path_parameter",
        ),
        (
            paths::fill(paths::AUDIT_LEAF, &["-1"]),
            StatusCode::BAD_REQUEST,
            "invalid_path_parameter",
        ),
    ] {
        let response = app.get(&path, &app.owner).await;
        assert_eq!(
            (response.status, response.code()),
            (status, code),
            "{path}: {:?}",
            response.body
        );
        assert!(
            !response.body["message"].as_str().unwrap().is_empty(),
            "{path}: a message says what is wrong"
        );
    }
    // Nothing was read, so no read is recorded: only the guard's decisions.
    let after_bad_input = events_after(&app, skip).await;
    assert!(
        after_bad_input.iter().all(
            |event| event.action == AuditAction::Authorize && event.outcome == Outcome::Success
        ),
        "{after_bad_input:?}"
    );

    // Without the permission: refused, and each refusal audited.
    let skip = app.audit_events().await.len();
    let refused = [
        leaves_path(0, 10),
        leaf_path(0, None),
        consistency_path(1, 2),
        paths::AUDIT_CHECKPOINT.to_owned(),
        paths::AUDIT_LOG_KEY.to_owned(),
        paths::AUDIT_LEGAL_HOLD.to_owned(),
    ];
    for path in &refused {
        let response = app.get(path, &operator).await;
        assert_eq!(
            (response.status, response.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{path}"
        );
    }
    let denials = events_after(&app, skip).await;
    assert_eq!(denials.len(), refused.len(), "{denials:?}");
    for event in &denials {
        assert_eq!(event.actor, Actor::Admin(operator.id));
        assert_eq!(event.action, AuditAction::Authorize);
        assert_eq!(event.outcome, Outcome::Denied);
        assert_eq!(event.reason, Some(ReasonCategory::Forbidden));
        assert_eq!(
            event.target,
            AuditTarget::Route {
                permission: Permission::AuditRead
            }
        );
    }

    // The legal hold is critical and the owner's: no PIN, a wrong PIN, or no permission are
    // refused, audited, and leave the hold as it was.
    let skip = app.audit_events().await.len();
    let hold = Some(json!({"legal_hold": true}));
    for (admin, pin, code) in [
        (&app.owner, None, "pin_required"),
        (&app.owner, Some("135799"), "pin_invalid"),
        (&auditor, Some(auditor.pin), "forbidden"),
    ] {
        let response = app
            .call(
                Method::PUT,
                paths::AUDIT_LEGAL_HOLD,
                Some(admin),
                pin,
                hold.clone(),
            )
            .await;
        assert_eq!(
            (response.status, response.code()),
            (StatusCode::FORBIDDEN, code),
            "{:?}",
            response.body
        );
    }
    let denials: Vec<(AuditAction, Option<ReasonCategory>)> = events_after(&app, skip)
        .await
        .iter()
        .filter(|event| event.outcome == Outcome::Denied)
        .map(|event| (event.action, event.reason))
        .collect();
    assert_eq!(
        denials,
        vec![
            (AuditAction::AuthPinCheck, Some(ReasonCategory::PinRequired)),
            (AuditAction::AuthPinCheck, Some(ReasonCategory::PinInvalid)),
            (AuditAction::Authorize, Some(ReasonCategory::Forbidden)),
        ]
    );
    let events = app.audit_events().await;
    assert!(
        !events
            .iter()
            .any(|event| event.action == AuditAction::AuditLegalHold),
        "no legal hold change was recorded"
    );
    assert!(
        !events
            .iter()
            .skip(skip)
            .any(|event| event.action == AuditAction::AuditRead),
        "no read was recorded for a refused request"
    );
    let retention: AuditRetentionView = fetch(&app, paths::AUDIT_LEGAL_HOLD, &app.owner).await;
    assert!(!retention.legal_hold);
    assert_eq!(retention.legal_hold_changed_at, None);
    assert!(!app.store.audit_legal_hold().await.unwrap().enabled);

    // The log only grew: the old tree is a prefix of the new one, its leaves unchanged.
    let after = sync(&app).await;
    let view: AuditConsistencyView =
        fetch(&app, &consistency_path(size, after.tree_size), &app.owner).await;
    view.decode()
        .unwrap()
        .verify(&before.root, &after.root)
        .unwrap();
    let leaves_after = all_leaves(&app).await;
    assert_eq!(
        leaves_after[..leaves_before.len()],
        leaves_before[..],
        "old leaves are untouched"
    );
}

async fn reading_the_log_is_audited(backend: Backend) {
    let app = TestApp::new(backend).await;
    let auditor = app.admin_with_roles("aud", &[Role::Auditor]).await;
    for _ in 0..4 {
        app.get(paths::WHOAMI, &app.owner).await;
    }
    let checkpoint = sync(&app).await;
    let size = checkpoint.tree_size;
    assert!(size > 4);
    let skip = app.audit_events().await.len();

    let reads: Vec<(&Admin, String, AuditTarget)> = vec![
        (
            &app.owner,
            leaves_path(1, 3),
            AuditTarget::AuditLeaves { first: 1, end: 4 },
        ),
        (
            &app.owner,
            leaves_path(0, 1000),
            AuditTarget::AuditLeaves {
                first: 0,
                end: size,
            },
        ),
        (
            &auditor,
            leaves_path(size - 2, 1000),
            AuditTarget::AuditLeaves {
                first: size - 2,
                end: size,
            },
        ),
        // A page at the end of the signed tree reads nothing, and says so (past it is refused:
        // `tree_sizes_come_only_from_signed_checkpoints`).
        (
            &auditor,
            leaves_path(size, 10),
            AuditTarget::AuditLeaves {
                first: size,
                end: size,
            },
        ),
        (
            &auditor,
            leaf_path(2, None),
            AuditTarget::AuditLeaves { first: 2, end: 3 },
        ),
        (
            &app.owner,
            paths::AUDIT_CHECKPOINT.to_owned(),
            AuditTarget::AuditLog,
        ),
        (
            &auditor,
            paths::AUDIT_LOG_KEY.to_owned(),
            AuditTarget::AuditLog,
        ),
        (&auditor, consistency_path(1, size), AuditTarget::AuditLog),
        (
            &auditor,
            paths::AUDIT_LEGAL_HOLD.to_owned(),
            AuditTarget::AuditLog,
        ),
        (
            &app.owner,
            paths::AUDIT_EVENTS.to_owned(),
            AuditTarget::AuditLog,
        ),
    ];
    for (admin, path, _) in &reads {
        let response = app.get(path, admin).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{path}: {:?}",
            response.body
        );
    }
    let recorded: Vec<AuditEvent> = events_after(&app, skip)
        .await
        .into_iter()
        .filter(|event| event.action == AuditAction::AuditRead)
        .collect();
    assert_eq!(recorded.len(), reads.len(), "{recorded:?}");
    for (event, (admin, path, target)) in recorded.iter().zip(&reads) {
        assert_eq!(event.actor, Actor::Admin(admin.id), "{path}");
        assert_eq!(event.target, *target, "{path}");
        assert_eq!(event.outcome, Outcome::Success, "{path}");
    }

    // The records of the reads are leaves like any other event.
    let latest = sync(&app).await;
    let leaves = all_leaves(&app).await;
    for event in &recorded {
        let leaf = leaves
            .iter()
            .find(|leaf| leaf.body.as_deref().map(str::as_bytes) == Some(&event.canonical_bytes()))
            .expect("the read is a leaf");
        let view: AuditInclusionView = fetch(&app, &leaf_path(leaf.index, None), &app.owner).await;
        let (hash, proof) = view.decode().unwrap();
        proof.verify(&hash, &latest.root).unwrap();
    }
}

async fn group_commit_stores_every_event_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let before = size_of(app.store.count_audit().await.unwrap());
    let now = app.clock.now();
    let calls: Vec<Vec<AuditEvent>> = (0..200_u64)
        .map(|call| {
            (0..call % 3 + 1)
                .map(|n| {
                    AuditEvent::new(
                        now,
                        Actor::System,
                        AuditAction::AuditRead,
                        AuditTarget::AuditLeaves {
                            first: call,
                            end: call + n + 1,
                        },
                        Outcome::Success,
                    )
                })
                .collect()
        })
        .collect();
    let tasks: Vec<_> = calls
        .iter()
        .cloned()
        .map(|events| {
            let state: AppState = app.state.clone();
            tokio::spawn(async move { state.audit(&events).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let total: u64 = calls.iter().map(|events| events.len() as u64).sum();
    let checkpoint = sync(&app).await;
    assert_eq!(checkpoint.tree_size, before + total);
    assert_eq!(
        size_of(app.store.count_audit().await.unwrap()),
        before + total
    );

    // Leaf indexes are dense, each event has exactly one, and a call's events are adjacent.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(app.db.url()).await.unwrap();
    let rows = sqlx::query("SELECT leaf_index, id FROM audit_events ORDER BY leaf_index")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let mut index_of: HashMap<String, u64> = HashMap::new();
    for (expected, row) in (0..).zip(&rows) {
        let index: i64 = row.get("leaf_index");
        assert_eq!(size_of(index), expected);
        assert!(index_of.insert(row.get("id"), expected).is_none());
    }
    assert_eq!(u64::try_from(rows.len()).unwrap(), before + total);
    for events in &calls {
        let indexes: Vec<u64> = events
            .iter()
            .map(|event| index_of[&event.id.to_string()])
            .collect();
        let first = indexes[0];
        assert_eq!(
            indexes,
            (first..first + indexes.len() as u64).collect::<Vec<_>>()
        );
    }
    let outcome = app
        .store
        .verify_audit_log(&verifier(&app), Some(&app.event_key()), None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(outcome.findings, Vec::new());
}

/// A sync folds in what was committed when it began and then publishes: under a load that never
/// pauses it still returns, so checkpoints keep coming while events arrive.
async fn checkpoints_keep_coming_under_sustained_load(backend: Backend) {
    let app = TestApp::new(backend).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let state = app.state.clone();
        let stop = stop.clone();
        let now = app.clock.now();
        tokio::spawn(async move {
            let mut recorded = 0_u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let event = AuditEvent::new(
                    now,
                    Actor::System,
                    AuditAction::AuditRead,
                    AuditTarget::AuditLog,
                    Outcome::Success,
                );
                state.audit(&[event]).await.unwrap();
                recorded += 1;
            }
            recorded
        })
    };
    let mut sizes = Vec::new();
    while sizes.len() < 3 {
        let checkpoint = sync(&app).await;
        if sizes.last() != Some(&checkpoint.tree_size) {
            sizes.push(checkpoint.tree_size);
        }
        tokio::task::yield_now().await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let recorded = producer.await.unwrap();
    assert!(recorded > 0);
    assert!(sizes.windows(2).all(|pair| pair[0] < pair[1]), "{sizes:?}");
    let last = sync(&app).await;
    assert_eq!(last.tree_size, app.store.audit_leaf_count().await.unwrap());
}

//! `kill -9` under a sustained load of audited requests, with the real `enigm` binary, on SQLite
//! and PostgreSQL: every acknowledged request has its audit event after a restart, and the log
//! verifies offline and online, the second online run proving consistency with the checkpoint
//! the first one remembered.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration tests: a failed expectation is the test failure"
)]

mod audit_support;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use enigm_api::{AuditCheckpointView, AuditListQuery, AuditPage, paths};
use enigm_test_support::{Backend, TestDatabase, backend_tests};
use enigm_types::AuditAction;
use serde_json::Value;

use crate::support::{Cli, Server, bootstrap_field, change_initial_password, write_secret};

use crate::audit_support::{assert_verified, text};

/// Concurrent clients of the crash test.
const LOAD_CLIENTS: usize = 8;
/// How long they send requests before the server is killed.
const LOAD_TIME: Duration = Duration::from_secs(3);

/// `kill -9` in the middle of a sustained load of audited requests: every acknowledged request
/// has its audit event after a restart, and the whole log still verifies, offline and online.
async fn audit_events_survive_kill_9_under_load(backend: Backend) {
    let db = TestDatabase::new(backend).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let database_args: Vec<&str> = match backend {
        Backend::Sqlite => vec![],
        Backend::Postgres => vec!["--database-url", db.url()],
    };
    let mut server = Server::start_logging(&data_dir, &database_args, "warn");
    let text_file = std::fs::read_to_string(data_dir.join("bootstrap-admin.txt")).unwrap();
    let password = write_secret(
        dir.path(),
        "password",
        &bootstrap_field(&text_file, "password"),
    );
    let pin = write_secret(dir.path(), "pin", &bootstrap_field(&text_file, "pin"));
    let owner = Cli {
        config: dir.path().join("config"),
        server: server.url.clone(),
        extra: vec![],
    };
    owner.ok(&[
        "login",
        "--username",
        "admin",
        "--password-file",
        password.to_str().unwrap(),
    ]);
    let password = change_initial_password(&owner, &password, Some(&pin));
    let login = [
        "login",
        "--username",
        "admin",
        "--password-file",
        password.to_str().unwrap(),
    ];
    let admin_id = owner.json(&["admin", "whoami"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let credentials: Value = serde_json::from_str(
        &std::fs::read_to_string(owner.config.join("credentials.json")).unwrap(),
    )
    .unwrap();
    let token = credentials["token"].as_str().unwrap().to_owned();
    let key = owner
        .ok(&["audit", "key", "--data-dir", data_dir.to_str().unwrap()])
        .trim()
        .to_owned();

    // The load: each client alternates between two audited reads. A 200 is counted only once
    // its body arrived; the server answers only after the read's audit event is durable.
    let kinds = [paths::AUDIT_CHECKPOINT, paths::AUDIT_LOG_KEY];
    let acknowledged: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let refused = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client_number in 0..LOAD_CLIENTS {
        let (acknowledged, refused, stop) = (acknowledged.clone(), refused.clone(), stop.clone());
        let (url, token) = (server.url.clone(), token.clone());
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut request_number = client_number;
            while !stop.load(Ordering::Relaxed) {
                let kind = request_number % kinds.len();
                request_number += 1;
                let sent = http
                    .get(format!("{url}{}", kinds[kind]))
                    .bearer_auth(&token)
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                let status = response.status();
                let Ok(_body) = response.bytes().await else {
                    break;
                };
                if status == reqwest::StatusCode::OK {
                    acknowledged[kind].fetch_add(1, Ordering::Relaxed);
                } else {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(LOAD_TIME).await;
    server.child.kill().unwrap();
    let _ = server.child.wait();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .expect("load client stopped")
            .unwrap();
    }
    drop(server);
    let per_kind = [
        acknowledged[0].load(Ordering::Relaxed),
        acknowledged[1].load(Ordering::Relaxed),
    ];
    let total: u64 = per_kind.iter().sum();
    eprintln!(
        "{backend}: acknowledged before kill -9: {} checkpoint reads, {} key reads",
        per_kind[0], per_kind[1]
    );
    assert!(per_kind.iter().all(|count| *count > 0), "{per_kind:?}");
    assert_eq!(refused.load(Ordering::Relaxed), 0, "no request was refused");

    // Restart: leaves committed before the crash are folded in before the server listens.
    let server = Server::start_logging(&data_dir, &database_args, "warn");
    let http = reqwest::Client::new();
    let checkpoint: AuditCheckpointView = http
        .get(format!("{}{}", server.url, paths::AUDIT_CHECKPOINT))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(checkpoint.tree_size >= total, "{checkpoint:?}");

    // Every acknowledged read has its event.
    let started = Instant::now();
    let mut query = AuditListQuery {
        after: None,
        before: None,
        order: None,
        since: None,
        limit: Some(1000),
        actor: Some(admin_id.parse().unwrap()),
        action: Some(AuditAction::AuditRead),
        outcome: None,
    };
    let mut reads: u64 = 0;
    loop {
        let page: AuditPage = http
            .get(format!("{}{}", server.url, paths::AUDIT_EVENTS))
            .bearer_auth(&token)
            .query(&query)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reads += u64::try_from(page.events.len()).unwrap();
        match page.next_after {
            Some(after) => query.after = Some(after),
            None => break,
        }
    }
    eprintln!(
        "{backend}: {reads} audit.read events for {total} acknowledged reads (counted in {:?})",
        started.elapsed()
    );
    assert!(
        reads >= total,
        "{reads} events for {total} acknowledged reads"
    );

    // Online, twice: the second run proves the log only grew since the first one.
    let owner = Cli {
        server: server.url.clone(),
        ..owner
    };
    owner.ok(&login);
    let first = owner.run(&["audit", "verify", "--log-key", &key]);
    assert_verified(&first);
    let second = owner.run(&["audit", "verify", "--log-key", &key]);
    assert_verified(&second);
    assert!(
        text(&second).contains("consistent with        remembered checkpoint of size"),
        "{}",
        text(&second)
    );
    assert!(server.stop().success());

    // Offline, with the key pinned (SQLite) or read from the data directory (PostgreSQL).
    let data = data_dir.to_str().unwrap();
    let offline = match backend {
        Backend::Sqlite => owner.run(&["audit", "verify", "--data-dir", data, "--log-key", &key]),
        Backend::Postgres => owner.run(&[
            "audit",
            "verify",
            "--database-url",
            db.url(),
            "--data-dir",
            data,
        ]),
    };
    assert_verified(&offline);
}

backend_tests!(audit_events_survive_kill_9_under_load);

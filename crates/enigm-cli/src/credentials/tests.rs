use std::os::unix::fs::PermissionsExt as _;

use super::*;

fn sample() -> Credentials {
    Credentials {
        server: "https://command.example:8443".to_owned(),
        token: Some("tok_secret".to_owned()),
        username: "alice".to_owned(),
        ca_cert: Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned()),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn saved_file_is_private_and_round_trips() {
    let root = tempfile::tempdir().unwrap();
    let path = root
        .path()
        .join("nested")
        .join("enigm")
        .join("credentials.json");
    save(&path, &sample()).unwrap();

    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(load(&path).unwrap(), Some(sample()));
    // Only the credentials file remains: no temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("credentials.json")]);
}

#[test]
fn rewriting_replaces_the_file_and_keeps_it_private() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("credentials.json");
    save(&path, &sample()).unwrap();
    // A file someone loosened is replaced by a fresh private one, not rewritten in place.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let logged_out = Credentials {
        token: None,
        ..sample()
    };
    save(&path, &logged_out).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(load(&path).unwrap(), Some(logged_out));
}

#[test]
fn file_format_is_plain_json_with_the_four_fields() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("credentials.json");
    save(&path, &sample()).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["ca_cert", "server", "token", "username"]);
    assert_eq!(json["token"], "tok_secret");
}

#[test]
fn missing_file_is_none_and_garbage_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    assert_eq!(load(&root.path().join("absent.json")).unwrap(), None);
    let garbage = root.path().join("credentials.json");
    std::fs::write(&garbage, "not json").unwrap();
    assert!(format!("{:#}", load(&garbage).unwrap_err()).contains("not a valid credentials file"));
}

#[test]
fn debug_output_hides_the_token() {
    let debug = format!("{:?}", sample());
    assert!(!debug.contains("tok_secret"), "{debug}");
    assert!(debug.contains("has_token: true"));
}

#[test]
fn path_rules() {
    let platform = Some(PathBuf::from("/home/a/.config"));
    let cases: &[(Option<&str>, Option<PathBuf>, Option<&str>)] = &[
        (
            Some("/etc/enigm-ci"),
            platform.clone(),
            Some("/etc/enigm-ci/credentials.json"),
        ),
        (
            Some(""),
            platform.clone(),
            Some("/home/a/.config/enigm/credentials.json"),
        ),
        (
            None,
            platform.clone(),
            Some("/home/a/.config/enigm/credentials.json"),
        ),
        (Some("/x"), None, Some("/x/credentials.json")),
        (None, None, None),
    ];
    for (env, platform, expected) in cases {
        assert_eq!(
            path_from(env.map(OsString::from), platform.clone()),
            expected.map(PathBuf::from),
            "env {env:?}, platform {platform:?}"
        );
    }
}

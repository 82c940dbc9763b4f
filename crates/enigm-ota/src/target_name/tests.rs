#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Component, Path};

use proptest::prelude::*;

use super::{TargetName, TargetNameError};

fn check(name: &str, expect: Result<(), TargetNameError>) {
    let parsed = TargetName::parse(name);
    assert_eq!(
        parsed.as_ref().map(|_| ()).map_err(|error| *error),
        expect,
        "{name:?}"
    );
    if let Ok(parsed) = parsed {
        assert_eq!(parsed.as_str(), name);
    }
}

#[test]
fn names_are_checked_by_one_table() {
    use TargetNameError as E;
    for name in [
        "image.img",
        "os/image.img",
        "os/2026-11/enigm-os_1.2.3.img",
        "a",
        "..a/b..",
        ".hidden",
        "percent%2Fencoded",
        &"a".repeat(255),
    ] {
        check(name, Ok(()));
    }
    for (name, error) in [
        ("", E::Empty),
        (&"a".repeat(256), E::TooLong),
        ("/etc/passwd", E::EmptySegment),
        ("os/", E::EmptySegment),
        ("os//image", E::EmptySegment),
        ("/", E::EmptySegment),
        ("..", E::DotSegment),
        ("../image", E::DotSegment),
        ("os/../../image", E::DotSegment),
        ("os/./image", E::DotSegment),
        (".", E::DotSegment),
        ("os\\..\\image", E::Character),
        ("C:\\image", E::Character),
        ("image\0.img", E::Character),
        ("image\n.img", E::Character),
        ("image\u{7f}", E::Character),
        ("image .img", E::Character),
        ("imäge", E::Character),
        ("image?v=2", E::Character),
        ("image#top", E::Character),
        ("\u{202e}gmi.exe", E::Character),
    ] {
        check(name, Err(error));
    }
}

fn name_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z./\\\\]{0,12}",
        prop::collection::vec(
            prop_oneof![
                "[a-z]{1,4}",
                Just(".".to_owned()),
                Just("..".to_owned()),
                Just(String::new())
            ],
            0..5
        )
        .prop_map(|segments| segments.join("/")),
    ]
}

proptest! {
    /// Whatever is accepted stays under the directory it is joined to, and is its own text.
    #[test]
    fn accepted_names_stay_under_their_directory(name in name_like()) {
        if let Ok(parsed) = TargetName::parse(&name) {
            prop_assert_eq!(parsed.as_str(), name.as_str());
            prop_assert!(parsed.as_str().len() <= TargetName::MAX_LEN);
            let joined = Path::new("/srv/targets").join(parsed.as_str());
            prop_assert!(joined.starts_with("/srv/targets"));
            prop_assert!(Path::new(parsed.as_str())
                .components()
                .all(|component| matches!(component, Component::Normal(_))));
            prop_assert_eq!(parsed.as_str().parse::<TargetName>().ok(), Some(parsed.clone()));
        }
    }
}

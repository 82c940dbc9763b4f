//! Fuzzes what the agent's loopback proxy forwarder reads from an app
//! (`enigm_agent::proxy_forward::parse_connect_head`): the input as an HTTP request head.
//!
//! Properties:
//! - nothing panics;
//! - a target comes only from an ASCII head ending in the empty line whose request line is
//!   `CONNECT <target> HTTP/1.x`, and it is that target's canonical spelling (and its own);
//! - the same head with any other method yields no target (it is refused as not a CONNECT);
//! - every refusal has an answer with a status the forwarder sends and a short category body.

#![no_main]

use enigm_agent::proxy_forward::{ForwardRefusal, HeadRefusal, parse_connect_head};
use enigm_proxyauth::TargetAuthority;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_connect_head(data) {
        Ok(target) => {
            let text = std::str::from_utf8(data).expect("a target from non-UTF-8");
            assert!(text.is_ascii() && text.ends_with("\r\n\r\n"), "{text:?}");
            let request_line = text.split("\r\n").next().unwrap();
            let mut parts = request_line.split(' ');
            assert_eq!(parts.next(), Some("CONNECT"), "{text:?}");
            let asked = parts.next().unwrap();
            assert!(
                matches!(parts.next(), Some("HTTP/1.1" | "HTTP/1.0")) && parts.next().is_none(),
                "{text:?}"
            );
            assert_eq!(TargetAuthority::parse(asked).as_ref(), Ok(&target));
            assert_eq!(
                TargetAuthority::parse(target.as_str()).as_ref(),
                Ok(&target)
            );

            let rest = text.strip_prefix("CONNECT").unwrap();
            for method in ["GET", "POST", "CONNECTS", "HEAD", "X"] {
                let other = format!("{method}{rest}");
                assert_eq!(
                    parse_connect_head(other.as_bytes()),
                    Err(HeadRefusal::NotConnect),
                    "{other:?}"
                );
            }
        }
        Err(refusal) => {
            let answer = ForwardRefusal::from(refusal);
            assert!(matches!(answer.status(), 400 | 405), "{answer:?}");
            let response = answer.response();
            assert!(response.starts_with("HTTP/1.1 4"), "{response:?}");
            assert!(response.ends_with(&format!("\r\n\r\n{}", answer.category())));
        }
    }
});

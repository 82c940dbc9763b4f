//! The strict parse of a request head (request line and header fields, RFC 9112), as far as a
//! CONNECT proxy needs it: the method, the authority-form target and the one
//! `Proxy-Authorization` field. Anything ambiguous (folded lines, a repeated authorization, bare
//! line feeds, non-ASCII) is refused.

/// The most header fields a request head may carry.
const MAX_FIELDS: usize = 64;

/// A request head, borrowed from the bytes read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RequestHead<'a> {
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) authorization: Option<&'a str>,
}

/// Why a head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeadError {
    #[error("the request head is not well-formed")]
    Malformed,
    #[error("the request carries more than one proxy authorization")]
    RepeatedAuthorization,
}

/// Parses `head`, which ends with the empty line (`\r\n\r\n`).
pub(crate) fn parse(head: &[u8]) -> Result<RequestHead<'_>, HeadError> {
    let text = std::str::from_utf8(head).map_err(|_| HeadError::Malformed)?;
    if !text.is_ascii() {
        return Err(HeadError::Malformed);
    }
    let text = text.strip_suffix("\r\n\r\n").ok_or(HeadError::Malformed)?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or(HeadError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    if method.is_empty()
        || target.is_empty()
        || !matches!(version, "HTTP/1.1" | "HTTP/1.0")
        || !method.bytes().all(|byte| byte.is_ascii_uppercase())
    {
        return Err(HeadError::Malformed);
    }
    let mut authorization = None;
    for (index, line) in lines.enumerate() {
        if index >= MAX_FIELDS
            || line.contains('\n')
            || line.contains('\r')
            || line.starts_with([' ', '\t'])
        {
            return Err(HeadError::Malformed);
        }
        let (name, value) = line.split_once(':').ok_or(HeadError::Malformed)?;
        if name.is_empty()
            || name.contains([' ', '\t'])
            || name.bytes().any(|b| b.is_ascii_control())
        {
            return Err(HeadError::Malformed);
        }
        if name.eq_ignore_ascii_case("proxy-authorization") {
            if authorization.is_some() {
                return Err(HeadError::RepeatedAuthorization);
            }
            authorization = Some(value.trim_matches([' ', '\t']));
        }
    }
    Ok(RequestHead {
        method,
        target,
        authorization,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(head: &str, expect: Result<(&str, &str, Option<&str>), HeadError>) {
        let parsed = parse(head.as_bytes()).map(|h| (h.method, h.target, h.authorization));
        assert_eq!(parsed, expect, "{head:?}");
    }

    #[test]
    fn heads() {
        check(
            "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\nProxy-Authorization: Enigm x.y\r\n\r\n",
            Ok(("CONNECT", "a.example:443", Some("Enigm x.y"))),
        );
        check("CONNECT a:1 HTTP/1.1\r\n\r\n", Ok(("CONNECT", "a:1", None)));
        check("GET / HTTP/1.1\r\n\r\n", Ok(("GET", "/", None)));
        check("CONNECT a:1 HTTP/2\r\n\r\n", Err(HeadError::Malformed));
        check("CONNECT  a:1 HTTP/1.1\r\n\r\n", Err(HeadError::Malformed));
        check("CONNECT a:1 HTTP/1.1\n\n", Err(HeadError::Malformed));
        check(
            "CONNECT a:1 HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n",
            Err(HeadError::Malformed),
        );
        check(
            "CONNECT a:1 HTTP/1.1\r\nNoColon\r\n\r\n",
            Err(HeadError::Malformed),
        );
        check(
            "CONNECT a:1 HTTP/1.1\r\nX: \u{e9}\r\n\r\n",
            Err(HeadError::Malformed),
        );
        check(
            "CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: a\r\nproxy-authorization: b\r\n\r\n",
            Err(HeadError::RepeatedAuthorization),
        );
        let many: String = (0..65).map(|i| format!("X-{i}: v\r\n")).collect();
        check(
            &format!("CONNECT a:1 HTTP/1.1\r\n{many}\r\n"),
            Err(HeadError::Malformed),
        );
    }
}

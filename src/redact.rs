//! The one redactor. A run knows every secret the user gave it: the API key (from
//! `--api-key-env`, a script's `api_key_env` or `configs/targets.yaml`), the user name and
//! password of a URL (`http://user:pass@host/v1`, also as the `Basic` header reqwest makes of
//! them), the values of credential query parameters (see `is_credential_param`), the value of
//! every request header a script sets, and a proxy URL's credentials. `Redactor` holds them all
//! and cleans every untrusted or error string *before* it is cut, stored, printed or rendered:
//! each secret, and each prefix of a secret at least `MIN_PREFIX` characters long wherever it
//! appears (so a cut, the server's or ours, can never leave the start of a key), becomes
//! `[redacted]`. `cut` redacts and then shortens.
//!
//! Beside it, what a URL may show: `public_url` (credentials replaced, for messages, metadata and
//! reports) and `host_port` (for a target's name and so the run id and file names).

use std::fmt;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// A prefix of a secret this long (in characters) or longer is redacted wherever it appears.
pub const MIN_PREFIX: usize = 8;

/// Secrets shorter than this (in characters) are not searched for in text: they cannot be told
/// from ordinary words. llmbench still never writes them itself.
pub const MIN_SECRET: usize = 4;

/// Every secret of a run; cleans text of them (see the module documentation).
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, each form once (raw, JSON-escaped, percent-decoded).
    secrets: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// A redactor knowing no secret (its `redact` returns the text as it is).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret (and its JSON-escaped form, as a server may echo it inside JSON text).
    pub fn add(&mut self, secret: &str) {
        self.insert(secret.to_owned());
        if let Ok(json) = serde_json::to_string(secret) {
            self.insert(json[1..json.len() - 1].to_owned());
        }
    }

    /// Adds the secrets a URL carries: the user name and password of its userinfo (as written,
    /// percent-decoded, and as the `Basic` credentials made of them) and the value of every
    /// credential query or fragment parameter.
    pub fn add_url(&mut self, url: &str) {
        let parts = UrlParts::of(url);
        if let Some(info) = parts.userinfo {
            let (user, pass) = info.split_once(':').unwrap_or((info, ""));
            for s in [user, pass] {
                self.add(s);
                self.add(&percent_decode(s));
            }
            let basic = format!("{}:{}", percent_decode(user), percent_decode(pass));
            self.add(&base64(basic.as_bytes()));
        }
        for (name, value) in parts.params() {
            if is_credential_param(&percent_decode(name)) {
                self.add(value);
                self.add(&percent_decode(value));
                self.add(&percent_decode(&value.replace('+', " ")));
            }
        }
    }

    /// Adds a header value: the whole value, and the credentials of an `Authorization`-style
    /// value (`Bearer sk-...`: `sk-...` alone), as a server may echo only those.
    pub fn add_header_value(&mut self, value: &str) {
        self.add(value);
        if let Some((scheme, credentials)) = value.trim().split_once(' ')
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            self.add(credentials.trim());
        }
    }

    /// This redactor with `secret` added.
    pub fn with(mut self, secret: &str) -> Self {
        self.add(secret);
        self
    }

    /// This redactor with the secrets of `url` added.
    pub fn with_url(mut self, url: &str) -> Self {
        self.add_url(url);
        self
    }

    fn insert(&mut self, secret: String) {
        if secret.chars().count() < MIN_SECRET || self.secrets.contains(&secret) {
            return;
        }
        self.secrets.push(secret);
        self.secrets
            .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    }

    /// Knows no secret.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret, and every prefix of a secret of `MIN_PREFIX` or more
    /// characters, replaced by `[redacted]` (touching or overlapping ones by one).
    pub fn redact(&self, text: &str) -> String {
        let mut spans = Vec::new();
        for s in &self.secrets {
            spans.extend(matches(text, s));
        }
        if spans.is_empty() {
            return text.to_owned();
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let (mut at, mut open): (usize, Option<(usize, usize)>) = (0, None);
        for (start, end) in spans {
            match &mut open {
                Some((_, e)) if start <= *e => *e = (*e).max(end),
                _ => {
                    if let Some((s, e)) = open.take() {
                        out.push_str(&text[at..s]);
                        out.push_str(REDACTED);
                        at = e;
                    }
                    open = Some((start, end));
                }
            }
        }
        if let Some((s, e)) = open {
            out.push_str(&text[at..s]);
            out.push_str(REDACTED);
            at = e;
        }
        out.push_str(&text[at..]);
        out
    }

    /// `text` redacted, then shortened to at most `max` characters with `…` marking a cut.
    /// Only the first `max` characters plus the longest secret's are looked at: the cut of that
    /// window may end in part of a secret, which the prefix rule redacts.
    pub fn cut(&self, text: &str, max: usize) -> String {
        let longest = self.secrets.first().map_or(0, |s| s.chars().count());
        let (window, cut) = match text.char_indices().nth(max + longest + 1) {
            Some((i, _)) => (&text[..i], true),
            None => (text, false),
        };
        let clean = self.redact(window);
        match clean.char_indices().nth(max) {
            Some((i, _)) => format!("{}…", &clean[..i]),
            None if cut => format!("{clean}…"),
            None => clean,
        }
    }
}

/// Where `secret` (whole, or a prefix of `MIN_PREFIX`+ characters) appears in `text`, as byte
/// spans. A secret shorter than `MIN_PREFIX` only counts whole.
fn matches(text: &str, secret: &str) -> Vec<(usize, usize)> {
    let probe_len = secret
        .char_indices()
        .nth(MIN_PREFIX)
        .map_or(secret.len(), |(i, _)| i);
    let probe = &secret[..probe_len];
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(probe) {
        let start = from + i;
        let rest = &text.as_bytes()[start..];
        let mut len = probe_len;
        // Extend the match as far as it goes, ending on a character boundary of the secret.
        for (j, c) in secret[probe_len..].char_indices() {
            let end = probe_len + j + c.len_utf8();
            if rest.len() >= end && rest[..end] == secret.as_bytes()[..end] {
                len = end;
            } else {
                break;
            }
        }
        out.push((start, start + len));
        from = start + text[start..].chars().next().map_or(1, char::len_utf8);
    }
    out
}

/// A query (or fragment) parameter whose value is a credential: its name, in any case,
/// contains `key`, `token`, `secret`, `sig` (also `signature`), `pass` (`password`), `pwd`,
/// `auth` or `cred` (`credential`). So `api_key`, `api-key`, `key`, `token`, `access_token`,
/// `sig` and `X-Amz-Credential` are; `api-version` is not.
pub fn is_credential_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key", "token", "secret", "sig", "pass", "pwd", "auth", "cred",
    ]
    .iter()
    .any(|w| name.contains(w))
}

/// The pieces of a URL, found by plain string rules (a URL that does not parse still has them).
struct UrlParts<'a> {
    /// Up to and including `://` (empty without a scheme).
    scheme: &'a str,
    userinfo: Option<&'a str>,
    /// `host[:port]`.
    host: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

impl<'a> UrlParts<'a> {
    fn of(url: &'a str) -> Self {
        let (scheme, rest) = match url.find("://") {
            Some(i) => url.split_at(i + 3),
            None => ("", url),
        };
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (rest, None),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, host) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        Self {
            scheme,
            userinfo,
            host,
            path,
            query,
            fragment,
        }
    }

    /// `name=value` pairs of the query and the fragment.
    fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.query
            .into_iter()
            .chain(self.fragment)
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
    }
}

/// `url` as it may be shown: userinfo replaced by `[redacted]`, the value of each credential
/// query parameter by `[redacted]`, the fragment left out.
pub fn public_url(url: &str) -> String {
    let p = UrlParts::of(url);
    let mut out = String::from(p.scheme);
    if p.userinfo.is_some() {
        out.push_str(REDACTED);
        out.push('@');
    }
    out.push_str(p.host);
    out.push_str(p.path);
    if let Some(q) = p.query {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_credential_param(&percent_decode(name)) => {
                    format!("{name}={REDACTED}")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// A URL's `host[:port]`, without userinfo, path or query: a target's name (and so part of the
/// run id and the file names). `target` when the URL has no host.
pub fn host_port(url: &str) -> String {
    let host = UrlParts::of(url).host;
    if host.is_empty() {
        "target".into()
    } else {
        host.to_owned()
    }
}

/// Looks like an API key rather than the name of an environment variable: a known key prefix,
/// or characters no variable name has.
pub fn looks_like_key(s: &str) -> bool {
    let known = ["sk-", "sk_", "hf_", "gsk_", "xai-", "pk-", "Bearer "];
    let name_like = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let mixed = s.len() >= 16
        && s.chars().any(|c| c.is_ascii_lowercase())
        && s.chars().any(|c| c.is_ascii_digit());
    known.iter().any(|p| s.starts_with(p)) || !name_like || mixed
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).and_then(|c| hex(*c)),
            b.get(i + 2).and_then(|c| hex(*c)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64 with padding, as an HTTP `Basic` credential is written.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzAB";

    #[test]
    fn a_secret_and_every_long_prefix_of_it_are_redacted_anywhere() {
        let r = Redactor::new().with(KEY);
        assert_eq!(r.redact(&format!("bad key {KEY}.")), "bad key [redacted].");
        assert_eq!(r.redact(&format!("{KEY}{KEY}")), "[redacted]");
        for n in 0..=KEY.len() {
            let text = format!("key: {}", &KEY[..n]);
            let clean = r.redact(&text);
            if n >= MIN_PREFIX {
                assert_eq!(clean, "key: [redacted]", "{n}");
            } else {
                assert_eq!(clean, text);
            }
            let mid = r.redact(&format!("a {} b", &KEY[..n]));
            assert!(n < MIN_PREFIX || mid == "a [redacted] b", "{n}: {mid}");
        }
        assert_eq!(Redactor::new().redact(KEY), KEY);
        assert_eq!(Redactor::new().with("abc").redact("abc"), "abc");
        assert_eq!(
            Redactor::new().with("hunter").redact("a hunter2"),
            "a [redacted]2"
        );
    }

    #[test]
    fn a_cut_never_leaves_part_of_a_secret() {
        let r = Redactor::new().with(KEY);
        for max in [10, 50, 200, 300] {
            for pad in 0..max + 60 {
                let text = format!("{}{KEY} and more text after it", "x".repeat(pad));
                let out = r.cut(&text, max);
                assert!(out.chars().count() <= max + 1, "{pad} {max}: {out}");
                for n in MIN_PREFIX..=KEY.len() {
                    assert!(!out.contains(&KEY[..n]), "{pad} {max}: {out}");
                }
            }
        }
        assert_eq!(r.cut("short", 10), "short");
        assert_eq!(r.cut("abcdef", 3), "abc…");
    }

    #[test]
    fn json_escaped_and_multibyte_secrets() {
        let r = Redactor::new().with("pa\"ss/wörd-très-long");
        assert_eq!(
            r.redact(r#"{"k":"pa\"ss/wörd-très-long"}"#),
            r#"{"k":"[redacted]"}"#
        );
        assert_eq!(r.redact("x pa\"ss/wö"), "x [redacted]");
        assert_eq!(r.redact("x pa\"ss/w"), "x pa\"ss/w");
    }

    #[test]
    fn url_credentials_are_secrets_and_never_shown() {
        let url = "https://bob:s3cr%40t-pass@h.example:8443/openai/v1?api-version=2024-02-01&api_key=K3Y-value-123&sig=abc%2Fdef#token=frag-secret";
        let r = Redactor::new().with_url(url);
        for s in [
            "s3cr%40t-pass",
            "s3cr@t-pass",
            "K3Y-value-123",
            "abc/def",
            "abc%2Fdef",
            "frag-secret",
            &base64(b"bob:s3cr@t-pass"),
        ] {
            assert_eq!(r.redact(&format!("<{s}>")), "<[redacted]>", "{s}");
        }
        assert_eq!(r.redact("api-version 2024-02-01"), "api-version 2024-02-01");
        assert_eq!(
            public_url(url),
            "https://[redacted]@h.example:8443/openai/v1?api-version=2024-02-01&api_key=[redacted]&sig=[redacted]"
        );
        assert_eq!(host_port(url), "h.example:8443");
        assert_eq!(
            host_port("http://u:p@127.0.0.1:8000?key=x"),
            "127.0.0.1:8000"
        );
        assert_eq!(host_port("http://127.0.0.1:8000/v1"), "127.0.0.1:8000");
        assert_eq!(host_port("http:///v1"), "target");
        assert_eq!(public_url("http://h:1/v1"), "http://h:1/v1");
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert!(format!("{r:?}").starts_with("Redactor("));
        assert!(!format!("{r:?}").contains("K3Y"));
    }

    #[test]
    fn credential_parameters_and_key_lookalikes() {
        for n in [
            "api_key",
            "api-key",
            "apikey",
            "key",
            "token",
            "access_token",
            "sig",
            "Signature",
            "X-Amz-Credential",
            "password",
            "auth",
        ] {
            assert!(is_credential_param(n), "{n}");
        }
        for n in ["api-version", "model", "deployment"] {
            assert!(!is_credential_param(n), "{n}");
        }
        for k in ["sk-abc", "hf_x", "abc-def", "0123", "a1b2c3d4e5f6g7h8i9"] {
            assert!(looks_like_key(k), "{k}");
        }
        for v in ["OPENAI_API_KEY", "MY_KEY_2", "_X", "key"] {
            assert!(!looks_like_key(v), "{v}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_cut_of_any_text_leaves_eight_characters_of_a_secret(
            secret in "sk-[A-Za-z0-9_-]{5,57}",
            before in "[ -~]{0,400}",
            after in "[ -~]{0,100}",
            max in 1usize..500,
        ) {
            let r = Redactor::new().with(&secret);
            let out = r.cut(&format!("{before}{secret}{after}"), max);
            for n in MIN_PREFIX..=secret.len() {
                proptest::prop_assert!(!out.contains(&secret[..n]), "{}", out);
            }
        }
    }

    #[test]
    fn a_header_value_and_its_credentials_are_secrets() {
        let mut r = Redactor::new();
        r.add_header_value("Bearer sk-header-secret-1");
        assert_eq!(
            r.redact("key sk-header-secret-1 echoed"),
            format!("key {REDACTED} echoed")
        );
        assert_eq!(r.redact("Bearer sk-header-secret-1"), REDACTED);
    }
}

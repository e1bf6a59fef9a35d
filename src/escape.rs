//! Untrusted text (server error bodies, model and phase names, Prometheus labels, script
//! strings) neutralised for the format it goes into, one function per format:
//!
//! - Markdown (`markdown`): every value a `.md` template prints. Line breaks become spaces (no
//!   injected heading or list), `|` is escaped (no extra table cell), `<` and `>` become
//!   entities (no raw HTML).
//! - CSV (`csv`): a cell is quoted when it holds a comma, quote or line break (RFC 4180), and a
//!   text cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`, so a
//!   spreadsheet shows it instead of evaluating it as a formula. Numbers are left as they are.
//! - Terminal (`terminal`): control characters other than line break and tab (ANSI and OSC
//!   escape sequences start with one) are shown as `\u{..}`, so a server cannot clear the screen
//!   or fake llmbench's output. Every `.txt` template value and every error llmbench prints.
//! - XML (`xml`, for JUnit files): `&`, `<`, `>`, `"` and `'` become entities, and characters
//!   XML 1.0 cannot hold (control characters but tab and line breaks) are dropped.
//! - HTML is minijinja's own auto-escaping (by file extension).
//!
//! `report` applies the first three to templates by file extension; `app`, `run` and `telemetry`
//! run `terminal` over every message they print that can carry outside text.

/// `s` safe inside Markdown text and table cells.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\r' | '\n' => out.push(' '),
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// `s` as one CSV field.
pub fn csv(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err();
    let s = if formula {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `s` safe to print on a terminal.
pub fn terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_format_neutralises_its_own_dangers() {
        assert_eq!(markdown("a|b\n# h <script>"), "a\\|b # h &lt;script&gt;");
        assert_eq!(csv("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv("-1.5"), "-1.5");
        assert_eq!(csv("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv("plain"), "plain");
        assert_eq!(
            terminal("ok\u{1b}[2J\u{1b}]0;t\u{7}"),
            "ok\\u{1b}[2J\\u{1b}]0;t\\u{7}"
        );
        assert_eq!(terminal("a\tb\nc"), "a\tb\nc");
    }

    proptest! {
        #[test]
        fn no_dangerous_character_survives(s in "\\PC*|[\\x00-\\x1f|<>\\n=+@-]{0,40}") {
            let m = markdown(&s);
            prop_assert!(!m.contains(['\n', '\r', '<', '>']));
            prop_assert!(!m.replace("\\|", "").contains('|'));
            let t = terminal(&s);
            prop_assert!(!t.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
            let c = csv(&s);
            let inner = c.strip_prefix('"').unwrap_or(&c);
            prop_assert!(!inner.starts_with(['=', '+', '@']) || s.parse::<f64>().is_ok());
            let x = xml(&s);
            prop_assert!(!x.contains(['<', '>', '"', '\'']));
            prop_assert!(!x.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
                .replace("&quot;", "").replace("&apos;", "").contains('&'));
            prop_assert!(!x.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')));
        }
    }
}

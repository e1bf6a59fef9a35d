//! Untrusted text reaching the outputs: a server's error body with terminal escapes and HTML,
//! a model name with Markdown table and heading syntax, a phase name that is a spreadsheet
//! formula. Each output neutralises what is dangerous in its own format.

mod common;

use common::{llmbench, only_file};

#[test]
fn hostile_names_and_error_bodies_are_escaped_for_each_output() {
    let body =
        "{\"error\":{\"message\":\"\u{1b}[2J\u{1b}]0;pwned\u{7} <script>alert(1)</script>\"}}";
    let response: &'static str = Box::leak(
        format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    );
    let (addr, _) = common::fixed_server(response);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.rhai");
    std::fs::write(
        &script,
        "request(#{ prompt: \"hi\", max_tokens: 3 });\nphase(\"=HYPERLINK(1)\", #{ requests: 2 });\n",
    )
    .unwrap();
    let results = dir.path().join("results");
    let out = llmbench()
        .arg(&script)
        .args(["--no-progress", "--url", &format!("http://{addr}/v1")])
        .args(["--model", "m | <b>x</b>\n# Injected heading"])
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "no request succeeded: {stderr}");
    for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{name}: {text:?}"
        );
    }
    assert!(
        stderr.contains("\\u{1b}[2J"),
        "the escape is shown, not obeyed: {stderr}"
    );
    let md = std::fs::read_to_string(only_file(&results, "reports", "md")).unwrap();
    assert!(!md.contains("<b>") && !md.contains("<script>"), "{md}");
    assert!(!md.lines().any(|l| l.starts_with("# Injected")), "{md}");
    assert!(
        md.contains("m \\| &lt;b&gt;x&lt;/b&gt; # Injected heading"),
        "{md}"
    );
    let html = std::fs::read_to_string(only_file(&results, "reports", "html")).unwrap();
    assert!(!html.contains("<b>x</b>"), "HTML escapes it too");
    let csv = std::fs::read_to_string(only_file(&results, "summary", "csv")).unwrap();
    assert!(
        csv.lines().skip(1).all(|l| !l.starts_with(['=', '+', '@'])),
        "{csv}"
    );
    assert!(csv.contains("'=HYPERLINK(1)"), "{csv}");
}

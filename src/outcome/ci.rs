//! What a CI system reads of a check: a JUnit XML file (one test case per assertion or gate
//! condition, so GitLab, GitHub and Jenkins show them natively) and a Markdown summary for a
//! pull-request comment or GitHub's step summary. Plain text builders; every outside string
//! goes through `escape`.

use crate::escape;

/// One checked condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub passed: bool,
    /// The measured value, or why it failed.
    pub message: String,
}

/// A JUnit XML document: one suite `suite` holding `cases`.
pub fn junit(suite: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| !c.passed).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"llmbench\" tests=\"{n}\" failures=\"{failures}\">\n  <testsuite name=\"{s}\" tests=\"{n}\" failures=\"{failures}\">\n",
        n = cases.len(),
        s = escape::xml(suite)
    );
    for c in cases {
        let (name, message) = (escape::xml(&c.name), escape::xml(&c.message));
        if c.passed {
            out.push_str(&format!(
                "    <testcase classname=\"llmbench\" name=\"{name}\"><system-out>{message}</system-out></testcase>\n"
            ));
        } else {
            out.push_str(&format!(
                "    <testcase classname=\"llmbench\" name=\"{name}\"><failure message=\"{message}\">{message}</failure></testcase>\n"
            ));
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// A Markdown table: `header` cells, then `rows`, every cell escaped.
pub fn markdown_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(header.iter().map(|h| escape::markdown(h)).collect());
    out.push_str(&line(header.iter().map(|_| "---".to_owned()).collect()));
    for r in rows {
        out.push_str(&line(r.iter().map(|c| escape::markdown(c)).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_counts_failures_and_escapes_names() {
        let cases = vec![
            Case {
                name: "p95 < 500 \"ms\" <&>".into(),
                passed: true,
                message: "412.3 < 500".into(),
            },
            Case {
                name: "gate".into(),
                passed: false,
                message: "+23% [+18%, +29%]".into(),
            },
        ];
        let x = junit("run x", &cases);
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert!(
            x.contains("name=\"p95 &lt; 500 &quot;ms&quot; &lt;&amp;&gt;\""),
            "{x}"
        );
        assert!(x.contains("<failure message=\"+23% [+18%, +29%]\">"), "{x}");
        assert_eq!(x.matches("<testcase").count(), 2);
    }

    #[test]
    fn a_markdown_table_escapes_its_cells() {
        let t = markdown_table(&["a", "b"], &[vec!["x|y".into(), "<b>".into()]]);
        assert_eq!(t, "| a | b |\n| --- | --- |\n| x\\|y | &lt;b&gt; |\n");
    }
}

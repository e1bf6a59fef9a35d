//! Printing checks of the real-browser test: a report printed to PDF on A4 (the default paper
//! is Letter) and read back with poppler's `pdftotext`, to show no table column was clipped.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The column headers of the table with id `id` in `html` (each header's first line).
pub fn column_headers(html: &str, id: &str) -> Vec<String> {
    let thead = &html[html
        .find(&format!("<table id=\"{id}\""))
        .unwrap_or_else(|| panic!("no table {id}"))..];
    let thead = &thead[..thead.find("</thead>").unwrap()];
    thead
        .split("<th")
        .skip(1)
        .filter(|h| h.starts_with('>') || h.starts_with(' '))
        .map(|h| {
            let h = &h[h.find('>').unwrap() + 1..];
            let h = h.split("</th>").next().unwrap();
            h.split("<br>").next().unwrap().to_owned()
        })
        .collect()
}

/// Prints `html` (written to `page`) to PDF on A4 paper; returns the PDF's path.
pub fn print_on_a4(chromium: &Path, html: &str, page: &Path) -> PathBuf {
    let a4 = "<style>@page { size: A4 portrait; } @page landscape { size: A4 landscape; }</style></head>";
    std::fs::write(page, html.replace("</head>", a4)).unwrap();
    let pdf = page.with_extension("pdf");
    llmbench::app::chromium::print_pdf(chromium, page, &pdf).unwrap();
    pdf
}

/// Every word of every header is in the text of the printed `pdf` (nothing clipped; a header
/// may wrap inside its cell). Skipped without `pdftotext`.
pub fn assert_printed(pdf: &Path, headers: &[String]) {
    let text = pdftotext(pdf);
    if text.is_empty() {
        return;
    }
    let words: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for h in headers {
        let h = h.replace("&#x2f;", "/").replace("&amp;", "&");
        for w in h.split_whitespace() {
            assert!(
                words.contains(w),
                "{}: header {h:?} (word {w:?}) missing",
                pdf.display()
            );
        }
    }
}

/// The text of `pdf` (poppler's `pdftotext`); a missing `pdftotext` fails where Chromium is
/// required (CI installs both), else the check is skipped with a message.
fn pdftotext(pdf: &Path) -> String {
    match Command::new("pdftotext").arg(pdf).arg("-").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        other => {
            assert!(
                std::env::var("LLMBENCH_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
                "pdftotext failed ({other:?}): install poppler-utils"
            );
            eprintln!("SKIPPED: pdftotext (poppler-utils) is not installed");
            String::new()
        }
    }
}

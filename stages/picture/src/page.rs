//! A self-contained HTML page (inline style, no script, no external assets) that shows a Markdown report and
//! pictures beside it: `eval/index.html`, the page to open after a run.
//!
//! Only the Markdown the stages write is understood: table rows (`| a | b |`, the first row the header, the
//! `|---|` rule skipped) become a table; every other non-empty line a paragraph, with `` `code` `` spans kept.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

/// A picture on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// Section heading.
    pub heading: String,
    /// The image's address relative to the page.
    pub src: String,
    /// What the picture shows, under it.
    pub caption: String,
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, safe in element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The address of `file` relative to the folder `from` (both relative to the same folder, or both absolute), with
/// the bytes a URL path cannot hold percent-encoded; `None` when one is absolute and the other not.
pub fn relative_src(from: &Path, file: &Path) -> Option<String> {
    if from.is_absolute() != file.is_absolute() {
        return None;
    }
    fn parts(p: &Path) -> Vec<Component<'_>> {
        p.components().filter(|c| *c != Component::CurDir).collect()
    }
    let (from, to) = (parts(from), parts(file));
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    if from[common..].contains(&Component::ParentDir) {
        return None;
    }
    let mut rel = PathBuf::new();
    for _ in common..from.len() {
        rel.push("..");
    }
    for c in &to[common..] {
        rel.push(c.as_os_str());
    }
    let rel = rel.to_string_lossy().replace('\\', "/");
    let mut out = String::new();
    for b in rel.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    Some(out)
}

/// Paragraph text with `` `code` `` spans as `<code>`, everything escaped.
fn inline(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", escape(part))
            } else {
                escape(part)
            }
        })
        .collect()
}

/// The cells of a Markdown table row.
fn cells(row: &str) -> Vec<&str> {
    let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(str::trim).collect()
}

fn is_rule(row: &str) -> bool {
    row.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// `markdown` as HTML: paragraphs and tables.
pub fn markdown_html(markdown: &str) -> String {
    let mut out = String::new();
    let mut in_table = false;
    let mut header_done = false;
    for line in markdown.lines().map(str::trim) {
        let row = line.starts_with('|');
        if in_table && !row {
            out.push_str("</tbody></table>\n");
            in_table = false;
        }
        if row {
            if !in_table {
                out.push_str("<table>\n");
                in_table = true;
                header_done = false;
            }
            if is_rule(line) {
                continue;
            }
            let tag = if header_done { "td" } else { "th" };
            if !header_done {
                out.push_str("<thead>");
            }
            out.push_str("<tr>");
            for cell in cells(line) {
                let _ = write!(out, "<{tag}>{}</{tag}>", inline(cell));
            }
            out.push_str("</tr>");
            if !header_done {
                out.push_str("</thead><tbody>");
                header_done = true;
            }
            out.push('\n');
        } else if !line.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", inline(line));
        }
    }
    if in_table {
        out.push_str("</tbody></table>\n");
    }
    out
}

/// The whole page: `title` as heading, the report, then each figure.
pub fn results_page(title: &str, markdown: &str, figures: &[Figure]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 2em; color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; font-size: 90%; }}\n\
         th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }}\n\
         th {{ background: #eee; }}\n\
         td:first-child, td:nth-child(2), th:first-child, th:nth-child(2) {{ text-align: left; }}\n\
         tbody tr:nth-child(3n+1) td {{ border-top: 2px solid #888; }}\n\
         img {{ max-width: 100%; image-rendering: pixelated; border: 1px solid #ccc; }}\n\
         figcaption {{ color: #555; max-width: 60em; }}\n\
         </style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = escape(title)
    );
    out.push_str(&markdown_html(markdown));
    for f in figures {
        let _ = write!(
            out,
            "<h2>{}</h2>\n<figure>\n<img src=\"{}\" alt=\"{}\">\n<figcaption>{}</figcaption>\n</figure>\n",
            escape(&f.heading),
            escape(&f.src),
            escape(&f.heading),
            inline(&f.caption)
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Protocol `oassl`, model `data/train/model.pt` (oassl, step 2).\n\n\
        | split | maps | samples | AUC |\n|---|---|---|---|\n\
        | test_duet | model | 2 | 41.20 |\n| test_duet | random map | 2 | 30.00 |\n";

    #[test]
    fn markdown_tables_become_html_tables() {
        let html = markdown_html(REPORT);
        assert_eq!(
            html,
            "<p>Protocol <code>oassl</code>, model <code>data/train/model.pt</code> (oassl, step 2).</p>\n\
             <table>\n<thead><tr><th>split</th><th>maps</th><th>samples</th><th>AUC</th></tr></thead><tbody>\n\
             <tr><td>test_duet</td><td>model</td><td>2</td><td>41.20</td></tr>\n\
             <tr><td>test_duet</td><td>random map</td><td>2</td><td>30.00</td></tr>\n</tbody></table>\n"
        );
    }

    #[test]
    fn text_is_escaped_everywhere() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let page = results_page(
            "eval <oassl>",
            "| a<b | `c&d` |\n|---|---|\n| <script> | x |\n",
            &[Figure {
                heading: "Gallery".into(),
                src: "gallery.png".into(),
                caption: "green & red".into(),
            }],
        );
        assert!(page.contains("<h1>eval &lt;oassl&gt;</h1>"), "{page}");
        assert!(
            page.contains("<th>a&lt;b</th><th><code>c&amp;d</code></th>"),
            "{page}"
        );
        assert!(
            page.contains("<td>&lt;script&gt;</td>") && !page.contains("<script>"),
            "{page}"
        );
        assert!(
            page.contains("<img src=\"gallery.png\" alt=\"Gallery\">"),
            "{page}"
        );
        assert!(page.contains("green &amp; red"), "{page}");
        assert!(!page.contains("http"), "no external asset: {page}");
    }

    #[test]
    fn sources_are_relative_to_the_page() {
        let src = |a: &str, b: &str| relative_src(Path::new(a), Path::new(b));
        assert_eq!(
            src("data/eval", "data/train/loss_curve.png").as_deref(),
            Some("../train/loss_curve.png")
        );
        assert_eq!(
            src("/r/run a/eval", "/r/run a/train/x.png").as_deref(),
            Some("../train/x.png")
        );
        assert_eq!(
            src("/r/eval", "/q/run a/x.png").as_deref(),
            Some("../../q/run%20a/x.png")
        );
        assert_eq!(
            src("./data/eval", "data/eval/gallery.png").as_deref(),
            Some("gallery.png")
        );
        assert_eq!(src("data/eval", "/abs/x.png"), None);
        assert_eq!(src("../up/eval", "x.png"), None);
    }
}

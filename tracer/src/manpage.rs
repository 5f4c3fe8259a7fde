//! The man page, tracer(1), made from the command-line definition: clap_mangen
//! writes the title, name, synopsis, description and options; the text after
//! the options in `--help` (examples, what it reports, exit status) becomes
//! sections of their own, its aligned columns turned into tagged paragraphs
//! so that man can fill them to any width.

use std::io::{self, Write};

use roff::{Roff, bold, roman};

const DESCRIPTION: &str = "tracer attaches eBPF programs to a running process (--pid), to a \
    command it launches (after --), or to every process of this host, of a container or of a \
    cgroup (--all, --container, --cgroup), and says in one report what the kernel did to them \
    and on behalf of which Python code: reads per file and socket, context switches, signals, \
    child processes and zombies, and the hot Python functions and lines, sampled in the kernel. \
    It needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BPF and BTF.";

/// A part of the help text after the options, as the man page lays it out.
#[derive(Debug, PartialEq, Eq)]
enum Block {
    /// `Heading:` alone on its line.
    Heading(String),
    /// Lines at the left margin, joined.
    Paragraph(String),
    /// An indented line `TERM  description`, with its continuation lines.
    Item(String, String),
}

pub fn render(cmd: clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|text| text.to_string())
        .unwrap_or_default();
    // DESCRIPTION: more than `about`, which the NAME line already says
    // (here, not as clap's long_about: that would switch `--help` to its
    // long layout).
    let man = clap_mangen::Man::new(cmd.long_about(DESCRIPTION));
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let mut roff = Roff::new();
    for block in blocks(&after) {
        match block {
            Block::Heading(title) => {
                roff.control("SH", [title.to_uppercase().as_str()]);
            }
            Block::Paragraph(text) => {
                roff.control("PP", []).text([roman(text)]);
            }
            Block::Item(term, text) => {
                roff.control("TP", [])
                    .text([bold(term)])
                    .text([roman(text)]);
            }
        }
    }
    roff.to_writer(out)?;
    man.render_version_section(out)
}

/// Splits the help's closing text into headings, paragraphs and items.
fn blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim();
        match blocks.last_mut() {
            _ if body.is_empty() => blocks.push(Block::Paragraph(String::new())),
            _ if indent == 0 && body.ends_with(':') => {
                blocks.push(Block::Heading(body.trim_end_matches(':').to_owned()))
            }
            Some(Block::Paragraph(text)) if indent == 0 && !text.is_empty() => {
                text.push(' ');
                text.push_str(body);
            }
            _ if indent == 0 => blocks.push(Block::Paragraph(body.to_owned())),
            // Deeper than an item's term: the description goes on.
            Some(Block::Item(_, text)) if indent > 2 => {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(body);
            }
            _ => {
                // The term ends at the first run of two spaces (the column gap).
                let (term, text) = body.split_once("  ").unwrap_or((body, ""));
                blocks.push(Block::Item(term.to_owned(), text.trim().to_owned()));
            }
        }
    }
    blocks.retain(|b| !matches!(b, Block::Paragraph(text) if text.is_empty()));
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_become_items_and_text_paragraphs() {
        let text = "\
Examples:
  sudo tracer --pid 1234                 trace a running process
  sudo tracer --pid $(cat gunicorn.pid) --duration 30 --flamegraph workers.svg
                                         a pre-fork server: the master
                                         and every worker

Python sampling: a CPU-clock perf_event
on each thread.

Exit status:
  0  report written
  8  --serve: the address cannot be listened on";
        assert_eq!(
            blocks(text),
            [
                Block::Heading("Examples".into()),
                Block::Item(
                    "sudo tracer --pid 1234".into(),
                    "trace a running process".into()
                ),
                Block::Item(
                    "sudo tracer --pid $(cat gunicorn.pid) --duration 30 --flamegraph workers.svg"
                        .into(),
                    "a pre-fork server: the master and every worker".into()
                ),
                Block::Paragraph("Python sampling: a CPU-clock perf_event on each thread.".into()),
                Block::Heading("Exit status".into()),
                Block::Item("0".into(), "report written".into()),
                Block::Item(
                    "8".into(),
                    "--serve: the address cannot be listened on".into()
                ),
            ]
        );
    }

    #[test]
    fn the_page_has_every_section_and_exit_code() {
        use clap::CommandFactory as _;
        let mut page = Vec::new();
        render(crate::cli::Args::command(), &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH DESCRIPTION",
            ".SH OPTIONS",
            ".SH EXAMPLES",
            ".SH \"WHAT IT REPORTS\"",
            ".SH \"EXIT STATUS\"",
            ".SH VERSION",
        ] {
            assert!(page.contains(section), "no {section}");
        }
        for code in 0..=8 {
            assert!(
                page.contains(&format!(".TP\n\\fB{code}\\fR\n")),
                "exit {code}"
            );
        }
    }
}

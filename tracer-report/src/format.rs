//! Units and names for people, shared by the text renderer and the
//! sentences of the findings: counts with thousands separators, sizes,
//! durations, processes and signal peers; in fixed widths for the live
//! view ([`compact`]).

use std::borrow::Cow;

use super::SignalGroup;

pub mod compact;

/// `text` safe to print on a terminal: control characters (ESC, BEL,
/// newline, tab...), DEL, C1 controls and bidirectional overrides, which a
/// traced program can put in its file names, arguments and task name, are
/// shown escaped (`\x1b`, `\n`, `\u{202e}`) instead of acting on the
/// terminal or breaking rows.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `n` and the word for one or for several: "1 child", "3 children".
pub fn count(n: u64, one: &str, several: &str) -> String {
    format!("{} {}", thousands(n), plural(n, one, several))
}

/// The word for `n`: `one` or `several`.
pub fn plural<'a>(n: u64, one: &'a str, several: &'a str) -> &'a str {
    if n == 1 { one } else { several }
}

/// The counts of `parts` that are not zero, each with thousands separators
/// and its words ("43,639 reads"), as a list: "a, b and c"; `None` when
/// every count is zero.
pub fn nonzero(parts: &[(u64, &str)]) -> Option<String> {
    let named: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, words)| format!("{} {words}", thousands(*n)))
        .collect();
    match named.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        [head @ .., last] => Some(format!("{} and {last}", head.join(", "))),
    }
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} us", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

pub fn ellipsize(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let tail: String = text
        .chars()
        .rev()
        .take(width - 3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("...{tail}")
}

/// "comm (pid N)".
pub fn peer(pid: u32, comm: &str) -> String {
    format!("{comm} (pid {pid})")
}

/// The sender of a signal group: "kernel" or "comm (pid N)".
pub fn sender_text(g: &SignalGroup) -> String {
    if g.sender.oom_killer {
        "the OOM killer".into()
    } else if g.sender.kernel {
        "kernel".into()
    } else {
        peer(g.sender.pid, &g.sender.comm)
    }
}

/// The target of a signal: "comm (pid N)", with the thread when it was sent to one.
pub fn target_text(pid: u32, tid: Option<u32>, comm: &str) -> String {
    match tid {
        Some(tid) if tid != pid => format!("{comm} (pid {pid} tid {tid})"),
        _ => peer(pid, comm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert!(matches!(printable("/srv/app.py"), Cow::Borrowed(_)));
        assert_eq!(printable("résumé ünïcode"), "résumé ünïcode");
        assert_eq!(
            printable("a\x1b[31mb\nc\td\re\x07f\x7fg"),
            "a\\x1b[31mb\\nc\\td\\re\\x07f\\x7fg"
        );
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(printable("evil\u{202e}txt.py"), "evil\\u{202e}txt.py");
        assert!(!printable("\x00\x1b\x07").chars().any(|c| c.is_control()));
    }

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(nonzero(&[(0, "events lost"), (0, "reads")]), None);
        assert_eq!(
            nonzero(&[(0, "events lost"), (43639, "reads"), (0, "thread records")]).as_deref(),
            Some("43,639 reads")
        );
        assert_eq!(
            nonzero(&[(1, "a"), (0, "b"), (2000, "c"), (3, "d")]).as_deref(),
            Some("1 a, 2,000 c and 3 d")
        );
        assert_eq!(bytes(1024), "1 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(500), "500 B");
        assert_eq!(bytes(280 * 1024 * 1024), "280 MiB");
        assert_eq!(duration(1_500_000), "1.5 ms");
        assert_eq!(duration(2_000_000_000), "2.00 s");
        assert_eq!(ellipsize("/a/very/long/path/name.txt", 12), ".../name.txt");
    }
}

//! Units and names for people, shared by the text renderer and the
//! sentences of the findings: counts with thousands separators, sizes,
//! durations, processes and signal peers.

use super::SignalGroup;

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
    if g.sender.kernel {
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
    fn number_formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(1024), "1 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(500), "500 B");
        assert_eq!(bytes(280 * 1024 * 1024), "280 MiB");
        assert_eq!(duration(1_500_000), "1.5 ms");
        assert_eq!(duration(2_000_000_000), "2.00 s");
        assert_eq!(ellipsize("/a/very/long/path/name.txt", 12), ".../name.txt");
    }
}

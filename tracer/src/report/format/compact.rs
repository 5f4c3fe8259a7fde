//! Figures in fixed widths, for the live view's columns: `12.3k`, `4.0K`,
//! `1:02:03` (the report's own forms, with units spelled out, are the
//! parent module's).

use std::time::Duration;

/// `12.3`: a share of `all`, in percent.
pub fn percent(part: u64, all: u64) -> String {
    if all == 0 {
        return "0.0".into();
    }
    format!("{:.1}", 100.0 * part as f64 / all as f64)
}

/// `999`, `12.3k`, `4.5M`, `6.7G`... `18.4E`: at most 6 characters.
pub fn count(n: u64) -> String {
    if n < 1000 {
        return n.to_string();
    }
    let mut value = n as f64;
    for unit in ["k", "M", "G", "T", "P", "E"] {
        value /= 1e3;
        if value < 999.95 {
            return format!("{value:.1}{unit}");
        }
    }
    format!("{value:.1}E")
}

/// Events a second over `secs`.
pub fn rate(n: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "-".into();
    }
    count((n as f64 / secs).round() as u64)
}

/// `512B`, `4.0K`, `1.5M`, `2.0G` a second over `secs`: at most 7 characters.
pub fn bytes_rate(n: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "-".into();
    }
    bytes((n as f64 / secs).round() as u64)
}

/// `512B`, `4.0K`, `1.5M`, `2.0G`... `8.0E`: at most 7 characters.
pub fn bytes(n: u64) -> String {
    if n < 1024 {
        return format!("{n}B");
    }
    let mut value = n as f64;
    for unit in ["K", "M", "G", "T", "P", "E"] {
        value /= 1024.0;
        if value < 1023.95 {
            return format!("{value:.1}{unit}");
        }
    }
    format!("{value:.1}E")
}

/// The most used request sizes: `1K 4K`, `8K`.
pub fn request_sizes(requests: &[(u64, u64)]) -> String {
    requests
        .iter()
        .map(|&(size, _)| match size {
            s if s >= 1024 && s % 1024 == 0 => format!("{}K", s / 1024),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `h:mm:ss`.
pub fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `0.123 s`, `12.3 s`, `2m03s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    match s {
        s if s < 10.0 => format!("{s:.3}s"),
        s if s < 100.0 => format!("{s:.1}s"),
        s => format!("{}m{:02}s", s as u64 / 60, s as u64 % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_fit_their_columns() {
        assert_eq!(count(999_949), "999.9k");
        assert_eq!(count(999_950), "1.0M");
        for n in [0, 999, 1_000, 999_949, 999_950, 12_345_678, u64::MAX] {
            assert!(count(n).len() <= 6, "{}", count(n));
        }
        for n in [0, 1023, 1024, 5 << 20, u64::MAX / 2] {
            assert!(bytes(n).len() <= 7, "{}", bytes(n));
        }
        assert_eq!(clock(Duration::from_secs(3 * 3600 + 62)), "3:01:02");
        assert_eq!(percent(1, 3), "33.3");
        assert_eq!(percent(1, 0), "0.0");
        assert_eq!(rate(5, 0.0), "-");
        assert_eq!(seconds(Duration::from_secs(125)), "2m05s");
    }
}

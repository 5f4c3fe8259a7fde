//! Figures in fixed widths, for the live view's columns: `12.3k`, `4.0K`,
//! `1:02:03` (the report's own forms, with units spelled out, are the
//! parent module's).

use std::time::Duration;

/// `12.3`: a share in percent.
pub fn percent(share: f64) -> String {
    fixed(share, 1)
}

/// `45%`: a share in percent, whole; `-` when there is none.
pub fn whole_percent(share: Option<f64>) -> String {
    share.map_or_else(|| "-".into(), |share| format!("{}%", fixed(share, 0)))
}

/// `1.235`: `value` with `decimals` digits after the point.
pub fn fixed(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
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

/// Events a second, as [`count`]; `-` when there is no rate.
pub fn rate(per_second: Option<f64>) -> String {
    per_second.map_or_else(|| "-".into(), |r| count(r.round() as u64))
}

/// `512B`, `4.0K`, `1.5M`, `2.0G` a second, as [`bytes`]; `-` when there
/// is no rate.
pub fn bytes_rate(per_second: Option<f64>) -> String {
    per_second.map_or_else(|| "-".into(), |r| bytes(r.round() as u64))
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
        assert_eq!(percent(100.0 / 3.0), "33.3");
        assert_eq!(whole_percent(Some(45.4)), "45%");
        assert_eq!(whole_percent(None), "-");
        assert_eq!(rate(None), "-");
        assert_eq!(rate(Some(1234.4)), "1.2k");
        assert_eq!(bytes_rate(Some(4096.0)), "4.0K");
        assert_eq!(seconds(Duration::from_secs(125)), "2m05s");
    }
}

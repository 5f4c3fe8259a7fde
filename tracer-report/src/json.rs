//! JSON renderer: the `Report` as is (keys documented in docs/report-schema.md).

use std::io::Write as _;

use super::Report;

/// The report written as it is serialised: a million rows are not held
/// twice (as data and as text).
pub fn write(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer_pretty(&mut out, report)?;
    out.write_all(b"\n")?;
    out.flush()
}

pub fn render(report: &Report) -> String {
    // Serialising plain data cannot fail; keep a readable message if it ever does.
    serde_json::to_string_pretty(report).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileIo, Target};

    #[test]
    fn round_trips_with_stable_keys() {
        let mut report = Report {
            target: Target {
                pid: 7,
                comm: "python3".into(),
                argv: vec!["python3".into(), "app.py".into()],
                ..Default::default()
            },
            duration_s: 1.5,
            complete: true,
            ..Default::default()
        };
        let mut file = FileIo {
            pid: 7,
            path: "/proc/self/status".into(),
            fs: "proc".into(),
            blksize: Some(1024),
            syscalls: 3,
            ..Default::default()
        };
        file.request_sizes.insert("1024".into(), 3);
        report.reads.push(file);
        let text = render(&report);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["target"]["pid"], 7);
        assert_eq!(value["reads"][0]["request_sizes"]["1024"], 3);
        assert_eq!(value["reads"][0]["context_switches"]["voluntary"], 0);
        assert_eq!(value["events"]["lost"], 0);
        assert_eq!(value["sched"]["threads"], serde_json::json!([]));
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }
}

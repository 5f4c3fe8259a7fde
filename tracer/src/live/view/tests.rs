use std::time::Duration;

use ratatui::{Terminal, backend::TestBackend};

use super::*;
use crate::{
    analysis::live_model::{FileRow, ProcessRow, ThreadRow},
    live::render,
};

fn function(pid: u32, tid: u32, name: &str, own: u64, total: u64) -> FunctionRow {
    FunctionRow {
        pid,
        tid,
        thread: format!("t{tid}"),
        function: name.into(),
        own,
        total,
        own_all: own * 10,
        total_all: total * 10,
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        target: "pid 100 (python3)".into(),
        elapsed: Duration::from_secs(75),
        interval: Duration::from_secs(1),
        samples: 100,
        lost: 0,
        functions: vec![
            function(100, 100, "main (app.py:1)", 0, 100),
            function(100, 100, "hot_function (app.py:10)", 60, 60),
            function(100, 101, "hot_function (app.py:10)", 20, 20),
            function(200, 200, "parse (lib.py:5)", 20, 40),
        ],
        files: vec![
            FileRow {
                pid: 100,
                path: "/proc/self/status".into(),
                write: false,
                syncs_all: 0,
                syscalls: 400,
                bytes: 400 * 1024,
                syscalls_all: 4000,
                bytes_all: 4000 * 1024,
                requests: vec![(1024, 4000)],
            },
            FileRow {
                pid: 100,
                path: "/etc/app.conf".into(),
                write: false,
                syncs_all: 0,
                syscalls: 2,
                bytes: 1 << 20,
                syscalls_all: 2,
                bytes_all: 1 << 20,
                requests: vec![(8192, 1), (1 << 20, 1)],
            },
        ],
        threads: vec![ThreadRow {
            pid: 100,
            tid: 100,
            comm: "python3".into(),
            voluntary: 3,
            involuntary: 1,
            on_cpu: Duration::from_millis(500),
            voluntary_all: 30,
            involuntary_all: 10,
        }],
        processes: vec![
            ProcessRow {
                pid: 100,
                ppid: 1,
                comm: "python3".into(),
                state: ProcessState::Running,
            },
            ProcessRow {
                pid: 101,
                ppid: 100,
                comm: "sleep".into(),
                state: ProcessState::Zombie(Duration::from_millis(2500)),
            },
        ],
        ..Snapshot::default()
    }
}

fn column(table: &Table, heading: &str) -> Vec<String> {
    let i = table
        .columns
        .iter()
        .position(|c| c.heading == heading)
        .unwrap();
    table.rows.iter().map(|r| r[i].clone()).collect()
}

#[test]
fn python_rows_are_by_thread_busiest_own_first_with_their_share() {
    let table = table(&snapshot(), &View::default(), 80);
    assert_eq!(
        column(&table, "Function (file:line)"),
        [
            "hot_function (app.py:10)",
            "parse (lib.py:5)",
            "hot_function (app.py:10)",
            "main (app.py:1)"
        ],
        "equal own shares: the larger total first"
    );
    assert_eq!(column(&table, "%Own"), ["60.0", "20.0", "20.0", "0.0"]);
    assert_eq!(column(&table, "Thread"), ["t100", "t200", "t101", "t100"]);
}

#[test]
fn s_sorts_by_total_then_cumulative() {
    let mut view = View::default();
    assert_eq!(view.on_key(Key::Char('s')), Action::Redraw);
    assert_eq!(view.sort(), "total %");
    let table = table(&snapshot(), &view, 80);
    assert_eq!(column(&table, "%Total")[0], "100.0");
    assert_eq!(column(&table, "Function (file:line)")[0], "main (app.py:1)");
    for _ in 0..3 {
        view.on_key(Key::Char('s'));
    }
    assert_eq!(view.sort(), "own %", "s cycles back to the first sort");
}

#[test]
fn grouping_adds_up_threads_then_processes() {
    let rows = snapshot().functions;
    let by_process = group(&rows, Grouping::Process);
    let hot: Vec<_> = by_process
        .iter()
        .filter(|r| r.function.starts_with("hot_function"))
        .collect();
    assert_eq!(hot.len(), 1);
    assert_eq!((hot[0].pid, hot[0].own, hot[0].own_all), (100, 80, 800));
    let all = group(&rows, Grouping::All);
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|r| r.pid == 0));
    let mut view = View::default();
    view.on_key(Key::Char('g'));
    view.on_key(Key::Char('g'));
    assert_eq!(view.grouping, Grouping::All);
    let table = table(&snapshot(), &view, 80);
    assert!(!table.columns.iter().any(|c| c.heading == "PID"));
    assert_eq!(column(&table, "%Own")[0], "80.0");
}

#[test]
fn the_filter_keeps_matching_rows_and_says_when_none_does() {
    let mut view = View::default();
    view.on_key(Key::Char('/'));
    assert!(view.editing);
    for c in "HOT".chars() {
        view.on_key(Key::Char(c));
    }
    // Typed into the filter, not taken as keys.
    assert_eq!(view.on_key(Key::Char('q')), Action::Redraw);
    view.on_key(Key::Backspace);
    assert_eq!(view.on_key(Key::Enter), Action::Redraw);
    assert_eq!(view.filter, "HOT");
    let rows = table(&snapshot(), &view, 80).rows;
    assert_eq!(rows.len(), 2, "case-insensitive: {rows:?}");
    view.filter = "nothing".into();
    let empty = table(&snapshot(), &view, 80);
    assert!(empty.rows.is_empty());
    assert_eq!(empty.empty, "nothing matches /nothing");
    view.on_key(Key::Esc);
    assert!(view.filter.is_empty());
}

#[test]
fn q_and_ctrl_c_quit_even_while_typing_a_filter() {
    let mut view = View::default();
    assert_eq!(view.on_key(Key::Char('q')), Action::Quit);
    view.on_key(Key::Char('/'));
    assert_eq!(view.on_key(Key::Interrupt), Action::Quit);
}

#[test]
fn tab_goes_round_the_views_and_p_pauses() {
    let mut view = View::default();
    let mut seen = vec![view.tab];
    for _ in 0..TABS.len() {
        view.on_key(Key::Tab);
        seen.push(view.tab);
    }
    assert_eq!(&seen[..TABS.len()], &TABS);
    assert_eq!(view.tab, Tab::Python);
    view.on_key(Key::BackTab);
    assert_eq!(view.tab, Tab::Loops);
    view.on_key(Key::Char('p'));
    assert!(view.paused);
    assert!(header(&snapshot(), &view).ends_with("PAUSED"));
}

#[test]
fn reads_are_by_syscalls_a_second_with_their_request_sizes() {
    let view = View {
        tab: Tab::Io,
        ..View::default()
    };
    let table = table(&snapshot(), &view, 80);
    assert_eq!(
        column(&table, "File"),
        ["/proc/self/status", "/etc/app.conf"]
    );
    assert_eq!(column(&table, "Calls/s"), ["400", "2"]);
    assert_eq!(column(&table, "Bytes/s"), ["400.0K", "1.0M"]);
    assert_eq!(column(&table, "Sizes"), ["1K", "8K 1024K"]);
}

/// A file's writes are a row of their own, its syncs after its sizes.
#[test]
fn writes_are_rows_of_their_own_with_their_syncs() {
    let mut snapshot = snapshot();
    snapshot.files.push(FileRow {
        pid: 100,
        path: "/var/log/app.log".into(),
        write: true,
        syscalls: 30,
        bytes: 30 * 23,
        syscalls_all: 300,
        bytes_all: 300 * 23,
        syncs_all: 30,
        requests: vec![(23, 300)],
    });
    let view = View {
        tab: Tab::Io,
        ..View::default()
    };
    let table = table(&snapshot, &view, 80);
    assert_eq!(
        column(&table, "File"),
        ["/proc/self/status", "/var/log/app.log", "/etc/app.conf"]
    );
    assert_eq!(column(&table, "R/W"), ["read", "write", "read"]);
    assert_eq!(column(&table, "Sizes")[1], "23 +30 sync");
}

#[test]
fn a_long_path_keeps_its_end() {
    let mut snapshot = snapshot();
    snapshot.files[0].path = format!("/srv/{}config/settings.toml", "deep/".repeat(10));
    let view = View {
        tab: Tab::Io,
        ..View::default()
    };
    let table = table(&snapshot, &view, 80);
    // 80 columns less 50 of figures and 6 gaps.
    assert_eq!(column(&table, "File")[0], "…ep/config/settings.toml");
    assert_eq!(column(&table, "File")[0].chars().count(), 24);
    assert_eq!(keep_end("short", 30), "short");
}

#[test]
fn zombies_come_first_with_their_age() {
    let view = View {
        tab: Tab::Processes,
        ..View::default()
    };
    let table = table(&snapshot(), &view, 80);
    assert_eq!(column(&table, "State"), ["zombie 2.500s", "running"]);
}

#[test]
fn every_view_fits_80_columns() {
    let mut view = View::default();
    for tab in TABS {
        view.tab = tab;
        let table = table(&snapshot(), &view, 80);
        let fixed: u16 = table.columns.iter().filter_map(|c| c.width).sum();
        let gaps = table.columns.len() as u16 - 1;
        assert!(fixed + gaps <= 80 - 14, "{tab:?}: {fixed} + {gaps} columns");
        for row in &table.rows {
            for (cell, column) in row.iter().zip(&table.columns) {
                if let (Some(width), true) = (column.width, column.right) {
                    assert!(
                        cell.len() <= width as usize,
                        "{tab:?}: {cell:?} in {column:?}"
                    );
                }
            }
        }
        assert!(footer(&view).len() <= 80, "{}", footer(&view));
    }
    assert!(header(&snapshot(), &view).len() <= 80);
}

#[test]
fn drawn_at_80_by_24() {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let snapshot = snapshot();
    terminal
        .draw(|frame| render::draw(frame, Some(&snapshot), &View::default()))
        .unwrap();
    let buffer = terminal.backend().buffer();
    let lines: Vec<String> = (0..24)
        .map(|y| (0..80).map(|x| buffer[(x, y)].symbol()).collect())
        .collect();
    assert!(lines[0].starts_with("pid 100 (python3)  0:01:15  100 samples/s  lost 0"));
    assert!(lines[1].contains("Python|I/O|Scheduling"), "{}", lines[1]);
    assert!(lines[2].contains("%Own"), "{}", lines[2]);
    assert!(
        lines[3].contains(" 60.0 ") && lines[3].contains("hot_function (app.py:10)"),
        "{}",
        lines[3]
    );
    assert!(lines[23].starts_with("q quit p pause s sort:own %"));
}

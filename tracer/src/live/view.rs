//! What the view shows of a snapshot: the tab, the sort, the filter, the
//! grouping of Python rows, and each tab as a table of cells. Pure: the
//! renderer draws these tables as they are.

use std::collections::BTreeMap;

use crate::analysis::live_model::{FunctionRow, ProcessState, Snapshot};
use crate::report::format::compact::{
    bytes_rate, clock, count, fixed, percent, rate, request_sizes, seconds, whole_percent,
};

/// The views, in `tab` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    #[default]
    Python,
    Io,
    Scheduling,
    Signals,
    Processes,
    Loops,
}

pub const TABS: [Tab; 6] = [
    Tab::Python,
    Tab::Io,
    Tab::Scheduling,
    Tab::Signals,
    Tab::Processes,
    Tab::Loops,
];

impl Tab {
    pub fn title(self) -> &'static str {
        match self {
            Tab::Python => "Python",
            Tab::Io => "I/O",
            Tab::Scheduling => "Scheduling",
            Tab::Signals => "Signals",
            Tab::Processes => "Processes",
            Tab::Loops => "Loop stalls",
        }
    }

    /// What `s` cycles through on this tab (the first is the default).
    pub fn sorts(self) -> &'static [&'static str] {
        match self {
            Tab::Python => &["own %", "total %", "own all", "total all"],
            Tab::Io => &["syscalls/s", "bytes/s", "syscalls", "bytes"],
            Tab::Scheduling => &["switches/s", "on-CPU", "switches"],
            Tab::Signals => &["time"],
            Tab::Processes => &["zombies first", "pid"],
            Tab::Loops => &["stalls", "longest"],
        }
    }
}

/// How the Python rows are added up (`g`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grouping {
    #[default]
    Thread,
    Process,
    All,
}

/// The view's state, changed by keys.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub tab: Tab,
    /// Index into each tab's `sorts()`, by tab.
    sort: [usize; TABS.len()],
    pub grouping: Grouping,
    pub filter: String,
    /// `/` typed: keys go to the filter until Enter or Esc.
    pub editing: bool,
    pub paused: bool,
}

/// A key, as the view understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Tab,
    BackTab,
    Enter,
    Esc,
    Backspace,
    /// Ctrl-C.
    Interrupt,
}

/// What a key asks of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    None,
    Redraw,
    Quit,
}

impl View {
    pub fn on_key(&mut self, key: Key) -> Action {
        if key == Key::Interrupt {
            return Action::Quit;
        }
        if self.editing {
            match key {
                Key::Enter => self.editing = false,
                Key::Esc => {
                    self.editing = false;
                    self.filter.clear();
                }
                Key::Backspace => {
                    self.filter.pop();
                }
                Key::Char(c) => self.filter.push(c),
                _ => return Action::None,
            }
            return Action::Redraw;
        }
        match key {
            Key::Char('q') => return Action::Quit,
            Key::Char('p') => self.paused = !self.paused,
            Key::Char('s') => {
                let i = self.tab_index();
                self.sort[i] = (self.sort[i] + 1) % self.tab.sorts().len();
            }
            Key::Char('g') => {
                self.grouping = match self.grouping {
                    Grouping::Thread => Grouping::Process,
                    Grouping::Process => Grouping::All,
                    Grouping::All => Grouping::Thread,
                }
            }
            Key::Char('/') => self.editing = true,
            Key::Esc => self.filter.clear(),
            Key::Tab => self.tab = TABS[(self.tab_index() + 1) % TABS.len()],
            Key::BackTab => self.tab = TABS[(self.tab_index() + TABS.len() - 1) % TABS.len()],
            _ => return Action::None,
        }
        Action::Redraw
    }

    fn tab_index(&self) -> usize {
        TABS.iter().position(|&t| t == self.tab).unwrap_or(0)
    }

    /// The current tab's sort.
    pub fn sort(&self) -> &'static str {
        self.tab.sorts()[self.sort[self.tab_index()]]
    }
}

/// A column: its heading and width (`None`: the rest of the line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub heading: &'static str,
    pub width: Option<u16>,
    /// Numbers are right-aligned.
    pub right: bool,
    /// Too long, its start is left out (a path: its end says most).
    pub keep_end: bool,
}

const fn col(heading: &'static str, width: u16) -> Column {
    Column {
        heading,
        width: Some(width),
        right: true,
        keep_end: false,
    }
}

const fn text(heading: &'static str, width: Option<u16>) -> Column {
    Column {
        heading,
        width,
        right: false,
        keep_end: false,
    }
}

const fn path(heading: &'static str) -> Column {
    Column {
        heading,
        width: None,
        right: false,
        keep_end: true,
    }
}

/// A tab as the renderer draws it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
    /// Shown when there are no rows.
    pub empty: String,
}

/// The header's line: target, elapsed time, samples a second, events lost.
pub fn header(snapshot: &Snapshot, view: &View) -> String {
    let paused = if view.paused { "  PAUSED" } else { "" };
    format!(
        "{}  {}  {} samples/s  lost {}{paused}",
        snapshot.target,
        clock(snapshot.elapsed),
        fixed(snapshot.samples_per_second(), 0),
        count(snapshot.lost)
    )
}

/// The keys' line (or the filter being typed).
pub fn footer(view: &View) -> String {
    if view.editing {
        return format!("filter: {}_  (Enter keeps it, Esc clears it)", view.filter);
    }
    let filter = if view.filter.is_empty() {
        String::new()
    } else {
        format!("  /{}", view.filter)
    };
    let group = match (view.tab, view.grouping) {
        (Tab::Python, Grouping::Thread) => " g:by thread",
        (Tab::Python, Grouping::Process) => " g:by process",
        (Tab::Python, Grouping::All) => " g:all",
        _ => "",
    };
    format!(
        "q quit p pause s sort:{} tab view{group} / filter{filter}",
        view.sort()
    )
}

/// The current tab's table: sorted, filtered, formatted for `width`
/// columns.
pub fn table(snapshot: &Snapshot, view: &View, width: u16) -> Table {
    let mut table = match view.tab {
        Tab::Python => python(snapshot, view),
        Tab::Io => io(snapshot, view),
        Tab::Scheduling => scheduling(snapshot, view),
        Tab::Signals => signals(snapshot),
        Tab::Processes => processes(snapshot, view),
        Tab::Loops => loops(snapshot, view),
    };
    if !view.filter.is_empty() {
        let filter = view.filter.to_lowercase();
        table
            .rows
            .retain(|row| row.iter().any(|cell| cell.to_lowercase().contains(&filter)));
    }
    if table.rows.is_empty() && !view.filter.is_empty() {
        table.empty = format!("nothing matches /{}", view.filter);
    }
    let fixed: u16 = table.columns.iter().filter_map(|c| c.width).sum();
    let gaps = table.columns.len().saturating_sub(1) as u16;
    let rest = usize::from(width.saturating_sub(fixed + gaps));
    for (i, column) in table.columns.iter().enumerate() {
        if column.keep_end {
            for row in &mut table.rows {
                row[i] = keep_end(&row[i], rest);
            }
        }
    }
    table
}

/// `text` in `width` characters: `…` and its end when it is longer.
pub fn keep_end(text: &str, width: usize) -> String {
    let chars = text.chars().count();
    if chars <= width || width == 0 {
        return text.to_owned();
    }
    let tail: String = text.chars().skip(chars - (width - 1)).collect();
    format!("…{tail}")
}

/// Rows added up by `grouping`: a process's threads (tid 0), or every
/// process's (pid 0).
pub fn group(rows: &[FunctionRow], grouping: Grouping) -> Vec<FunctionRow> {
    if grouping == Grouping::Thread {
        return rows.to_vec();
    }
    let mut sums: BTreeMap<(u32, &str), FunctionRow> = BTreeMap::new();
    for row in rows {
        let pid = if grouping == Grouping::All {
            0
        } else {
            row.pid
        };
        let sum = sums
            .entry((pid, &row.function))
            .or_insert_with(|| FunctionRow {
                pid,
                function: row.function.clone(),
                ..FunctionRow::default()
            });
        sum.own += row.own;
        sum.total += row.total;
        sum.own_all += row.own_all;
        sum.total_all += row.total_all;
    }
    sums.into_values().collect()
}

fn python(snapshot: &Snapshot, view: &View) -> Table {
    let mut rows = group(&snapshot.functions, view.grouping);
    let key = |r: &FunctionRow| match view.sort() {
        "total %" => (r.total, r.own, r.total_all),
        "own all" => (r.own_all, r.total_all, 0),
        "total all" => (r.total_all, r.own_all, 0),
        _ => (r.own, r.total, r.own_all),
    };
    rows.sort_by(|a, b| {
        key(b)
            .cmp(&key(a))
            .then_with(|| a.function.cmp(&b.function))
    });
    let mut columns = vec![
        col("%Own", 6),
        col("%Total", 7),
        col("Own", 6),
        col("Total", 6),
    ];
    match view.grouping {
        Grouping::Thread => {
            columns.push(col("PID", 7));
            columns.push(text("Thread", Some(12)));
        }
        Grouping::Process => columns.push(col("PID", 7)),
        Grouping::All => {}
    }
    columns.push(text("Function (file:line)", None));
    let rows = rows
        .iter()
        .map(|r| {
            let mut cells = vec![
                percent(snapshot.share(r.own)),
                percent(snapshot.share(r.total)),
                count(r.own_all),
                count(r.total_all),
            ];
            match view.grouping {
                Grouping::Thread => {
                    cells.push(r.pid.to_string());
                    cells.push(if r.thread.is_empty() {
                        r.tid.to_string()
                    } else {
                        r.thread.clone()
                    });
                }
                Grouping::Process => cells.push(r.pid.to_string()),
                Grouping::All => {}
            }
            cells.push(r.function.clone());
            cells
        })
        .collect();
    Table {
        columns,
        rows,
        empty: snapshot
            .python_note
            .clone()
            .unwrap_or_else(|| "no Python samples yet".into()),
    }
}

/// Reads and writes per file, a row per direction (a write row's syncs
/// after its sizes).
fn io(snapshot: &Snapshot, view: &View) -> Table {
    let mut files: Vec<_> = snapshot.files.iter().collect();
    let key = |f: &&crate::analysis::live_model::FileRow| match view.sort() {
        "bytes/s" => (f.bytes, f.syscalls),
        "syscalls" => (f.syscalls_all, f.bytes_all),
        "bytes" => (f.bytes_all, f.syscalls_all),
        _ => (f.syscalls, f.bytes),
    };
    files.sort_by(|a, b| key(b).cmp(&key(a)).then_with(|| a.path.cmp(&b.path)));
    let rows = files
        .iter()
        .map(|f| {
            vec![
                rate(snapshot.per_second(f.syscalls)),
                bytes_rate(snapshot.per_second(f.bytes)),
                count(f.syscalls_all),
                if f.write { "write" } else { "read" }.into(),
                match f.syncs_all {
                    0 => request_sizes(&f.requests),
                    n => format!("{} +{} sync", request_sizes(&f.requests), count(n)),
                },
                f.pid.to_string(),
                f.path.clone(),
            ]
        })
        .collect();
    Table {
        columns: vec![
            col("Calls/s", 8),
            col("Bytes/s", 9),
            col("Calls", 7),
            text("R/W", Some(5)),
            text("Sizes", Some(14)),
            col("PID", 7),
            path("File"),
        ],
        rows,
        empty: "no reads or writes yet".into(),
    }
}

fn scheduling(snapshot: &Snapshot, view: &View) -> Table {
    let mut threads: Vec<_> = snapshot.threads.iter().collect();
    let key = |t: &&crate::analysis::live_model::ThreadRow| match view.sort() {
        "on-CPU" => (t.on_cpu.as_nanos() as u64, t.voluntary + t.involuntary),
        "switches" => (t.voluntary_all + t.involuntary_all, 0),
        _ => (t.voluntary + t.involuntary, t.on_cpu.as_nanos() as u64),
    };
    threads.sort_by(|a, b| key(b).cmp(&key(a)).then(a.tid.cmp(&b.tid)));
    let rows = threads
        .iter()
        .map(|t| {
            vec![
                rate(snapshot.per_second(t.voluntary)),
                rate(snapshot.per_second(t.involuntary)),
                whole_percent(snapshot.cpu_share(t.on_cpu)),
                count(t.voluntary_all),
                count(t.involuntary_all),
                t.pid.to_string(),
                t.tid.to_string(),
                t.comm.clone(),
            ]
        })
        .collect();
    Table {
        columns: vec![
            col("Vol/s", 7),
            col("Invol/s", 8),
            col("CPU", 5),
            col("Vol", 7),
            col("Invol", 7),
            col("PID", 7),
            col("TID", 7),
            text("Thread", None),
        ],
        rows,
        empty: "no context switches yet".into(),
    }
}

fn signals(snapshot: &Snapshot) -> Table {
    // Newest first.
    let rows = snapshot
        .signals
        .iter()
        .rev()
        .map(|s| {
            vec![
                fixed(s.t_s, 3),
                s.signal.clone(),
                s.from.clone(),
                s.to.clone(),
                s.fate.clone(),
            ]
        })
        .collect();
    Table {
        columns: vec![
            col("At s", 9),
            text("Signal", Some(9)),
            text("From", Some(18)),
            text("To", Some(18)),
            text("Fate", None),
        ],
        rows,
        empty: "no signals yet".into(),
    }
}

fn processes(snapshot: &Snapshot, view: &View) -> Table {
    let mut processes: Vec<_> = snapshot.processes.iter().collect();
    if view.sort() == "pid" {
        processes.sort_by_key(|p| p.pid);
    } else {
        // Zombies first, the oldest first; then the running, then the gone.
        let rank = |p: &&crate::analysis::live_model::ProcessRow| match &p.state {
            ProcessState::Zombie(age) => (0, u64::MAX - age.as_nanos() as u64, p.pid),
            ProcessState::Running => (1, 0, p.pid),
            _ => (2, 0, p.pid),
        };
        processes.sort_by_key(rank);
    }
    let rows = processes
        .iter()
        .map(|p| {
            let state = match &p.state {
                ProcessState::Running => "running".to_owned(),
                ProcessState::Zombie(age) => format!("zombie {}", seconds(*age)),
                ProcessState::Exited(code) => format!("exited {code}"),
                ProcessState::Killed(signal) => format!("killed {signal}"),
            };
            vec![p.pid.to_string(), p.ppid.to_string(), state, p.comm.clone()]
        })
        .collect();
    Table {
        columns: vec![
            col("PID", 7),
            col("PPID", 7),
            text("State", Some(16)),
            text("Command", None),
        ],
        rows,
        empty: "no processes".into(),
    }
}

fn loops(snapshot: &Snapshot, view: &View) -> Table {
    let mut loops: Vec<_> = snapshot.loops.iter().collect();
    if view.sort() == "longest" {
        loops.sort_by(|a, b| b.longest.cmp(&a.longest).then(a.tid.cmp(&b.tid)));
    } else {
        loops.sort_by(|a, b| b.stalls.cmp(&a.stalls).then(a.tid.cmp(&b.tid)));
    }
    let rows = loops
        .iter()
        .map(|l| {
            vec![
                count(l.stalls),
                seconds(l.longest),
                seconds(l.total),
                fixed(l.last_s, 1),
                l.pid.to_string(),
                l.tid.to_string(),
            ]
        })
        .collect();
    Table {
        columns: vec![
            col("Stalls", 8),
            col("Longest", 9),
            col("Total", 9),
            col("Last at s", 10),
            col("PID", 7),
            col("TID", 7),
        ],
        rows,
        empty: "no loop stalls yet (--loop-stall MS sets how long one is)".into(),
    }
}

#[cfg(test)]
mod tests;

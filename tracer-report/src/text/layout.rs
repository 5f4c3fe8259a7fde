//! Fitting the text report to a width: tables that measure their cells (in
//! terminal columns, so wide CJK names line up) and give up their least
//! needed columns before they would wrap, stack chains cut to the room
//! left, and prose wrapped under its own indent. `None` is no limit: a
//! report written to a file or a pipe keeps every column and frame.

use unicode_width::UnicodeWidthStr;

/// Terminal columns `text` takes.
pub fn columns(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// `text` cut to `width` columns, keeping its end (a path's file name, a
/// function's own name): "...tail".
pub fn fit(text: &str, width: usize) -> String {
    if columns(text) <= width {
        return text.to_owned();
    }
    if width <= 3 {
        return ".".repeat(width);
    }
    let mut tail: Vec<char> = Vec::new();
    let mut used = 3;
    for c in text.chars().rev() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        tail.push(c);
    }
    tail.reverse();
    format!("...{}", tail.into_iter().collect::<String>())
}

/// A C++ or Rust name with its template arguments left out
/// (`sort_n_vec<...>`), for a name cut to fit: the function and its scope
/// say more than the types it was made for. `operator<` and the like keep
/// their brackets.
pub fn without_template_args(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    for (at, c) in name.char_indices() {
        let operator = ["operator", "operator<", "operator>", "operator-"]
            .iter()
            .any(|op| name[..at].ends_with(op));
        match c {
            '<' if !operator => {
                if depth == 0 {
                    out.push_str("<...>");
                }
                depth += 1;
            }
            '>' if !operator && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// `text` cut to `width` columns, keeping its start (a command line): "head...".
pub fn fit_start(text: &str, width: usize) -> String {
    if columns(text) <= width {
        return text.to_owned();
    }
    if width <= 3 {
        return ".".repeat(width);
    }
    let mut head = String::new();
    let mut used = 3;
    for c in text.chars() {
        let w = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > width {
            break;
        }
        used += w;
        head.push(c);
    }
    format!("{head}...")
}

fn pad(text: &str, width: usize, right: bool) -> String {
    let gap = " ".repeat(width.saturating_sub(columns(text)));
    if right {
        format!("{gap}{text}")
    } else {
        format!("{text}{gap}")
    }
}

pub struct Column {
    header: &'static str,
    right: bool,
    /// 0: always shown; otherwise the higher, the sooner it is left out
    /// when the table does not fit.
    drop_order: u8,
    /// A column whose cells may be cut down to this width: from the left
    /// (keeping a path's file name), or from the right with `keep_start`.
    shrink_to: Option<usize>,
    keep_start: bool,
    /// The width a shrinkable column keeps as long as leaving out minor
    /// columns makes room for it.
    prefer: usize,
}

/// A left-aligned column.
pub fn left(header: &'static str) -> Column {
    Column {
        header,
        right: false,
        drop_order: 0,
        shrink_to: None,
        keep_start: false,
        prefer: 0,
    }
}

/// A right-aligned (numeric) column.
pub fn right(header: &'static str) -> Column {
    Column {
        right: true,
        ..left(header)
    }
}

impl Column {
    /// Left out, in this order among others, when the table is too wide.
    pub fn optional(mut self, order: u8) -> Self {
        self.drop_order = order;
        self
    }

    /// May be cut down to `width` columns (paths, names), keeping the end.
    pub fn shrinks_to(mut self, width: usize) -> Self {
        self.shrink_to = Some(width);
        self
    }

    /// Kept this wide (when the cells are) as long as leaving out the
    /// minor columns makes room for it.
    pub fn prefers(mut self, width: usize) -> Self {
        self.prefer = width;
        self
    }

    /// May be cut down to `width` columns, keeping the start (command lines).
    pub fn shrinks_keeping_start(mut self, width: usize) -> Self {
        self.shrink_to = Some(width);
        self.keep_start = true;
        self
    }
}

pub struct Table {
    indent: usize,
    columns: Vec<Column>,
    /// Cells, and lines shown under the row (`spawned from ...`).
    rows: Vec<(Vec<String>, Vec<String>)>,
}

/// Columns are separated by two spaces.
const GAP: usize = 2;
/// Optional columns of this order and above are left out before names are
/// cut below their preferred width; those below it only after.
const MINOR: u8 = 3;

impl Table {
    pub fn new(indent: usize, columns: Vec<Column>) -> Self {
        Self {
            indent,
            columns,
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push((cells, Vec::new()));
    }

    /// A line under the last row, as given (its own indent included);
    /// wrapped to the width with the rest of the report's prose.
    pub fn detail(&mut self, line: String) {
        if let Some(last) = self.rows.last_mut() {
            last.1.push(line);
        }
    }

    /// The table as lines of at most `width` columns (when it can be done
    /// by leaving out optional columns and cutting the shrinkable ones);
    /// the headers of the columns left out.
    pub fn render(&self, out: &mut String, width: Option<usize>) -> Vec<&'static str> {
        let natural: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                self.rows
                    .iter()
                    .map(|(r, _)| columns(&r[i]))
                    .chain([columns(c.header)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut shown: Vec<bool> = vec![true; self.columns.len()];
        let mut widths = natural.clone();
        if let Some(limit) = width {
            let total = |shown: &[bool], widths: &[usize]| -> usize {
                let n = shown.iter().filter(|&&s| s).count();
                self.indent
                    + (0..widths.len())
                        .filter(|&i| shown[i])
                        .map(|i| widths[i])
                        .sum::<usize>()
                    + GAP * n.saturating_sub(1)
            };
            let cut_to = |widths: &mut Vec<usize>, prefer: bool| {
                for (i, c) in self.columns.iter().enumerate() {
                    if let Some(min) = c.shrink_to {
                        let min = if prefer { c.prefer.max(min) } else { min };
                        widths[i] = natural[i].min(min.max(columns(c.header)));
                    }
                }
            };
            let mut order: Vec<usize> = (0..self.columns.len())
                .filter(|&i| self.columns[i].drop_order > 0)
                .collect();
            order.sort_by_key(|&i| std::cmp::Reverse(self.columns[i].drop_order));
            // First, names at their preferred width, leaving out only the
            // columns that matter least; failing that, names cut to their
            // least and optional columns left out, the highest order first.
            cut_to(&mut widths, true);
            for &i in order
                .iter()
                .filter(|&&i| self.columns[i].drop_order >= MINOR)
            {
                if total(&shown, &widths) <= limit {
                    break;
                }
                shown[i] = false;
            }
            if total(&shown, &widths) > limit {
                shown.iter_mut().for_each(|s| *s = true);
                cut_to(&mut widths, false);
                for &i in &order {
                    if total(&shown, &widths) <= limit {
                        break;
                    }
                    shown[i] = false;
                }
            }
            // Give the room left back to the shrinkable columns, a column
            // at a time, so that two cut columns share it.
            let mut room = limit.saturating_sub(total(&shown, &widths));
            while room > 0 {
                let mut gave = false;
                for (i, c) in self.columns.iter().enumerate() {
                    if room > 0 && shown[i] && c.shrink_to.is_some() && widths[i] < natural[i] {
                        widths[i] += 1;
                        room -= 1;
                        gave = true;
                    }
                }
                if !gave {
                    break;
                }
            }
        }
        let line = |cells: &mut dyn Iterator<Item = (usize, String)>| -> String {
            let parts: Vec<String> = cells
                .map(|(i, text)| {
                    let c = &self.columns[i];
                    let text = match (c.shrink_to, c.keep_start) {
                        (Some(_), false) => fit(&text, widths[i]),
                        (Some(_), true) => fit_start(&text, widths[i]),
                        (None, _) => text,
                    };
                    pad(&text, widths[i], c.right)
                })
                .collect();
            let text = parts.join(&" ".repeat(GAP));
            format!("{}{}\n", " ".repeat(self.indent), text.trim_end())
        };
        let visible = |i: &usize| shown[*i];
        out.push_str(&line(
            &mut (0..self.columns.len())
                .filter(visible)
                .map(|i| (i, self.columns[i].header.to_owned())),
        ));
        for (row, detail) in &self.rows {
            out.push_str(&line(
                &mut (0..self.columns.len())
                    .filter(visible)
                    .map(|i| (i, row[i].clone())),
            ));
            for line in detail {
                out.push_str(line);
                out.push('\n');
            }
        }
        (0..self.columns.len())
            .filter(|&i| !shown[i])
            .map(|i| self.columns[i].header)
            .collect()
    }
}

/// Says which columns a narrow terminal left out.
pub fn left_out(out: &mut String, dropped: &[&str]) {
    if !dropped.is_empty() {
        out.push_str(&format!(
            "  (not shown at this width: {}; --format json has every column)\n",
            dropped.join(", ")
        ));
    }
}

/// `line` wrapped at spaces to `width` columns, continuation lines indented
/// two more than the line's own indent. Lines that fit are left alone.
pub fn wrap(line: &str, width: usize) -> String {
    if columns(line) <= width {
        return line.to_owned();
    }
    let indent = line.len() - line.trim_start_matches(' ').len();
    let hang = " ".repeat((indent + 2).min(width / 2));
    let mut out = String::new();
    let mut current = " ".repeat(indent);
    let mut current_width = indent;
    let mut first_word = true;
    for word in line.trim_start_matches(' ').split(' ') {
        let w = columns(word);
        if !first_word && current_width + 1 + w > width {
            out.push_str(current.trim_end());
            out.push('\n');
            current = hang.clone();
            current_width = hang.len();
            first_word = true;
        }
        if !first_word {
            current.push(' ');
            current_width += 1;
        }
        current.push_str(word);
        current_width += w;
        first_word = false;
    }
    out.push_str(current.trim_end());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let mut t = Table::new(
            2,
            vec![
                right("pid"),
                left("file").shrinks_to(12),
                right("syscalls"),
                left("extra").optional(1),
            ],
        );
        t.row(vec![
            "7".into(),
            "/a/very/long/path/to/a/file.txt".into(),
            "600".into(),
            "something".into(),
        ]);
        t.row(vec![
            "12345".into(),
            "名前.txt".into(),
            "1".into(),
            "x".into(),
        ]);
        t
    }

    #[test]
    fn a_table_at_full_width_keeps_everything() {
        let mut out = String::new();
        assert!(table().render(&mut out, None).is_empty());
        assert_eq!(
            out,
            "    pid  file                             syscalls  extra\n\
             \x20     7  /a/very/long/path/to/a/file.txt       600  something\n\
             \x20 12345  名前.txt                                1  x\n"
        );
    }

    #[test]
    fn a_narrow_table_cuts_paths_then_leaves_out_optional_columns() {
        let mut out = String::new();
        let dropped = table().render(&mut out, Some(44));
        assert!(dropped.is_empty(), "{out}");
        assert!(out.lines().all(|l| columns(l) <= 44), "{out}");
        assert!(out.contains(" .../a/file.txt "), "{out}");
        let mut out = String::new();
        let dropped = table().render(&mut out, Some(32));
        assert_eq!(dropped, ["extra"]);
        assert!(out.lines().all(|l| columns(l) <= 32), "{out}");
        // Wide characters count two columns: the numbers still line up.
        let ends: Vec<usize> = out.lines().map(columns).collect();
        assert_eq!(ends[0], ends[1], "{out}");
    }

    #[test]
    fn template_arguments_are_left_out_to_fit() {
        assert_eq!(
            without_template_args(
                "sort_n_vec<zmm_vector<double>, Comparator<zmm_vector<double>, false>, 32>"
            ),
            "sort_n_vec<...>"
        );
        assert_eq!(
            without_template_args("std::vector<int>::push_back"),
            "std::vector<...>::push_back"
        );
        assert_eq!(without_template_args("operator<<"), "operator<<");
        assert_eq!(without_template_args("Foo::operator<"), "Foo::operator<");
        assert_eq!(without_template_args("deflate"), "deflate");
    }

    #[test]
    fn fit_keeps_the_end() {
        assert_eq!(
            fit("/usr/lib/python3.11/threading.py", 15),
            "...threading.py"
        );
        assert_eq!(fit("short", 15), "short");
        assert_eq!(columns(&fit("名前名前名前名前", 9)), 9);
    }

    #[test]
    fn wrap_hangs_under_the_indent() {
        let line = "  - a finding that is much too long for a narrow terminal to show";
        let wrapped = wrap(line, 30);
        assert!(wrapped.lines().all(|l| columns(l) <= 30), "{wrapped}");
        assert!(wrapped.lines().skip(1).all(|l| l.starts_with("    ")));
        assert_eq!(wrap("fits", 30), "fits");
    }
}

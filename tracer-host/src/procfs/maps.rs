//! `/proc/PID/maps` parsed: the file-backed mappings (where an
//! interpreter or a library is) and the executable memory that is no file
//! (the vDSO, generated code). Pure functions; `procfs::maps` reads the text.

/// One file-backed mapping of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    /// Mapped executable (`r-xp`): code, where an interpreter would be.
    pub executable: bool,
    pub path: String,
    /// The file's device and inode (`fd:01 1234`): which file it is, in
    /// whatever root or mount namespace the path is seen.
    pub file: String,
}

impl Mapping {
    /// The key of the file in a cache of files (the interpreters' and the
    /// native unwinder's).
    pub fn cache_key(&self) -> String {
        format!("{} {}", self.file, self.path)
    }
}

pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines()
        .filter_map(|line| {
            let line = MapsLine::parse(line)?;
            if !line.path.starts_with('/') {
                return None;
            }
            Some(Mapping {
                start: line.start,
                end: line.end,
                offset: line.offset,
                executable: line.perms.contains('x'),
                file: format!("{} {}", line.dev, line.inode),
                path: line.path,
            })
        })
        .collect()
}

/// Executable mappings that are no file (the vDSO, generated code):
/// (start, end, `[vdso]` or `[anonymous]`).
pub fn anonymous_code(text: &str) -> Vec<(u64, u64, String)> {
    text.lines()
        .filter_map(MapsLine::parse)
        .filter(|l| l.perms.contains('x') && !l.path.starts_with('/'))
        .map(|l| {
            let name = if l.path.starts_with('[') {
                l.path
            } else {
                "[anonymous]".to_string()
            };
            (l.start, l.end, name)
        })
        .collect()
}

/// One line of `/proc/PID/maps`.
struct MapsLine<'a> {
    start: u64,
    end: u64,
    perms: &'a str,
    offset: u64,
    dev: &'a str,
    inode: &'a str,
    /// Empty for anonymous memory.
    path: String,
}

impl<'a> MapsLine<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let mut parts = line.split_whitespace();
        let (start, end) = parts.next()?.split_once('-')?;
        let perms = parts.next()?;
        let offset = u64::from_str_radix(parts.next()?, 16).ok()?;
        let dev = parts.next()?;
        let inode = parts.next()?;
        Some(Self {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            perms,
            offset,
            dev,
            inode,
            path: parts.collect::<Vec<_>>().join(" "),
        })
    }
}

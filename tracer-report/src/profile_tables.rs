//! The tables a profile format keeps beside its samples: strings, functions
//! keyed by (qualname, file, `def` line), and a location per (function,
//! line), each numbered in the order first met. pprof and OTLP number them
//! alike (string 0 is "", functions and locations from 1: pprof's ids,
//! OTLP's indices past the zero entry of its tables), so both encoders
//! build one of these and copy its rows into their own messages.
//!
//! Every export that names frames numbers them with the one
//! [`FrameInterner`] these tables build on: speedscope's shared frames and
//! Perfetto's interned frames are its locations, so a frame is the same
//! frame (the same qualname, file, `def` line and line; a native frame its
//! symbol and binary, no line) in every format.

use std::collections::HashMap;

use crate::frame::Frame;

/// What makes two frames one location: (qualname, file, `def` line, line).
type LocationKey = (String, String, u32, u32);

/// Frames numbered from 0 in the order first met, one number per location.
#[derive(Debug, Default)]
pub struct FrameInterner {
    numbers: HashMap<LocationKey, usize>,
}

impl FrameInterner {
    /// The number of `frame`'s location, and whether it is met for the
    /// first time (its caller then adds the format's row for it).
    pub fn intern(&mut self, frame: &Frame) -> (usize, bool) {
        let key = (
            frame.qualname.clone(),
            frame.file.clone(),
            frame.first_line,
            frame.line,
        );
        let next = self.numbers.len();
        let number = *self.numbers.entry(key).or_insert(next);
        (number, number == next)
    }
}

/// A function: indices into the string table, and its `def` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRow {
    pub name: usize,
    pub system_name: usize,
    pub filename: usize,
    pub start_line: u32,
}

/// A line of a function: the function's number (from 1) and the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationRow {
    pub function: usize,
    pub line: u32,
}

#[derive(Debug)]
pub struct ProfileTables {
    pub strings: Vec<String>,
    string_ids: HashMap<String, usize>,
    pub functions: Vec<FunctionRow>,
    function_ids: HashMap<(String, String, u32), usize>,
    pub locations: Vec<LocationRow>,
    frames: FrameInterner,
}

impl Default for ProfileTables {
    fn default() -> Self {
        let mut tables = Self {
            strings: Vec::new(),
            string_ids: HashMap::new(),
            functions: Vec::new(),
            function_ids: HashMap::new(),
            locations: Vec::new(),
            frames: FrameInterner::default(),
        };
        tables.string(""); // index 0 is the empty string
        tables
    }
}

impl ProfileTables {
    /// The index of `s` in the string table.
    pub fn string(&mut self, s: &str) -> usize {
        if let Some(&index) = self.string_ids.get(s) {
            return index;
        }
        let index = self.strings.len();
        self.strings.push(s.to_owned());
        self.string_ids.insert(s.to_owned(), index);
        index
    }

    /// The number (from 1) of the location of `frame`: its function (made
    /// when first met, its strings interned in the order name, system
    /// name, file) at its line.
    pub fn location(&mut self, frame: &Frame) -> usize {
        let (index, new) = self.frames.intern(frame);
        if new {
            let function = self.function(frame);
            self.locations.push(LocationRow {
                function,
                line: frame.line,
            });
        }
        index + 1
    }

    /// The number (from 1) of `frame`'s function, made when first met.
    fn function(&mut self, frame: &Frame) -> usize {
        let key = (frame.qualname.clone(), frame.file.clone(), frame.first_line);
        if let Some(&number) = self.function_ids.get(&key) {
            return number;
        }
        let row = FunctionRow {
            name: self.string(&frame.qualname),
            system_name: self.string(&frame.function),
            filename: self.string(&frame.file),
            start_line: frame.first_line,
        };
        self.functions.push(row);
        self.function_ids.insert(key, self.functions.len());
        self.functions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(qualname: &str, line: u32) -> Frame {
        Frame {
            qualname: qualname.into(),
            function: qualname.rsplit('.').next().unwrap().into(),
            file: "/app.py".into(),
            line,
            first_line: 10,
            native: false,
        }
    }

    #[test]
    fn a_function_per_def_a_location_per_line_numbered_from_one() {
        let mut tables = ProfileTables::default();
        assert_eq!(tables.location(&frame("Job.run", 12)), 1);
        assert_eq!(tables.location(&frame("Job.run", 14)), 2);
        assert_eq!(tables.location(&frame("Job.run", 12)), 1);
        assert_eq!(tables.location(&frame("main", 3)), 3);
        assert_eq!(tables.functions.len(), 2);
        assert_eq!(
            tables.locations[1],
            LocationRow {
                function: 1,
                line: 14
            }
        );
        assert_eq!(
            tables.strings,
            ["", "Job.run", "run", "/app.py", "main"].map(String::from)
        );
        assert_eq!(tables.string("run"), 2);
    }

    /// Two `def`s of one name in one file are two frames, even on one line.
    #[test]
    fn frames_are_told_apart_by_their_def_line() {
        let mut frames = FrameInterner::default();
        let mut redefined = frame("main", 3);
        assert_eq!(frames.intern(&redefined), (0, true));
        assert_eq!(frames.intern(&redefined), (0, false));
        redefined.first_line = 2;
        assert_eq!(frames.intern(&redefined), (1, true));
        assert_eq!(frames.intern(&Frame::named("task: t")), (2, true));
    }
}

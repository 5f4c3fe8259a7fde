//! One Python frame, the single form every part of the tracer uses: the
//! sampler's stacks, the stacks behind reads, context switches, forks and
//! signal deliveries, and every renderer. Symbolized once (`python::symbols`)
//! and never parsed back from text, except to read a JSON report.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The file of a frame whose code object could not be read.
const UNKNOWN_FILE: &str = "?";

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Frame {
    /// `co_qualname` (`Class.method`, `f.<locals>.g`; `co_name` before 3.11).
    pub qualname: String,
    /// `co_name`.
    pub function: String,
    pub file: String,
    /// The line being executed (0: unknown).
    pub line: u32,
    /// The function's `def` line (`co_firstlineno`; 0: unknown).
    #[serde(default)]
    pub first_line: u32,
    /// A native frame (`--native`): `function` is the ELF symbol (or
    /// `file+0xADDRESS` when none covers it), `file` the binary, no line.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub native: bool,
}

impl Frame {
    /// A frame whose code object at `code` could not be read (freed, or the
    /// process exited first).
    pub fn unresolved(code: u64) -> Self {
        let name = format!("<code {code:#x}>");
        Self {
            qualname: name.clone(),
            function: name,
            file: UNKNOWN_FILE.into(),
            line: 0,
            first_line: 0,
            native: false,
        }
    }

    /// A frame an export makes up, a name alone: the asyncio task a stack
    /// ran in, where a truncated stack was cut.
    pub fn named(name: &str) -> Self {
        Self {
            qualname: name.into(),
            function: name.into(),
            ..Self::default()
        }
    }

    pub fn is_resolved(&self) -> bool {
        self.file != UNKNOWN_FILE
    }

    /// The top-level standard-library module the frame's file belongs to:
    /// `<frozen os>` (3.11+ freezes a few), or the path component after the
    /// last `pythonX.Y` directory (`/usr/lib/python3.11/subprocess.py`,
    /// `.../python3.12/multiprocessing/popen_fork.py`). `None` for any other
    /// file, installed packages included.
    pub fn stdlib_module(&self) -> Option<&str> {
        let file = self.file.as_str();
        if let Some(name) = file
            .strip_prefix("<frozen ")
            .and_then(|f| f.strip_suffix('>'))
        {
            return name.split('.').next();
        }
        let parts: Vec<&str> = file.split('/').collect();
        let version_dir = parts.iter().rposition(|p| {
            p.strip_prefix("python").is_some_and(|v| {
                let v = v.strip_suffix('t').unwrap_or(v);
                v.split_once('.').is_some_and(|(major, minor)| {
                    [major, minor]
                        .iter()
                        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
            })
        })?;
        let module = parts.get(version_dir + 1)?;
        if matches!(*module, "site-packages" | "dist-packages" | "lib-dynload") {
            return None;
        }
        Some(module.strip_suffix(".py").unwrap_or(module))
    }

    /// Reads the text form back (`"qualname (file:line)"`); `None` if it is
    /// not one. The `def` line is not in the text.
    pub fn parse(text: &str) -> Option<Self> {
        // Native: `name [file]` (a Python qualname has no space).
        if let Some((name, rest)) = text.split_once(" [")
            && !name.contains(" (")
        {
            return Some(Self {
                qualname: name.into(),
                function: name.into(),
                file: rest.strip_suffix(']')?.into(),
                native: true,
                ..Self::default()
            });
        }
        let (qualname, rest) = text.split_once(" (")?;
        let (file, line) = rest.strip_suffix(')')?.rsplit_once(':')?;
        Some(Self {
            qualname: qualname.into(),
            function: qualname.rsplit('.').next().unwrap_or(qualname).into(),
            file: file.into(),
            line: line.parse().ok()?,
            first_line: 0,
            native: false,
        })
    }
}

/// The text form: `qualname (file:line)`; a native frame's `name [file]`.
impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.native {
            return write!(f, "{} [{}]", self.qualname, self.file);
        }
        write!(f, "{} ({}:{})", self.qualname, self.file, self.line)
    }
}

/// Tests write frames in their text form.
#[cfg(test)]
impl From<&str> for Frame {
    fn from(text: &str) -> Self {
        Self::parse(text).unwrap_or_else(|| panic!("not a frame: {text}"))
    }
}

impl Frame {
    /// The short text form, for narrow views: `qualname (file.py:line)`,
    /// the file without its directories.
    pub fn short(&self) -> String {
        let file = self.file.rsplit('/').next().unwrap_or(&self.file);
        if self.native {
            return format!("{} [{file}]", self.qualname);
        }
        format!("{} ({file}:{})", self.qualname, self.line)
    }
}

/// Frames joined innermost first: `a (f.py:3) <- main (f.py:9)`.
pub fn join(frames: &[Frame]) -> String {
    frames
        .iter()
        .map(Frame::to_string)
        .collect::<Vec<_>>()
        .join(" <- ")
}

/// Serde for frame lists kept in the JSON report in their text form
/// (`"func (file:line)"`), as documented before frames were structured.
pub mod as_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use super::Frame;

    pub fn serialize<S: Serializer>(frames: &[Frame], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(frames.iter().map(Frame::to_string))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Frame>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                Frame::parse(text).ok_or_else(|| D::Error::custom(format!("not a frame: {text}")))
            })
            .collect()
    }

    /// The same for an optional list.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::Frame;

        pub fn serialize<S: Serializer>(
            frames: &Option<Vec<Frame>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match frames {
                Some(frames) => super::serialize(frames, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Vec<Frame>>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(deserialize_with = "super::deserialize")] Vec<Frame>);
            Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
        }
    }
}

/// Serde for `python.stacks[].frames[]`: `{function, file, line}` where
/// `function` is the qualified name, as documented before `Frame`; plus the
/// `qualname` key (the same text) and `first_line`.
pub mod as_stack_frames {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Frame;

    #[derive(Serialize, Deserialize)]
    struct StackFrame {
        function: String,
        #[serde(default)]
        qualname: String,
        file: String,
        line: u32,
        #[serde(default)]
        first_line: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        native: bool,
    }

    pub fn serialize<S: Serializer>(frames: &[Frame], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(frames.iter().map(|f| StackFrame {
            function: f.qualname.clone(),
            qualname: f.qualname.clone(),
            file: f.file.clone(),
            line: f.line,
            first_line: f.first_line,
            native: f.native,
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Frame>, D::Error> {
        Ok(Vec::<StackFrame>::deserialize(d)?
            .into_iter()
            .map(|f| Frame {
                function: if f.native {
                    f.function.clone()
                } else {
                    f.function.rsplit('.').next().unwrap_or(&f.function).into()
                },
                qualname: f.function,
                file: f.file,
                line: f.line,
                first_line: f.first_line,
                native: f.native,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_file(file: &str) -> Frame {
        Frame {
            file: file.into(),
            ..Frame::default()
        }
    }

    #[test]
    fn stdlib_modules_are_told_from_user_files() {
        let module = |file: &str| in_file(file).stdlib_module().map(str::to_owned);
        assert_eq!(
            module("/usr/lib/python3.11/subprocess.py").as_deref(),
            Some("subprocess")
        );
        assert_eq!(
            module("/root/.pyenv/versions/3.12.1/lib/python3.12/multiprocessing/popen_fork.py")
                .as_deref(),
            Some("multiprocessing")
        );
        assert_eq!(
            module("/usr/lib/python3.13t/threading.py").as_deref(),
            Some("threading")
        );
        assert_eq!(module("<frozen os>").as_deref(), Some("os"));
        assert_eq!(
            module("<frozen importlib._bootstrap>").as_deref(),
            Some("importlib")
        );
        // Installed packages and user code are not the standard library.
        assert_eq!(
            module("/usr/lib/python3.11/site-packages/subprocess.py"),
            None
        );
        assert_eq!(module("/usr/lib/python3/dist-packages/threading.py"), None);
        assert_eq!(module("/srv/app/subprocess.py"), None);
        assert_eq!(module("/srv/python3.x/threading.py"), None);
    }

    #[test]
    fn text_form_round_trips() {
        let frame = Frame {
            qualname: "Popen._execute_child".into(),
            function: "_execute_child".into(),
            file: "/usr/lib/python3.11/subprocess.py".into(),
            line: 1883,
            first_line: 0,
            native: false,
        };
        assert_eq!(
            frame.to_string(),
            "Popen._execute_child (/usr/lib/python3.11/subprocess.py:1883)"
        );
        assert_eq!(Frame::parse(&frame.to_string()), Some(frame));
        let frozen = Frame::parse("<module> (<frozen os>:12)").unwrap();
        assert_eq!((frozen.file.as_str(), frozen.line), ("<frozen os>", 12));
        assert_eq!(Frame::parse("garbage"), None);
        let native = Frame {
            qualname: "deflate".into(),
            function: "deflate".into(),
            file: "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13".into(),
            native: true,
            ..Frame::default()
        };
        assert_eq!(
            native.to_string(),
            "deflate [/usr/lib/x86_64-linux-gnu/libz.so.1.2.13]"
        );
        assert_eq!(Frame::parse(&native.to_string()), Some(native));
        let unresolved = Frame::unresolved(0x55aa);
        assert_eq!(unresolved.to_string(), "<code 0x55aa> (?:0)");
        assert!(!unresolved.is_resolved());
        assert_eq!(
            join(&[frozen.clone(), frozen]),
            "<module> (<frozen os>:12) <- <module> (<frozen os>:12)"
        );
    }

    #[test]
    fn json_forms_keep_their_documented_keys() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Both {
            #[serde(with = "as_text")]
            text: Vec<Frame>,
            #[serde(with = "as_stack_frames")]
            stack: Vec<Frame>,
        }
        let frame = Frame {
            qualname: "C.run".into(),
            function: "run".into(),
            file: "/a.py".into(),
            line: 7,
            first_line: 5,
            native: false,
        };
        let both = Both {
            text: vec![Frame {
                first_line: 0,
                ..frame.clone()
            }],
            stack: vec![frame],
        };
        let json = serde_json::to_value(&both).unwrap();
        assert_eq!(json["text"][0], "C.run (/a.py:7)");
        assert_eq!(json["stack"][0]["function"], "C.run");
        assert_eq!(json["stack"][0]["line"], 7);
        assert_eq!(serde_json::from_value::<Both>(json).unwrap(), both);
    }
}

//! Function names of a binary, from its ELF symbol tables (`.symtab`
//! when it was not stripped, `.dynsym` always): a native frame is named
//! by the function whose range holds its address, or by the file and the
//! address when none does (a static function of a stripped library).

use object::{Object, ObjectSymbol, SymbolKind};

#[derive(Debug, Default)]
pub struct Symbols {
    /// (start, end, name), sorted by start.
    functions: Vec<(u64, u64, String)>,
}

impl Symbols {
    pub fn read(file: &object::File<'_>) -> Self {
        let mut functions: Vec<(u64, u64, String)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0 && s.address() != 0)
            .filter_map(|s| {
                let name = s.name().ok()?;
                // `name@@VERSION` in some tables: the name alone.
                let name = name.split('@').next().unwrap_or(name);
                Some((s.address(), s.address() + s.size(), demangle(name)))
            })
            .collect();
        functions.sort();
        functions.dedup_by(|b, a| a.0 == b.0);
        Self { functions }
    }

    /// The function holding binary address `vaddr`.
    pub fn name(&self, vaddr: u64) -> Option<&str> {
        let at = self.functions.partition_point(|f| f.0 <= vaddr);
        let (start, end, name) = self.functions.get(at.checked_sub(1)?)?;
        (*start <= vaddr && vaddr < *end).then_some(name.as_str())
    }

    /// The address range of the function named `name`.
    pub fn range(&self, name: &str) -> Option<(u64, u64)> {
        self.functions
            .iter()
            .find(|f| f.2 == name)
            .map(|f| (f.0, f.1))
    }
}

/// Rust names demangled; C names as they are.
fn demangle(name: &str) -> String {
    if name.starts_with("_R") || name.starts_with("_ZN") {
        let demangled = rustc_demangle::demangle(name);
        return format!("{demangled:#}");
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_named_only_inside_a_function() {
        let symbols = Symbols {
            functions: vec![
                (0x1000, 0x1100, "deflate".into()),
                (0x1200, 0x1300, "inflate".into()),
            ],
        };
        assert_eq!(symbols.name(0x1000), Some("deflate"));
        assert_eq!(symbols.name(0x10ff), Some("deflate"));
        assert_eq!(
            symbols.name(0x1100),
            None,
            "a static function after deflate"
        );
        assert_eq!(symbols.name(0xfff), None);
        assert_eq!(symbols.name(0x1250), Some("inflate"));
        assert_eq!(symbols.range("inflate"), Some((0x1200, 0x1300)));
    }

    #[test]
    fn the_system_zlib_names_deflate() {
        let data = super::super::tests::system_zlib();
        let file = object::File::parse(&*data).unwrap();
        let symbols = Symbols::read(&file);
        let (start, end) = symbols.range("deflate").expect("deflate is exported");
        assert_eq!(symbols.name(start + (end - start) / 2), Some("deflate"));
    }
}

//! A binary's unwind table: its `.eh_frame` call frame information,
//! compiled to one row per change of rule, in the form the kernel's
//! unwinder follows (`tracer_common::NativeRow`): the CFA from the stack
//! or frame pointer plus an offset, where the frame pointer and the return
//! address were saved (arm64: or that the return address is still in the
//! link register), x86-64's PLT stubs, and the end of the stack.
//! Everything else (expressions, other registers) becomes a row the
//! unwinder stops at.

use gimli::{
    AArch64, BaseAddresses, CfaRule, CieOrFde, EhFrame, LittleEndian, Register, RegisterRule,
    UnwindContext, UnwindSection, Vendor, X86_64,
};
use object::{Object, ObjectSection};
use tracer_common::{NativeRow, cfa_rule};

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("not an ELF file: {0}")]
    Elf(#[from] object::Error),
    #[error("no .eh_frame section")]
    NoEhFrame,
    #[error("bad .eh_frame: {0}")]
    Cfi(#[from] gimli::Error),
    #[error("code above 4 GiB ({0:#x}): not supported")]
    TooHigh(u64),
}

/// The expression `.eh_frame` gives a PLT (`rsp + 8 + ((rip & 15) >= 11) * 8`):
/// breg7 8, breg16 0, lit15, and, lit11, ge, lit3, shl, plus.
const PLT_EXPRESSION: [u8; 11] = [
    0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22,
];

/// A binary's unwind table and the functions its FDEs cover.
#[derive(Debug, Default)]
pub struct UnwindTable {
    /// Sorted by address, one per change of rule.
    pub rows: Vec<NativeRow>,
    /// (start, end) of every FDE, sorted: the functions of a stripped
    /// binary, which name a frame no symbol covers by its start.
    pub functions: Vec<(u64, u64)>,
}

/// The architecture whose registers a table's rules name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The tracer's own (the kernel it runs on runs the same).
    pub const HOST: Arch = if cfg!(target_arch = "aarch64") {
        Arch::Aarch64
    } else {
        Arch::X86_64
    };

    /// DWARF numbers of the stack pointer, frame pointer and return
    /// address.
    fn registers(self) -> (Register, Register, Register) {
        match self {
            Arch::X86_64 => (X86_64::RSP, X86_64::RBP, X86_64::RA),
            Arch::Aarch64 => (AArch64::SP, AArch64::X29, AArch64::X30),
        }
    }
}

/// The unwind table of the ELF file `data`, for this architecture.
pub fn unwind_table(data: &[u8]) -> Result<UnwindTable, TableError> {
    unwind_table_for(data, Arch::HOST)
}

/// The unwind table of the ELF file `data`, built for `arch`.
pub fn unwind_table_for(data: &[u8], arch: Arch) -> Result<UnwindTable, TableError> {
    let (sp, fp, ra) = arch.registers();
    let file = object::File::parse(data)?;
    let section = file
        .section_by_name(".eh_frame")
        .ok_or(TableError::NoEhFrame)?;
    let eh_data = section.data()?;
    let mut bases = BaseAddresses::default().set_eh_frame(section.address());
    if let Some(text) = file.section_by_name(".text") {
        bases = bases.set_text(text.address());
    }
    if let Some(got) = file.section_by_name(".got") {
        bases = bases.set_got(got.address());
    }
    let mut eh_frame = EhFrame::new(eh_data, LittleEndian);
    if arch == Arch::Aarch64 {
        // 0x2d is `DW_CFA_AARCH64_negate_ra_state` (return addresses
        // signed), not SPARC's window save.
        eh_frame.set_vendor(Vendor::AArch64);
    }
    let mut ctx = Box::new(UnwindContext::new());
    // (start, end of its FDE, row)
    let mut spans: Vec<(u64, u64, NativeRow)> = Vec::new();
    let mut functions = Vec::new();
    let mut entries = eh_frame.entries(&bases);
    while let Some(entry) = entries.next()? {
        let CieOrFde::Fde(partial) = entry else {
            continue;
        };
        let Ok(fde) = partial.parse(EhFrame::cie_from_offset) else {
            continue;
        };
        let fde_end = fde.end_address();
        functions.push((fde.initial_address(), fde_end));
        let mut table = fde.rows(&eh_frame, &bases, &mut ctx)?;
        while let Some(row) = table.next_row()? {
            let start = row.start_address();
            if start >= 1 << 32 {
                return Err(TableError::TooHigh(start));
            }
            let mut out = NativeRow {
                pc: start as u32,
                ..NativeRow::default()
            };
            match row.cfa() {
                CfaRule::RegisterAndOffset { register, offset }
                    if i32::try_from(*offset).is_ok() =>
                {
                    out.cfa_offset = *offset as i32;
                    out.cfa_rule = if *register == sp {
                        cfa_rule::SP
                    } else if *register == fp {
                        cfa_rule::FP
                    } else {
                        cfa_rule::UNKNOWN
                    };
                }
                CfaRule::Expression(expr) => {
                    let bytes = expr.get(&eh_frame).map(|e| e.0.slice().to_vec());
                    out.cfa_rule =
                        if arch == Arch::X86_64 && bytes.as_deref() == Ok(&PLT_EXPRESSION[..]) {
                            cfa_rule::PLT
                        } else {
                            cfa_rule::UNKNOWN
                        };
                }
                _ => out.cfa_rule = cfa_rule::UNKNOWN,
            }
            // Offset 0 from the CFA would be where the return address ends
            // and the caller's frame starts: never a saved frame pointer,
            // so it can mean "unchanged".
            if let RegisterRule::Offset(offset) = row.register(fp)
                && let Ok(offset) = i16::try_from(offset)
            {
                out.fp_offset = offset;
            }
            match (arch, row.register(ra)) {
                (_, RegisterRule::Offset(offset))
                    if offset % 8 == 0 && (offset / 8) as i8 as i64 == offset / 8 =>
                {
                    out.ra_slot = (offset / 8) as i8
                }
                // x86-64's CIEs always place the return address: one
                // undefined marks the outermost frame.
                (Arch::X86_64, RegisterRule::Undefined) => out.cfa_rule = cfa_rule::END,
                // arm64's is x30 until a prologue saves it (gimli cannot
                // tell that from `.cfi_undefined x30` in `_start`: the
                // kernel's unwinder ends an outer frame there).
                (Arch::Aarch64, RegisterRule::Undefined | RegisterRule::SameValue) => {
                    out.ra_slot = 0
                }
                _ => out.cfa_rule = cfa_rule::UNKNOWN,
            }
            if out.cfa_rule == cfa_rule::UNKNOWN {
                // Marks a rule not followed, apart from a gap (offset 0).
                out.cfa_offset = 1;
            }
            spans.push((start, row.end_address().min(fde_end), out));
        }
    }
    functions.sort_unstable();
    Ok(UnwindTable {
        rows: compact(spans),
        functions,
    })
}

/// Rows sorted by address, a gap row (no rule: the unwinder stops) where
/// one FDE ends before the next begins, and no row that repeats the one
/// before it.
fn compact(mut spans: Vec<(u64, u64, NativeRow)>) -> Vec<NativeRow> {
    spans.sort_by_key(|&(start, _, _)| start);
    let gap = |pc: u64| NativeRow {
        pc: pc as u32,
        cfa_rule: cfa_rule::UNKNOWN,
        ..NativeRow::default()
    };
    let mut rows: Vec<NativeRow> = Vec::with_capacity(spans.len());
    let mut covered_to = 0u64;
    for (start, end, row) in spans {
        if !rows.is_empty() && start > covered_to {
            push_row(&mut rows, gap(covered_to));
        }
        push_row(&mut rows, row);
        covered_to = covered_to.max(end);
    }
    if !rows.is_empty() {
        push_row(&mut rows, gap(covered_to));
    }
    rows
}

fn push_row(rows: &mut Vec<NativeRow>, row: NativeRow) {
    if let Some(last) = rows.last_mut() {
        if last.pc == row.pc {
            // Two FDEs claim one address: the later start wins.
            *last = row;
            return;
        }
        let same = NativeRow { pc: last.pc, ..row };
        if same == *last {
            return;
        }
    }
    rows.push(row);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pc: u32, rule: u8, cfa_offset: i32, fp_offset: i16) -> NativeRow {
        NativeRow {
            pc,
            cfa_offset,
            fp_offset,
            cfa_rule: rule,
            ra_slot: -1,
        }
    }

    fn gap(pc: u32) -> NativeRow {
        NativeRow {
            pc,
            cfa_rule: cfa_rule::UNKNOWN,
            ..NativeRow::default()
        }
    }

    #[test]
    fn gaps_between_functions_stop_the_unwinder_and_repeats_go() {
        let spans = vec![
            (0x1010, 0x1020, row(0x1010, cfa_rule::SP, 8, 0)),
            (0x1000, 0x1010, row(0x1000, cfa_rule::SP, 8, 0)),
            (0x1001, 0x1010, row(0x1001, cfa_rule::SP, 16, 0)),
            (0x2000, 0x2010, row(0x2000, cfa_rule::FP, 16, -16)),
        ];
        assert_eq!(
            compact(spans),
            vec![
                row(0x1000, cfa_rule::SP, 8, 0),
                row(0x1001, cfa_rule::SP, 16, 0),
                row(0x1010, cfa_rule::SP, 8, 0),
                gap(0x1020),
                row(0x2000, cfa_rule::FP, 16, -16),
                gap(0x2010),
            ]
        );
    }

    /// The system's zlib, as the tests' workloads use it: its functions
    /// push registers (rsp-based CFA growing by 8), its PLT has the
    /// expression, and every row is in order.
    #[test]
    fn the_system_zlib_compiles_to_sorted_rows_with_its_plt() {
        let data = super::super::tests::system_zlib();
        let rows = unwind_table(&data).unwrap().rows;
        assert!(rows.len() > 100, "{} rows", rows.len());
        assert!(rows.windows(2).all(|w| w[0].pc < w[1].pc));
        assert!(rows.iter().any(|r| r.cfa_rule == cfa_rule::PLT));
        assert!(
            rows.iter()
                .any(|r| r.cfa_rule == cfa_rule::SP && r.cfa_offset == 56)
        );
    }

    /// arm64's glibc (Debian's libc6-arm64-cross, which `cargo xtask test`
    /// installs): CFAs from sp and x29, return addresses still in x30 at
    /// functions' entries and saved beside x29 after their prologues,
    /// `negate_ra_state` (signed return addresses) read as arm64's, no
    /// PLT rule; and the x86-64 reading of the same file finds nothing to
    /// follow.
    #[test]
    fn arm64_glibc_compiles_to_sp_and_x29_rules() {
        let path = "/usr/aarch64-linux-gnu/lib/libc.so.6";
        let data = std::fs::read(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (cargo xtask setup installs it)"));
        let rows = unwind_table_for(&data, Arch::Aarch64).unwrap().rows;
        let count = |f: &dyn Fn(&NativeRow) -> bool| rows.iter().filter(|r| f(r)).count();
        let unknown = count(&|r| r.cfa_rule == cfa_rule::UNKNOWN && r.cfa_offset != 0);
        eprintln!(
            "{} rows: {} sp, {} x29, {} in x30, {} saved, {unknown} not followed",
            rows.len(),
            count(&|r| r.cfa_rule == cfa_rule::SP),
            count(&|r| r.cfa_rule == cfa_rule::FP),
            count(&|r| r.cfa_rule <= cfa_rule::FP && r.ra_slot == 0),
            count(&|r| r.cfa_rule <= cfa_rule::FP && r.ra_slot < 0),
        );
        assert!(rows.len() > 1000, "{} rows", rows.len());
        assert!(rows.windows(2).all(|w| w[0].pc < w[1].pc));
        assert_eq!(count(&|r| r.cfa_rule == cfa_rule::PLT), 0);
        // A function's entry: CFA = sp, the return address in x30.
        assert!(
            count(&|r| r.cfa_rule == cfa_rule::SP && r.cfa_offset == 0 && r.ra_slot == 0) > 500
        );
        // After `stp x29, x30, [sp, #-N]!`: x29 saved, x30 just above it
        // (GCC keeps the CFA on sp).
        assert!(
            count(&|r| r.fp_offset != 0 && i32::from(r.fp_offset) + 8 == i32::from(r.ra_slot) * 8)
                > 2000
        );
        // Expressions and other registers: 170 of 12,684 rows here.
        assert!(
            unknown * 50 < rows.len(),
            "{unknown} of {} rows not followed",
            rows.len()
        );
    }
}

//! The wheel of `cargo xtask dist`: the static binary as a script of a
//! binary-only Python package (what maturin's `bindings = "bin"` makes of
//! py-spy), so that `pip install tracer-ebpf` puts `tracer` on PATH. Written
//! here rather than by maturin: maturin would build the tracer a second
//! time, and a wheel is a zip of four files.

use std::{fmt::Write as _, io::Write as _};

use anyhow::{Context as _, Result};
use sha2::{Digest as _, Sha256};

/// The distribution name on a package index (`tracer` is taken on PyPI);
/// its normalised form names the wheel's files.
pub const NAME: &str = "tracer-ebpf";
const NORMALISED: &str = "tracer_ebpf";

/// The wheel's file name: `tracer_ebpf-VERSION-py3-none-PLATFORM.whl`
/// (`PLATFORM`: [`crate::arch::Arch::wheel_platform`]).
pub fn file_name(version: &str, platform: &str) -> String {
    format!("{NORMALISED}-{version}-py3-none-{platform}.whl")
}

/// What goes in the package's METADATA (core metadata 2.4, as PyPI takes it).
pub struct Metadata<'a> {
    pub version: &'a str,
    /// The platform tags it installs on ([`crate::arch::Arch::wheel_platform`]).
    pub platform: &'a str,
    pub summary: &'a str,
    pub license: &'a str,
    pub description: &'a str,
}

/// The wheel's bytes: the binary as `{name}.data/scripts/tracer` (pip copies
/// it to the environment's bin/ with its mode), the man page under
/// `{name}.data/data/share/man/man1` (so `man tracer` finds it beside the
/// environment's bin/), then the dist-info files, RECORD last.
pub fn build(meta: &Metadata, binary: &[u8], man_page: &[u8]) -> Result<Vec<u8>> {
    let data = format!("{NORMALISED}-{}.data", meta.version);
    let info = format!("{NORMALISED}-{}.dist-info", meta.version);
    let files: Vec<(String, u32, Vec<u8>)> = vec![
        (format!("{data}/scripts/tracer"), 0o755, binary.to_vec()),
        (
            format!("{data}/data/share/man/man1/tracer.1"),
            0o644,
            man_page.to_vec(),
        ),
        (
            format!("{info}/METADATA"),
            0o644,
            metadata(meta).into_bytes(),
        ),
        (
            format!("{info}/WHEEL"),
            0o644,
            wheel_file(meta.platform).into_bytes(),
        ),
    ];
    let mut record = String::new();
    for (name, _, bytes) in &files {
        let digest = urlsafe_base64(&Sha256::digest(bytes));
        let _ = writeln!(record, "{name},sha256={digest},{}", bytes.len());
    }
    let _ = writeln!(record, "{info}/RECORD,,");
    let mut zip = Zip::default();
    for (name, mode, bytes) in &files {
        zip.add(name, *mode, bytes)?;
    }
    zip.add(&format!("{info}/RECORD"), 0o644, record.as_bytes())?;
    Ok(zip.finish())
}

fn metadata(meta: &Metadata) -> String {
    let mut text = format!(
        "Metadata-Version: 2.4\n\
         Name: {NAME}\n\
         Version: {}\n\
         Summary: {}\n\
         License-Expression: {}\n\
         Keywords: ebpf,bpf,profiler,tracing,python,linux\n",
        meta.version, meta.summary, meta.license
    );
    for classifier in [
        "Development Status :: 3 - Alpha",
        "Environment :: Console",
        "Intended Audience :: Developers",
        "Intended Audience :: System Administrators",
        "Operating System :: POSIX :: Linux",
        "Programming Language :: Python :: Implementation :: CPython",
        "Programming Language :: Rust",
        "Topic :: Software Development :: Debuggers",
        "Topic :: System :: Monitoring",
    ] {
        let _ = writeln!(text, "Classifier: {classifier}");
    }
    let _ = write!(
        text,
        "Description-Content-Type: text/markdown\n\n{}",
        meta.description
    );
    text
}

fn wheel_file(platform: &str) -> String {
    let mut text =
        String::from("Wheel-Version: 1.0\nGenerator: cargo xtask dist\nRoot-Is-Purelib: false\n");
    for platform in platform.split('.') {
        let _ = writeln!(text, "Tag: py3-none-{platform}");
    }
    text
}

/// RFC 4648 base64 with the URL-safe alphabet and no padding, as RECORD wants.
fn urlsafe_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A zip archive written in memory: deflated entries with Unix modes, every
/// timestamp 1980-01-01 (so the same inputs give the same wheel), no zip64
/// (a wheel of a few MiB).
#[derive(Default)]
struct Zip {
    bytes: Vec<u8>,
    central: Vec<u8>,
    entries: u16,
}

/// 1980-01-01 00:00 in MS-DOS date and time fields.
const DOS_DATE: u16 = (1 << 5) | 1;
const DOS_TIME: u16 = 0;

impl Zip {
    fn add(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<()> {
        let mut deflate =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        deflate.write_all(data)?;
        let compressed = deflate.finish()?;
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let offset = u32::try_from(self.bytes.len()).context("wheel over 4 GiB")?;
        let sizes = [
            crc.sum(),
            u32::try_from(compressed.len()).context("entry over 4 GiB")?,
            u32::try_from(data.len()).context("entry over 4 GiB")?,
        ];
        let name_len = u16::try_from(name.len()).context("entry name too long")?;
        // Version 2.0 (deflate); flag bit 11: the name is UTF-8; method 8: deflate.
        let common = |out: &mut Vec<u8>| {
            for field in [20u16, 1 << 11, 8, DOS_TIME, DOS_DATE] {
                out.extend_from_slice(&field.to_le_bytes());
            }
            for field in sizes {
                out.extend_from_slice(&field.to_le_bytes());
            }
            out.extend_from_slice(&name_len.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes()); // extra field length
        };
        self.bytes.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut self.bytes);
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.extend_from_slice(&compressed);

        self.central
            .extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        // Made by: Unix (3), so that the high half of the external attributes is the mode.
        self.central
            .extend_from_slice(&((3u16 << 8) | 20).to_le_bytes());
        common(&mut self.central);
        // Comment length, disk number, internal attributes.
        self.central.extend_from_slice(&[0; 6]);
        let external = (0o100_000 | mode) << 16;
        self.central.extend_from_slice(&external.to_le_bytes());
        self.central.extend_from_slice(&offset.to_le_bytes());
        self.central.extend_from_slice(name.as_bytes());
        self.entries += 1;
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        let offset = self.bytes.len() as u32;
        let size = self.central.len() as u32;
        self.bytes.extend_from_slice(&self.central);
        self.bytes.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        self.bytes.extend_from_slice(&[0; 4]); // this disk, the central directory's disk
        self.bytes.extend_from_slice(&self.entries.to_le_bytes());
        self.bytes.extend_from_slice(&self.entries.to_le_bytes());
        self.bytes.extend_from_slice(&size.to_le_bytes());
        self.bytes.extend_from_slice(&offset.to_le_bytes());
        self.bytes.extend_from_slice(&0u16.to_le_bytes()); // comment length
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_urlsafe_and_unpadded() {
        assert_eq!(urlsafe_base64(b""), "");
        assert_eq!(urlsafe_base64(b"f"), "Zg");
        assert_eq!(urlsafe_base64(b"fo"), "Zm8");
        assert_eq!(urlsafe_base64(b"foo"), "Zm9v");
        assert_eq!(urlsafe_base64(b"foob"), "Zm9vYg");
        assert_eq!(urlsafe_base64(&[0xfb, 0xff]), "-_8");
        // RECORD's hash of an empty file, as pip writes it.
        assert_eq!(
            urlsafe_base64(&Sha256::digest(b"")),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
    }

    #[test]
    fn names_and_tags() {
        use crate::arch::Arch;
        assert_eq!(
            file_name("0.1.0", Arch::X86_64.wheel_platform()),
            "tracer_ebpf-0.1.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
        );
        assert_eq!(
            wheel_file(Arch::X86_64.wheel_platform()),
            "Wheel-Version: 1.0\nGenerator: cargo xtask dist\nRoot-Is-Purelib: false\n\
             Tag: py3-none-manylinux_2_17_x86_64\nTag: py3-none-manylinux2014_x86_64\n"
        );
        assert_eq!(
            file_name("0.1.0", Arch::Aarch64.wheel_platform()),
            "tracer_ebpf-0.1.0-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
        );
    }

    #[test]
    fn zip_has_its_entries_and_end_record() {
        let mut zip = Zip::default();
        zip.add("a/b", 0o755, b"hello hello hello").unwrap();
        zip.add("c", 0o644, b"").unwrap();
        let bytes = zip.finish();
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        let end = &bytes[bytes.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 2);
        let central = u32::from_le_bytes(end[16..20].try_into().unwrap()) as usize;
        assert_eq!(&bytes[central..central + 4], b"PK\x01\x02");
        // The first entry's external attributes: a regular file, mode 0755.
        let external = u32::from_le_bytes(bytes[central + 38..central + 42].try_into().unwrap());
        assert_eq!(external >> 16, 0o100_755);
    }
}

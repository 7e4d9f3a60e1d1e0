//! Just enough ELF reading to tell a static binary from a dynamic one and list its shared
//! libraries (64-bit little-endian only, which is what the runtimes here are).

use std::path::{Path, PathBuf};

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

/// What the harness reports about a binary.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ElfInfo {
    pub path: PathBuf,
    pub size: u64,
    /// The program interpreter (dynamic loader), if any.
    pub interp: Option<String>,
    /// `DT_NEEDED` entries.
    pub needed: Vec<String>,
}

impl ElfInfo {
    /// No loader and no shared libraries (static, or static-pie).
    pub fn is_static(&self) -> bool {
        self.interp.is_none() && self.needed.is_empty()
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

fn cstr_at(b: &[u8], off: usize) -> Option<String> {
    let rest = b.get(off..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

struct Phdr {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

/// Reads the ELF headers of `path` (following symlinks).
pub fn inspect(path: &Path) -> Result<ElfInfo, String> {
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = std::fs::read(&real).map_err(|e| format!("read {}: {e}", real.display()))?;
    parse(&bytes)
        .map(|(interp, needed)| ElfInfo {
            path: real.clone(),
            size: bytes.len() as u64,
            interp,
            needed,
        })
        .ok_or_else(|| format!("{}: not a 64-bit little-endian ELF file", real.display()))
}

type Parsed = (Option<String>, Vec<String>);

fn parse(b: &[u8]) -> Option<Parsed> {
    if b.get(0..4)? != b"\x7fELF" || *b.get(4)? != 2 || *b.get(5)? != 1 {
        return None;
    }
    let phoff = u64_at(b, 0x20)? as usize;
    let phentsize = u16_at(b, 0x36)? as usize;
    let phnum = u16_at(b, 0x38)? as usize;
    let mut phdrs = Vec::with_capacity(phnum);
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        phdrs.push(Phdr {
            kind: u32_at(b, o)?,
            offset: u64_at(b, o + 8)?,
            vaddr: u64_at(b, o + 16)?,
            filesz: u64_at(b, o + 32)?,
        });
    }
    let interp = phdrs
        .iter()
        .find(|p| p.kind == PT_INTERP)
        .and_then(|p| cstr_at(b, p.offset as usize));
    let mut needed = Vec::new();
    if let Some(dynamic) = phdrs.iter().find(|p| p.kind == PT_DYNAMIC) {
        let mut strtab_vaddr = None;
        let mut offsets = Vec::new();
        let mut o = dynamic.offset as usize;
        let end = o + dynamic.filesz as usize;
        while o + 16 <= end {
            let tag = u64_at(b, o)?;
            let val = u64_at(b, o + 8)?;
            match tag {
                DT_NULL => break,
                DT_NEEDED => offsets.push(val),
                DT_STRTAB => strtab_vaddr = Some(val),
                _ => {}
            }
            o += 16;
        }
        // The string table's address is virtual: map it to a file offset through PT_LOAD.
        if let Some(va) = strtab_vaddr {
            let strtab = phdrs
                .iter()
                .filter(|p| p.kind == PT_LOAD)
                .find(|p| va >= p.vaddr && va < p.vaddr + p.filesz)
                .map(|p| va - p.vaddr + p.offset)?;
            for off in offsets {
                needed.push(cstr_at(b, (strtab + off) as usize)?);
            }
        }
    }
    Some((interp, needed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_binary_itself_parses() {
        let me = std::env::current_exe().unwrap();
        let info = inspect(&me).unwrap();
        assert!(info.size > 0);
        // Whatever the target, static means no loader and no libraries, and vice versa.
        assert_eq!(
            info.is_static(),
            info.interp.is_none() && info.needed.is_empty()
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse(b"not an elf file at all").is_none());
    }
}

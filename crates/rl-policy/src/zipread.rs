//! A strict reader of the zip archives Stable-Baselines3 and `torch.save` write, from bytes in
//! memory.
//!
//! Both write *stored* (uncompressed) members, so a member is a slice of the archive: nothing
//! is decompressed or copied, and the bytes an archive can make us look at are bounded by its
//! own length. The reader is strict where a lenient reader would let a hostile archive
//! amplify work or be read two ways:
//!
//! - at most [`MAX_ZIP_ENTRIES`] entries, declared sizes that fit in the archive (checked
//!   before any member is touched), and no two entries whose local header and data overlap
//!   (a 1 MB archive whose thousand entries all point at one member would otherwise read as a
//!   gigabyte);
//! - no two members with the same name, and the local header must repeat the central
//!   directory's name and method (otherwise tools disagree on what the archive holds);
//! - every stored member's CRC-32 is verified when the archive is opened;
//! - a compressed or encrypted member is an error when it is asked for, never garbage.
//!
//! Zip64 end records (which `torch.save` always writes) are understood; multi-disk archives
//! and archives with bytes prepended before the first entry are not.

use crate::error::ReadError;
use crate::limits::MAX_ZIP_ENTRIES;
use std::collections::BTreeMap;

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const EOCD_LEN: usize = 22;
const CENTRAL_LEN: usize = 46;
const LOCAL_LEN: usize = 30;
const ZIP64_LOCATOR_LEN: usize = 20;
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// Compression method 0: stored.
const STORED: u16 = 0;

fn corrupt(m: impl Into<String>) -> ReadError {
    ReadError::Corrupt(m.into())
}

/// Little-endian reads with bounds checks.
struct Le<'a>(&'a [u8]);

impl<'a> Le<'a> {
    fn bytes(&self, at: usize, n: usize) -> Result<&'a [u8], ReadError> {
        at.checked_add(n)
            .and_then(|end| self.0.get(at..end))
            .ok_or_else(|| {
                corrupt(format!(
                    "truncated: needs bytes {at}..{} of {}",
                    at.saturating_add(n),
                    self.0.len()
                ))
            })
    }
    fn u16(&self, at: usize) -> Result<u16, ReadError> {
        let b = self.bytes(at, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&self, at: usize) -> Result<u32, ReadError> {
        let b = self.bytes(at, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&self, at: usize) -> Result<u64, ReadError> {
        let b = self.bytes(at, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

fn to_usize(v: u64, what: &str) -> Result<usize, ReadError> {
    usize::try_from(v).map_err(|_| corrupt(format!("{what} {v} does not fit in memory")))
}

/// One member of an archive.
#[derive(Clone, Copy)]
struct Member<'a> {
    data: &'a [u8],
    method: u16,
}

/// The members of an archive by name (sorted, so iteration order never depends on hashing).
pub(crate) struct ZipArchive<'a> {
    members: BTreeMap<String, Member<'a>>,
}

/// Where the central directory is and how many entries it has.
struct Directory {
    entries: usize,
    start: usize,
    end: usize,
}

/// Finds the end-of-central-directory record (and its zip64 twin, if any).
fn find_directory(z: &Le<'_>) -> Result<Directory, ReadError> {
    let len = z.0.len();
    if len < EOCD_LEN {
        return Err(corrupt(format!(
            "not a zip archive: {len} bytes, shorter than an end record"
        )));
    }
    // The record is 22 bytes plus a comment of at most 65,535 bytes, and the comment must run
    // exactly to the end of the archive.
    let lowest = len.saturating_sub(EOCD_LEN + usize::from(u16::MAX));
    let mut eocd = None;
    for pos in (lowest..=len - EOCD_LEN).rev() {
        if z.u32(pos)? == EOCD_SIG && pos + EOCD_LEN + usize::from(z.u16(pos + 20)?) == len {
            eocd = Some(pos);
            break;
        }
    }
    let pos = eocd.ok_or_else(|| corrupt("not a zip archive: no end of central directory"))?;
    let disk = z.u16(pos + 4)?;
    let cd_disk = z.u16(pos + 6)?;
    let n_disk = z.u16(pos + 8)?;
    let n_total = z.u16(pos + 10)?;
    let cd_size = z.u32(pos + 12)?;
    let cd_off = z.u32(pos + 16)?;
    let has_locator =
        pos >= ZIP64_LOCATOR_LEN && z.u32(pos - ZIP64_LOCATOR_LEN)? == ZIP64_LOCATOR_SIG;
    if !has_locator {
        if disk != 0 || cd_disk != 0 {
            return Err(corrupt("multi-disk archives are not supported"));
        }
        if n_disk != n_total {
            return Err(corrupt(format!(
                "end record counts {n_disk} entries on this disk but {n_total} in total"
            )));
        }
        if n_total == u16::MAX || cd_size == u32::MAX || cd_off == u32::MAX {
            return Err(corrupt(
                "end record needs a zip64 record, and there is none",
            ));
        }
        let start = cd_off as usize;
        let end = start
            .checked_add(cd_size as usize)
            .filter(|&e| e == pos)
            .ok_or_else(|| {
                corrupt(format!(
                    "central directory at {start} of {cd_size} bytes does not end where the end record starts ({pos})"
                ))
            })?;
        return Ok(Directory {
            entries: usize::from(n_total),
            start,
            end,
        });
    }
    let loc = pos - ZIP64_LOCATOR_LEN;
    let z64_disk = z.u32(loc + 4)?;
    let z64_off = to_usize(z.u64(loc + 8)?, "zip64 record offset")?;
    let disks = z.u32(loc + 16)?;
    if z64_disk != 0 || disks > 1 {
        return Err(corrupt("multi-disk archives are not supported"));
    }
    if z.u32(z64_off)? != ZIP64_EOCD_SIG {
        return Err(corrupt(format!("no zip64 end record at {z64_off}")));
    }
    let rec_len = to_usize(z.u64(z64_off + 4)?, "zip64 record size")?;
    if rec_len < 44 || rec_len.checked_add(12).and_then(|r| z64_off.checked_add(r)) != Some(loc) {
        return Err(corrupt(format!(
            "zip64 end record at {z64_off} of {rec_len} bytes does not end at its locator ({loc})"
        )));
    }
    let disk64 = z.u32(z64_off + 16)?;
    let cd_disk64 = z.u32(z64_off + 20)?;
    let n_disk64 = z.u64(z64_off + 24)?;
    let n_total64 = z.u64(z64_off + 32)?;
    let cd_size64 = z.u64(z64_off + 40)?;
    let cd_off64 = z.u64(z64_off + 48)?;
    if disk64 != 0 || cd_disk64 != 0 || disk != 0 || cd_disk != 0 {
        return Err(corrupt("multi-disk archives are not supported"));
    }
    // The 16/32-bit fields are either "see zip64" markers or the same values.
    let agrees = |small: u64, marker: u64, big: u64| small == marker || small == big;
    if n_disk64 != n_total64
        || !agrees(u64::from(n_disk), 0xFFFF, n_disk64)
        || !agrees(u64::from(n_total), 0xFFFF, n_total64)
        || !agrees(u64::from(cd_size), 0xFFFF_FFFF, cd_size64)
        || !agrees(u64::from(cd_off), 0xFFFF_FFFF, cd_off64)
    {
        return Err(corrupt(
            "the end record and the zip64 end record disagree on the central directory",
        ));
    }
    let start = to_usize(cd_off64, "central directory offset")?;
    let end = start
        .checked_add(to_usize(cd_size64, "central directory size")?)
        .filter(|&e| e == z64_off)
        .ok_or_else(|| {
            corrupt(format!(
                "central directory at {start} of {cd_size64} bytes does not end at the zip64 end record ({z64_off})"
            ))
        })?;
    if n_total64 > MAX_ZIP_ENTRIES as u64 {
        return Err(ReadError::limit(
            format!("{n_total64} zip entries"),
            MAX_ZIP_ENTRIES,
        ));
    }
    Ok(Directory {
        entries: to_usize(n_total64, "entry count")?,
        start,
        end,
    })
}

/// Replaces the 0xFFFF_FFFF markers of a central entry by the zip64 extra field's values.
fn apply_zip64_extra(
    extra: &[u8],
    size: &mut u64,
    csize: &mut u64,
    offset: &mut u64,
) -> Result<(), ReadError> {
    let e = Le(extra);
    let mut at = 0;
    while at + 4 <= extra.len() {
        let id = e.u16(at)?;
        let len = usize::from(e.u16(at + 2)?);
        let body = e.bytes(at + 4, len)?;
        if id == ZIP64_EXTRA_ID {
            let b = Le(body);
            let mut k = 0;
            for field in [size, csize, offset] {
                if *field == 0xFFFF_FFFF {
                    *field = b.u64(k)?;
                    k += 8;
                }
            }
            return Ok(());
        }
        at += 4 + len;
    }
    Ok(())
}

impl<'a> ZipArchive<'a> {
    /// Parses and checks `bytes` (see the module docs for what is rejected).
    pub(crate) fn new(bytes: &'a [u8]) -> Result<ZipArchive<'a>, ReadError> {
        let z = Le(bytes);
        let dir = find_directory(&z)?;
        if dir.entries > MAX_ZIP_ENTRIES {
            return Err(ReadError::limit(
                format!("{} zip entries", dir.entries),
                MAX_ZIP_ENTRIES,
            ));
        }
        // Every central entry takes at least 46 bytes: the count must fit the directory.
        if dir.entries.saturating_mul(CENTRAL_LEN) > dir.end - dir.start {
            return Err(corrupt(format!(
                "{} entries cannot fit in a central directory of {} bytes",
                dir.entries,
                dir.end - dir.start
            )));
        }
        let mut members = BTreeMap::new();
        // (start of local header, end of data, name) of every entry.
        let mut spans: Vec<(usize, usize, usize)> = Vec::with_capacity(dir.entries);
        let mut names: Vec<String> = Vec::with_capacity(dir.entries);
        let mut declared_total: u64 = 0;
        let mut at = dir.start;
        for i in 0..dir.entries {
            if at + CENTRAL_LEN > dir.end || z.u32(at)? != CENTRAL_SIG {
                return Err(corrupt(format!(
                    "central directory entry #{i} at {at} is missing"
                )));
            }
            let flags = z.u16(at + 8)?;
            let method = z.u16(at + 10)?;
            let crc = z.u32(at + 16)?;
            let mut csize = u64::from(z.u32(at + 20)?);
            let mut size = u64::from(z.u32(at + 24)?);
            let name_len = usize::from(z.u16(at + 28)?);
            let extra_len = usize::from(z.u16(at + 30)?);
            let comment_len = usize::from(z.u16(at + 32)?);
            let disk_start = z.u16(at + 34)?;
            let mut offset = u64::from(z.u32(at + 42)?);
            let name_bytes = z.bytes(at + CENTRAL_LEN, name_len)?;
            let extra = z.bytes(at + CENTRAL_LEN + name_len, extra_len)?;
            let next = at + CENTRAL_LEN + name_len + extra_len + comment_len;
            if next > dir.end {
                return Err(corrupt(format!(
                    "central directory entry #{i} runs past the directory"
                )));
            }
            let name = String::from_utf8(name_bytes.to_vec())
                .map_err(|_| corrupt(format!("entry #{i}: the name is not UTF-8")))?;
            apply_zip64_extra(extra, &mut size, &mut csize, &mut offset)
                .map_err(|e| e.context(&format!("entry {name}")))?;
            if disk_start != 0 {
                return Err(corrupt("multi-disk archives are not supported"));
            }
            if flags & 0x41 != 0 {
                return Err(ReadError::Unsupported(format!(
                    "member {name} is encrypted"
                )));
            }
            if method == STORED && csize != size {
                return Err(corrupt(format!(
                    "stored member {name} declares {csize} stored bytes but {size} uncompressed"
                )));
            }
            declared_total = declared_total.saturating_add(csize);
            if declared_total > bytes.len() as u64 {
                return Err(corrupt(format!(
                    "the entries declare {declared_total}+ bytes of data, more than the archive's {} bytes",
                    bytes.len()
                )));
            }
            // The local header repeats the name and method; the data follows it.
            let local = to_usize(offset, "local header offset")?;
            if local >= dir.start || z.u32(local)? != LOCAL_SIG {
                return Err(corrupt(format!(
                    "member {name}: no local header at {local}"
                )));
            }
            let local_method = z.u16(local + 8)?;
            let local_name_len = usize::from(z.u16(local + 26)?);
            let local_extra_len = usize::from(z.u16(local + 28)?);
            if local_method != method || z.bytes(local + LOCAL_LEN, local_name_len)? != name_bytes {
                return Err(corrupt(format!(
                    "member {name}: the local header disagrees with the central directory"
                )));
            }
            let data_start = local + LOCAL_LEN + local_name_len + local_extra_len;
            let data_end = data_start
                .checked_add(to_usize(csize, "member size")?)
                .filter(|&e| e <= dir.start)
                .ok_or_else(|| {
                    corrupt(format!(
                        "member {name}: {csize} bytes from {data_start} run into the central directory"
                    ))
                })?;
            let data = z.bytes(data_start, data_end - data_start)?;
            // Fuzzing builds (cargo-fuzz sets `cfg(fuzzing)`) skip the CRC, or mutated
            // members would never get past it to the pickle and tensor readers.
            if method == STORED && !cfg!(fuzzing) && crc32fast::hash(data) != crc {
                return Err(corrupt(format!(
                    "member {name}: CRC-32 mismatch (the data is damaged)"
                )));
            }
            if members.contains_key(&name) {
                return Err(corrupt(format!(
                    "ambiguous archive: two members named {name}"
                )));
            }
            spans.push((local, data_end, names.len()));
            names.push(name.clone());
            members.insert(name, Member { data, method });
            at = next;
        }
        if at != dir.end {
            return Err(corrupt(format!(
                "{} stray bytes after the last central directory entry",
                dir.end - at
            )));
        }
        spans.sort_unstable();
        for w in spans.windows(2) {
            let ((_, end_a, a), (start_b, _, b)) = (w[0], w[1]);
            if start_b < end_a {
                let name = |i: usize| names.get(i).map_or("?", String::as_str);
                return Err(corrupt(format!(
                    "members {} and {} overlap (bytes {start_b}..{end_a})",
                    name(a),
                    name(b)
                )));
            }
        }
        Ok(ZipArchive { members })
    }

    /// The member named `name`: `None` when absent, an error when it is compressed.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&'a [u8]>, ReadError> {
        match self.members.get(name) {
            None => Ok(None),
            Some(m) if m.method == STORED => Ok(Some(m.data)),
            Some(m) => Err(ReadError::Unsupported(format!(
                "member {name} is compressed (zip method {}{}); only stored (uncompressed) members are read, which is what SB3 and torch.save write",
                m.method,
                if m.method == 8 { ", deflate" } else { "" }
            ))),
        }
    }

    /// The member names, sorted.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored zip written by hand from `(name, data)` members, with or without zip64 end
    /// records.
    fn build(members: &[(&str, &[u8])], zip64: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in members {
            let off = out.len() as u32;
            let crc = crc32fast::hash(data);
            out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&crc.to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            central.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&off.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_off = out.len();
        out.extend_from_slice(&central);
        let n = members.len();
        if zip64 {
            let rec = out.len();
            out.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
            out.extend_from_slice(&44u64.to_le_bytes());
            out.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            out.extend_from_slice(&(n as u64).to_le_bytes());
            out.extend_from_slice(&(n as u64).to_le_bytes());
            out.extend_from_slice(&(central.len() as u64).to_le_bytes());
            out.extend_from_slice(&(cd_off as u64).to_le_bytes());
            out.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(rec as u64).to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&(n as u16).to_le_bytes());
        out.extend_from_slice(&(n as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&(cd_off as u32).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_stored_members_with_and_without_zip64() {
        for zip64 in [false, true] {
            let bytes = build(&[("a", b"hello"), ("dir/b", b"")], zip64);
            let z = ZipArchive::new(&bytes).unwrap();
            assert_eq!(z.names().collect::<Vec<_>>(), ["a", "dir/b"]);
            assert_eq!(z.get("a").unwrap(), Some(&b"hello"[..]));
            assert_eq!(z.get("dir/b").unwrap(), Some(&b""[..]));
            assert_eq!(z.get("c").unwrap(), None);
        }
    }

    #[test]
    fn duplicate_names_are_ambiguous() {
        let bytes = build(&[("data.pkl", b"1"), ("data.pkl", b"2")], false);
        assert!(
            matches!(ZipArchive::new(&bytes), Err(ReadError::Corrupt(m)) if m.contains("two members named data.pkl"))
        );
    }
}

//! The ZIP structure of a .pkpass, read from the raw bytes and trusted for nothing: the end record, the
//! central directory, and each entry's local header, which must agree with the central directory.
//!
//! Every offset and length is checked against the file before use, counts are capped before any
//! loop, and nothing is allocated from a size a header declares.

/// At most this many entries are read; a pass has a few dozen (a few hundred with many languages).
pub const MAX_ENTRIES: usize = 1_000;

const END_SIGNATURE: u32 = 0x0605_4b50;
const END_LEN: usize = 22;
const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const ZIP64_LOCATOR_LEN: usize = 20;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
const LOCAL_LEN: usize = 30;
/// General-purpose flag bits.
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
const FLAG_STRONG_ENCRYPTION: u16 = 1 << 6;
pub const METHOD_STORED: u16 = 0;
pub const METHOD_DEFLATED: u16 = 8;

/// One entry as the central directory describes it, its local header checked.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name_raw: Vec<u8>,
    pub method: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub local_offset: usize,
    /// Where the entry's (compressed) data starts and ends, inside the file.
    pub data: std::ops::Range<usize>,
}

/// An entry the central directory lists but that cannot be read, and why.
#[derive(Debug)]
pub struct BadEntry {
    pub name_raw: Vec<u8>,
    pub problem: String,
}

#[derive(Debug, Default)]
pub struct Layout {
    pub entries: Vec<Entry>,
    pub bad: Vec<BadEntry>,
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Where the central directory is, per the end record.
struct Directory {
    start: usize,
    end: usize,
    count: usize,
}

/// Reads the central directory and checks each entry's local header. `Err` is a problem with the
/// archive as a whole (no file to blame); problems with one entry land in `Layout::bad`.
pub fn read_layout(bytes: &[u8]) -> Result<Layout, String> {
    let directory = find_directory(bytes)?;
    let mut layout = Layout::default();
    let mut at = directory.start;
    for index in 0..directory.count {
        let (central, next) = read_central(bytes, at, directory.end)
            .ok_or_else(|| format!("central directory entry {} is damaged or cut short", index + 1))?;
        at = next;
        match check_local(bytes, &central, directory.start) {
            Ok(entry) => layout.entries.push(entry),
            Err(problem) => layout.bad.push(BadEntry { name_raw: central.name_raw, problem }),
        }
    }
    if at != directory.end {
        return Err(format!(
            "the central directory holds more than the {} entries its end record counts; the archive is damaged or was tampered with",
            directory.count
        ));
    }
    flag_overlaps(&mut layout);
    Ok(layout)
}

/// Where the end record starts: the last signature whose comment fits in the file. It sits in the
/// last 22 bytes plus at most a 64 KiB comment, so the search is bounded whatever the file.
fn find_end_record(bytes: &[u8]) -> Option<usize> {
    let last = bytes.len().checked_sub(END_LEN)?;
    let first = last.saturating_sub(usize::from(u16::MAX));
    let mut at = last;
    loop {
        // The first byte alone rules out nearly every position cheaply.
        if bytes.get(at) == Some(&0x50)
            && u32_at(bytes, at) == Some(END_SIGNATURE)
            && u16_at(bytes, at + 20).is_some_and(|comment| at + END_LEN + usize::from(comment) <= bytes.len())
        {
            return Some(at);
        }
        if at == first {
            return None;
        }
        at -= 1;
    }
}

fn find_directory(bytes: &[u8]) -> Result<Directory, String> {
    const NOT_ZIP: &str =
        "the file is not a ZIP archive (no end-of-central-directory record); a .pkpass is a ZIP of the pass files";
    let end_at = find_end_record(bytes).ok_or(NOT_ZIP)?;
    let field16 = |off: usize| u16_at(bytes, end_at + off).unwrap_or(0);
    let field32 = |off: usize| u32_at(bytes, end_at + off).unwrap_or(0);
    let (disk, directory_disk, on_disk, total) = (field16(4), field16(6), field16(8), field16(10));
    let (size, offset) = (field32(12), field32(16));
    let is_zip64 = total == u16::MAX
        || size == u32::MAX
        || offset == u32::MAX
        || end_at.checked_sub(ZIP64_LOCATOR_LEN).and_then(|at| u32_at(bytes, at)) == Some(ZIP64_LOCATOR_SIGNATURE);
    if is_zip64 {
        return Err("the archive uses ZIP64 records, which tessera inspect does not read; a pass is far below the 4 GiB ZIP64 exists for, so zip it without ZIP64".into());
    }
    if disk != 0 || directory_disk != 0 || on_disk != total {
        return Err("the archive claims to span several disks; a .pkpass is a single ZIP file".into());
    }
    let count = usize::from(total);
    if count > MAX_ENTRIES {
        return Err(format!(
            "the archive has {count} entries; a pass has a few dozen, and tessera inspect reads at most {MAX_ENTRIES}"
        ));
    }
    if count == 0 {
        return Err("the archive is empty; a .pkpass holds pass.json, manifest.json, signature and images".into());
    }
    let start = usize::try_from(offset).map_err(|_| NOT_ZIP)?;
    let end = start.checked_add(usize::try_from(size).map_err(|_| NOT_ZIP)?).ok_or(NOT_ZIP)?;
    if end != end_at {
        return Err(format!(
            "the end record puts the central directory at bytes {start}..{end}, but the end record itself is at byte {end_at}; the archive is cut short, has bytes in front, or was tampered with"
        ));
    }
    Ok(Directory { start, end, count })
}

/// The central directory entry at `at` (which must end by `limit`), and where the next one starts.
struct Central {
    name_raw: Vec<u8>,
    flags: u16,
    method: u16,
    crc32: u32,
    compressed_size: u32,
    uncompressed_size: u32,
    local_offset: u32,
}

fn read_central(bytes: &[u8], at: usize, limit: usize) -> Option<(Central, usize)> {
    if u32_at(bytes, at)? != CENTRAL_SIGNATURE {
        return None;
    }
    let name_len = usize::from(u16_at(bytes, at + 28)?);
    let extra_len = usize::from(u16_at(bytes, at + 30)?);
    let comment_len = usize::from(u16_at(bytes, at + 32)?);
    let name_start = at.checked_add(CENTRAL_LEN)?;
    let name_end = name_start.checked_add(name_len)?;
    let next = name_end.checked_add(extra_len)?.checked_add(comment_len)?;
    if next > limit {
        return None;
    }
    let central = Central {
        name_raw: bytes.get(name_start..name_end)?.to_vec(),
        flags: u16_at(bytes, at + 8)?,
        method: u16_at(bytes, at + 10)?,
        crc32: u32_at(bytes, at + 16)?,
        compressed_size: u32_at(bytes, at + 20)?,
        uncompressed_size: u32_at(bytes, at + 24)?,
        local_offset: u32_at(bytes, at + 42)?,
    };
    Some((central, next))
}

/// Checks the local header of `central` against it and answers the entry with its data range.
fn check_local(bytes: &[u8], central: &Central, directory_start: usize) -> Result<Entry, String> {
    if central.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION) != 0 {
        return Err("is encrypted; Wallet cannot read an encrypted pass file".into());
    }
    if central.method != METHOD_STORED && central.method != METHOD_DEFLATED {
        return Err(format!(
            "uses ZIP compression method {}; Wallet reads only stored (0) and deflated (8) entries",
            central.method
        ));
    }
    if [central.compressed_size, central.uncompressed_size, central.local_offset].contains(&u32::MAX) {
        return Err("uses ZIP64 sizes, which tessera inspect does not read; zip the pass without ZIP64".into());
    }
    let at = usize::try_from(central.local_offset).map_err(|_| "has an impossible local header offset")?;
    let damaged = || format!("has no local header at byte {at}, where the central directory says it starts");
    if at >= directory_start || u32_at(bytes, at) != Some(LOCAL_SIGNATURE) {
        return Err(damaged());
    }
    let field16 = |off: usize| u16_at(bytes, at + off).ok_or_else(damaged);
    let field32 = |off: usize| u32_at(bytes, at + off).ok_or_else(damaged);
    let (flags, method) = (field16(6)?, field16(8)?);
    let (crc32, compressed, uncompressed) = (field32(14)?, field32(18)?, field32(22)?);
    let name_start = at.checked_add(LOCAL_LEN).ok_or_else(damaged)?;
    let name_end = name_start.checked_add(usize::from(field16(26)?)).ok_or_else(damaged)?;
    let data_start = name_end.checked_add(usize::from(field16(28)?)).ok_or_else(damaged)?;
    let local_name = bytes.get(name_start..name_end).ok_or_else(damaged)?;
    let disagree = |what: &str| format!("its local header and the central directory disagree about {what}");
    if local_name != central.name_raw.as_slice() {
        return Err(format!(
            "its local header and the central directory disagree about its name (the local header says {})",
            super::values::quote(&String::from_utf8_lossy(local_name))
        ));
    }
    if method != central.method {
        return Err(disagree("the compression method"));
    }
    let descriptor = flags & FLAG_DATA_DESCRIPTOR != 0;
    if descriptor != (central.flags & FLAG_DATA_DESCRIPTOR != 0) {
        return Err(disagree("whether a data descriptor follows the data"));
    }
    // With a data descriptor the local header may leave CRC and sizes zero; otherwise they must match.
    let agrees = |local: u32, central: u32| local == central || (descriptor && local == 0);
    if !agrees(crc32, central.crc32) {
        return Err(disagree("its CRC-32"));
    }
    if !agrees(compressed, central.compressed_size) || !agrees(uncompressed, central.uncompressed_size) {
        return Err(disagree("its size"));
    }
    let compressed_size = u64::from(central.compressed_size);
    let data_end = usize::try_from(compressed_size).ok().and_then(|len| data_start.checked_add(len));
    let data = match data_end {
        Some(end) if end <= directory_start => data_start..end,
        _ => return Err("its data runs past the end of the archive's entries; the file is cut short".into()),
    };
    if central.method == METHOD_STORED && central.compressed_size != central.uncompressed_size {
        return Err("is stored uncompressed, yet its compressed and uncompressed sizes differ".into());
    }
    Ok(Entry {
        name_raw: central.name_raw.clone(),
        method: central.method,
        crc32: central.crc32,
        compressed_size,
        uncompressed_size: u64::from(central.uncompressed_size),
        local_offset: at,
        data,
    })
}

/// Entries whose bytes overlap another's are moved to `bad`: sharing bytes is how ZIP bombs
/// multiply a small file, and no ZIP writer does it.
fn flag_overlaps(layout: &mut Layout) {
    let mut order: Vec<usize> = (0..layout.entries.len()).collect();
    order.sort_by_key(|&i| layout.entries.get(i).map(|e| e.local_offset));
    let mut overlapping = vec![false; layout.entries.len()];
    let mut reached = 0;
    for &i in &order {
        let Some(entry) = layout.entries.get(i) else { continue };
        if entry.local_offset < reached
            && let Some(flag) = overlapping.get_mut(i)
        {
            *flag = true;
        }
        reached = reached.max(entry.data.end);
    }
    let entries = std::mem::take(&mut layout.entries);
    for (entry, overlaps) in entries.into_iter().zip(overlapping) {
        if overlaps {
            let problem = "shares its bytes with another entry; no ZIP writer does that, ZIP bombs do".into();
            layout.bad.push(BadEntry { name_raw: entry.name_raw, problem });
        } else {
            layout.entries.push(entry);
        }
    }
}

//! The .pkpass ZIP: stored (uncompressed) entries only, since the PNGs are compressed already.
//!
//! The files that never change per member (images, strings) are laid out once per tier: their local
//! entries, which start every pass of the tier, and their central directory records. A pass is then one
//! copy of those entries, pass.json, manifest.json and signature behind them, the prepared records and
//! the three new ones, and the end record. Written by hand because the format for stored entries is a
//! few fixed headers, and appending with the zip crate (`ZipWriter::new_append`) re-read the copied
//! archive's directory on every pass (BENCHMARKS.md); the zip crate reads them back in the tests.

use zip::DateTime;

const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
const LOCAL_LEN: usize = 30;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
const END_SIGNATURE: u32 = 0x0605_4b50;
const END_LEN: usize = 22;
/// 1.0: stored entries need nothing newer.
const VERSION_NEEDED: u16 = 10;
/// Made on Unix (3, so the permissions below are read), format 2.0.
const VERSION_MADE_BY: u16 = (3 << 8) | 20;
/// General-purpose flag bit 11: the name is UTF-8.
const FLAG_UTF8: u16 = 1 << 11;
/// A regular file, rw-r--r--, in the high half of the external attributes.
const UNIX_FILE_0644: u32 = 0o100_644 << 16;

/// The archive would need ZIP64 (over 4 GiB or 65,535 entries), which a pass never does.
#[derive(Debug, thiserror::Error)]
#[error("the archive is too large for a ZIP without ZIP64")]
pub struct TooLarge;

/// A tier's static files, laid out once: the start of every pass of that tier.
#[derive(Clone, Default)]
pub struct StaticArchive {
    /// Local headers and data, from offset 0.
    entries: Vec<u8>,
    /// Their central directory records.
    directory: Vec<u8>,
    count: u16,
}

impl StaticArchive {
    pub fn new(files: &[(String, Vec<u8>)], modified_at: i64) -> Result<StaticArchive, TooLarge> {
        let mut archive = StaticArchive::default();
        let date = zip_time(modified_at);
        for (name, data) in files {
            let entry = Entry::new(name, data, archive.entries.len())?;
            entry.write_local(&mut archive.entries, data, date);
            entry.write_central(&mut archive.directory, date);
            archive.count = archive.count.checked_add(1).ok_or(TooLarge)?;
        }
        Ok(archive)
    }
}

/// One stored entry's facts, as both of its headers give them.
struct Entry<'a> {
    name: &'a str,
    crc32: u32,
    size: u32,
    offset: u32,
}

impl<'a> Entry<'a> {
    fn new(name: &'a str, data: &[u8], offset: usize) -> Result<Entry<'a>, TooLarge> {
        let size = u32::try_from(data.len()).map_err(|_| TooLarge)?;
        let offset = u32::try_from(offset).map_err(|_| TooLarge)?;
        u16::try_from(name.len()).map_err(|_| TooLarge)?;
        Ok(Entry { name, crc32: crc32fast::hash(data), size, offset })
    }

    fn flags(&self) -> u16 {
        if self.name.is_ascii() { 0 } else { FLAG_UTF8 }
    }

    /// The fields both headers share, from "version needed" to the name's length.
    fn common(&self, out: &mut Vec<u8>, date: DateTime) {
        for half in [VERSION_NEEDED, self.flags(), 0 /* stored */, date.timepart(), date.datepart()] {
            out.extend_from_slice(&half.to_le_bytes());
        }
        for word in [self.crc32, self.size, self.size] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
    }

    fn write_local(&self, out: &mut Vec<u8>, data: &[u8], date: DateTime) {
        out.extend_from_slice(&LOCAL_SIGNATURE.to_le_bytes());
        self.common(out, date);
        out.extend_from_slice(&0u16.to_le_bytes()); // extra field length
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(data);
    }

    fn write_central(&self, out: &mut Vec<u8>, date: DateTime) {
        out.extend_from_slice(&CENTRAL_SIGNATURE.to_le_bytes());
        out.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
        self.common(out, date);
        // Extra field and comment lengths, disk number, internal attributes.
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&UNIX_FILE_0644.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(self.name.as_bytes());
    }
}

/// Builds one archive: the static entries, then `extra` files, then the central directory.
pub fn write_archive(statics: &StaticArchive, extra: &[(&str, &[u8])], modified_at: i64) -> Result<Vec<u8>, TooLarge> {
    let extra_len: usize = extra.iter().map(|(name, data)| LOCAL_LEN + CENTRAL_LEN + 2 * name.len() + data.len()).sum();
    let mut out = Vec::with_capacity(statics.entries.len() + statics.directory.len() + extra_len + END_LEN);
    out.extend_from_slice(&statics.entries);
    let date = zip_time(modified_at);
    let mut written = Vec::with_capacity(extra.len());
    for (name, data) in extra {
        let entry = Entry::new(name, data, out.len())?;
        entry.write_local(&mut out, data, date);
        written.push(entry);
    }
    let directory_at = u32::try_from(out.len()).map_err(|_| TooLarge)?;
    out.extend_from_slice(&statics.directory);
    for entry in &written {
        entry.write_central(&mut out, date);
    }
    let count = u16::try_from(written.len()).ok().and_then(|n| statics.count.checked_add(n)).ok_or(TooLarge)?;
    let directory_len = u32::try_from(out.len()).map_err(|_| TooLarge)? - directory_at;
    out.extend_from_slice(&END_SIGNATURE.to_le_bytes());
    // This disk and the directory's disk, then the entries on this disk and in all.
    for half in [0, 0, count, count] {
        out.extend_from_slice(&u16::to_le_bytes(half));
    }
    out.extend_from_slice(&directory_len.to_le_bytes());
    out.extend_from_slice(&directory_at.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    Ok(out)
}

/// The ZIP date of a unix time, clamped to what the format holds (1980 to 2107).
fn zip_time(unix: i64) -> DateTime {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let year = t.year().clamp(1980, 2107) as u16;
    DateTime::from_date_and_time(year, t.month() as u8, t.day(), t.hour(), t.minute(), t.second()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use zip::CompressionMethod;

    #[test]
    fn archives_read_back_with_stored_entries_and_dates() {
        let statics = StaticArchive::new(
            &[
                ("icon.png".into(), vec![1, 2, 3]),
                ("th.lproj/pass.strings".into(), "\"a\" = \"ก\";".as_bytes().to_vec()),
            ],
            1_795_334_400,
        )
        .unwrap();
        let bytes =
            write_archive(&statics, &[("pass.json", b"{}"), ("signature", &[0xde, 0xad])], 1_795_334_400).unwrap();
        let mut archive = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 4);
        let mut names: Vec<String> = archive.file_names().map(|n| n.unwrap().to_string()).collect();
        names.sort();
        assert_eq!(names, ["icon.png", "pass.json", "signature", "th.lproj/pass.strings"]);
        let mut content = Vec::new();
        archive.by_name("th.lproj/pass.strings").unwrap().read_to_end(&mut content).unwrap();
        assert_eq!(content, "\"a\" = \"ก\";".as_bytes());
        let entry = archive.by_name("pass.json").unwrap();
        assert_eq!(entry.compression(), CompressionMethod::Stored);
        let modified = entry.last_modified().unwrap();
        assert_eq!((modified.year(), modified.month(), modified.day(), modified.hour()), (2026, 11, 22, 8));
    }

    #[test]
    fn dates_outside_the_zip_range_are_clamped() {
        assert_eq!(zip_time(0).year(), 1980);
        assert_eq!(zip_time(i64::MAX).year(), 1980, "an unreadable time falls back, never panics");
    }
}

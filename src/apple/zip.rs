//! The .pkpass ZIP, written with the `zip` crate: stored (uncompressed) entries only, since the PNGs are
//! compressed already.
//!
//! The files that never change per member (images, strings) are written once per tier as a complete
//! archive; a pass then appends pass.json, manifest.json and signature to a copy of it
//! (`ZipWriter::new_append`), so the per-pass cost stays a copy and three small entries.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// A tier's static files as a ready archive, the start of every pass of that tier.
#[derive(Clone, Default)]
pub struct StaticArchive {
    bytes: Vec<u8>,
}

impl StaticArchive {
    pub fn new(files: &[(String, Vec<u8>)], modified_at: i64) -> zip::result::ZipResult<StaticArchive> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = stored(modified_at);
        for (name, data) in files {
            writer.start_file(name.as_str(), options)?;
            writer.write_all(data)?;
        }
        Ok(StaticArchive { bytes: writer.finish()?.into_inner() })
    }
}

/// Stored entries, rw-r--r--, dated `unix` (UTC; ZIP dates have two-second resolution).
fn stored(unix: i64) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .unix_permissions(0o644)
        .last_modified_time(zip_time(unix))
}

/// Builds one archive: the static entries, then `extra` files, then the central directory.
pub fn write_archive(
    statics: &StaticArchive,
    extra: &[(&str, &[u8])],
    modified_at: i64,
) -> zip::result::ZipResult<Vec<u8>> {
    let extra_len: usize = extra.iter().map(|(name, data)| 2 * (46 + name.len()) + data.len()).sum();
    let mut buffer = Vec::with_capacity(statics.bytes.len() + extra_len + 512);
    buffer.extend_from_slice(&statics.bytes);
    let mut writer = ZipWriter::new_append(Cursor::new(buffer))?;
    let options = stored(modified_at);
    for (name, data) in extra {
        writer.start_file(*name, options)?;
        writer.write_all(data)?;
    }
    Ok(writer.finish()?.into_inner())
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

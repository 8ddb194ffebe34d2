//! A minimal ZIP writer for .pkpass bundles: stored (uncompressed) entries only.
//!
//! The files that never change per member (images, strings) are laid out once per tier as ready-made
//! local entries and central-directory records; a pass then only appends pass.json, manifest.json and
//! signature. PNGs are compressed already, so storing them costs nothing in size.

/// Entries laid out once and reused at the start of every archive.
#[derive(Clone, Default)]
pub struct StaticEntries {
    local: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

impl StaticEntries {
    pub fn new(files: &[(String, Vec<u8>)], dos_time: (u16, u16)) -> StaticEntries {
        let mut s = StaticEntries::default();
        for (name, data) in files {
            let offset = s.local.len() as u32;
            let crc = crc32fast::hash(data);
            write_local(&mut s.local, name, data, crc, dos_time);
            write_central(&mut s.central, name, data.len() as u32, crc, dos_time, offset);
            s.count += 1;
        }
        s
    }
}

/// Builds one archive: the static entries, then `extra` files, then the central directory.
pub fn write_archive(statics: &StaticEntries, extra: &[(&str, &[u8])], dos_time: (u16, u16)) -> Vec<u8> {
    let extra_len: usize = extra.iter().map(|(n, d)| 2 * (46 + n.len()) + d.len()).sum();
    let mut out = Vec::with_capacity(statics.local.len() + statics.central.len() + extra_len + 22);
    out.extend_from_slice(&statics.local);
    let mut central = Vec::with_capacity(statics.central.len() + extra.len() * 80);
    central.extend_from_slice(&statics.central);
    for (name, data) in extra {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(data);
        write_local(&mut out, name, data, crc, dos_time);
        write_central(&mut central, name, data.len() as u32, crc, dos_time, offset);
    }
    let central_offset = out.len() as u32;
    out.extend_from_slice(&central);
    let count = statics.count + extra.len() as u16;
    // End of central directory record.
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

const VERSION: u16 = 20;
/// Bit 11: names are UTF-8.
const FLAGS: u16 = 0x0800;

fn write_local(out: &mut Vec<u8>, name: &str, data: &[u8], crc: u32, (time, date): (u16, u16)) {
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    for v in [VERSION, FLAGS, 0, time, date] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(data);
}

fn write_central(out: &mut Vec<u8>, name: &str, size: u32, crc: u32, (time, date): (u16, u16), offset: u32) {
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    // Made by Unix (3), spec 2.0; then needed version, flags, method 0 (stored), time, date.
    for v in [0x0314u16, VERSION, FLAGS, 0, time, date] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    // Extra length, comment length, disk number, internal attributes.
    out.extend_from_slice(&[0; 8]);
    // External attributes: a regular file, rw-r--r--.
    out.extend_from_slice(&((0o100644u32) << 16).to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
}

/// MS-DOS (time, date) of a unix time, as ZIP headers store it (UTC, two-second resolution).
pub fn dos_time(unix: i64) -> (u16, u16) {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let year = (t.year().clamp(1980, 2107) - 1980) as u16;
    let date = (year << 9) | ((t.month() as u16) << 5) | t.day() as u16;
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
    (time, date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn archives_read_back_with_the_zip_crate() {
        let statics = StaticEntries::new(
            &[
                ("icon.png".into(), vec![1, 2, 3]),
                ("th.lproj/pass.strings".into(), "\"a\" = \"ก\";".as_bytes().to_vec()),
            ],
            dos_time(1_795_334_400),
        );
        let bytes =
            write_archive(&statics, &[("pass.json", b"{}"), ("signature", &[0xde, 0xad])], dos_time(1_795_334_400));
        let mut archive = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 4);
        let mut names: Vec<String> = archive.file_names().map(|n| n.unwrap().to_string()).collect();
        names.sort();
        assert_eq!(names, ["icon.png", "pass.json", "signature", "th.lproj/pass.strings"]);
        let mut content = Vec::new();
        archive.by_name("th.lproj/pass.strings").unwrap().read_to_end(&mut content).unwrap();
        assert_eq!(content, "\"a\" = \"ก\";".as_bytes());
        let entry = archive.by_name("pass.json").unwrap();
        let modified = entry.last_modified().unwrap();
        assert_eq!((modified.year(), modified.month(), modified.day(), modified.hour()), (2026, 11, 22, 8));
    }
}

//! The hosts' album: the clips whose couples ticked "the hosts may keep a copy for the event
//! album" on the consent screen (off unless they do), exported by the operator as one ZIP file
//! before the end of the event. Nothing else goes in it.
//!
//! The ZIP is written here rather than by a library: the clips are already compressed, so each
//! is stored as it is (method 0) with its CRC-32, which every unzip tool and phone reads.

use std::io::{Read, Seek, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};

/// One clip in the album.
pub struct Entry {
    /// The name inside the ZIP file.
    pub name: String,
    pub path: PathBuf,
    /// When it was made (Unix seconds), as the entry's local date and time.
    pub created_unix_s: i64,
}

/// MS-DOS date and time of a Unix time, in local time (what unzip tools show).
fn dos_time(unix_s: i64) -> (u16, u16) {
    let t = crate::sys::local_parts(unix_s);
    let (year, month, day, hour, min, sec) = t;
    let year = year.clamp(1980, 2107);
    let date = (((year - 1980) as u16) << 9) | ((month as u16) << 5) | day as u16;
    let time = ((hour as u16) << 11) | ((min as u16) << 5) | (sec as u16 / 2);
    (time, date)
}

/// Writes `entries` as a stored ZIP to `out`. Refuses (before writing) an album over the plain
/// ZIP format's 4 GiB.
pub fn write_zip<W: Write + Seek>(entries: &[Entry], out: &mut W) -> anyhow::Result<()> {
    let mut total: u64 = 0;
    for e in entries {
        total += std::fs::metadata(&e.path)
            .with_context(|| format!("{}", e.path.display()))?
            .len()
            + 30
            + e.name.len() as u64;
    }
    if total >= u64::from(u32::MAX) {
        bail!("the album is over 4 GiB; export it before more clips are made, or in parts");
    }
    let mut central = Vec::new();
    let mut offset: u32 = 0;
    for e in entries {
        let mut data = Vec::new();
        std::fs::File::open(&e.path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .with_context(|| format!("cannot read {}", e.path.display()))?;
        let crc = crc32fast::hash(&data);
        let size = data.len() as u32;
        let (time, date) = dos_time(e.created_unix_s);
        let name = e.name.as_bytes();
        let mut local = Vec::with_capacity(30 + name.len());
        local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        local.extend_from_slice(&20u16.to_le_bytes()); // version needed
        local.extend_from_slice(&0u16.to_le_bytes()); // flags
        local.extend_from_slice(&0u16.to_le_bytes()); // stored
        local.extend_from_slice(&time.to_le_bytes());
        local.extend_from_slice(&date.to_le_bytes());
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
        local.extend_from_slice(&size.to_le_bytes());
        local.extend_from_slice(&(name.len() as u16).to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes()); // extra
        local.extend_from_slice(name);
        out.write_all(&local)?;
        out.write_all(&data)?;

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        central.extend_from_slice(&20u16.to_le_bytes()); // needed
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&0u16.to_le_bytes());
        central.extend_from_slice(&time.to_le_bytes());
        central.extend_from_slice(&date.to_le_bytes());
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0u8; 12]); // extra, comment, disk, internal, external (4)
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
        offset += local.len() as u32 + size;
    }
    out.write_all(&central)?;
    let n = entries.len() as u16;
    let mut end = Vec::with_capacity(22);
    end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    end.extend_from_slice(&[0u8; 4]); // disk numbers
    end.extend_from_slice(&n.to_le_bytes());
    end.extend_from_slice(&n.to_le_bytes());
    end.extend_from_slice(&(central.len() as u32).to_le_bytes());
    end.extend_from_slice(&offset.to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    out.write_all(&end)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a stored ZIP back by its central directory: (name, bytes) of each entry, with
    /// every CRC checked.
    fn read_zip(z: &[u8]) -> Vec<(String, Vec<u8>)> {
        let u16_at = |i: usize| u16::from_le_bytes([z[i], z[i + 1]]) as usize;
        let u32_at = |i: usize| u32::from_le_bytes([z[i], z[i + 1], z[i + 2], z[i + 3]]) as usize;
        let end = z.len() - 22;
        assert_eq!(u32_at(end), 0x0605_4b50);
        let (n, mut at) = (u16_at(end + 10), u32_at(end + 16));
        let mut out = Vec::new();
        for _ in 0..n {
            assert_eq!(u32_at(at), 0x0201_4b50);
            let (crc, size, name_len) = (u32_at(at + 16), u32_at(at + 20), u16_at(at + 28));
            let local = u32_at(at + 42);
            let name = String::from_utf8(z[at + 46..at + 46 + name_len].to_vec()).unwrap();
            assert_eq!(u32_at(local), 0x0403_4b50);
            let data_at = local + 30 + u16_at(local + 26) + u16_at(local + 28);
            let data = z[data_at..data_at + size].to_vec();
            assert_eq!(crc32fast::hash(&data) as usize, crc, "{name}");
            out.push((name, data));
            at += 46 + name_len;
        }
        out
    }

    #[test]
    fn the_album_zip_holds_exactly_the_given_clips_intact() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.mp4");
        let b = dir.path().join("b.mp4");
        std::fs::write(&a, b"first clip").unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&b, &big).unwrap();
        let entries = [
            Entry {
                name: "kissbooth-1.mp4".into(),
                path: a,
                created_unix_s: 1_796_000_000,
            },
            Entry {
                name: "kissbooth-2.mp4".into(),
                path: b,
                created_unix_s: 1_796_000_100,
            },
        ];
        let mut z = std::io::Cursor::new(Vec::new());
        write_zip(&entries, &mut z).unwrap();
        let files = read_zip(z.get_ref());
        assert_eq!(files.len(), 2);
        assert_eq!(files[0], ("kissbooth-1.mp4".into(), b"first clip".to_vec()));
        assert_eq!(files[1].0, "kissbooth-2.mp4");
        assert_eq!(files[1].1, big);
        // An empty album is a valid, empty ZIP.
        let mut z = std::io::Cursor::new(Vec::new());
        write_zip(&[], &mut z).unwrap();
        assert!(read_zip(z.get_ref()).is_empty());
        // A clip that vanished is an error, not a short album.
        let gone = [Entry {
            name: "x.mp4".into(),
            path: dir.path().join("gone.mp4"),
            created_unix_s: 0,
        }];
        assert!(write_zip(&gone, &mut std::io::Cursor::new(Vec::new())).is_err());
    }
}

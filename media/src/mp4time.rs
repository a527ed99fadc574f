//! Stamps a creation time into an MP4's movie, track and media headers (`mvhd`, `tkhd`,
//! `mdhd`), in place. The times are fixed-width fields, so nothing moves.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Seconds from 1904-01-01 (the MP4 epoch) to 1970-01-01.
const MP4_EPOCH_OFFSET: i64 = 2_082_844_800;

/// Sets creation and modification time of every header in the `moov` box to `unix_secs`.
pub fn set_creation_time(path: &Path, unix_secs: i64) -> io::Result<()> {
    let when = u64::try_from(unix_secs + MP4_EPOCH_OFFSET)
        .map_err(|_| io::Error::other("time before 1904"))?;
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.metadata()?.len();
    let mut pos = 0;
    while pos + 8 <= len {
        let (size, kind, header) = read_box_header(&mut f, pos, len)?;
        if &kind == b"moov" {
            return patch_container(&mut f, pos + header, pos + size, when);
        }
        pos += size;
    }
    Err(io::Error::other("no moov box"))
}

fn read_box_header(f: &mut File, pos: u64, limit: u64) -> io::Result<(u64, [u8; 4], u64)> {
    f.seek(SeekFrom::Start(pos))?;
    let mut h = [0u8; 8];
    f.read_exact(&mut h)?;
    let kind = [h[4], h[5], h[6], h[7]];
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let (size, header) = match size32 {
        0 => (limit - pos, 8),
        1 => {
            let mut b = [0u8; 8];
            f.read_exact(&mut b)?;
            (u64::from_be_bytes(b), 16)
        }
        n => (u64::from(n), 8),
    };
    if size < header || pos + size > limit {
        return Err(io::Error::other("malformed MP4 box"));
    }
    Ok((size, kind, header))
}

fn patch_container(f: &mut File, start: u64, end: u64, when: u64) -> io::Result<()> {
    let mut pos = start;
    while pos + 8 <= end {
        let (size, kind, header) = read_box_header(f, pos, end)?;
        match &kind {
            b"trak" | b"mdia" => patch_container(f, pos + header, pos + size, when)?,
            b"mvhd" | b"tkhd" | b"mdhd" => {
                let body = pos + header;
                f.seek(SeekFrom::Start(body))?;
                let mut version = [0u8; 1];
                f.read_exact(&mut version)?;
                f.seek(SeekFrom::Start(body + 4))?;
                if version[0] == 1 {
                    f.write_all(&when.to_be_bytes())?;
                    f.write_all(&when.to_be_bytes())?;
                } else {
                    let t = u32::try_from(when)
                        .map_err(|_| io::Error::other("time past 2040 needs version 1 headers"))?;
                    f.write_all(&t.to_be_bytes())?;
                    f.write_all(&t.to_be_bytes())?;
                }
            }
            _ => {}
        }
        pos += size;
    }
    Ok(())
}

//! Bounds checks of an RPM's signature and main headers before the `rpm` crate parses them.
//!
//! The crate trusts the counts and offsets in a header's index: a hostile file can make it slice out
//! of bounds (a panic) or allocate gigabytes. rpm itself checks the same things (`headerVerifyInfo`);
//! so do we, and refuse such a file as unreadable.

use anyhow::{Result, bail, ensure};

const LEAD_SIZE: usize = 96;
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];
const INDEX_ENTRY_SIZE: usize = 16;
/// rpm's limits: at most this many index entries, and this many bytes of data, per header.
const MAX_ENTRIES: usize = 0xffff;
const MAX_DATA: usize = 256 * 1024 * 1024;
/// Highest index entry type rpm defines (`RPM_I18NSTRING_TYPE`).
const MAX_TYPE: u32 = 9;

/// Where the parts of an RPM file are, as byte offsets into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Start of the main header: what the legacy MD5 digest and size cover begins here.
    pub header_start: usize,
    /// End of the main header, where the payload begins (the end of an RPM head).
    pub header_end: usize,
}

/// Checks the lead and both headers of the RPM (or RPM head) in `bytes`; returns where they are.
pub fn check(bytes: &[u8]) -> Result<Layout> {
    ensure!(bytes.len() >= LEAD_SIZE, "shorter than an RPM lead");
    ensure!(bytes[..4] == [0xed, 0xab, 0xee, 0xdb], "no RPM lead magic");
    // The signature header is padded to a multiple of 8 bytes; the main header is not.
    let signature_end = check_header(bytes, LEAD_SIZE, "signature")?;
    let header_start = signature_end.next_multiple_of(8);
    let header_end = check_header(bytes, header_start, "main")?;
    Ok(Layout {
        header_start,
        header_end,
    })
}

/// Reads the head of an RPM (lead, signature and main header) from the start of `reader`, no
/// further, and checks it as [`check`] does: the payload after it stays unread, so a package of any
/// size costs the size of its head. Refuses a header that claims more than rpm allows before
/// allocating for it.
pub fn read_head(reader: &mut impl std::io::Read) -> Result<(Vec<u8>, Layout)> {
    let mut head = Vec::new();
    let mut read_to = |head: &mut Vec<u8>, len: usize| -> Result<()> {
        let start = head.len();
        if len > start {
            head.resize(len, 0);
            reader
                .read_exact(&mut head[start..])
                .map_err(|err| match err.kind() {
                    std::io::ErrorKind::UnexpectedEof => anyhow::anyhow!("cut short in its head"),
                    _ => err.into(),
                })?;
        }
        Ok(())
    };
    read_to(&mut head, LEAD_SIZE)?;
    ensure!(head[..4] == [0xed, 0xab, 0xee, 0xdb], "no RPM lead magic");
    let mut at = LEAD_SIZE;
    for which in ["signature", "main"] {
        read_to(&mut head, at + 16)?;
        ensure!(
            head[at..at + 4] == HEADER_MAGIC,
            "the {which} header has no header magic"
        );
        let word = |offset: usize| {
            u32::from_be_bytes(head[offset..offset + 4].try_into().expect("four bytes")) as usize
        };
        let (entries, data) = (word(at + 8), word(at + 12));
        if entries > MAX_ENTRIES || data > MAX_DATA {
            bail!(
                "the {which} header claims {entries} entries and {data} bytes of data, more than rpm allows"
            );
        }
        let end = at + 16 + entries * INDEX_ENTRY_SIZE + data;
        // The signature header is padded to a multiple of 8 bytes; the main header is not.
        at = if which == "signature" {
            end.next_multiple_of(8)
        } else {
            end
        };
        read_to(&mut head, at)?;
    }
    let layout = check(&head)?;
    Ok((head, layout))
}

/// Checks the header starting at `at`; returns where it ends.
fn check_header(bytes: &[u8], at: usize, which: &str) -> Result<usize> {
    let word = |offset: usize| -> Result<u32> {
        let slice = bytes
            .get(offset..offset + 4)
            .ok_or_else(|| anyhow::anyhow!("the {which} header is cut short"))?;
        Ok(u32::from_be_bytes(slice.try_into().expect("four bytes")))
    };
    ensure!(
        bytes.get(at..at + 4) == Some(&HEADER_MAGIC[..]),
        "the {which} header has no header magic"
    );
    let entries = word(at + 8)? as usize;
    let data = word(at + 12)? as usize;
    if entries > MAX_ENTRIES || data > MAX_DATA {
        bail!(
            "the {which} header claims {entries} entries and {data} bytes of data, more than rpm allows"
        );
    }
    let index = at + 16;
    let store = index + entries * INDEX_ENTRY_SIZE;
    let end = store + data;
    ensure!(end <= bytes.len(), "the {which} header is cut short");
    for entry in 0..entries {
        let base = index + entry * INDEX_ENTRY_SIZE;
        let kind = word(base + 4)?;
        let offset = word(base + 8)? as i32;
        let count = word(base + 12)? as usize;
        ensure!(
            kind <= MAX_TYPE,
            "{which} header entry {entry} has unknown type {kind}"
        );
        ensure!(
            offset >= 0 && (offset as usize) < data.max(1),
            "{which} header entry {entry} points outside the header's data"
        );
        // Every item takes at least one byte (fixed-size types their size) of what follows.
        let item_size = match kind {
            3 => 2,
            4 => 4,
            5 => 8,
            _ => 1,
        };
        ensure!(
            count
                .checked_mul(item_size)
                .is_some_and(|size| size <= data - offset as usize),
            "{which} header entry {entry} runs past the header's data"
        );
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tag, type, offset, count
    type Entry = (u32, u32, i32, u32);

    fn head(entries: &[Entry], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; LEAD_SIZE];
        bytes[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
        for header in 0..2 {
            bytes.extend(HEADER_MAGIC);
            bytes.extend([0u8; 4]);
            bytes.extend((entries.len() as u32).to_be_bytes());
            bytes.extend((data.len() as u32).to_be_bytes());
            for (tag, kind, offset, count) in entries {
                for word in [*tag, *kind, *offset as u32, *count] {
                    bytes.extend(word.to_be_bytes());
                }
            }
            bytes.extend(data);
            if header == 0 {
                bytes.resize(bytes.len().next_multiple_of(8), 0);
            }
        }
        bytes
    }

    #[test]
    fn reading_a_head_stops_where_the_payload_begins() {
        let mut bytes = head(&[(1000, 6, 0, 1), (1001, 4, 4, 1)], b"abc\0\0\0\0\x07");
        let head_len = bytes.len();
        bytes.extend(b"payload that is never read");
        let mut reader = std::io::Cursor::new(&bytes);
        let (read, layout) = read_head(&mut reader).unwrap();
        assert_eq!(read, bytes[..head_len]);
        assert_eq!(layout, check(&bytes).unwrap());
        assert_eq!(reader.position() as usize, head_len);

        let err = read_head(&mut std::io::Cursor::new(&bytes[..head_len - 1])).unwrap_err();
        assert_eq!(err.to_string(), "cut short in its head");
        // A header claiming more than rpm allows is refused before anything is allocated for it.
        let mut huge = bytes.clone();
        huge[LEAD_SIZE + 12..LEAD_SIZE + 16].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = read_head(&mut std::io::Cursor::new(&huge)).unwrap_err();
        assert!(err.to_string().contains("more than rpm allows"), "{err}");
    }

    #[test]
    fn accepts_a_sound_head_and_says_where_its_header_is() {
        let bytes = head(&[(1000, 6, 0, 1), (1001, 4, 4, 1)], b"abc\0\0\0\0\x07");
        // Lead, then two headers of 16 + 2 * 16 + 8 bytes (the first needs no padding).
        assert_eq!(
            check(&bytes).unwrap(),
            Layout {
                header_start: LEAD_SIZE + 56,
                header_end: bytes.len(),
            }
        );
    }

    #[test]
    fn refuses_what_would_make_the_parser_panic_or_allocate() {
        let cases: [(&[Entry], &str); 4] = [
            (&[(1000, 6, 100, 1)], "points outside"),
            (&[(1000, 6, -5, 1)], "points outside"),
            (&[(1000, 4, 4, 2)], "runs past"),
            (&[(1000, 42, 0, 1)], "unknown type"),
        ];
        for (entries, expected) in cases {
            let err = check(&head(entries, b"abc\0\0\0\0\x07")).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
        let mut huge = head(&[], b"");
        huge[LEAD_SIZE + 12..LEAD_SIZE + 16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(
            check(&huge)
                .unwrap_err()
                .to_string()
                .contains("more than rpm allows")
        );
        assert!(check(&huge[..50]).is_err());
    }
}

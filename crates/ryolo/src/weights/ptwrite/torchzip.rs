//! The zip container `torch.save` writes (spec/checkpoint-write.md §1): every entry stored
//! (never compressed) under one root folder, data 64-byte aligned through an `FB` extra field,
//! CRC-32 and sizes in the local headers, a central directory and an end record.

use anyhow::{bail, Result};

/// Entry data starts at a multiple of this (torch's `.storage_alignment`).
const ALIGN: usize = 64;

/// CRC-32 (IEEE, reflected polynomial 0xEDB88320) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

/// One central-directory record to write at the end.
struct Central {
    name: Vec<u8>,
    crc: u32,
    size: u32,
    offset: u32,
}

/// Builds a torch-style zip in memory.
pub struct TorchZip {
    root: String,
    out: Vec<u8>,
    central: Vec<Central>,
}

impl TorchZip {
    /// A new archive whose entries all live under `root/`.
    pub fn new(root: &str) -> Self {
        Self {
            root: root.to_string(),
            out: Vec::new(),
            central: Vec::new(),
        }
    }

    /// Appends `root/name` with `data`, stored, its data aligned to 64 bytes.
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let full = format!("{}/{name}", self.root).into_bytes();
        let offset = self.out.len();
        let (Ok(size), Ok(off32), Ok(name_len)) = (
            u32::try_from(data.len()),
            u32::try_from(offset),
            u16::try_from(full.len()),
        ) else {
            bail!("checkpoint entry {name} is past the 4 GiB zip limit (ZIP64 is not written)");
        };
        if self.central.len() >= 0xffff {
            bail!("checkpoint has more than 65535 entries (ZIP64 is not written)");
        }
        let crc = crc32(data);
        let unpadded = offset + 30 + full.len() + 4;
        let pad = (ALIGN - unpadded % ALIGN) % ALIGN;
        let o = &mut self.out;
        o.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        o.extend_from_slice(&0u16.to_le_bytes()); // version needed (as torch)
        o.extend_from_slice(&0u16.to_le_bytes()); // flags: sizes and CRC are in this header
        o.extend_from_slice(&0u16.to_le_bytes()); // stored
        o.extend_from_slice(&0u32.to_le_bytes()); // DOS time and date
        o.extend_from_slice(&crc.to_le_bytes());
        o.extend_from_slice(&size.to_le_bytes());
        o.extend_from_slice(&size.to_le_bytes());
        o.extend_from_slice(&name_len.to_le_bytes());
        o.extend_from_slice(&((4 + pad) as u16).to_le_bytes());
        o.extend_from_slice(&full);
        o.extend_from_slice(b"FB");
        o.extend_from_slice(&(pad as u16).to_le_bytes());
        o.resize(o.len() + pad, b'Z');
        o.extend_from_slice(data);
        self.central.push(Central {
            name: full,
            crc,
            size,
            offset: off32,
        });
        Ok(())
    }

    /// Writes the central directory and end record; returns the archive bytes.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        let cd_start = self.out.len();
        for c in &self.central {
            let o = &mut self.out;
            o.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            o.extend_from_slice(&0u16.to_le_bytes()); // version made by
            o.extend_from_slice(&0u16.to_le_bytes()); // version needed
            o.extend_from_slice(&0u16.to_le_bytes()); // flags
            o.extend_from_slice(&0u16.to_le_bytes()); // stored
            o.extend_from_slice(&0u32.to_le_bytes()); // DOS time and date
            o.extend_from_slice(&c.crc.to_le_bytes());
            o.extend_from_slice(&c.size.to_le_bytes());
            o.extend_from_slice(&c.size.to_le_bytes());
            o.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
            o.extend_from_slice(&[0u8; 12]); // extra, comment, disk, internal and external attributes
            o.extend_from_slice(&c.offset.to_le_bytes());
            o.extend_from_slice(&c.name);
        }
        let cd_size = self.out.len() - cd_start;
        let (Ok(cd_start), Ok(cd_size)) = (u32::try_from(cd_start), u32::try_from(cd_size)) else {
            bail!("checkpoint is past the 4 GiB zip limit (ZIP64 is not written)");
        };
        let n = self.central.len() as u16;
        let o = &mut self.out;
        o.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        o.extend_from_slice(&[0u8; 4]); // disk numbers
        o.extend_from_slice(&n.to_le_bytes());
        o.extend_from_slice(&n.to_le_bytes());
        o.extend_from_slice(&cd_size.to_le_bytes());
        o.extend_from_slice(&cd_start.to_le_bytes());
        o.extend_from_slice(&0u16.to_le_bytes());
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn crc_of_known_strings() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn entries_are_aligned_and_readable() {
        let mut z = TorchZip::new("best");
        z.add("data.pkl", b"\x80\x02N.").unwrap();
        z.add("data/0", &[1, 2, 3]).unwrap();
        z.add("version", b"3\n").unwrap();
        let bytes = z.finish().unwrap();
        let mut a = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
        assert_eq!(a.len(), 3);
        for i in 0..a.len() {
            let f = a.by_index(i).unwrap();
            assert_eq!(f.data_start() % 64, 0, "{}", f.name());
        }
        let mut s = String::new();
        a.by_name("best/version")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "3\n");
        assert_eq!(&bytes[..4], b"PK\x03\x04");
    }
}

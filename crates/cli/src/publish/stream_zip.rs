//! A zip written front to back, never seeking: each entry's sizes and CRC follow its data
//! (a data descriptor), so a package can be uploaded while it is being made.

use std::io::Write;

/// Most entries and bytes a package made here may hold (zip without its 64-bit extension).
const MAX_ENTRIES: usize = 65_535;
const MAX_OFFSET: u64 = u32::MAX as u64;

struct Entry {
    name: Vec<u8>,
    crc: u32,
    compressed: u32,
    size: u32,
    offset: u32,
    mode: u32,
}

/// Counts what goes through to the inner writer.
struct Counted<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A zip being written to `W`.
pub struct StreamZip<W: Write> {
    out: Counted<W>,
    entries: Vec<Entry>,
}

fn too_big(what: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "the package would hold {what}: more than a zip without its 64-bit extension carries"
    ))
}

fn u32_of(n: u64, what: &str) -> std::io::Result<u32> {
    u32::try_from(n).map_err(|_| too_big(what))
}

// A fixed time (1980-01-01 00:00) for every entry: the same files make the same package.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;
/// Data descriptor follows (bit 3), names are UTF-8 (bit 11).
const FLAGS: u16 = (1 << 3) | (1 << 11);

impl<W: Write> StreamZip<W> {
    pub fn new(out: W) -> StreamZip<W> {
        StreamZip {
            out: Counted {
                inner: out,
                written: 0,
            },
            entries: Vec::new(),
        }
    }

    /// Adds a file `name` (`/`-separated) with Unix mode `mode`, its content read from
    /// `content` and deflated on the way.
    pub fn add(
        &mut self,
        name: &str,
        mode: u32,
        content: &mut impl std::io::Read,
    ) -> std::io::Result<()> {
        if self.entries.len() >= MAX_ENTRIES {
            return Err(too_big("more than 65535 entries"));
        }
        let offset = u32_of(self.out.written, "more than 4 GiB")?;
        let name_bytes = name.as_bytes().to_vec();
        let name_len = u16::try_from(name_bytes.len())
            .map_err(|_| too_big("a name longer than 65535 bytes"))?;
        let o = &mut self.out;
        o.write_all(&0x0403_4b50u32.to_le_bytes())?;
        o.write_all(&20u16.to_le_bytes())?;
        o.write_all(&FLAGS.to_le_bytes())?;
        o.write_all(&8u16.to_le_bytes())?;
        o.write_all(&DOS_TIME.to_le_bytes())?;
        o.write_all(&DOS_DATE.to_le_bytes())?;
        o.write_all(&[0u8; 12])?; // CRC and sizes: in the descriptor
        o.write_all(&name_len.to_le_bytes())?;
        o.write_all(&0u16.to_le_bytes())?;
        o.write_all(&name_bytes)?;
        let start = o.written;
        let mut crc = crc32fast::Hasher::new();
        let mut size: u64 = 0;
        {
            let mut deflate =
                flate2::write::DeflateEncoder::new(&mut *o, flate2::Compression::default());
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = content.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                crc.update(&buf[..n]);
                size += n as u64;
                deflate.write_all(&buf[..n])?;
            }
            deflate.finish()?;
        }
        let compressed = u32_of(o.written - start, "more than 4 GiB")?;
        let size = u32_of(size, "a file of more than 4 GiB")?;
        let crc = crc.finalize();
        o.write_all(&0x0807_4b50u32.to_le_bytes())?;
        o.write_all(&crc.to_le_bytes())?;
        o.write_all(&compressed.to_le_bytes())?;
        o.write_all(&size.to_le_bytes())?;
        self.entries.push(Entry {
            name: name_bytes,
            crc,
            compressed,
            size,
            offset,
            mode,
        });
        Ok(())
    }

    /// Writes the central directory; the inner writer and the bytes written in all.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        let start = self.out.written;
        if start > MAX_OFFSET {
            return Err(too_big("more than 4 GiB"));
        }
        for e in &self.entries {
            let o = &mut self.out;
            o.write_all(&0x0201_4b50u32.to_le_bytes())?;
            o.write_all(&((3u16 << 8) | 20).to_le_bytes())?; // made on Unix
            o.write_all(&20u16.to_le_bytes())?;
            o.write_all(&FLAGS.to_le_bytes())?;
            o.write_all(&8u16.to_le_bytes())?;
            o.write_all(&DOS_TIME.to_le_bytes())?;
            o.write_all(&DOS_DATE.to_le_bytes())?;
            o.write_all(&e.crc.to_le_bytes())?;
            o.write_all(&e.compressed.to_le_bytes())?;
            o.write_all(&e.size.to_le_bytes())?;
            o.write_all(&(e.name.len() as u16).to_le_bytes())?;
            o.write_all(&[0u8; 8])?; // extra, comment, disk, internal attributes
            o.write_all(&((0o100_000 | e.mode) << 16).to_le_bytes())?;
            o.write_all(&e.offset.to_le_bytes())?;
            o.write_all(&e.name)?;
        }
        let size = u32_of(self.out.written - start, "more than 4 GiB")?;
        let count = self.entries.len() as u16;
        let o = &mut self.out;
        o.write_all(&0x0605_4b50u32.to_le_bytes())?;
        o.write_all(&[0u8; 4])?;
        o.write_all(&count.to_le_bytes())?;
        o.write_all(&count.to_le_bytes())?;
        o.write_all(&size.to_le_bytes())?;
        o.write_all(&u32_of(start, "more than 4 GiB")?.to_le_bytes())?;
        o.write_all(&0u16.to_le_bytes())?;
        o.flush()?;
        let written = o.written;
        Ok((self.out.inner, written))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn a_streamed_zip_reads_back_with_modes_and_content() {
        let mut z = StreamZip::new(Vec::new());
        let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        z.add("host.json", 0o644, &mut &br#"{"version": "2.0"}"#[..])
            .unwrap();
        z.add("bin/run.sh", 0o755, &mut &b"#!/bin/sh\n"[..])
            .unwrap();
        z.add("data/big.bin", 0o600, &mut &big[..]).unwrap();
        z.add("empty", 0o644, &mut &b""[..]).unwrap();
        let (bytes, n) = z.finish().unwrap();
        assert_eq!(n as usize, bytes.len());
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 4);
        let mut read = |name: &str| {
            let mut f = archive.by_name(name).unwrap();
            let mode = f.unix_mode().unwrap() & 0o777;
            let mut content = Vec::new();
            f.read_to_end(&mut content).unwrap();
            (mode, content)
        };
        assert_eq!(
            read("host.json"),
            (0o644, br#"{"version": "2.0"}"#.to_vec())
        );
        assert_eq!(read("bin/run.sh").0, 0o755);
        assert_eq!(read("data/big.bin").1, big);
        assert_eq!(read("empty").1, b"");
    }
}

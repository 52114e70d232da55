//! Compressed captures: gzip and zstd, recognised by their magic bytes (as tshark and
//! libpcap's `pcap_open_offline` via zlib do), whatever the file is called, and from
//! standard input too.
//!
//! Decompression streams: the decoder reads the compressed file in small blocks and the
//! capture reader's own buffer holds the decompressed bytes, so memory stays bounded by
//! the largest record, as for an uncompressed file. Byte offsets in errors are offsets in
//! the decompressed capture (what `zcat FILE | xxd` shows).

use std::io::{self, Read};

/// How a capture file's bytes are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    /// gzip (RFC 1952), one member or several concatenated (`cat a.gz b.gz`).
    Gzip,
    /// Zstandard (RFC 8878), one frame or several.
    Zstd,
}

/// gzip's ID1 ID2 (RFC 1952 §2.3.1).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Zstandard's frame magic 0xFD2FB528, little-endian (RFC 8878 §3.1.1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Looks at the first bytes of `r` and, when they are a gzip or zstd magic, wraps it in
/// the matching streaming decoder. The bytes looked at are given back in front of the
/// stream either way.
pub(crate) fn open(mut r: Box<dyn Read + Send>) -> io::Result<(Box<dyn Read + Send>, Compression)> {
    let mut head = [0u8; 4];
    let mut have = 0;
    while have < head.len() {
        match r.read(&mut head[have..]) {
            Ok(0) => break,
            Ok(n) => have += n.min(head.len() - have),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = &head[..have];
    let compression = if head.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let stream: Box<dyn Read + Send> = Box::new(io::Cursor::new(head.to_vec()).chain(r));
    Ok(match compression {
        Compression::None => (stream, compression),
        Compression::Gzip => (
            Box::new(flate2::read::MultiGzDecoder::new(stream)),
            compression,
        ),
        Compression::Zstd => (
            Box::new(zstd::stream::read::Decoder::new(stream)?),
            compression,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(bytes: Vec<u8>) -> (Vec<u8>, Compression) {
        let (mut r, c) = open(Box::new(io::Cursor::new(bytes))).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        (out, c)
    }

    #[test]
    fn plain_bytes_pass_through_including_short_ones() {
        for data in [&b""[..], b"\x1f", b"abc", b"abcdefgh"] {
            assert_eq!(read_all(data.to_vec()), (data.to_vec(), Compression::None));
        }
    }

    #[test]
    fn gzip_and_zstd_are_recognised_by_magic() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(read_all(gz.clone()), (data.clone(), Compression::Gzip));
        // Two members, as `cat a.gz b.gz` makes.
        let two = [gz.clone(), gz].concat();
        assert_eq!(read_all(two).0.len(), 2 * data.len());
        let zst = zstd::encode_all(&data[..], 3).unwrap();
        assert_eq!(read_all(zst), (data, Compression::Zstd));
    }

    #[test]
    fn damaged_compressed_data_is_a_read_error() {
        let (mut r, c) = open(Box::new(io::Cursor::new(vec![0x1f, 0x8b, 8, 0, 0]))).unwrap();
        assert_eq!(c, Compression::Gzip);
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
    }
}

//! A read buffer that hands out whole records as slices and knows its file offset.
//!
//! `std::io::BufReader` cannot guarantee that a record sits contiguously in its buffer, and
//! copying each record out would cost an allocation or a copy per packet. This buffer grows
//! only to the largest record asked for (the callers bound that), so memory stays independent
//! of the file size, and records are consumed in place.

use std::io::{self, Read};

/// Initial buffer size: large enough that reads are few and big, small enough not to matter.
const INITIAL_CAPACITY: usize = 256 * 1024;

pub(crate) struct Input {
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// `buf[start..end]` holds bytes read but not yet consumed.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    pos: u64,
    /// The source returned end of file; never read again.
    eof: bool,
}

impl Input {
    pub(crate) fn new(src: Box<dyn Read + Send>) -> Self {
        Input {
            src,
            buf: vec![0; INITIAL_CAPACITY],
            start: 0,
            end: 0,
            pos: 0,
            eof: false,
        }
    }

    /// File offset of the first unconsumed byte.
    #[inline]
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// The unconsumed bytes currently buffered.
    #[inline]
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Index in the internal buffer of the first unconsumed byte, so a caller can remember
    /// a range across [`Input::consume`] and slice it later with [`Input::slice`].
    #[inline]
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    /// A range of the internal buffer, empty if out of range. Valid until the next `fill`.
    #[inline]
    pub(crate) fn slice(&self, from: usize, len: usize) -> &[u8] {
        self.buf.get(from..from.saturating_add(len)).unwrap_or(&[])
    }

    /// Makes at least `n` bytes available unless the file ends first; returns how many are
    /// available. `n` must be bounded by the caller (it becomes the buffer size).
    #[inline]
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<usize> {
        let have = self.end - self.start;
        if have >= n || self.eof {
            return Ok(have);
        }
        self.fill_slow(n)
    }

    #[cold]
    fn fill_slow(&mut self, n: usize) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < n {
                self.buf.resize(n, 0);
            }
        }
        while self.end - self.start < n {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                // `min` guards against a reader that claims more than it was given.
                Ok(k) => self.end = (self.end + k).min(self.buf.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    /// Marks `n` buffered bytes as used (fewer if fewer are buffered).
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.pos += n as u64;
    }

    /// Skips `n` bytes without keeping them; returns how many were skipped (fewer than `n`
    /// only at end of file). Used for blocks the reader ignores, which may be of any size.
    pub(crate) fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut left = n;
        while left > 0 {
            let have = self.fill(1)?;
            if have == 0 {
                break;
            }
            let take = (have as u64).min(left) as usize;
            self.consume(take);
            left -= take as u64;
        }
        Ok(n - left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most 3 bytes per call, to exercise refills.
    struct Dribble(Vec<u8>, usize);
    impl Read for Dribble {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(3).min(self.0.len() - self.1);
            out[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn fill_consume_skip_track_offsets() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut input = Input::new(Box::new(Dribble(data.clone(), 0)));
        assert!(input.fill(10).unwrap() >= 10);
        assert_eq!(&input.buffered()[..10], &data[..10]);
        input.consume(4);
        assert_eq!(input.pos(), 4);
        assert_eq!(input.skip(500).unwrap(), 500);
        assert_eq!(input.pos(), 504);
        assert!(input.fill(7).unwrap() >= 7);
        assert_eq!(input.buffered()[0], data[504]);
        assert_eq!(input.skip(10_000).unwrap(), 496);
        assert_eq!(input.fill(1).unwrap(), 0);
    }

    #[test]
    fn fill_grows_for_large_records() {
        let data = vec![7u8; INITIAL_CAPACITY * 2];
        let mut input = Input::new(Box::new(io::Cursor::new(data)));
        input.consume(0);
        assert_eq!(input.fill(10).unwrap(), INITIAL_CAPACITY);
        input.consume(5);
        assert_eq!(
            input.fill(INITIAL_CAPACITY + 100).unwrap(),
            INITIAL_CAPACITY + 100
        );
    }
}

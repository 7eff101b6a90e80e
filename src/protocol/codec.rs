//! Newline-delimited framing with a size limit: bytes in, lines out.
//!
//! The reader fills [`LineBuffer::spare`] straight from the socket and takes whole lines with
//! [`LineBuffer::next_line`]; nothing is copied per line, and a partial line is scanned once.

/// The default longest line a channel accepts (16 MiB).
pub const DEFAULT_MAX_LINE: usize = 16 * 1024 * 1024;

const READ_CHUNK: usize = 64 * 1024;
const SHRINK_ABOVE: usize = 16 * READ_CHUNK;

/// A line grew past the limit before its newline came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a line longer than {limit} bytes")]
pub struct LineTooLong {
    /// The limit that was passed.
    pub limit: usize,
}

/// Bytes read from a channel, cut into lines.
#[derive(Debug)]
pub struct LineBuffer {
    /// Always initialised to its full length; bytes `start..end` hold data.
    buf: Vec<u8>,
    /// Start of the first line not yet taken.
    start: usize,
    /// End of the bytes read so far.
    end: usize,
    /// Bytes from `start` to here hold no newline.
    scanned: usize,
    limit: usize,
}

impl LineBuffer {
    /// A buffer that refuses lines longer than `limit` bytes.
    pub fn new(limit: usize) -> LineBuffer {
        LineBuffer {
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            scanned: 0,
            limit,
        }
    }

    /// Room to read into: at least one read chunk at the end of the data.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.scanned = 0;
        } else if self.buf.len() - self.end < READ_CHUNK && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK {
            let grown = (self.buf.len() * 2).max(self.end + READ_CHUNK);
            self.buf.resize(grown, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Marks `n` bytes of [`spare`](Self::spare) as read.
    pub fn filled(&mut self, n: usize) {
        assert!(self.end + n <= self.buf.len());
        self.end += n;
    }

    /// The next whole line, without its `\n`; `Ok(None)` when only a partial line is left.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, LineTooLong> {
        let from = self.scanned.max(self.start);
        match memchr::memchr(b'\n', &self.buf[from..self.end]) {
            Some(i) => {
                let end = from + i;
                if end - self.start > self.limit {
                    return Err(LineTooLong { limit: self.limit });
                }
                let line = &self.buf[self.start..end];
                self.start = end + 1;
                self.scanned = self.start;
                Ok(Some(line))
            }
            None => {
                self.scanned = self.end;
                if self.end - self.start > self.limit {
                    return Err(LineTooLong { limit: self.limit });
                }
                self.shrink();
                Ok(None)
            }
        }
    }

    /// Gives a grown buffer back once what it holds fits in a small one. Done here, when the
    /// reader has taken every whole line, rather than before the next read: a channel that
    /// goes quiet after a huge line would otherwise pin that line's buffer until it speaks
    /// again, maybe for its whole life.
    fn shrink(&mut self) {
        let pending = self.end - self.start;
        if self.buf.len() <= SHRINK_ABOVE || pending > self.buf.len() / 4 {
            return;
        }
        // A fresh allocation rather than `shrink_to`: the old one goes back whole (large
        // blocks are `mmap`ed and unmapped on free), and only the pending bytes are copied.
        let mut small = vec![0; (pending + READ_CHUNK).next_power_of_two()];
        small[..pending].copy_from_slice(&self.buf[self.start..self.end]);
        self.buf = small;
        crate::sys::memory::released_a_large_buffer();
        self.scanned -= self.start;
        self.start = 0;
        self.end = pending;
    }

    /// Bytes of a partial line held back (not yet ended by `\n`).
    pub fn pending(&self) -> usize {
        self.end - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(b: &mut LineBuffer, data: &[u8]) {
        let spare = b.spare();
        spare[..data.len()].copy_from_slice(data);
        b.filled(data.len());
    }

    #[test]
    fn lines_split_across_reads_come_out_whole() {
        let mut b = LineBuffer::new(100);
        feed(&mut b, b"{\"a\":1}\n{\"b\"");
        assert_eq!(b.next_line().unwrap(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(b.next_line().unwrap(), None);
        feed(&mut b, b":2}\n");
        assert_eq!(b.next_line().unwrap(), Some(&b"{\"b\":2}"[..]));
        assert_eq!(b.next_line().unwrap(), None);
        assert_eq!(b.pending(), 0);
    }

    #[test]
    fn partial_line_past_the_limit_is_refused() {
        let mut b = LineBuffer::new(8);
        feed(&mut b, b"0123456789");
        assert_eq!(b.next_line(), Err(LineTooLong { limit: 8 }));
    }

    #[test]
    fn whole_line_past_the_limit_is_refused() {
        let mut b = LineBuffer::new(4);
        feed(&mut b, b"123456\n");
        assert_eq!(b.next_line(), Err(LineTooLong { limit: 4 }));
    }

    #[test]
    fn the_buffer_shrinks_after_a_huge_line() {
        let mut b = LineBuffer::new(8 << 20);
        let huge = vec![b'x'; 4 << 20];
        let mut fed = 0;
        while fed < huge.len() {
            let spare = b.spare();
            let n = spare.len().min(huge.len() - fed);
            spare[..n].copy_from_slice(&huge[fed..fed + n]);
            b.filled(n);
            fed += n;
        }
        feed(&mut b, b"\n");
        assert_eq!(b.next_line().unwrap().map(<[u8]>::len), Some(4 << 20));
        // Before any further read: a channel may stay quiet for good after a burst.
        assert_eq!(b.next_line().unwrap(), None);
        assert!(b.buf.len() <= 2 * READ_CHUNK, "{} bytes kept", b.buf.len());
    }

    #[test]
    fn the_buffer_shrinks_around_a_small_partial_line_after_a_huge_one() {
        let mut b = LineBuffer::new(8 << 20);
        let mut fed = 0;
        while fed < 4 << 20 {
            let spare = b.spare();
            let n = spare.len().min((4 << 20) - fed);
            spare[..n].fill(b'x');
            b.filled(n);
            fed += n;
        }
        feed(&mut b, b"\n{\"a\"");
        assert_eq!(b.next_line().unwrap().map(<[u8]>::len), Some(4 << 20));
        assert_eq!(b.next_line().unwrap(), None);
        assert!(b.buf.len() <= 2 * READ_CHUNK, "{} bytes kept", b.buf.len());
        feed(&mut b, b":1}\n");
        assert_eq!(b.next_line().unwrap(), Some(&b"{\"a\":1}"[..]));
    }

    #[test]
    fn many_reads_reuse_the_buffer() {
        let mut b = LineBuffer::new(1 << 20);
        for _ in 0..10_000 {
            feed(&mut b, b"{\"x\":1}\n{\"y\"");
            while b.next_line().unwrap().is_some() {}
            feed(&mut b, b":2}\n");
            while b.next_line().unwrap().is_some() {}
        }
        assert!(b.buf.len() <= 4 * READ_CHUNK);
    }
}

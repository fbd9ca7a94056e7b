//! Small helpers: hex display, and a bounded cursor that never panics.

use core::fmt;

/// Displays bytes as lowercase hex.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Reads fields off the front of a byte slice; every read is checked (rustls's `Reader`).
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The next `n` bytes, or `None` if fewer remain.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(n)?;
        self.rest = tail;
        Some(head)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn take_array<const N: usize>(&mut self) -> Option<&'a [u8; N]> {
        let (head, tail) = self.rest.split_first_chunk::<N>()?;
        self.rest = tail;
        Some(head)
    }

    pub(crate) fn take_u8(&mut self) -> Option<u8> {
        self.take_array::<1>().map(|[b]| *b)
    }

    /// Everything left.
    pub(crate) const fn rest(self) -> &'a [u8] {
        self.rest
    }
}

/// Writes fields to the front of a mutable slice; every write is checked.
pub(crate) struct Writer<'a> {
    rest: &'a mut [u8],
    written: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Self {
            rest: buf,
            written: 0,
        }
    }

    /// Appends `bytes`; `None` if they do not fit.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let rest = core::mem::take(&mut self.rest);
        let (head, tail) = rest.split_at_mut_checked(bytes.len())?;
        head.copy_from_slice(bytes);
        self.rest = tail;
        self.written = self.written.saturating_add(bytes.len());
        Some(())
    }

    pub(crate) const fn written(&self) -> usize {
        self.written
    }
}

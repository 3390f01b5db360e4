//! Reading a file whose size someone else controls (an operator's setting,
//! a file an attacker may replace by a FIFO or `/dev/zero`): at most the
//! limit plus one byte is ever read, whatever the file claims to be.

use std::io::{self, BufRead, Read as _};
use std::path::Path;

use zeroize::Zeroizing;

/// The error of a file or line over its limit: kind
/// [`io::ErrorKind::FileTooLarge`], and a message that names the limit.
pub fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("it is larger than {limit} bytes, more than such a file ever holds"),
    )
}

/// The bytes of the file at `path`, or [`too_large`] when it holds more
/// than `limit` bytes (a folder is [`io::ErrorKind::IsADirectory`]).
pub fn read_bounded(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    read_into(path, limit, &mut bytes)?;
    Ok(bytes)
}

/// [`read_bounded`] for a file that holds a secret: the buffer is made
/// once at its full size (no copy is left behind by growing it) and
/// zeroized on drop.
pub fn read_bounded_secret(path: &Path, limit: u64) -> io::Result<Zeroizing<Vec<u8>>> {
    let capacity = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let mut bytes = Zeroizing::new(Vec::with_capacity(capacity));
    read_into(path, limit, &mut bytes)?;
    Ok(bytes)
}

fn read_into(path: &Path, limit: u64, bytes: &mut Vec<u8>) -> io::Result<()> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::from(io::ErrorKind::IsADirectory));
    }
    if meta.len() > limit {
        return Err(too_large(limit));
    }
    // Bounded even when the size says nothing (a FIFO, a device) or the
    // file grows between the stat and the read.
    file.take(limit.saturating_add(1)).read_to_end(bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(())
}

/// [`BufRead::read_until`] of one line (up to and with its `\n`) into
/// `buf`, reading at most `limit` + 1 bytes: a longer line is
/// [`too_large`] (the bytes read so far stay in `buf`). `Ok(0)` at the end.
pub fn read_line_bounded(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: u64,
) -> io::Result<usize> {
    let read = reader
        .by_ref()
        .take(limit.saturating_add(1))
        .read_until(b'\n', buf)?;
    if read as u64 > limit && buf.last() != Some(&b'\n') {
        return Err(too_large(limit));
    }
    Ok(read)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_one_byte_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [7u8; 10]).unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), [7u8; 10]);
        let err = read_bounded(&path, 9).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(err.to_string().contains("9 bytes"), "{err}");
        assert_eq!(read_bounded_secret(&path, 10).unwrap().len(), 10);
        let err = read_bounded(dir.path(), 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
    }

    /// A device that never ends, the way an attacker would name it.
    #[cfg(unix)]
    #[test]
    fn an_endless_file_is_cut_at_the_limit() {
        let err = read_bounded(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        let err = read_bounded_secret(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused() {
        let text = b"short\nxxxxxxxxxxxxxxxxxxxx\nlast";
        let mut reader = io::BufReader::new(&text[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line_bounded(&mut reader, &mut buf, 8).unwrap(), 6);
        buf.clear();
        let err = read_line_bounded(&mut reader, &mut buf, 8).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        let mut reader = io::BufReader::new(&b"exactly8\n"[..]);
        buf.clear();
        assert_eq!(read_line_bounded(&mut reader, &mut buf, 8).unwrap(), 9);
    }
}

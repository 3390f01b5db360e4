//! The small I/O helpers every Atom crate shares, written once:
//!
//! - [`AtomicWriter`] / [`write_atomically`]: replace a file so that a
//!   crash leaves the old or the new one, never a torn one (temp file in
//!   the same folder, mode 0600, fsync, rename, fsync of the folder).
//! - [`secret_from_env`]: a secret from `VAR` or `VAR_FILE` (not both), in a
//!   zeroizing buffer, with errors that name the variable and the file.
//! - [`flag_from_env`]: a boolean variable (`1`, `true`, `0`, `false`).
//! - [`read_bounded`]: a file whose size someone else controls, read to
//!   a limit and no further (also a line: [`read_line_bounded`]).
//! - [`hex`]: lower-case hex.

mod atomic;
mod env;
mod read;

pub use atomic::{
    AtomicWriteError, AtomicWriter, WriteHook, WriteStep, parent_dir, remove_stale_temps, sync_dir,
    write_atomically,
};
pub use env::{EnvError, EnvSecret, MAX_SECRET_FILE_BYTES, flag_from_env, secret_from_env};
pub use read::{read_bounded, read_bounded_secret, read_line_bounded, too_large};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }
}

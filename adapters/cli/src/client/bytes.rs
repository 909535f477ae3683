//! Keys and values on the command line, binary-safe.
//!
//! In: an argument is taken as its UTF-8 bytes, or with `--hex` as hexadecimal (`6b31` is
//! `k1`). Out: bytes are printed as text with one escape, `\xNN` for a byte that is not
//! printable ASCII or part of valid UTF-8, and `\\` for a backslash, so the text is
//! unambiguous; with `--hex` they are printed as hexadecimal.

use std::fmt::Write as _;

/// How keys and values are written on the command line and in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// UTF-8 in, escaped text out.
    Text,
    /// Hexadecimal in and out.
    Hex,
}

impl Encoding {
    /// The bytes an argument stands for.
    pub(crate) fn parse(self, argument: &str) -> Result<Vec<u8>, String> {
        match self {
            Encoding::Text => Ok(argument.as_bytes().to_vec()),
            Encoding::Hex => parse_hex(argument),
        }
    }

    /// The bytes as this encoding prints them.
    pub(crate) fn render(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Text => escape(bytes),
            Encoding::Hex => hex(bytes),
        }
    }
}

fn parse_hex(argument: &str) -> Result<Vec<u8>, String> {
    let digits = argument.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "{argument:?} is not hexadecimal: odd number of digits"
        ));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("{argument:?} is not hexadecimal"))
        })
        .collect()
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing into a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Text with `\xNN` for bytes that are not printable (or not UTF-8) and `\\` for backslashes.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for character in chunk.valid().chars() {
            match character {
                '\\' => text.push_str("\\\\"),
                c if c.is_control() => {
                    let mut buffer = [0; 4];
                    for byte in c.encode_utf8(&mut buffer).bytes() {
                        let _ = write!(text, "\\x{byte:02x}");
                    }
                }
                c => text.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(text, "\\x{byte:02x}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hex round-trips any bytes; bad hex is refused with a reason.
    #[test]
    fn hex_round_trips() {
        let bytes = vec![0, 1, 0x7f, 0x80, 0xff, b'k'];
        assert_eq!(Encoding::Hex.parse(&hex(&bytes)), Ok(bytes));
        assert!(Encoding::Hex.parse("abc").is_err());
        assert!(Encoding::Hex.parse("zz").is_err());
        assert_eq!(Encoding::Hex.parse("6B31"), Ok(b"k1".to_vec()));
    }

    /// Printable text stays as it is; control bytes, invalid UTF-8 and backslashes are
    /// escaped, so two different byte strings never print the same.
    #[test]
    fn escapes_are_unambiguous() {
        assert_eq!(escape(b"hello world"), "hello world");
        assert_eq!(escape("grüße".as_bytes()), "grüße");
        assert_eq!(escape(b"a\nb\x00"), "a\\x0ab\\x00");
        assert_eq!(escape(b"\xff\xfe"), "\\xff\\xfe");
        assert_eq!(escape(b"\\x41"), "\\\\x41");
        assert_ne!(escape(b"\\x41"), escape(b"A"));
    }
}

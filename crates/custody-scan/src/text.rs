//! Decoders for the text forms used by protocol-0 opcodes, matching CPython's unpickler:
//! `STRING` (Python bytes-literal escapes, `PyBytes_DecodeEscape`), `UNICODE`
//! (`raw-unicode-escape`), and the integer/float lines of `INT`, `LONG`, `FLOAT`, `GET`, `PUT`.
//! Also a small base64 decoder for spotting base64-encoded pickles.

/// Decode a Python bytes-literal body (quotes already stripped) the way `PyBytes_DecodeEscape`
/// does: known escapes are translated, `\x` needs two hex digits (else an error, as in CPython),
/// unknown escapes are kept verbatim with their backslash.
pub(crate) fn decode_bytes_escape(input: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    out.clear();
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = input.get(i) else { return Err("trailing \\ in string") };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match input.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                // CPython masks octal escapes above 0o377 to a byte (with a warning).
                out.push((v & 0xff) as u8);
            }
            b'x' => {
                let hi = input.get(i).and_then(|&d| hex_val(d));
                let lo = input.get(i + 1).and_then(|&d| hex_val(d));
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => return Err("invalid \\x escape"),
                }
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(())
}

fn hex_val(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

/// Decode `raw-unicode-escape`: every byte is a Latin-1 code point, except `\uXXXX` and
/// `\UXXXXXXXX` preceded by an odd number of backslashes. Errors like CPython on truncated
/// escapes and out-of-range code points.
pub(crate) fn decode_raw_unicode_escape(input: &[u8], out: &mut String) -> Result<(), &'static str> {
    out.clear();
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c != b'\\' {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        // Count the run of backslashes; only an odd run escapes the following u/U.
        let run_start = i;
        while i < input.len() && input[i] == b'\\' {
            i += 1;
        }
        let run = i - run_start;
        let escapes = run % 2 == 1 && matches!(input.get(i), Some(b'u') | Some(b'U'));
        let literal = if escapes { run - 1 } else { run };
        for _ in 0..literal {
            out.push('\\');
        }
        if !escapes {
            continue;
        }
        let digits = if input[i] == b'u' { 4 } else { 8 };
        i += 1;
        let mut v: u32 = 0;
        for _ in 0..digits {
            let Some(h) = input.get(i).and_then(|&d| hex_val(d)) else {
                return Err(if digits == 4 { "truncated \\uXXXX escape" } else { "truncated \\UXXXXXXXX escape" });
            };
            v = v * 16 + u32::from(h);
            i += 1;
        }
        match char::from_u32(v) {
            Some(ch) => out.push(ch),
            // Lone surrogates are legal in Python str but not in Rust; keep a placeholder, since
            // such a string cannot name a module anyway.
            None if v <= 0x10ffff => out.push('\u{fffd}'),
            None => return Err("\\Uxxxxxxxx out of range"),
        }
    }
    Ok(())
}

fn trim_ascii(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

/// Parse an integer the way `PyLong_FromString(s, NULL, base)` accepts it: optional surrounding
/// whitespace, sign, `_` between digits, and with `base == 0` the `0x`/`0o`/`0b` prefixes.
/// Returns `Ok(Some(v))` if it fits in i64, `Ok(None)` if valid but larger.
pub(crate) fn parse_py_int(line: &[u8], base0: bool) -> Result<Option<i64>, ()> {
    let s = trim_ascii(line);
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) =
        if base0 && s.len() > 2 && s[0] == b'0' && matches!(s[1], b'x' | b'X' | b'o' | b'O' | b'b' | b'B') {
            let r = match s[1] {
                b'x' | b'X' => 16,
                b'o' | b'O' => 8,
                _ => 2,
            };
            // Python allows an underscore right after the prefix.
            let d = &s[2..];
            (r, d.strip_prefix(b"_").unwrap_or(d))
        } else {
            (10, s)
        };
    if digits.is_empty() || digits.first() == Some(&b'_') || digits.last() == Some(&b'_') {
        return Err(());
    }
    // Base 0 rejects leading zeros in non-zero decimal literals ("010"), like Python source.
    if base0 && radix == 10 && digits.len() > 1 && digits[0] == b'0' && digits.iter().any(|&d| d != b'0' && d != b'_') {
        return Err(());
    }
    let mut value: i128 = 0;
    let mut overflow = false;
    let mut prev_underscore = false;
    for &d in digits {
        if d == b'_' {
            if prev_underscore {
                return Err(());
            }
            prev_underscore = true;
            continue;
        }
        prev_underscore = false;
        let v = match hex_val(d) {
            Some(v) if u32::from(v) < radix => v,
            _ => return Err(()),
        };
        if !overflow {
            value = value * i128::from(radix) + i128::from(v);
            if value > i128::from(i64::MAX) + 1 {
                overflow = true;
            }
        }
    }
    if overflow {
        return Ok(None);
    }
    let value = if neg { -value } else { value };
    Ok(i64::try_from(value).ok())
}

/// C `strtol(s, &end, 0)` as `load_int` uses it first: leading whitespace, sign, `0x` hex,
/// leading-`0` octal, else decimal; the whole line must be consumed and fit in a C long.
pub(crate) fn parse_strtol(line: &[u8]) -> Option<i64> {
    let mut s = line;
    while let Some((&c, rest)) = s.split_first() {
        if c.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if s.len() > 2 && s[0] == b'0' && (s[1] == b'x' || s[1] == b'X') {
        (16u32, &s[2..])
    } else if s.len() > 1 && s[0] == b'0' {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i128 = 0;
    for &d in digits {
        let x = hex_val(d).filter(|&x| u32::from(x) < radix)?;
        v = v * i128::from(radix) + i128::from(x);
        if v > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    i64::try_from(if neg { -v } else { v }).ok()
}

/// Whether a `FLOAT` line parses (CPython: `PyOS_string_to_double`, no trailing junk).
pub(crate) fn valid_py_float(line: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(line) else { return false };
    if s.contains('_') {
        return false;
    }
    s.parse::<f64>().is_ok()
}

/// Decode standard or URL-safe base64 (padding optional, no whitespace). `None` if the input
/// is not entirely base64.
pub(crate) fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let body = input.strip_suffix(b"==").or_else(|| input.strip_suffix(b"=")).unwrap_or(input);
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// User-controlled text for a message: at most 120 characters, control characters replaced.
pub(crate) fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(120).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().nth(120).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_escapes() {
        let mut out = Vec::new();
        assert!(decode_bytes_escape(br"o\x73\n\101\q", &mut out).is_ok());
        assert_eq!(out, b"os\nA\\q");
        assert!(decode_bytes_escape(br"\x7", &mut out).is_err());
    }

    #[test]
    fn raw_unicode() {
        let mut out = String::new();
        assert!(decode_raw_unicode_escape(br"o\u0073", &mut out).is_ok());
        assert_eq!(out, "os");
        assert!(decode_raw_unicode_escape(br"a\\u0073", &mut out).is_ok());
        assert_eq!(out, r"a\\u0073");
        assert!(decode_raw_unicode_escape(br"\u00", &mut out).is_err());
    }

    #[test]
    fn ints() {
        assert_eq!(parse_py_int(b"12", true), Ok(Some(12)));
        assert_eq!(parse_py_int(b" -0x1_0 ", true), Ok(Some(-16)));
        assert_eq!(parse_py_int(b"1a", true), Err(()));
        assert_eq!(parse_py_int(b"99999999999999999999999", true), Ok(None));
        assert_eq!(parse_py_int(b"00", true), Ok(Some(0)));
        assert_eq!(parse_strtol(b"010"), Some(8));
        assert_eq!(parse_strtol(b" -0x10"), Some(-16));
        assert_eq!(parse_strtol(b"1_0"), None);
    }

    #[test]
    fn b64() {
        assert_eq!(base64_decode(b"gAR9lC4="), Some(vec![0x80, 4, 0x7d, 0x94, 0x2e]));
        assert_eq!(base64_decode(b"not base64!"), None);
    }
}

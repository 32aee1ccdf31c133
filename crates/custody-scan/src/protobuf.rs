//! A minimal, bounds-checked protobuf wire-format reader: enough to walk messages field by
//! field without a schema compiler. Groups (wire types 3 and 4) are rejected: no ONNX writer
//! produces them, and refusing them keeps the reader simple.

/// One field's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: bytes, string, sub-message or packed repeated field.
    Len(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// Iterator over the fields of one message. Yields `Err` once, at the first malformed byte, and
/// then stops.
pub(crate) struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Fields { data, pos: 0, failed: false }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = *self.data.get(self.pos).ok_or_else(|| format!("truncated varint at {}", self.pos))?;
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(format!("varint longer than 64 bits at {}", self.pos - 1));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint longer than 10 bytes at {}", self.pos))
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let end = self.pos.checked_add(N).ok_or("offset overflows")?;
        let s = self.data.get(self.pos..end).ok_or_else(|| format!("truncated fixed-width field at {}", self.pos))?;
        self.pos = end;
        s.try_into().map_err(|_| "truncated".to_string())
    }

    fn field(&mut self) -> Result<(u32, Wire<'a>), String> {
        let at = self.pos;
        let tag = self.varint()?;
        let number = u32::try_from(tag >> 3).map_err(|_| format!("field number too large at {at}"))?;
        if number == 0 || number > (1 << 29) - 1 {
            return Err(format!("invalid field number {number} at {at}"));
        }
        let wire = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(self.fixed()?)),
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| format!("length too large at {at}"))?;
                let end = self.pos.checked_add(len).ok_or("length overflows")?;
                let s = self
                    .data
                    .get(self.pos..end)
                    .ok_or_else(|| format!("field {number} at {at}: length {len} runs past the end"))?;
                self.pos = end;
                Wire::Len(s)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(self.fixed()?)),
            w => return Err(format!("unsupported wire type {w} (field {number}) at {at}")),
        };
        Ok((number, wire))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Wire<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let r = self.field();
        self.failed = r.is_err();
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_wire_type() {
        // 1: varint 300; 2: "hi"; 3: fixed64 1; 4: fixed32 2
        let msg = [0x08, 0xac, 0x02, 0x12, 2, b'h', b'i', 0x19, 1, 0, 0, 0, 0, 0, 0, 0, 0x25, 2, 0, 0, 0];
        let got: Vec<_> = Fields::new(&msg).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            got,
            vec![(1, Wire::Varint(300)), (2, Wire::Len(b"hi")), (3, Wire::Fixed64(1)), (4, Wire::Fixed32(2))]
        );
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            &[0x12, 5, b'a'][..],
            &[0x08],
            &[0x0b],
            &[0x00, 0x00],
            &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ] {
            let r: Result<Vec<_>, _> = Fields::new(bad).collect();
            assert!(r.is_err(), "{bad:?}");
        }
    }
}

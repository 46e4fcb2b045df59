//! The RLE / bit-packing hybrid encoding of Parquet dictionary indices, run for run as the
//! parquet crate's `RleEncoder` cuts them (that encoder is not public API), so that
//! [`crate::writer::dict_chunk`] writes the same bytes as the crate's own column writer.
//!
//! Values are buffered in groups of eight. A value repeated at least eight times becomes an RLE
//! run; everything else is bit-packed, up to 63 groups under one indicator byte.

const GROUP: usize = 8;
const MAX_GROUPS_PER_RUN: usize = 1 << 6;

pub(crate) struct RleEncoder {
    bit_width: u8,
    out: Vec<u8>,
    /// Bits not yet written to `out`, and how many.
    bits: u64,
    bit_count: u8,
    buffered: [u64; GROUP],
    num_buffered: usize,
    current: u64,
    repeat_count: usize,
    bit_packed_count: usize,
    /// Where the open bit-packed run's indicator byte goes.
    indicator_at: Option<usize>,
}

impl RleEncoder {
    /// An encoder appending to `out` (which may already hold, e.g., the bit-width byte).
    pub(crate) fn new(bit_width: u8, out: Vec<u8>) -> Self {
        debug_assert!(bit_width <= 64);
        RleEncoder {
            bit_width,
            out,
            bits: 0,
            bit_count: 0,
            buffered: [0; GROUP],
            num_buffered: 0,
            current: 0,
            repeat_count: 0,
            bit_packed_count: 0,
            indicator_at: None,
        }
    }

    /// The most bytes `values` values can take (the parquet crate's page size estimate).
    pub(crate) fn max_buffer_size(bit_width: u8, values: usize) -> usize {
        let runs = values.div_ceil(GROUP);
        let bit_packed = runs + runs * bit_width as usize;
        let rle = runs * (1 + (bit_width as usize).div_ceil(8));
        bit_packed.max(rle)
    }

    /// What a fresh encoder writes (after `out`) for `count` copies of `value`: one RLE run.
    pub(crate) fn run(bit_width: u8, value: u64, count: usize, out: Vec<u8>) -> Vec<u8> {
        let mut e = RleEncoder::new(bit_width, out);
        e.repeat_count = count;
        e.current = value;
        e.flush_rle_run();
        e.out
    }

    #[inline]
    pub(crate) fn put(&mut self, value: u64) {
        if self.current == value {
            self.repeat_count += 1;
            if self.repeat_count > GROUP {
                // A continuation of an RLE run: nothing to buffer.
                return;
            }
        } else {
            if self.repeat_count >= GROUP {
                self.flush_rle_run();
            }
            self.repeat_count = 1;
            self.current = value;
        }
        self.buffered[self.num_buffered] = value;
        self.num_buffered += 1;
        if self.num_buffered == GROUP {
            self.flush_buffered();
        }
    }

    /// Puts every value of `values`: what putting them one by one does, with groups of eight
    /// that are not a run bit-packed in one step.
    pub(crate) fn put_all(&mut self, values: &[u32]) {
        let mut rest = values;
        while !rest.is_empty() {
            // Between groups, outside any run, a group that is not a run can only be
            // bit-packed: pack it whole (its eight values fill `bit_width` bytes exactly).
            if self.num_buffered == 0
                && self.repeat_count == 0
                && self.bit_width <= 16
                && let Some((group, after)) = rest.split_first_chunk::<GROUP>()
                && group.iter().any(|&v| v != group[0])
            {
                self.pack_group(group);
                rest = after;
                continue;
            }
            self.put(rest[0] as u64);
            rest = &rest[1..];
        }
    }

    /// What putting the eight values of a group that is not a run does, from a clean state
    /// (`current` only matters once `repeat_count` is not zero).
    fn pack_group(&mut self, group: &[u32; GROUP]) {
        // Bit-packed groups are whole bytes, so the pending bits are too.
        self.flush_bits();
        if self.indicator_at.is_none() {
            self.indicator_at = Some(self.out.len());
            self.out.push(0);
        }
        let width = self.bit_width as usize;
        let packed = group
            .iter()
            .enumerate()
            .fold(0u128, |acc, (i, &v)| acc | (v as u128) << (i * width));
        self.out.extend_from_slice(&packed.to_le_bytes()[..width]);
        self.bit_packed_count += GROUP;
        if self.bit_packed_count / GROUP + 1 >= MAX_GROUPS_PER_RUN {
            self.finish_bit_packed_run();
        }
    }

    /// The encoded bytes, after `out`'s initial contents.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.bit_packed_count > 0 || self.repeat_count > 0 || self.num_buffered > 0 {
            let all_repeat = self.bit_packed_count == 0
                && (self.repeat_count == self.num_buffered || self.num_buffered == 0);
            if self.repeat_count > 0 && all_repeat {
                self.flush_rle_run();
            } else {
                if self.num_buffered > 0 {
                    self.buffered[self.num_buffered..].fill(0);
                    self.num_buffered = GROUP;
                }
                self.bit_packed_count += self.num_buffered;
                self.flush_bit_packed_run(true);
                self.repeat_count = 0;
            }
        }
        self.flush_bits();
        self.out
    }

    fn flush_rle_run(&mut self) {
        self.put_vlq((self.repeat_count as u64) << 1);
        self.put_aligned(self.current, (self.bit_width as usize).div_ceil(8));
        self.num_buffered = 0;
        self.repeat_count = 0;
    }

    fn flush_bit_packed_run(&mut self, end_run: bool) {
        if self.indicator_at.is_none() {
            self.flush_bits();
            self.indicator_at = Some(self.out.len());
            self.out.push(0);
        }
        for i in 0..self.num_buffered {
            self.put_bits(self.buffered[i]);
        }
        self.num_buffered = 0;
        if end_run {
            self.finish_bit_packed_run();
        }
    }

    fn finish_bit_packed_run(&mut self) {
        let groups = self.bit_packed_count / GROUP;
        let at = self.indicator_at.take().expect("an open bit-packed run");
        self.out[at] = ((groups << 1) | 1) as u8;
        self.bit_packed_count = 0;
    }

    fn flush_buffered(&mut self) {
        if self.repeat_count >= GROUP {
            // The group becomes (part of) an RLE run: close any bit-packed run before it.
            self.num_buffered = 0;
            if self.bit_packed_count > 0 {
                self.finish_bit_packed_run();
            }
            return;
        }
        self.bit_packed_count += self.num_buffered;
        let groups = self.bit_packed_count / GROUP;
        self.flush_bit_packed_run(groups + 1 >= MAX_GROUPS_PER_RUN);
        self.repeat_count = 0;
    }

    #[inline]
    fn put_bits(&mut self, v: u64) {
        let width = self.bit_width;
        self.bits |= v.checked_shl(self.bit_count as u32).unwrap_or(0);
        self.bit_count += width;
        if let Some(rest) = self.bit_count.checked_sub(64) {
            self.out.extend_from_slice(&self.bits.to_le_bytes());
            self.bit_count = rest;
            self.bits = v.checked_shr((width - rest) as u32).unwrap_or(0);
        }
    }

    fn flush_bits(&mut self) {
        let n = (self.bit_count as usize).div_ceil(8);
        self.out.extend_from_slice(&self.bits.to_le_bytes()[..n]);
        self.bits = 0;
        self.bit_count = 0;
    }

    fn put_aligned(&mut self, v: u64, bytes: usize) {
        self.flush_bits();
        self.out.extend_from_slice(&v.to_le_bytes()[..bytes.min(8)]);
    }

    fn put_vlq(&mut self, mut v: u64) {
        while v & !0x7f != 0 {
            self.put_aligned((v & 0x7f) | 0x80, 1);
            v >>= 7;
        }
        self.put_aligned(v, 1);
    }
}

/// Decodes `count` values of the hybrid encoding (as the Parquet format defines it) from `data`
/// onto `out`: how a chunk written directly is read back when the general writer takes over.
/// Returns the bytes after them, or `None` when `data` ends early.
pub(crate) fn decode<'d>(
    bit_width: u8,
    mut data: &'d [u8],
    count: usize,
    out: &mut Vec<u32>,
) -> Option<&'d [u8]> {
    let end = out.len() + count;
    let width = bit_width as usize;
    let mask = if width == 0 {
        0
    } else {
        u64::MAX >> (64 - width)
    };
    while out.len() < end {
        let (mut header, mut shift) = (0u64, 0);
        loop {
            let (&b, rest) = data.split_first()?;
            data = rest;
            header |= ((b & 0x7f) as u64) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        if header & 1 == 0 {
            let bytes = width.div_ceil(8);
            let mut v = [0u8; 8];
            v[..bytes].copy_from_slice(data.get(..bytes)?);
            data = &data[bytes..];
            let value = u64::from_le_bytes(v) as u32;
            out.extend(std::iter::repeat_n(value, (header >> 1) as usize));
        } else {
            let values = (header >> 1) as usize * GROUP;
            let bytes = values * width / 8;
            let packed = data.get(..bytes)?;
            for i in 0..values {
                let bit = i * width;
                let mut word = [0u8; 8];
                let from = bit / 8;
                let n = (packed.len() - from).min(8);
                word[..n].copy_from_slice(&packed[from..from + n]);
                out.push(((u64::from_le_bytes(word) >> (bit % 8)) & mask) as u32);
            }
            data = &data[bytes..];
        }
    }
    out.truncate(end);
    Some(data)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decoded(bit_width: u8, data: &[u8], count: usize) -> Vec<u64> {
        let mut out = Vec::new();
        let rest = decode(bit_width, data, count, &mut out).expect("complete");
        assert!(rest.is_empty(), "{} bytes left over", rest.len());
        out.into_iter().map(u64::from).collect()
    }

    fn encode(bit_width: u8, values: &[u64]) -> Vec<u8> {
        let mut e = RleEncoder::new(bit_width, Vec::new());
        for &v in values {
            e.put(v);
        }
        e.finish()
    }

    #[test]
    fn known_encodings() {
        // One value: an RLE run of 100 with no value bytes at width 0.
        assert_eq!(encode(0, &[0; 100]), [200, 1]);
        // Eight distinct values at width 3: one bit-packed group.
        assert_eq!(
            encode(3, &[0, 1, 2, 3, 4, 5, 6, 7]),
            [0b11, 0b1000_1000, 0b1100_0110, 0b1111_1010]
        );
        // Ten equal values at width 2: an RLE run.
        assert_eq!(encode(2, &[3; 10]), [20, 3]);
        // A short tail is padded to a group.
        assert_eq!(encode(1, &[1, 0, 1]), [0b11, 0b101]);
    }

    #[test]
    fn long_bit_packed_runs_split_at_63_groups() {
        let values: Vec<u64> = (0..64 * 8).map(|i| i % 2).collect();
        let bytes = encode(1, &values);
        assert_eq!(bytes[0], (63 << 1) | 1);
        assert_eq!(decoded(1, &bytes, values.len()), values);
    }

    #[test]
    fn a_run_is_what_putting_the_same_value_writes() {
        for bit_width in 0..=12u8 {
            for count in (1..40).chain([1000, 20_000, 1 << 20]) {
                let value = (0x5a5 & ((1u64 << bit_width) - 1)) * (bit_width > 0) as u64;
                let expected = encode(bit_width, &vec![value; count]);
                assert_eq!(
                    RleEncoder::run(bit_width, value, count, Vec::new()),
                    expected,
                    "width {bit_width}, {count} values"
                );
            }
        }
    }

    proptest! {
        /// The bulk path writes what putting the values one by one writes.
        #[test]
        fn put_all_writes_what_put_writes(
            bit_width in 0u8..=20,
            runs in prop::collection::vec((0u32..1 << 20, 1usize..20), 0..700),
            short_runs in any::<bool>(),
            prefix in 0usize..12,
        ) {
            let mask = if bit_width == 0 { 0 } else { (1u32 << bit_width) - 1 };
            // Short runs make long bit-packed runs (split at 63 groups).
            let length = |n: usize| if short_runs { 1 + n % 2 } else { n };
            let values: Vec<u32> = runs
                .iter()
                .flat_map(|&(v, n)| std::iter::repeat_n(v & mask, length(n)))
                .collect();
            let one_by_one = encode(bit_width, &values.iter().map(|&v| v as u64).collect::<Vec<_>>());
            // Some values put one by one first, so the bulk path starts mid-group too.
            let split = prefix.min(values.len());
            let mut e = RleEncoder::new(bit_width, Vec::new());
            values[..split].iter().for_each(|&v| e.put(v as u64));
            e.put_all(&values[split..]);
            prop_assert_eq!(e.finish(), one_by_one);
        }

        #[test]
        fn round_trips(
            bit_width in 0u8..=12,
            runs in prop::collection::vec((0u64..4096, 1usize..40), 0..60),
        ) {
            let mask = if bit_width == 0 { 0 } else { (1u64 << bit_width) - 1 };
            let values: Vec<u64> = runs
                .iter()
                .flat_map(|&(v, n)| std::iter::repeat_n(v & mask, n))
                .collect();
            let bytes = encode(bit_width, &values);
            prop_assert!(bytes.len() <= RleEncoder::max_buffer_size(bit_width, values.len()));
            prop_assert_eq!(decoded(bit_width, &bytes, values.len()), values);
        }
    }
}

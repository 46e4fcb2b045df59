//! `DictChunk` against `ArrowWriter`: byte-identical chunks and files.

use std::sync::Arc;

use arrow::array::{
    Decimal128Array, DictionaryArray, Int32Array, Int64Array, RecordBatch,
    TimestampMillisecondArray,
};
use arrow::datatypes::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::ZstdLevel;
use proptest::prelude::*;

use super::*;

/// Writer settings; `dict_bytes` and `truncate` bound the dictionary page and the length of
/// statistics values.
#[derive(Debug, Clone, Copy)]
struct Settings {
    batch: usize,
    page_rows: usize,
    page_bytes: usize,
    codec: u8,
    dict_bytes: usize,
    truncate: Option<usize>,
}

const DEFAULTS: Settings = Settings {
    batch: 8192,
    page_rows: 20_000,
    page_bytes: 1 << 20,
    codec: 1,
    dict_bytes: 1 << 20,
    truncate: Some(64),
};

fn props(s: Settings) -> WriterProperties {
    let compression = match s.codec {
        0 => Compression::UNCOMPRESSED,
        1 => Compression::SNAPPY,
        _ => Compression::ZSTD(ZstdLevel::try_new(1).unwrap()),
    };
    WriterProperties::builder()
        .set_compression(compression)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_write_batch_size(s.batch)
        .set_data_page_row_count_limit(s.page_rows)
        .set_data_page_size_limit(s.page_bytes)
        .set_dictionary_page_size_limit(s.dict_bytes)
        .set_statistics_truncate_length(s.truncate)
        .build()
}

/// How a chunk was written by [`ColumnEncoder`].
#[derive(Debug, PartialEq)]
enum Path {
    /// Directly, start to end.
    Direct,
    /// Directly at first, then by the general writer.
    HandedOff,
    /// By the general writer only.
    General,
}

/// The file `ArrowWriter` writes for `writes` (one write call each, one row group), the
/// same file with its chunk written by a [`ColumnEncoder`], and how that chunk was written.
fn both(writes: &[ArrayRef], props: &WriterProperties) -> (Vec<u8>, Vec<u8>, Path) {
    let field = Arc::new(Field::new("c", writes[0].data_type().clone(), false));
    let schema = Arc::new(Schema::new(vec![field.clone()]));
    let batch = |a: &ArrayRef| RecordBatch::try_new(schema.clone(), vec![a.clone()]).unwrap();
    let mut reference =
        ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone())).unwrap();
    for a in writes {
        reference.write(&batch(a)).unwrap();
    }
    let reference = reference.into_inner().unwrap();

    let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone())).unwrap();
    let (mut file, factory) = writer.into_serialized_writer().unwrap();
    let descr = file.schema_descr().column(0);
    let general = factory.create_column_writers(0).unwrap().remove(0);
    let mut encoder = ColumnEncoder::new(field, descr, props, general, Some(writes[0].as_ref()));
    let started_direct = encoder.is_direct();
    for a in writes {
        encoder.write(a).unwrap();
    }
    let path = match (started_direct, encoder.is_direct()) {
        (true, true) => Path::Direct,
        (true, false) => Path::HandedOff,
        _ => Path::General,
    };
    let mut group = file.next_row_group().unwrap();
    encoder.close().unwrap().append_to(&mut group).unwrap();
    group.close().unwrap();
    (reference, file.into_inner().unwrap(), path)
}

/// The value of code `k` in string columns: up to 62 bytes, some of them multi-byte.
fn text(k: usize) -> String {
    format!("{k:03}-{}", "é".repeat(k % 30))
}

/// `codes` as arrays of `kind`, cut into writes of `cuts` rows (cycled). Dictionary writes
/// each carry the domain in a different order, as concatenated or re-sliced arrays can.
fn arrays(kind: u8, domain: usize, codes: &[usize], cuts: &[usize]) -> Vec<ArrayRef> {
    let mut out = Vec::new();
    let (mut at, mut cut) = (0, 0);
    while at < codes.len() {
        let n = cuts[cut % cuts.len()].min(codes.len() - at);
        let part = &codes[at..at + n];
        let array: ArrayRef = match kind {
            0 => {
                let shift = cut % domain;
                let values: Vec<String> = (0..domain).map(|i| text((i + shift) % domain)).collect();
                let keys: Vec<i32> = part
                    .iter()
                    .map(|&c| ((c + domain - shift) % domain) as i32)
                    .collect();
                Arc::new(
                    DictionaryArray::<Int32Type>::try_new(
                        Int32Array::from(keys),
                        Arc::new(StringArray::from(values)),
                    )
                    .unwrap(),
                )
            }
            1 => Arc::new(Int32Array::from_iter_values(
                part.iter().map(|&c| c as i32 * 7919 - 1000),
            )),
            2 => Arc::new(Int64Array::from_iter_values(
                part.iter().map(|&c| c as i64 * -104_729 + 5),
            )),
            3 => Arc::new(
                TimestampMillisecondArray::from_iter_values(
                    part.iter().map(|&c| 1_795_000_000_000 + c as i64),
                )
                .with_timezone("+00:00"),
            ),
            4 => Arc::new(StringArray::from_iter_values(part.iter().map(|&c| text(c)))),
            _ => Arc::new(
                Decimal128Array::from_iter_values(
                    part.iter().map(|&c| c as i128 * 1_234_567 - 99_999),
                )
                .with_precision_and_scale(18, 4)
                .unwrap(),
            ),
        };
        out.push(array);
        at += n;
        cut += 1;
    }
    out
}

fn codes_of(runs: &[(prop::sample::Index, usize)], domain: usize) -> Vec<usize> {
    runs.iter()
        .flat_map(|(code, n)| std::iter::repeat_n(code.index(domain), *n))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Byte for byte the general writer's file, whatever the values, runs, write sizes,
    /// mini-batch size, page and dictionary limits, statistics truncation and codec.
    #[test]
    fn writes_what_arrow_writer_writes(
        kind in 0u8..6,
        domain in prop_oneof![1usize..4, 1usize..300],
        runs in prop::collection::vec((any::<prop::sample::Index>(), 1usize..30), 1..150),
        cuts in prop::collection::vec(1usize..1500, 1..5),
        batch in prop_oneof![Just(8192usize), 1usize..1024],
        page_rows in prop_oneof![Just(20_000usize), 1usize..3000],
        page_bytes in prop_oneof![Just(1usize << 20), 8usize..400],
        codec in 0u8..3,
        dict_bytes in prop_oneof![3 => Just(1usize << 20), 1 => 16usize..3000],
        truncate in prop_oneof![Just(Some(64usize)), Just(None), (1usize..70).prop_map(Some)],
    ) {
        let codes = codes_of(&runs, domain);
        let writes = arrays(kind, domain, &codes, &cuts);
        let settings = Settings { batch, page_rows, page_bytes, codec, dict_bytes, truncate };
        let (reference, ours, _) = both(&writes, &props(settings));
        prop_assert!(reference == ours, "{} bytes by ArrowWriter, {} here", reference.len(), ours.len());
    }
}

/// Every page size limit around the estimates of a few pages: the cuts fall after the same
/// mini-batches as the general writer's, for each value type.
#[test]
fn pages_cut_on_size_where_arrow_writer_cuts_them() {
    let codes: Vec<usize> = (0..600).map(|i| (i * 7 + i / 13) % 5).collect();
    for kind in 0..6 {
        for page_bytes in 8..120 {
            let writes = arrays(kind, 5, &codes, &[97, 250]);
            let settings = Settings {
                batch: 1 + page_bytes % 7,
                page_bytes,
                ..DEFAULTS
            };
            let (reference, ours, path) = both(&writes, &props(settings));
            assert!(
                reference == ours,
                "kind {kind}, page limit {page_bytes} bytes"
            );
            assert_eq!(path, Path::Direct);
        }
    }
}

#[test]
fn a_big_constant_chunk_is_written_as_arrow_writer_writes_it() {
    let codes = vec![0; 300_000];
    let writes = arrays(0, 1, &codes, &[8192]);
    let (reference, ours, path) = both(&writes, &props(DEFAULTS));
    assert!(reference == ours);
    assert_eq!(path, Path::Direct);
}

/// A big domain as the engine's id and name columns have: tens of thousands of values.
#[test]
fn a_big_dictionary_is_written_as_arrow_writer_writes_it() {
    // Strings average 38 bytes on the dictionary page: 12 000 of them stay under its
    // 1 MiB limit with room for a mini-batch.
    for (kind, domain) in [(2, 30_000), (4, 12_000), (5, 30_000)] {
        let codes: Vec<usize> = (0..200_000usize)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) % domain)
            .collect();
        let writes = arrays(kind, domain, &codes, &[8192]);
        let (reference, ours, path) = both(&writes, &props(DEFAULTS));
        assert!(reference == ours, "kind {kind}");
        assert_eq!(path, Path::Direct, "kind {kind}");
    }
}

/// Values longer than the statistics' truncation length (an input's path is, at the default
/// 64 bytes) are written directly, their chunk's statistics cut as the general writer cuts
/// them: at a character boundary, the maximum incremented, neither marked exact.
#[test]
fn values_past_the_truncation_length_are_written_directly() {
    let codes: Vec<usize> = (0..5000).map(|i| (i * 37 + i / 7) % 400).collect();
    for truncate in [Some(30), Some(33), Some(1), Some(64)] {
        for kind in [0, 4] {
            let settings = Settings {
                truncate,
                ..DEFAULTS
            };
            let writes = arrays(kind, 400, &codes, &[700, 1300]);
            let (reference, ours, path) = both(&writes, &props(settings));
            assert!(reference == ours, "kind {kind}, {settings:?}");
            assert_eq!(path, Path::Direct, "kind {kind}, {settings:?}");
        }
    }
    // Values that cannot be incremented within the length: the maximum is kept whole.
    let long = |b: u8| "\u{10FFFF}".repeat(20) + &char::from(b).to_string();
    let writes: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec![long(b'a'), long(b'b')]))];
    for truncate in [Some(4), Some(10), Some(3)] {
        let settings = Settings {
            truncate,
            ..DEFAULTS
        };
        let (reference, ours, path) = both(&writes, &props(settings));
        assert!(reference == ours, "{settings:?}");
        assert_eq!(path, Path::Direct);
    }
}

/// Where the general writer would do what this writer does not, the chunk is handed over
/// and still comes out as the general writer writes it.
#[test]
fn hands_over_where_the_general_writer_would_change_course() {
    let codes: Vec<usize> = (0..5000).map(|i| (i * 37 + i / 7) % 400).collect();
    let cases = [
        // The dictionary outgrows its page limit: the general writer falls back to plain.
        (
            2,
            Settings {
                dict_bytes: 1000,
                batch: 64,
                ..DEFAULTS
            },
        ),
        (
            4,
            Settings {
                dict_bytes: 3000,
                batch: 16,
                ..DEFAULTS
            },
        ),
        (
            0,
            Settings {
                dict_bytes: 2000,
                ..DEFAULTS
            },
        ),
        // A mini-batch of strings larger than the dictionary's remaining budget is split.
        (
            4,
            Settings {
                dict_bytes: 20_000,
                batch: 1024,
                ..DEFAULTS
            },
        ),
    ];
    for (kind, settings) in cases {
        let writes = arrays(kind, 400, &codes, &[700, 1300]);
        let (reference, ours, path) = both(&writes, &props(settings));
        assert!(reference == ours, "kind {kind}, {settings:?}");
        assert_eq!(path, Path::HandedOff, "kind {kind}, {settings:?}");
    }
}

/// The Parquet descriptor of a one-column file of `data_type`.
fn descriptor(data_type: DataType, props: &WriterProperties) -> ColumnDescPtr {
    let schema = Arc::new(Schema::new(vec![Field::new("c", data_type, false)]));
    let writer = ArrowWriter::try_new(Vec::new(), schema, Some(props.clone())).unwrap();
    writer
        .into_serialized_writer()
        .unwrap()
        .0
        .schema_descr()
        .column(0)
}

#[test]
fn declines_what_it_cannot_write_exactly() {
    let chunk_props = props(DEFAULTS);
    let descr = descriptor(DataType::Int32, &chunk_props);
    let ints: ArrayRef = Arc::new(Int32Array::from(vec![1, 2]));
    assert!(DictChunk::try_new(descr.clone(), &chunk_props, ints.as_ref()).is_some());
    // Nulls, a type of another physical width, page statistics.
    let nulls: ArrayRef = Arc::new(Int32Array::from(vec![Some(1), None]));
    assert!(DictChunk::try_new(descr.clone(), &chunk_props, nulls.as_ref()).is_none());
    let wide: ArrayRef = Arc::new(Int64Array::from(vec![1]));
    assert!(DictChunk::try_new(descr.clone(), &chunk_props, wide.as_ref()).is_none());
    let page_stats = WriterProperties::builder()
        .set_statistics_enabled(EnabledStatistics::Page)
        .build();
    assert!(DictChunk::try_new(descr.clone(), &page_stats, ints.as_ref()).is_none());
    // Mini-batches the general writer would split for the dictionary's budget.
    let small_dict = props(Settings {
        dict_bytes: 4 * 8191,
        ..DEFAULTS
    });
    assert!(DictChunk::try_new(descr, &small_dict, ints.as_ref()).is_none());
    // A column written without a dictionary.
    let plain = WriterProperties::builder()
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_dictionary_enabled(false)
        .build();
    let descr = descriptor(DataType::Int64, &plain);
    assert!(DictChunk::try_new(descr, &plain, wide.as_ref()).is_none());
}

/// Nulls arriving after the first write hand the chunk over rather than being written
/// differently.
#[test]
fn hands_over_for_values_it_does_not_take() {
    let codes: Vec<usize> = (0..100).collect();
    let mut writes = arrays(2, 100, &codes, &[100]);
    writes.push(Arc::new(Int64Array::from(vec![Some(5), None, Some(7)])));
    let field = Field::new("c", DataType::Int64, true);
    let schema = Arc::new(Schema::new(vec![field]));
    let writer = ArrowWriter::try_new(Vec::new(), schema, Some(props(DEFAULTS))).unwrap();
    let (file, _) = writer.into_serialized_writer().unwrap();
    // A nullable column is declined outright (definition levels).
    let descr = file.schema_descr().column(0);
    assert!(DictChunk::try_new(descr, &props(DEFAULTS), writes[0].as_ref()).is_none());
    // A required column given nulls is handed over.
    let descr = descriptor(DataType::Int64, &props(DEFAULTS));
    let mut chunk = DictChunk::try_new(descr, &props(DEFAULTS), writes[0].as_ref()).unwrap();
    assert!(matches!(
        chunk.write(writes[0].as_ref()).unwrap(),
        Written::Done
    ));
    assert!(matches!(
        chunk.write(writes[1].as_ref()).unwrap(),
        Written::HandOff
    ));
}

proptest! {
    /// An integer value's entry is its place in first-occurrence order, however its lookups
    /// meet in the table of recent entries: zero (the table's empty value), values that share
    /// a slot (multiples of 2^54 do), domains past the handful scanned without an index.
    #[test]
    fn int_entries_are_first_occurrence_indices(
        codes in prop::collection::vec(0usize..600, 1..3000),
        spread in prop_oneof![Just(1i64), Just(1 << 54), Just(-7919)],
    ) {
        let mut dict = IntDict::<i64>::new();
        let mut seen: Vec<i64> = Vec::new();
        for c in codes {
            let v = (c as i64).wrapping_mul(spread);
            let expected = match seen.iter().position(|&s| s == v) {
                Some(i) => i,
                None => {
                    seen.push(v);
                    seen.len() - 1
                }
            };
            prop_assert_eq!(dict.entry(v), expected as u32);
        }
        prop_assert_eq!(&dict.values, &seen);
    }
}

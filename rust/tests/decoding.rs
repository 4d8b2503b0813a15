//! Fuzzing the decoders of what the engine reads back from RocksDB.
//!
//! A store damaged on disk, or written by a future format, must give
//! `Corrupt` errors, never a panic or a huge allocation: proptest feeds each
//! decoder arbitrary bytes, and the record decoder also real records with
//! bytes flipped, cut short or extended.

mod common;

use _core::store::{decode_u64, parse_count_key, parse_index_value};
use _core::task::TaskRecord;
use _core::{EngineError, Op};
use common::{task, Fixture};
use proptest::prelude::*;

const ARBITRARY_CASES: u32 = 200_000;
const MUTATED_CASES: u32 = 100_000;

/// A record with every optional part set: a lease, an error, a history.
fn sample_record() -> Vec<u8> {
    let fixture = Fixture::new();
    let mut new_task = task("decode", 7);
    new_task.idempotency_key = Some("key-1".to_owned());
    let task_id = fixture.submit_task(new_task);
    let claimed = fixture.claim(1);
    fixture
        .engine
        .execute(Op::Fail {
            task_id,
            lease_id: claimed[0].lease_id,
            error: "boom".to_owned(),
            retry_at_ms: Some(0),
        })
        .expect("fail");
    fixture.claim(1);
    fixture.engine.get(task_id).expect("get").record.encode()
}

fn assert_corrupt_or_ok<T>(result: Result<T, EngineError>) {
    if let Err(err) = result {
        assert!(
            matches!(err, EngineError::Corrupt { .. }),
            "expected a Corrupt error, got {err:?}"
        );
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Truncate { len: usize },
    Append { tail: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=u8::MAX).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(|tail| Mutation::Append { tail }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        match mutation {
            Mutation::Flip { at, mask } if !bytes.is_empty() => {
                let at = at % bytes.len();
                bytes[at] ^= mask;
            }
            Mutation::Truncate { len } => bytes.truncate(len % (bytes.len() + 1)),
            Mutation::Append { tail } => bytes.extend_from_slice(tail),
            Mutation::Flip { .. } => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(ARBITRARY_CASES))]

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        assert_corrupt_or_ok(TaskRecord::decode(1, &bytes));
        assert_corrupt_or_ok(parse_index_value(&bytes));
        assert_corrupt_or_ok(decode_u64(&bytes, "fuzzed value"));
        let _ = parse_count_key(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(MUTATED_CASES))]

    #[test]
    fn a_damaged_record_decodes_to_a_record_or_a_corrupt_error(
        mutations in prop::collection::vec(mutation(), 1..4)
    ) {
        thread_local! {
            static SAMPLE: Vec<u8> = sample_record();
        }
        let damaged = SAMPLE.with(|sample| mutate(sample.clone(), &mutations));
        assert_corrupt_or_ok(TaskRecord::decode(1, &damaged));
    }
}

#[test]
fn the_sample_record_decodes_whole() {
    let bytes = sample_record();
    let record = TaskRecord::decode(1, &bytes).expect("a whole record decodes");
    assert_eq!(record.encode(), bytes);
    assert_eq!(record.history.len(), 2);
}

//! The one check of model inputs, whether they came from the tokenizer or as token ids.

use crate::{EmbedError, EncodeOptions, Encoding, ModelInfo, Result, TruncationDirection};

/// Makes `encodings` ready for the model, or says why one cannot be: each must hold 1 to
/// `max_input_tokens` tokens (an over-long one is cut on the asked side when
/// `options.truncate`), every id inside the vocabulary, and as many type ids as ids. Every
/// input of a request is checked before any of it is queued, so a bad one never shares a batch
/// with anyone.
///
/// # Errors
/// [`EmbedError::Validation`] naming the first bad input and why.
pub fn prepare(encodings: Vec<Encoding>, options: EncodeOptions, info: &ModelInfo) -> Result<Vec<Encoding>> {
    let max = info.max_input_tokens;
    encodings
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            if e.is_empty() {
                return Err(EmbedError::Validation(format!(
                    "input {i} holds no token ids; the model takes 1 to {max} tokens"
                )));
            }
            if e.type_ids.len() != e.ids.len() {
                return Err(EmbedError::Validation(format!("input {i}: type ids and ids differ in length")));
            }
            if let Some(id) = e.ids.iter().find(|&&id| id as usize >= info.vocab_size) {
                return Err(EmbedError::Validation(format!(
                    "input {i}: token id {id} is outside the vocabulary of {} tokens",
                    info.vocab_size
                )));
            }
            if e.len() > max {
                if !options.truncate {
                    return Err(EmbedError::Validation(format!(
                        "input {i} has {} tokens; the model takes 1 to {max}: shorten it or set `truncate` to true",
                        e.len()
                    )));
                }
                let cut = e.len() - max;
                match options.direction {
                    TruncationDirection::Right => {
                        e.ids.truncate(max);
                        e.type_ids.truncate(max);
                    }
                    TruncationDirection::Left => {
                        e.ids.drain(..cut);
                        e.type_ids.drain(..cut);
                    }
                }
            }
            Ok(e)
        })
        .collect()
}

/// Token-id inputs (complete model inputs, special tokens included) as encodings of one
/// segment, not yet checked (see [`prepare`]).
pub fn from_token_ids(lists: Vec<Vec<u32>>) -> Vec<Encoding> {
    lists.into_iter().map(|ids| Encoding { type_ids: vec![0; ids.len()], ids }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ModelInfo {
        ModelInfo { max_input_tokens: 4, ..crate::types::sample_info() }
    }

    fn token_encodings(lists: Vec<Vec<u32>>, options: EncodeOptions, info: &ModelInfo) -> Result<Vec<Encoding>> {
        prepare(from_token_ids(lists), options, info)
    }

    #[test]
    fn token_lists_are_checked_one_by_one() {
        let strict = EncodeOptions { truncate: false, ..EncodeOptions::default() };
        let ok = token_encodings(vec![vec![1, 2, 3]], strict, &info()).expect("valid");
        assert_eq!(ok, vec![Encoding { ids: vec![1, 2, 3], type_ids: vec![0, 0, 0] }]);
        let empty = token_encodings(vec![vec![1], vec![]], strict, &info()).expect_err("empty");
        assert!(empty.to_string().contains("input 1 holds no token ids"), "{empty}");
        let outside = token_encodings(vec![vec![1, 100]], strict, &info()).expect_err("outside");
        assert!(outside.to_string().contains("token id 100"), "{outside}");
        let long = token_encodings(vec![vec![1; 5]], strict, &info()).expect_err("long");
        assert!(long.to_string().contains("5 tokens"), "{long}");
    }

    #[test]
    fn over_long_token_lists_are_cut_on_the_asked_side() {
        let right = EncodeOptions::default();
        let left = EncodeOptions { direction: TruncationDirection::Left, ..right };
        let ids = vec![1, 2, 3, 4, 5, 6];
        assert_eq!(token_encodings(vec![ids.clone()], right, &info()).expect("cut")[0].ids, [1, 2, 3, 4]);
        assert_eq!(token_encodings(vec![ids], left, &info()).expect("cut")[0].ids, [3, 4, 5, 6]);
    }

    #[test]
    fn bad_encodings_are_refused_with_the_reason() {
        let enc = |ids: Vec<u32>| Encoding { type_ids: vec![0; ids.len()], ids };
        let default = EncodeOptions::default();
        for (batch, what) in [
            (vec![enc(vec![2, 999, 3])], "outside the vocabulary"),
            (vec![enc(vec![])], "1 to"),
            (vec![Encoding { ids: vec![2, 3], type_ids: vec![0] }], "differ in length"),
        ] {
            let err = prepare(batch, default, &info()).expect_err(what);
            assert!(matches!(&err, EmbedError::Validation(m) if m.contains(what)), "{err}");
        }
        let strict = EncodeOptions { truncate: false, ..default };
        let err = prepare(vec![enc(vec![5; 5])], strict, &info()).expect_err("long");
        assert!(matches!(&err, EmbedError::Validation(m) if m.contains("1 to")), "{err}");
    }
}

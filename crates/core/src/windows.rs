//! Long inputs in windows ([`LongInputs::Windows`](crate::LongInputs::Windows)): an encoding
//! longer than the model's maximum becomes windows of at most that many tokens, each with the
//! model's special tokens around its part of the text and starting `overlap` tokens before the
//! previous part ends; the windows' pooled vectors become one, weighted by their tokens.

use crate::{EmbedError, Encoding, Result};

/// The special tokens the tokenizer puts around every text, read from its encoding of an empty
/// text (`[CLS] [SEP]`, `<s> </s>`, Qwen3's end-of-text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    prefix: Vec<u32>,
    suffix: Vec<u32>,
}

impl Frame {
    /// The frame of `empty` (the encoding of `""`), as it sits around `full`: the ids both end
    /// with are the suffix, the rest of `empty` the prefix.
    pub(crate) fn of(empty: &Encoding, full: &Encoding) -> Self {
        let shared = empty.ids.iter().rev().zip(full.ids.iter().rev()).take_while(|(a, b)| a == b).count();
        let split = empty.ids.len() - shared;
        Self { prefix: empty.ids[..split].to_vec(), suffix: empty.ids[split..].to_vec() }
    }
}

/// `encoding` cut into windows of at most `max` tokens, each `overlap` tokens into the one before;
/// one window, itself, when it fits.
///
/// # Errors
/// [`EmbedError::Validation`] when `overlap` leaves a window no new tokens.
pub(crate) fn split(encoding: Encoding, frame: &Frame, max: usize, overlap: usize) -> Result<Vec<Encoding>> {
    if encoding.len() <= max {
        return Ok(vec![encoding]);
    }
    let framing = frame.prefix.len() + frame.suffix.len();
    let room = max.saturating_sub(framing);
    if overlap >= room {
        return Err(EmbedError::Validation(format!(
            "a window overlap of {overlap} tokens leaves no new tokens in windows of {room}"
        )));
    }
    let body = &encoding.ids[frame.prefix.len()..encoding.len() - frame.suffix.len()];
    let types = &encoding.type_ids[frame.prefix.len()..encoding.len() - frame.suffix.len()];
    let kind = encoding.type_ids.first().copied().unwrap_or(0);
    let mut windows = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + room).min(body.len());
        let ids: Vec<u32> = frame.prefix.iter().chain(&body[start..end]).chain(&frame.suffix).copied().collect();
        let type_ids: Vec<u32> = std::iter::repeat_n(kind, frame.prefix.len())
            .chain(types[start..end].iter().copied())
            .chain(std::iter::repeat_n(kind, frame.suffix.len()))
            .collect();
        windows.push(Encoding { ids, type_ids });
        if end == body.len() {
            return Ok(windows);
        }
        start = end - overlap;
    }
}

/// The windows' pooled vectors as one: their mean weighted by each window's tokens.
pub(crate) fn pool(vectors: Vec<Vec<f32>>, tokens: &[usize]) -> Vec<f32> {
    let total: usize = tokens.iter().sum();
    let mut out = vec![0.0f32; vectors.first().map_or(0, Vec::len)];
    for (v, &n) in vectors.iter().zip(tokens) {
        let weight = n as f32 / total.max(1) as f32;
        out.iter_mut().zip(v).for_each(|(o, x)| *o += weight * x);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ids: Vec<u32>) -> Encoding {
        let type_ids = vec![0; ids.len()];
        Encoding { ids, type_ids }
    }

    #[test]
    fn the_frame_is_what_an_empty_text_puts_around_the_text() {
        let bert = Frame::of(&enc(vec![101, 102]), &enc(vec![101, 7, 8, 102]));
        assert_eq!((bert.prefix, bert.suffix), (vec![101], vec![102]));
        let qwen = Frame::of(&enc(vec![9]), &enc(vec![4, 5, 9]));
        assert_eq!((qwen.prefix, qwen.suffix), (vec![], vec![9]));
        let prefix_only = Frame::of(&enc(vec![101]), &enc(vec![101, 4, 5]));
        assert_eq!((prefix_only.prefix, prefix_only.suffix), (vec![101], vec![]));
    }

    #[test]
    fn windows_overlap_keep_the_frame_and_cover_every_token() {
        let frame = Frame::of(&enc(vec![101, 102]), &enc(vec![101, 1, 102]));
        let long = enc([101].into_iter().chain(1..=10).chain([102]).collect());
        let windows = split(long, &frame, 6, 1).expect("windows");
        let ids: Vec<Vec<u32>> = windows.into_iter().map(|w| w.ids).collect();
        assert_eq!(ids, vec![vec![101, 1, 2, 3, 4, 102], vec![101, 4, 5, 6, 7, 102], vec![101, 7, 8, 9, 10, 102],]);
        assert_eq!(split(enc(vec![101, 1, 102]), &frame, 6, 1).expect("fits").len(), 1);
        assert!(split(enc((0..20).collect()), &frame, 6, 4).is_err(), "no new tokens per window");
    }

    #[test]
    fn the_pooled_vector_weighs_each_window_by_its_tokens() {
        assert_eq!(pool(vec![vec![1.0, 0.0], vec![0.0, 1.0]], &[3, 1]), vec![0.75, 0.25]);
    }
}

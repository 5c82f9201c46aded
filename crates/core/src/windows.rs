//! Long inputs in windows ([`LongInputs::Windows`](crate::LongInputs::Windows)): an encoding
//! longer than the model's maximum becomes windows of at most that many tokens, each with the
//! model's special tokens (read from the tokenizer's encodings of `""` and `"a"`) around its
//! part of the text and starting `overlap` tokens before the
//! previous part ends; the windows' pooled vectors become one: their maximum for max and SPLADE
//! pooling, else their mean weighted by their tokens.

use crate::{EmbedError, Encoding, Pooling, Result};

/// The special tokens the tokenizer puts around every text (`[CLS] [SEP]`, `<s> </s>`, Qwen3's
/// end-of-text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    prefix: Vec<u32>,
    suffix: Vec<u32>,
}

impl Frame {
    /// The frame from the encodings of `""` (`empty`) and of a one-letter text (`probe`): the
    /// ids both start with are the prefix, the rest of `empty` the suffix. Read from fixed
    /// texts, not a request's, so a text that holds a special token of its own cannot move it.
    pub(crate) fn of(empty: &Encoding, probe: &Encoding) -> Self {
        let shared = empty.ids.iter().zip(&probe.ids).take_while(|(a, b)| a == b).count();
        Self { prefix: empty.ids[..shared].to_vec(), suffix: empty.ids[shared..].to_vec() }
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

/// Each text's windows as one vector, and its tokens those of all its windows: `vectors` and
/// `tokens` are per window, `windows` how many of them each text became, in order.
pub(crate) fn pool_texts(
    vectors: Vec<Vec<f32>>,
    tokens: Vec<usize>,
    windows: &[usize],
    pooling: Pooling,
) -> (Vec<Vec<f32>>, Vec<usize>) {
    let (mut vectors, mut tokens) = (vectors.into_iter(), tokens.into_iter());
    windows
        .iter()
        .map(|&n| {
            let (group, sizes): (Vec<Vec<f32>>, Vec<usize>) = vectors.by_ref().zip(tokens.by_ref()).take(n).unzip();
            let total: usize = sizes.iter().sum();
            (pool(group, &sizes, pooling), total)
        })
        .unzip()
}

/// The windows' pooled vectors as one, as `pooling` pools tokens: the element-wise maximum for
/// max and SPLADE pooling (the maximum over every window's tokens), else their mean weighted by
/// each window's tokens.
fn pool(vectors: Vec<Vec<f32>>, tokens: &[usize], pooling: Pooling) -> Vec<f32> {
    let width = vectors.first().map_or(0, Vec::len);
    if matches!(pooling, Pooling::Max | Pooling::Splade) {
        return vectors.into_iter().fold(vec![f32::NEG_INFINITY; width], |mut m, v| {
            m.iter_mut().zip(v).for_each(|(m, x)| *m = m.max(x));
            m
        });
    }
    let total: usize = tokens.iter().sum();
    let mut out = vec![0.0f32; width];
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
        let bert = Frame::of(&enc(vec![101, 102]), &enc(vec![101, 1037, 102]));
        assert_eq!((bert.prefix, bert.suffix), (vec![101], vec![102]));
        let qwen = Frame::of(&enc(vec![9]), &enc(vec![64, 9]));
        assert_eq!((qwen.prefix, qwen.suffix), (vec![], vec![9]));
        let prefix_only = Frame::of(&enc(vec![101]), &enc(vec![101, 1037]));
        assert_eq!((prefix_only.prefix, prefix_only.suffix), (vec![101], vec![]));
    }

    #[test]
    fn windows_overlap_keep_the_frame_and_cover_every_token() {
        let frame = Frame::of(&enc(vec![101, 102]), &enc(vec![101, 1037, 102]));
        let long = enc([101].into_iter().chain(1..=10).chain([102]).collect());
        let windows = split(long, &frame, 6, 1).expect("windows");
        let ids: Vec<Vec<u32>> = windows.into_iter().map(|w| w.ids).collect();
        assert_eq!(ids, vec![vec![101, 1, 2, 3, 4, 102], vec![101, 4, 5, 6, 7, 102], vec![101, 7, 8, 9, 10, 102],]);
        assert_eq!(split(enc(vec![101, 1, 102]), &frame, 6, 1).expect("fits").len(), 1);
        assert!(split(enc((0..20).collect()), &frame, 6, 4).is_err(), "no new tokens per window");
    }

    #[test]
    fn the_pooled_vector_weighs_each_window_by_its_tokens_or_takes_the_maximum() {
        let windows = || vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        assert_eq!(pool(windows(), &[3, 1], Pooling::Mean), vec![0.75, 0.25]);
        assert_eq!(pool(windows(), &[3, 1], Pooling::Max), vec![1.0, 1.0]);
        assert_eq!(pool(windows(), &[3, 1], Pooling::Splade), vec![1.0, 1.0]);
        let (texts, tokens) =
            pool_texts(vec![vec![2.0], vec![1.0, 0.0], vec![0.0, 1.0]], vec![5, 3, 1], &[1, 2], Pooling::Mean);
        assert_eq!((texts, tokens), (vec![vec![2.0], vec![0.75, 0.25]], vec![5, 4]), "each text its own windows");
    }
}

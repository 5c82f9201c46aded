//! Quantized forms of finished vectors, as sentence-transformers' `quantize_embeddings` makes
//! them and Cohere's embed API returns them: `int8` and `uint8` map a calibrated range onto 256
//! steps (`int8` is `uint8 - 128`); `binary` and `ubinary` keep one bit per value (set when the value is
//! above zero), packed eight to a byte, most significant bit first.

/// The texts whose vectors calibrate `int8` and `uint8` (every fourth sentence of the short
/// benchmark corpus, from the second: 256 short English sentences).
pub const CALIBRATION_TEXTS: &str = include_str!("calibration.txt");

/// A form a client may ask vectors in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputType {
    /// f32 values.
    Float,
    /// One signed byte per value: its step in the calibrated range, minus 128.
    Int8,
    /// One unsigned byte per value: its step in the calibrated range.
    Uint8,
    /// Packed bits as signed bytes (`ubinary - 128`).
    Binary,
    /// Packed bits as unsigned bytes.
    Ubinary,
}

impl OutputType {
    /// The name Cohere's API and sentence-transformers give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Float => "float",
            Self::Int8 => "int8",
            Self::Uint8 => "uint8",
            Self::Binary => "binary",
            Self::Ubinary => "ubinary",
        }
    }

    /// Whether it needs the model's calibrated ranges.
    pub fn is_calibrated(self) -> bool {
        matches!(self, Self::Int8 | Self::Uint8)
    }
}

/// The value range of each dimension (one for every dimension, [`Ranges::symmetric`]), cut into
/// 255 steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranges {
    starts: Vec<f32>,
    steps: Vec<f32>,
}

impl Ranges {
    /// One range for every dimension, `[-M, M]`, `M` the largest magnitude of any value of
    /// `vectors`: the codes' dot products then keep the vectors' order (on the short corpus,
    /// 99.0% of nearest neighbours against 71.7% with each dimension's own range:
    /// `scripts/quantization_retrieval.py`, docs/api.md). `quantize_embeddings` gives the same
    /// codes with `ranges = [[-M] * d, [M] * d]`.
    pub fn symmetric<'a>(vectors: impl IntoIterator<Item = &'a [f32]>) -> Self {
        let mut dimension = 0;
        let mut magnitude = 0.0f32;
        for v in vectors {
            dimension = dimension.max(v.len());
            magnitude = v.iter().fold(magnitude, |m, x| m.max(x.abs()));
        }
        Self { starts: vec![-magnitude; dimension], steps: vec![2.0 * magnitude / 255.0; dimension] }
    }

    /// Each value's step from its dimension's start, rounded down and kept within 0..=255
    /// (values outside the calibrated range take its end), as `quantize_embeddings` computes
    /// them; a dimension without a range (every calibration value alike) counts in steps of 1.
    fn levels<'a>(&'a self, v: &'a [f32]) -> impl Iterator<Item = u8> + 'a {
        v.iter().zip(self.starts.iter().zip(&self.steps)).map(|(x, (start, step))| {
            let step = if *step == 0.0 { 1.0 } else { *step };
            ((x - start) / step).floor().clamp(0.0, 255.0) as u8
        })
    }

    /// `v` as unsigned bytes.
    pub fn uint8(&self, v: &[f32]) -> Vec<u8> {
        self.levels(v).collect()
    }

    /// `v` as signed bytes: [`uint8`](Self::uint8) minus 128.
    pub fn int8(&self, v: &[f32]) -> Vec<i8> {
        self.levels(v).map(|l| (i16::from(l) - 128) as i8).collect()
    }
}

/// One vector in each form a request asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Quantized {
    /// f32 values.
    pub float: Option<Vec<f32>>,
    /// Calibrated signed bytes.
    pub int8: Option<Vec<i8>>,
    /// Calibrated unsigned bytes.
    pub uint8: Option<Vec<u8>>,
    /// Packed bits as signed bytes.
    pub binary: Option<Vec<i8>>,
    /// Packed bits as unsigned bytes.
    pub ubinary: Option<Vec<u8>>,
}

impl Quantized {
    /// `v` in each of `types`; `ranges` serve `int8` and `uint8` (neither is given without
    /// them).
    pub fn of(v: Vec<f32>, types: &[OutputType], ranges: Option<&Ranges>) -> Self {
        let wants = |t: OutputType| types.contains(&t);
        Self {
            int8: ranges.filter(|_| wants(OutputType::Int8)).map(|r| r.int8(&v)),
            uint8: ranges.filter(|_| wants(OutputType::Uint8)).map(|r| r.uint8(&v)),
            binary: wants(OutputType::Binary).then(|| binary(&v)),
            ubinary: wants(OutputType::Ubinary).then(|| ubinary(&v)),
            float: wants(OutputType::Float).then_some(v),
        }
    }
}

/// One bit per value of `v`, set when it is above zero, eight to a byte, most significant bit
/// first; the last byte padded with zero bits (numpy's `packbits`).
pub fn ubinary(v: &[f32]) -> Vec<u8> {
    v.chunks(8)
        .map(|bits| bits.iter().enumerate().fold(0u8, |byte, (i, x)| byte | (u8::from(*x > 0.0) << (7 - i))))
        .collect()
}

/// [`ubinary`] minus 128, as signed bytes.
pub fn binary(v: &[f32]) -> Vec<i8> {
    ubinary(v).into_iter().map(|b| (i16::from(b) - 128) as i8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_packed_most_significant_first_and_padded() {
        let v = [1.0, -1.0, 0.0, 2.0, 0.5, -0.5, 3.0, 0.1, 4.0, -4.0];
        assert_eq!(ubinary(&v), vec![0b1001_1011, 0b1000_0000]);
        assert_eq!(binary(&v), vec![27, 0], "155 - 128 and 128 - 128");
    }

    #[test]
    fn levels_span_the_largest_magnitude_both_ways_and_clamp_outside_it() {
        let calibration = [vec![0.0, -0.5], vec![1.0, 0.25]];
        let ranges = Ranges::symmetric(calibration.iter().map(Vec::as_slice));
        assert_eq!(ranges.uint8(&[-1.0, 0.0]), vec![0, 127], "-1 the bottom; 127.5 cut down");
        assert_eq!(ranges.uint8(&[0.5, 3.0]), vec![191, 255], "191.25 cut down; above the range, the top");
        assert_eq!(ranges.int8(&[0.0, -3.0]), vec![-1, -128], "127 - 128; below the range, the bottom");
        assert_eq!(ranges.int8(&[0.5, 0.9999]), vec![63, 126], "uint8 - 128");
    }
}

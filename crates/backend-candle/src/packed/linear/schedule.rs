//! How one product is cut into tasks across the threads: row chunks of whole register tiles,
//! and for few rows (one sentence) each chunk's panels in runs as well.

/// Tiles of rows one task takes at most.
pub const CHUNK_TILES: usize = 8;

/// Tiles of rows one task takes at most from contiguous f32 panels (below AVX-512, where the
/// tiles take every product) or f16 ones: a task reads each of its panels from memory once, so a larger
/// chunk reads the weights fewer times per row, and one panel's accumulators for 192 rows
/// (48 KiB) stay in the L2 cache.
pub const STREAM_CHUNK_TILES: usize = 32;

/// How one product is cut into tasks: `chunks` row chunks of `chunk_tiles` tiles each (the last
/// may be shorter), and each chunk's panels in `groups` runs.
#[derive(Debug, PartialEq)]
pub(super) struct Split {
    pub(super) chunks: usize,
    pub(super) chunk_tiles: usize,
    pub(super) groups: usize,
}

impl Split {
    /// Row chunks of at most `most` tiles, cut as [`row_chunks`] cuts them; when there are
    /// fewer than two per thread, the panels are split as well (which costs no extra weight
    /// traffic, unlike smaller row chunks), so every thread has work even for one sentence.
    pub(super) fn new(tiles: usize, panels: usize, threads: usize, most: usize) -> Self {
        let (chunks, chunk_tiles) = chunks_of(tiles, threads, most);
        let groups = if threads > 1 && chunks < 2 * threads { (2 * threads).div_ceil(chunks).min(panels) } else { 1 };
        Self { chunks, chunk_tiles, groups: groups.max(1) }
    }
}

/// `tiles` tiles of rows cut into chunks of at most [`CHUNK_TILES`] tiles, as even as whole
/// tiles allow and a multiple of the threads where there are at least two per thread: the
/// number of chunks and the tiles of each (the last may have fewer).
pub fn row_chunks(tiles: usize, threads: usize) -> (usize, usize) {
    chunks_of(tiles, threads, CHUNK_TILES)
}

/// [`row_chunks`] with chunks of at most `most` tiles.
fn chunks_of(tiles: usize, threads: usize, most: usize) -> (usize, usize) {
    let mut chunks = tiles.div_ceil(most).max(1);
    if threads > 1 && chunks >= 2 * threads {
        chunks = chunks.next_multiple_of(threads).min(tiles);
    }
    let chunk_tiles = tiles.div_ceil(chunks).max(1);
    (tiles.div_ceil(chunk_tiles).max(1), chunk_tiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_gets_work_from_one_sentence_to_a_large_batch() {
        // One sentence of 21 tokens: four tiles, the panels of a (384, 384) product in four runs.
        assert_eq!(Split::new(4, 6, 2, CHUNK_TILES), Split { chunks: 1, chunk_tiles: 4, groups: 4 });
        // Eight sentences: 28 tiles in four even row chunks, two per thread.
        assert_eq!(Split::new(28, 24, 2, CHUNK_TILES), Split { chunks: 4, chunk_tiles: 7, groups: 1 });
        // Three chunks: too few for two per thread, so the panels split too.
        assert_eq!(Split::new(20, 6, 2, CHUNK_TILES), Split { chunks: 3, chunk_tiles: 7, groups: 2 });
        // A large batch: chunks of at most eight tiles, a multiple of the threads.
        assert_eq!(Split::new(112, 6, 2, CHUNK_TILES), Split { chunks: 14, chunk_tiles: 8, groups: 1 });
        assert_eq!(Split::new(50, 6, 2, CHUNK_TILES), Split { chunks: 8, chunk_tiles: 7, groups: 1 });
        // Contiguous f32 panels: 32 sentences' 102 tiles in four chunks, each panel read four
        // times rather than fourteen; 75 tiles in three, their panels in two runs.
        assert_eq!(Split::new(102, 24, 2, STREAM_CHUNK_TILES), Split { chunks: 4, chunk_tiles: 26, groups: 1 });
        assert_eq!(Split::new(75, 24, 2, STREAM_CHUNK_TILES), Split { chunks: 3, chunk_tiles: 25, groups: 2 });
        // One thread: rows only, nothing to spread.
        assert_eq!(Split::new(4, 6, 1, CHUNK_TILES), Split { chunks: 1, chunk_tiles: 4, groups: 1 });
    }
}

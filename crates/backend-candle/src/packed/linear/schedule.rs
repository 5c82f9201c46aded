//! How one product is cut into tasks across the threads: row chunks of whole register tiles,
//! and for few rows (one sentence) each chunk's panels in runs as well.

/// Tiles of rows one task takes at most.
pub const CHUNK_TILES: usize = 8;

/// How one product is cut into tasks: `chunks` row chunks of `chunk_tiles` tiles each (the last
/// may be shorter), and each chunk's panels in `groups` runs.
#[derive(Debug, PartialEq)]
pub(super) struct Split {
    pub(super) chunks: usize,
    pub(super) chunk_tiles: usize,
    pub(super) groups: usize,
}

impl Split {
    /// Row chunks as [`row_chunks`] cuts them; when there are fewer than two per thread, the
    /// panels are split as well (which costs no extra weight traffic, unlike smaller row
    /// chunks), so every thread has work even for one sentence.
    pub(super) fn new(tiles: usize, panels: usize, threads: usize) -> Self {
        let (chunks, chunk_tiles) = row_chunks(tiles, threads);
        let groups = if threads > 1 && chunks < 2 * threads { (2 * threads).div_ceil(chunks).min(panels) } else { 1 };
        Self { chunks, chunk_tiles, groups: groups.max(1) }
    }
}

/// `tiles` tiles of rows cut into chunks of at most [`CHUNK_TILES`] tiles, as even as whole
/// tiles allow and a multiple of the threads where there are at least two per thread: the
/// number of chunks and the tiles of each (the last may have fewer).
pub fn row_chunks(tiles: usize, threads: usize) -> (usize, usize) {
    let mut chunks = tiles.div_ceil(CHUNK_TILES).max(1);
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
        assert_eq!(Split::new(4, 6, 2), Split { chunks: 1, chunk_tiles: 4, groups: 4 });
        // Eight sentences: 28 tiles in four even row chunks, two per thread.
        assert_eq!(Split::new(28, 24, 2), Split { chunks: 4, chunk_tiles: 7, groups: 1 });
        // Three chunks: too few for two per thread, so the panels split too.
        assert_eq!(Split::new(20, 6, 2), Split { chunks: 3, chunk_tiles: 7, groups: 2 });
        // A large batch: chunks of at most eight tiles, a multiple of the threads.
        assert_eq!(Split::new(112, 6, 2), Split { chunks: 14, chunk_tiles: 8, groups: 1 });
        assert_eq!(Split::new(50, 6, 2), Split { chunks: 8, chunk_tiles: 7, groups: 1 });
        // One thread: rows only, nothing to spread.
        assert_eq!(Split::new(4, 6, 1), Split { chunks: 1, chunk_tiles: 4, groups: 1 });
    }
}

//! Choosing which queued items form the next batch: within the limits, oldest first, and for
//! padded backends grouped by similar length.

/// The limits one batch must respect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Most items.
    pub max_items: usize,
    /// Most tokens.
    pub max_tokens: usize,
    /// Whether a batch costs `longest x items` (true) or the sum of the costs (false).
    pub padded: bool,
    /// Padded batches only: the least share (percent) of a batch's padded cost that must be
    /// real tokens; an item that would pad the batch below it waits for a better-fitting batch.
    pub min_fill_percent: usize,
}

impl Budget {
    /// Cost of a batch whose items cost `costs`.
    pub fn cost(&self, costs: impl Iterator<Item = usize>) -> usize {
        if self.padded {
            let (n, longest) = costs.fold((0, 0), |(n, m), c| (n + 1, m.max(c)));
            n * longest
        } else {
            costs.sum()
        }
    }

    fn fits(&self, items: usize, longest: usize, sum: usize) -> bool {
        if items > self.max_items {
            return false;
        }
        if !self.padded {
            return sum <= self.max_tokens;
        }
        let padded = items * longest;
        padded <= self.max_tokens && sum * 100 >= padded * self.min_fill_percent
    }
}

/// Picks the next batch from a queue whose items (oldest first) cost `costs`; returns their
/// positions, ascending.
///
/// The oldest item is always taken (alone if it exceeds the budget by itself), so nothing
/// starves. Without padding, items follow in queue order. With padding, the items closest in
/// length to the oldest one are preferred (ties by age), and an item joins only while the
/// batch stays at least `min_fill_percent` real tokens, which cuts the padded work: one long
/// text does not make thirty short ones pay for its length.
pub fn pick(costs: &[usize], budget: &Budget) -> Vec<usize> {
    let Some(&first) = costs.first() else {
        return Vec::new();
    };
    let mut order: Vec<usize> = (1..costs.len()).collect();
    if budget.padded {
        order.sort_by_key(|&i| (costs[i].abs_diff(first), i));
    }
    let mut chosen = vec![0];
    let (mut longest, mut sum) = (first, first);
    for i in order {
        if chosen.len() == budget.max_items {
            break;
        }
        let c = costs[i];
        if budget.fits(chosen.len() + 1, longest.max(c), sum + c) {
            chosen.push(i);
            longest = longest.max(c);
            sum += c;
        }
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    const PADDED: Budget = Budget { max_items: 4, max_tokens: 100, padded: true, min_fill_percent: 0 };

    #[test]
    fn everything_goes_when_it_fits() {
        assert_eq!(pick(&[5, 30, 7], &PADDED), vec![0, 1, 2]);
        assert!(pick(&[], &PADDED).is_empty());
    }

    #[test]
    fn the_oldest_always_goes_even_alone_over_budget() {
        assert_eq!(pick(&[500, 5, 5], &PADDED), vec![0]);
    }

    #[test]
    fn padded_batches_group_lengths_near_the_oldest() {
        // 6 items, only 4 fit by count: the ones nearest 10 tokens join the oldest.
        let costs = [10, 90, 11, 9, 80, 12];
        assert_eq!(pick(&costs, &PADDED), vec![0, 2, 3, 5]);
    }

    #[test]
    fn padded_token_budget_counts_longest_times_items() {
        // 30 x 4 = 120 > 100, so only three of the 30-token items fit.
        let costs = [30, 30, 30, 30, 30];
        let chosen = pick(&costs, &PADDED);
        assert_eq!(chosen, vec![0, 1, 2]);
        assert!(PADDED.cost(chosen.iter().map(|&i| costs[i])) <= PADDED.max_tokens);
    }

    #[test]
    fn a_long_text_does_not_pad_many_short_ones() {
        let budget = Budget { max_items: 32, max_tokens: 8192, padded: true, min_fill_percent: 50 };
        // 130 + 14 fills 144 of 260 padded tokens (55%); a second short one would be 40%.
        assert_eq!(pick(&[130, 14, 14, 14], &budget), vec![0, 1]);
        // Short ones then go together.
        assert_eq!(pick(&[14, 14, 12], &budget), vec![0, 1, 2]);
    }

    #[test]
    fn unpadded_batches_keep_queue_order_and_sum_costs() {
        let budget = Budget { max_items: 10, max_tokens: 50, padded: false, min_fill_percent: 50 };
        // 10 + 30 fits, 45 does not, 5 still does.
        assert_eq!(pick(&[10, 30, 45, 5, 20], &budget), vec![0, 1, 3]);
        assert_eq!(budget.cost([10, 30, 5].into_iter()), 45);
    }
}

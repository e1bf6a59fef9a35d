//! Moving a record onto another clock: a merge puts every shard's records on one clock, each
//! shard's stamps moved by its clock origin's distance from the earliest shard's.

use super::RequestRecord;

impl RequestRecord {
    /// Moves every stamp `by_us` later: onto a clock whose origin is `by_us` earlier (a merge
    /// puts shards' records on one clock). Offsets within the record are unchanged.
    pub fn rebase(&mut self, by_us: u64) {
        for t in [
            &mut self.intended_us,
            &mut self.dispatched_us,
            &mut self.end_us,
        ] {
            *t += by_us;
        }
        for t in [
            &mut self.admitted_us,
            &mut self.sent_us,
            &mut self.headers_us,
            &mut self.first_token_us,
            &mut self.first_answer_us,
            &mut self.last_token_us,
        ]
        .into_iter()
        .flatten()
        {
            *t += by_us;
        }
        for a in &mut self.failed_attempts {
            a.sent_us += by_us;
            a.end_us += by_us;
        }
    }
}

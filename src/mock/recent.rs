//! A map by request id that keeps only recent ids, so a mock that serves for hours (or the
//! built-in mock of a long run) holds bounded memory for its per-request log and retry counts.

use std::collections::HashMap;

/// Request ids a mock remembers, at most (its timing log and retry counts each).
pub const REMEMBERED_IDS: usize = 200_000;

/// Values by request id; once `cap` ids are held, the older half (by id) is forgotten.
#[derive(Debug)]
pub struct Recent<T> {
    map: HashMap<u64, T>,
    cap: usize,
    newest: u64,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Self::with_capacity(REMEMBERED_IDS)
    }
}

impl<T> Recent<T> {
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap: cap.max(2),
            newest: 0,
        }
    }

    /// The value for `id`, inserted with `make` when absent.
    pub fn entry(&mut self, id: u64, make: impl FnOnce() -> T) -> &mut T {
        if !self.map.contains_key(&id) && self.map.len() >= self.cap {
            let keep_from = self.newest.saturating_sub(self.cap as u64 / 2);
            self.map.retain(|&k, _| k >= keep_from);
            if self.map.len() >= self.cap {
                self.map.clear(); // ids far apart: start over rather than grow
            }
        }
        self.newest = self.newest.max(id);
        self.map.entry(id).or_insert_with(make)
    }

    #[cfg(test)]
    fn get(&self, id: &u64) -> Option<&T> {
        self.map.get(id)
    }

    pub fn get_mut(&mut self, id: &u64) -> Option<&mut T> {
        self.map.get_mut(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&u64, &T)> {
        self.map.iter()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_capacity_and_keeps_the_newest_ids() {
        let mut r = Recent::with_capacity(100);
        for id in 0..10_000u64 {
            *r.entry(id, || 0) += 1;
            assert!(r.len() <= 100);
        }
        assert!(r.get(&9_999).is_some() && r.get(&9_950).is_some());
        assert!(r.get(&0).is_none());
        // A repeated id is the same entry.
        *r.entry(9_999, || 0) += 1;
        assert_eq!(r.get(&9_999), Some(&2));
        // Ids far apart cannot grow it either.
        for k in 0..1_000u64 {
            r.entry(k * 1_000_000_007 % 97, || 0);
            assert!(r.len() <= 100);
        }
    }
}

//! The in-memory index of live messages: where each one's record is, 8 bytes per message.
//!
//! Slots are kept in `seq` order from `base`, so a message is found by subtraction. Removed messages
//! leave a removed slot until everything before them is gone too; a jump in `seq` (the reservation
//! skip after a reboot) is filled with removed slots, so a slot's index is always `seq - base`.

use std::collections::{BTreeMap, VecDeque};

/// Where a live message's record is; `len == 0` marks a removed slot.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub offset: u32,
    pub len: u32,
}

const REMOVED_SLOT: Slot = Slot { offset: 0, len: 0 };

impl Slot {
    fn is_live(self) -> bool {
        self.len != 0
    }
}

#[derive(Debug)]
pub(super) struct Index {
    /// `slots[i]` is message `base + i`.
    slots: VecDeque<Slot>,
    base: u64,
    live: u64,
}

impl Index {
    /// The index of what replay found live; `next_seq` is where an empty index starts.
    ///
    /// Returns the first `seq` whose distance from the oldest does not fit in memory, if any.
    pub fn from_replay(live: BTreeMap<u64, Slot>, next_seq: u64) -> Result<Self, u64> {
        let mut index = Self {
            slots: VecDeque::new(),
            base: next_seq,
            live: 0,
        };
        if let Some((&first, _)) = live.first_key_value() {
            index.base = first;
            for (seq, slot) in live {
                let at = usize::try_from(seq - first).map_err(|_| seq)?;
                if index.slots.len() < at {
                    index.slots.resize(at, REMOVED_SLOT);
                }
                index.slots.push_back(slot);
                index.live += 1;
            }
        }
        Ok(index)
    }

    /// Add the newest message. `seq` is above every `seq` in the index.
    ///
    /// Returns `seq` back as an error when its distance from the oldest does not fit in memory.
    pub fn push(&mut self, seq: u64, slot: Slot) -> Result<(), u64> {
        if self.slots.is_empty() {
            self.base = seq;
        } else {
            let at = usize::try_from(seq - self.base).map_err(|_| seq)?;
            self.slots.resize(at, REMOVED_SLOT);
        }
        self.slots.push_back(slot);
        self.live += 1;
        Ok(())
    }

    /// Take messages out; returns the ones that were live. `next_seq` is where an emptied index starts.
    pub fn forget(&mut self, seqs: &[u64], next_seq: u64) -> Vec<u64> {
        let mut removed = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            if let Some(slot) = self.position(seq).and_then(|at| self.slots.get_mut(at))
                && slot.is_live()
            {
                *slot = REMOVED_SLOT;
                removed.push(seq);
            }
        }
        self.live -= removed.len() as u64;
        while self.slots.front().is_some_and(|slot| !slot.is_live()) {
            self.slots.pop_front();
            self.base += 1;
        }
        if self.slots.is_empty() {
            self.base = next_seq;
        }
        removed
    }

    /// Live messages with `seq >= from`, oldest first.
    pub fn live_from(&self, from: u64) -> impl Iterator<Item = (u64, Slot)> + '_ {
        let start = from.max(self.base);
        let skip = usize::try_from(start - self.base).unwrap_or(usize::MAX);
        self.slots
            .iter()
            .enumerate()
            .skip(skip)
            .filter(|(_, slot)| slot.is_live())
            .map(|(at, slot)| (self.base + at as u64, *slot))
    }

    pub fn is_live(&self, seq: u64) -> bool {
        self.position(seq)
            .and_then(|at| self.slots.get(at))
            .is_some_and(|slot| slot.is_live())
    }

    pub fn first_seq(&self) -> Option<u64> {
        self.live_from(0).next().map(|(seq, _)| seq)
    }

    /// The newest message's slot.
    #[cfg(test)]
    pub fn newest(&self) -> Option<Slot> {
        self.slots.back().copied()
    }

    pub fn len(&self) -> u64 {
        self.live
    }

    fn position(&self, seq: u64) -> Option<usize> {
        seq.checked_sub(self.base)
            .and_then(|at| usize::try_from(at).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(offset: u32) -> Slot {
        Slot { offset, len: 10 }
    }

    fn seqs(index: &Index) -> Vec<u64> {
        index.live_from(0).map(|(seq, _)| seq).collect()
    }

    #[test]
    fn a_gap_in_seq_is_bridged_and_forgotten_fronts_are_trimmed() {
        let mut index = Index::from_replay(BTreeMap::new(), 1).unwrap();
        index.push(1, slot(0)).unwrap();
        index.push(2, slot(10)).unwrap();
        index.push(10_001, slot(20)).unwrap();
        assert_eq!((seqs(&index), index.len()), (vec![1, 2, 10_001], 3));
        assert_eq!(
            index.live_from(3).next().map(|(s, l)| (s, l.offset)),
            Some((10_001, 20))
        );
        assert_eq!(index.forget(&[2, 2, 7], 10_002), [2]);
        assert!(index.is_live(1) && !index.is_live(2) && !index.is_live(0));
        assert_eq!(index.forget(&[1], 10_002), [1]);
        assert_eq!(index.first_seq(), Some(10_001));
        assert_eq!(index.forget(&[10_001], 10_002), [10_001]);
        assert_eq!((index.first_seq(), index.len()), (None, 0));
        index.push(10_002, slot(30)).unwrap();
        assert_eq!(seqs(&index), [10_002]);
    }

    #[test]
    fn replay_rebuilds_the_same_index() {
        let live = BTreeMap::from([(4, slot(0)), (6, slot(10))]);
        let index = Index::from_replay(live, 7).unwrap();
        assert_eq!((seqs(&index), index.len()), (vec![4, 6], 2));
        assert_eq!(
            Index::from_replay(BTreeMap::new(), 7).unwrap().first_seq(),
            None
        );
    }
}

//! A small deterministic command generator (no proptest at run time, so any store's tests can
//! use it).

use crate::command::{Command, Expected, NewValue};

/// Generates commands over a small key space from a seed, so that operations collide on the
/// same keys often. The same seed always gives the same sequence.
#[derive(Clone, Debug)]
pub struct Workload {
    state: u64,
}

impl Workload {
    /// A generator for `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Workload {
        Workload {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    /// The next pseudo-random number (xorshift64*).
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// A key of one to three letters from `a`..=`d`.
    pub fn key(&mut self) -> Vec<u8> {
        let len = 1 + self.below(3) as usize;
        (0..len).map(|_| b'a' + self.below(4) as u8).collect()
    }

    fn value(&mut self) -> Vec<u8> {
        let len = self.below(6) as usize;
        (0..len).map(|_| self.below(256) as u8).collect()
    }

    /// An optional range bound (absent one time in four).
    pub fn maybe_bound(&mut self) -> Option<Vec<u8>> {
        self.maybe_key()
    }

    fn maybe_key(&mut self) -> Option<Vec<u8>> {
        (self.below(4) != 0).then(|| self.key())
    }

    /// The next command.
    pub fn command(&mut self) -> Command {
        match self.below(16) {
            0..=4 => Command::Set {
                key: self.key(),
                value: self.value(),
            },
            5 | 6 => Command::SetMany {
                pairs: (0..self.below(4))
                    .map(|_| (self.key(), self.value()))
                    .collect(),
            },
            7 | 8 => Command::Delete { key: self.key() },
            9 => Command::DeleteMany {
                keys: (0..self.below(4)).map(|_| self.key()).collect(),
            },
            10 => Command::DeletePrefix {
                prefix: (0..self.below(2))
                    .map(|_| b'a' + self.below(4) as u8)
                    .collect(),
            },
            11 => Command::DeleteRange {
                min: self.maybe_key(),
                max: self.maybe_key(),
            },
            12 if self.below(4) == 0 => Command::DeleteAll,
            _ => {
                let expected = match self.below(3) {
                    0 => Expected::Value(self.value()),
                    1 => Expected::Revision(self.below(20)),
                    _ => Expected::Absent,
                };
                let new = if self.below(3) == 0 {
                    NewValue::Delete
                } else {
                    NewValue::Value(self.value())
                };
                Command::CompareAndSet {
                    key: self.key(),
                    expected,
                    new,
                }
            }
        }
    }
}

//! A linearizability checker for the history of one key (Wing & Gong's search with Lowe's
//! memoisation).
//!
//! A history is linearizable if its operations can be put in one order that respects real
//! time (an operation that returned before another was invoked comes first) and in which
//! every operation gets exactly the answer the sequential specification gives. The search
//! tries, depth first, every operation that may come next; it remembers each pair of
//! (set of operations already placed, state of the key) it has tried, so no pair is
//! explored twice. The store's records are independent, so each key is checked on its own.

use std::collections::{HashMap, HashSet};
use std::fmt;

pub(crate) type Value = u64;
pub(crate) type Version = u64;

/// What the store under test promises about the versions it hands out a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Versions {
    /// A write adds one to the version; a new record starts above every version the key
    /// had (the in-memory counter).
    Consecutive,
    /// Only that no version is handed out twice for the key (versions drawn from a
    /// database sequence shared by all keys, which a slow writer may take early and use
    /// after a faster one).
    Unique,
}

/// An operation on the key, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Get,
    Insert(Value),
    Update { expected: Version, value: Value },
    Remove { expected: Version },
}

/// What an operation answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `get`: the record, if there was one.
    Read(Option<(Value, Version)>),
    /// A successful `insert` or `update`, with the new version.
    Written(Version),
    /// A successful `remove`, with the value removed.
    Removed(Value),
    NotFound,
    Stale {
        expected: Version,
        current: Version,
    },
    Exists {
        current: Version,
    },
}

/// One completed operation, with the times it was invoked and returned on a clock shared
/// by all threads.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) thread: usize,
    pub(crate) invoked: u64,
    pub(crate) returned: u64,
    pub(crate) call: Call,
    pub(crate) answer: Answer,
}

/// The key's state in the sequential specification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct KeyState {
    record: Option<(Value, Version)>,
    /// The highest version the key has had: a new record must start above it, so that
    /// versions never repeat (the store may start higher still, because other keys share
    /// its version floor).
    highest: Version,
}

impl KeyState {
    /// The state after `call` answered `answer`, or `None` if the specification does not
    /// allow that answer in this state.
    fn after(&self, call: &Call, answer: &Answer, versions: Versions) -> Option<KeyState> {
        let unchanged = self.clone();
        let fresh = |new: Version, current: Version| match versions {
            Versions::Consecutive => new == current + 1,
            // Uniqueness over the whole history is checked before the search.
            Versions::Unique => new != current,
        };
        let starts_above = |new: Version| versions == Versions::Unique || new > self.highest;
        match (call, answer, self.record) {
            (Call::Get, Answer::Read(read), record) => (*read == record).then_some(unchanged),
            (Call::Insert(value), Answer::Written(version), None) => starts_above(*version)
                .then_some(KeyState {
                    record: Some((*value, *version)),
                    highest: *version,
                }),
            (Call::Insert(_), Answer::Exists { current }, Some((_, version))) => {
                (*current == version).then_some(unchanged)
            }
            (Call::Update { expected, value }, Answer::Written(new), Some((_, version))) => {
                (*expected == version && fresh(*new, version)).then_some(KeyState {
                    record: Some((*value, *new)),
                    highest: *new,
                })
            }
            (Call::Remove { expected }, Answer::Removed(removed), Some((value, version))) => {
                (*expected == version && *removed == value).then_some(KeyState {
                    record: None,
                    highest: self.highest,
                })
            }
            (Call::Update { .. } | Call::Remove { .. }, Answer::NotFound, None) => Some(unchanged),
            (
                Call::Update { expected, .. } | Call::Remove { expected },
                Answer::Stale {
                    expected: said,
                    current,
                },
                Some((_, version)),
            ) => (said == expected && *current == version && version != *expected)
                .then_some(unchanged),
            _ => None,
        }
    }
}

/// A history with no valid linearization, and where the search for one got furthest.
#[derive(Debug)]
pub(crate) struct Violation {
    /// How many calls the longest valid partial linearization placed, of how many.
    placed: usize,
    total: usize,
    /// The key's state after those calls.
    state: KeyState,
    /// The calls that could have come next by real time, none of which the specification
    /// allows in that state.
    stuck: Vec<Event>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "not linearizable: at best {} of {} calls can be ordered, leaving the key at {:?}",
            self.placed, self.total, self.state.record
        )?;
        writeln!(
            f,
            "and no call that may come next fits ([invoked, returned] thread: call -> answer):"
        )?;
        for event in &self.stuck {
            writeln!(
                f,
                "  [{}, {}] t{}: {:?} -> {:?}",
                event.invoked, event.returned, event.thread, event.call, event.answer
            )?;
        }
        Ok(())
    }
}

/// Checks that the history of one key, which started without a record, is linearizable,
/// with versions as `versions` promises.
pub(crate) fn check(history: &[Event], versions: Versions) -> Result<(), Violation> {
    check_with(history, versions, false)
}

/// As [`check`], for a store with a capacity bound: between any two calls the record may
/// be evicted (it is then absent, and its version never comes back). So a read may miss
/// and a conditional write may find nothing, but no call may see a value or version no
/// write produced.
pub(crate) fn check_evicting(history: &[Event], versions: Versions) -> Result<(), Violation> {
    check_with(history, versions, true)
}

fn check_with(history: &[Event], versions: Versions, evictions: bool) -> Result<(), Violation> {
    let mut events = history.to_vec();
    events.sort_by_key(|event| event.invoked);
    let total = events.len();
    reused_version(&events, total)?;
    let mut search = Search {
        versions,
        evictions,
        placed: vec![0; total.div_ceil(64)],
        tried: HashSet::new(),
        furthest: None,
        events,
    };
    if search.place_rest(&KeyState::default(), total) {
        return Ok(());
    }
    let (remaining, state, placed) = search
        .furthest
        .take()
        .expect("a failed search got somewhere");
    search.placed = placed;
    let stuck = search
        .candidates()
        .map(|index| search.events[index].clone())
        .collect();
    Err(Violation {
        placed: total - remaining,
        total,
        state,
        stuck,
    })
}

/// Fails if two writes in `events` got the same version.
fn reused_version(events: &[Event], total: usize) -> Result<(), Violation> {
    let mut seen: HashMap<Version, &Event> = HashMap::new();
    for event in events {
        if let Answer::Written(version) = event.answer {
            if let Some(first) = seen.insert(version, event) {
                return Err(Violation {
                    placed: 0,
                    total,
                    state: KeyState::default(),
                    stuck: vec![first.clone(), event.clone()],
                });
            }
        }
    }
    Ok(())
}

struct Search {
    versions: Versions,
    /// Whether the record may be evicted between calls.
    evictions: bool,
    /// Sorted by invocation time.
    events: Vec<Event>,
    /// Bit set of the events already placed in the linearization.
    placed: Vec<u64>,
    /// (placed, state) pairs already explored.
    tried: HashSet<(Vec<u64>, KeyState)>,
    /// The point with the fewest events left to place: (remaining, state, placed).
    furthest: Option<(usize, KeyState, Vec<u64>)>,
}

impl Search {
    fn is_placed(&self, index: usize) -> bool {
        self.placed[index / 64] & (1 << (index % 64)) != 0
    }

    fn flip(&mut self, index: usize) {
        self.placed[index / 64] ^= 1 << (index % 64);
    }

    /// The unplaced events that may come next: those invoked before every unplaced event
    /// returned (otherwise one of those would have to come first).
    fn candidates(&self) -> impl Iterator<Item = usize> + '_ {
        let first_return = (0..self.events.len())
            .filter(|&i| !self.is_placed(i))
            .map(|i| self.events[i].returned)
            .min()
            .unwrap_or(u64::MAX);
        (0..self.events.len())
            .take_while(move |&i| self.events[i].invoked < first_return)
            .filter(|&i| !self.is_placed(i))
    }

    /// Whether the `remaining` events not yet placed can follow, starting in `state`.
    fn place_rest(&mut self, state: &KeyState, remaining: usize) -> bool {
        if remaining == 0 {
            return true;
        }
        if self
            .furthest
            .as_ref()
            .is_none_or(|(fewest, ..)| remaining < *fewest)
        {
            self.furthest = Some((remaining, state.clone(), self.placed.clone()));
        }
        let candidates: Vec<usize> = self.candidates().collect();
        for index in candidates {
            let event = &self.events[index];
            let evicted = (self.evictions && state.record.is_some()).then_some(KeyState {
                record: None,
                highest: state.highest,
            });
            let nexts: Vec<KeyState> = [Some(state), evicted.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|from| from.after(&event.call, &event.answer, self.versions))
                .collect();
            for next in nexts {
                self.flip(index);
                if self.tried.insert((self.placed.clone(), next.clone()))
                    && self.place_rest(&next, remaining - 1)
                {
                    return true;
                }
                self.flip(index);
            }
        }
        false
    }
}

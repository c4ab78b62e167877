//! The reference policies the report compares against, as small simulations kept in the
//! bench (none of them ships): a plain LRU, SIEVE, S3-FIFO, and Belady's offline optimum.
//! Each counts records, one per key, and does only what its paper describes.

use std::collections::{BinaryHeap, HashMap, VecDeque};

use super::Replay;

/// Marks the end of a linked list.
const NIL: usize = usize::MAX;

/// A plain LRU: a map from key to node, and the nodes in a doubly linked list kept in a
/// vector, most recent at the head.
pub(crate) struct Lru {
    capacity: usize,
    nodes: Vec<LruNode>,
    index: HashMap<u64, usize>,
    head: usize,
    tail: usize,
}

struct LruNode {
    key: u64,
    prev: usize,
    next: usize,
}

impl Lru {
    pub(crate) fn new(capacity: u64) -> Self {
        Lru {
            capacity: capacity as usize,
            nodes: Vec::new(),
            index: HashMap::new(),
            head: NIL,
            tail: NIL,
        }
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.nodes[node].prev, self.nodes[node].next);
        match prev {
            NIL => self.head = next,
            prev => self.nodes[prev].next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => self.nodes[next].prev = prev,
        }
    }

    fn push_front(&mut self, node: usize) {
        self.nodes[node].prev = NIL;
        self.nodes[node].next = self.head;
        match self.head {
            NIL => self.tail = node,
            head => self.nodes[head].prev = node,
        }
        self.head = node;
    }
}

impl Replay for Lru {
    fn access(&mut self, key: u64) -> bool {
        if let Some(&node) = self.index.get(&key) {
            self.unlink(node);
            self.push_front(node);
            return true;
        }
        let node = if self.nodes.len() < self.capacity {
            self.nodes.push(LruNode {
                key,
                prev: NIL,
                next: NIL,
            });
            self.nodes.len() - 1
        } else {
            let oldest = self.tail;
            self.unlink(oldest);
            self.index.remove(&self.nodes[oldest].key);
            self.nodes[oldest].key = key;
            oldest
        };
        self.index.insert(key, node);
        self.push_front(node);
        false
    }
}

/// SIEVE (Zhang et al., NSDI 2024): one FIFO queue with a visited bit per record and a
/// hand that walks from the oldest record towards the newest, clearing bits, and evicts
/// the first unvisited record it finds; survivors keep their place. The queue is a ring
/// of slots in insertion order, compacted when it fills with holes.
pub(crate) struct Sieve {
    capacity: usize,
    /// Oldest first; `None` marks an evicted record's hole.
    queue: VecDeque<Option<u64>>,
    /// Each cached key's visited bit.
    cached: HashMap<u64, bool>,
    /// The absolute position of `queue[0]`.
    base: u64,
    /// The hand's absolute position.
    hand: u64,
}

impl Sieve {
    pub(crate) fn new(capacity: u64) -> Self {
        Sieve {
            capacity: capacity as usize,
            queue: VecDeque::new(),
            cached: HashMap::new(),
            base: 0,
            hand: 0,
        }
    }

    fn evict(&mut self) {
        loop {
            let end = self.base + self.queue.len() as u64;
            if self.hand < self.base || self.hand >= end {
                self.hand = self.base; // back round to the oldest
            }
            let index = (self.hand - self.base) as usize;
            if let Some(key) = self.queue[index] {
                let visited = self.cached.get_mut(&key).expect("queued keys are cached");
                if !*visited {
                    self.cached.remove(&key);
                    self.queue[index] = None;
                    self.hand += 1;
                    break;
                }
                *visited = false;
            }
            self.hand += 1;
        }
        while self.queue.front() == Some(&None) {
            self.queue.pop_front();
            self.base += 1;
        }
        if self.queue.len() > 2 * self.capacity + 16 {
            // Compact the holes away (the hand keeps its record).
            let hand_index = self.hand.saturating_sub(self.base) as usize;
            let mut new_hand = None;
            let mut compacted = VecDeque::with_capacity(self.cached.len());
            for (index, key) in self.queue.drain(..).enumerate() {
                if index >= hand_index && new_hand.is_none() {
                    new_hand = Some(compacted.len());
                }
                if let Some(key) = key {
                    compacted.push_back(Some(key));
                }
            }
            self.base = 0;
            self.hand = new_hand.unwrap_or(compacted.len()) as u64;
            self.queue = compacted;
        }
    }
}

impl Replay for Sieve {
    fn access(&mut self, key: u64) -> bool {
        if let Some(visited) = self.cached.get_mut(&key) {
            *visited = true;
            return true;
        }
        if self.cached.len() >= self.capacity {
            self.evict();
        }
        self.queue.push_back(Some(key));
        self.cached.insert(key, false);
        false
    }
}

/// S3-FIFO (Yang et al., SOSP 2023): a small FIFO queue (10% of the capacity) new keys
/// enter, a main FIFO queue, and a ghost FIFO of keys evicted from the small queue (as
/// many as the main queue holds). Each record counts its reads, up to 3. A record leaving
/// the small queue goes to the main queue if it was read there, else to the ghost; a
/// record at the main queue's head that was read goes round again with one read fewer.
/// A key found in the ghost enters the main queue directly.
pub(crate) struct S3Fifo {
    small_capacity: usize,
    main_capacity: usize,
    small: VecDeque<u64>,
    main: VecDeque<u64>,
    /// Each cached key's read count and whether it is in the main queue.
    cached: HashMap<u64, (u8, bool)>,
    ghost: VecDeque<u64>,
    /// How many times each key is in `ghost` (a key may be there more than once).
    in_ghost: HashMap<u64, u32>,
}

impl S3Fifo {
    pub(crate) fn new(capacity: u64) -> Self {
        let capacity = capacity.max(2) as usize;
        let small_capacity = (capacity / 10).max(1);
        S3Fifo {
            small_capacity,
            main_capacity: capacity - small_capacity,
            small: VecDeque::new(),
            main: VecDeque::new(),
            cached: HashMap::new(),
            ghost: VecDeque::new(),
            in_ghost: HashMap::new(),
        }
    }

    fn remember(&mut self, key: u64) {
        self.ghost.push_back(key);
        *self.in_ghost.entry(key).or_default() += 1;
        while self.ghost.len() > self.main_capacity {
            let old = self.ghost.pop_front().expect("not empty");
            let count = self.in_ghost.get_mut(&old).expect("counted");
            *count -= 1;
            if *count == 0 {
                self.in_ghost.remove(&old);
            }
        }
    }

    fn evict_main(&mut self) {
        while let Some(key) = self.main.pop_front() {
            let (reads, _) = self.cached.get_mut(&key).expect("queued keys are cached");
            if *reads > 0 {
                *reads -= 1;
                self.main.push_back(key);
            } else {
                self.cached.remove(&key);
                return;
            }
        }
    }

    fn evict_small(&mut self) {
        while let Some(key) = self.small.pop_front() {
            let (reads, main) = self.cached.get_mut(&key).expect("queued keys are cached");
            if *reads > 0 {
                *reads = 0;
                *main = true;
                self.main.push_back(key);
                if self.main.len() > self.main_capacity {
                    self.evict_main();
                }
            } else {
                self.cached.remove(&key);
                self.remember(key);
                return;
            }
        }
    }

    fn make_room(&mut self) {
        while self.small.len() + self.main.len() >= self.small_capacity + self.main_capacity {
            if self.small.len() >= self.small_capacity || self.main.is_empty() {
                self.evict_small();
            } else {
                self.evict_main();
            }
        }
    }
}

impl Replay for S3Fifo {
    fn access(&mut self, key: u64) -> bool {
        if let Some((reads, _)) = self.cached.get_mut(&key) {
            *reads = (*reads + 1).min(3);
            return true;
        }
        self.make_room();
        if self.in_ghost.contains_key(&key) {
            self.main.push_back(key);
            self.cached.insert(key, (0, true));
        } else {
            self.small.push_back(key);
            self.cached.insert(key, (0, false));
        }
        false
    }
}

/// Belady's offline optimum: on a miss with the cache full, drop whichever cached key is
/// next requested furthest in the future (or not at all), possibly the requested one.
/// Returns the number of hits.
pub(crate) fn belady(trace: &[u64], capacity: u64) -> u64 {
    // next_use[i]: where trace[i]'s key is requested next (trace.len(): never).
    let mut next_use = vec![trace.len(); trace.len()];
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (position, &key) in trace.iter().enumerate().rev() {
        if let Some(next) = seen.insert(key, position) {
            next_use[position] = next;
        }
    }
    // The cached keys with their next use; the heap may hold outdated pairs, skipped
    // when they surface.
    let mut cached: HashMap<u64, usize> = HashMap::new();
    let mut by_next_use: BinaryHeap<(usize, u64)> = BinaryHeap::new();
    let mut hits = 0u64;
    for (position, &key) in trace.iter().enumerate() {
        let next = next_use[position];
        if cached.contains_key(&key) {
            hits += 1;
        } else if cached.len() as u64 >= capacity {
            // The furthest next use among the cached keys.
            let furthest = loop {
                let (when, candidate) = by_next_use.pop().expect("a full cache has keys");
                if cached.get(&candidate) == Some(&when) {
                    break (when, candidate);
                }
            };
            if furthest.0 <= next {
                // The requested key is needed later than any cached one: not kept.
                by_next_use.push(furthest);
                continue;
            }
            cached.remove(&furthest.1);
        }
        cached.insert(key, next);
        by_next_use.push((next, key));
    }
    hits
}

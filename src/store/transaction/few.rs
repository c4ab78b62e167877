//! [`Few`]: a list kept in place while it is short, on the heap once it grows past `N`,
//! for the per-transaction lists (steps, their places, the locks held) that are two or
//! three long in the common case: no allocation for them then.

use std::mem;

/// A list of `T` held inline up to `N` items, then moved whole into a `Vec`. The free
/// inline places hold `T::default()` (so no unsafe code is needed to leave them empty).
pub(crate) struct Few<T, const N: usize> {
    inline: [T; N],
    /// How many of `inline` are in use; 0 once the items moved to `heap`.
    len: usize,
    /// Every item once there were more than `N`; empty (and unallocated) before.
    heap: Vec<T>,
}

impl<T: Default, const N: usize> Default for Few<T, N> {
    fn default() -> Self {
        Few {
            inline: std::array::from_fn(|_| T::default()),
            len: 0,
            heap: Vec::new(),
        }
    }
}

impl<T: Default, const N: usize> Few<T, N> {
    /// Adds `item` at the end.
    #[inline]
    pub(crate) fn push(&mut self, item: T) {
        if self.heap.is_empty() && self.len < N {
            self.inline[self.len] = item;
            self.len += 1;
            return;
        }
        if self.heap.is_empty() {
            self.heap.reserve(2 * N + 1);
            let len = mem::take(&mut self.len);
            self.heap
                .extend(self.inline[..len].iter_mut().map(mem::take));
        }
        self.heap.push(item);
    }
}

impl<T, const N: usize> Few<T, N> {
    /// The items, in order.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[T] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }

    /// The items, in order, to change in place.
    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        if self.heap.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.heap
        }
    }

    /// How many items.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }
}

impl<T, const N: usize> std::ops::Deref for Few<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T, const N: usize> std::ops::DerefMut for Few<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

impl<T: Default, const N: usize> FromIterator<T> for Few<T, N> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut few = Few::default();
        for item in items {
            few.push(item);
        }
        few
    }
}

#[cfg(test)]
mod tests {
    use super::Few;

    #[test]
    fn keeps_order_across_the_move_to_the_heap() {
        let mut few: Few<u32, 2> = Few::default();
        for item in 0..5 {
            few.push(item);
            assert_eq!(few.as_slice(), (0..=item).collect::<Vec<_>>());
        }
        few.as_mut_slice().reverse();
        assert_eq!(few.as_slice(), [4, 3, 2, 1, 0]);
    }

    #[test]
    fn holds_a_short_list_in_place() {
        let few: Few<u32, 4> = [1, 2, 3].into_iter().collect();
        assert_eq!(few.as_slice(), [1, 2, 3]);
        assert_eq!(few.heap.capacity(), 0, "no allocation");
    }
}

//! What the benchmark targets share: key distributions, values, the contenders, the
//! workloads and the plan of comparisons.

pub(crate) mod keys;
pub(crate) mod payload;
pub(crate) mod plan;
pub(crate) mod subjects;
pub(crate) mod workload;

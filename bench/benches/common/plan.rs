//! Which comparisons are run: for each workload, its scenarios and its contenders.
//!
//! The criterion benches and the ratio report both run exactly this plan, so their
//! numbers describe the same work.

use std::time::Duration;

use crate::common::keys::Dist;
use crate::common::payload::{Bytes256, Payload};
use crate::common::subjects::{
    DashMapCas, DashMapRaw, Floor, Moka, MokaBounded, Papaya, QuickCache, RwLockMap, Subject,
    Verkv, VerkvBounded, VerkvRetry, VerkvStats, VerkvWithin,
};
use crate::common::workload::{Bench, Scenario, Workload};

/// Set to `1` for the long run: every key count up to 1e7, both distributions, both
/// value sizes, for every workload.
pub(crate) const LONG_RUN_VARIABLE: &str = "VERKV_BENCH_LONG";

/// Set to `report` for the report's plan (see [`Plan::Report`]).
pub(crate) const PLAN_VARIABLE: &str = "VERKV_BENCH_PLAN";

/// Which comparisons a run makes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The key-count curve of `get`, every other workload at 1e5 keys.
    Default,
    /// Every combination up to 1e7 keys (`VERKV_BENCH_LONG=1`).
    Long,
    /// What the report's tables and plots show (`VERKV_BENCH_PLAN=report`): `get`,
    /// `update`, stale `update`, `insert`, `remove`, the read-mostly mix, and the bounded
    /// `get` and insert-with-eviction, at 1e3 and 1e6 keys, 1 and 2 threads, uniform
    /// keys, 8-byte values.
    Report,
}

impl Plan {
    /// How the report's header names it.
    #[allow(dead_code)] // the criterion benches (`peers`) do not print it
    pub(crate) fn name(self) -> &'static str {
        match self {
            Plan::Default => "default",
            Plan::Long => "long",
            Plan::Report => "report",
        }
    }
}

/// Whether the long run was asked for.
pub(crate) fn long_run() -> bool {
    std::env::var(LONG_RUN_VARIABLE).is_ok_and(|value| value == "1")
}

/// The plan asked for: the report's, the long one, or the default.
pub(crate) fn which() -> Plan {
    if std::env::var(PLAN_VARIABLE).is_ok_and(|value| value == "report") {
        Plan::Report
    } else if long_run() {
        Plan::Long
    } else {
        Plan::Default
    }
}

/// A bench with its contender's type erased, so that one list can hold them all.
pub(crate) trait Slice {
    /// Runs `units` units of the workload; the time it took.
    fn run(&mut self, units: u64) -> Duration;
}

/// A contender that is `Sync`: runs on the scenario's threads.
struct Shared<S, V>(Bench<S, V>);

impl<S: Subject<V> + Sync, V: Payload> Slice for Shared<S, V> {
    fn run(&mut self, units: u64) -> Duration {
        self.0.run(units)
    }
}

/// A single-threaded contender (the floor).
struct Local<S, V>(Bench<S, V>);

impl<S: Subject<V>, V: Payload> Slice for Local<S, V> {
    fn run(&mut self, units: u64) -> Duration {
        self.0.run_local(units)
    }
}

/// Builds a contender's bench on demand, so that only the maps being measured are alive.
type Maker = Box<dyn Fn() -> Box<dyn Slice>>;

/// One contender of a comparison.
pub(crate) struct Contender {
    /// How reports name it.
    pub(crate) name: &'static str,
    /// Builds and prepares its bench (populating the map: may take a while).
    pub(crate) make: Maker,
}

/// Ours against its peers on one workload and scenario. The first contender is ours.
pub(crate) struct Comparison {
    /// What is measured.
    pub(crate) workload: Workload,
    /// With which keys and threads.
    pub(crate) scenario: Scenario,
    /// The value size, as benchmark ids name it.
    pub(crate) value: &'static str,
    /// Ours first, then the peers.
    pub(crate) contenders: Vec<Contender>,
}

impl Comparison {
    /// The id shared by the criterion group and the report line.
    pub(crate) fn id(&self) -> String {
        format!("{}/{}/{}", self.workload, self.scenario, self.value)
    }

    /// Operations per unit of [`Slice::run`], over all threads.
    pub(crate) fn ops_per_unit(&self) -> u64 {
        self.workload.ops_per_unit(self.scenario) * self.scenario.threads as u64
    }
}

fn shared<S: Subject<V> + Sync + 'static, V: Payload>(
    name: &'static str,
    workload: Workload,
    scenario: Scenario,
) -> Contender {
    Contender {
        name,
        make: Box::new(move || Box::new(Shared(Bench::<S, V>::new(workload, scenario)))),
    }
}

fn local<S: Subject<V> + 'static, V: Payload>(
    name: &'static str,
    workload: Workload,
    scenario: Scenario,
) -> Contender {
    Contender {
        name,
        make: Box::new(move || Box::new(Local(Bench::<S, V>::new(workload, scenario)))),
    }
}

/// Name of our store in reports.
pub(crate) const OURS: &str = "verkv";

/// The deadline-bounded view of ours, and beside it a second plain store (`verkv-twin`,
/// built and run exactly as ours is). Two identical stores can measure apart in one run
/// (each sits elsewhere in memory); the twin's ratio shows by how much, and is the
/// floor against which the bounded view's ratio is read.
fn bounded_and_twin<V: Payload>(workload: Workload, scenario: Scenario) -> [Contender; 2] {
    [
        shared::<Verkv<V>, V>("verkv-twin", workload, scenario),
        shared::<VerkvWithin<V>, V>("verkv-within", workload, scenario),
    ]
}

/// The peers each workload is compared with, ours first.
fn contenders<V: Payload>(workload: Workload, scenario: Scenario) -> Vec<Contender> {
    let w = workload;
    let s = scenario;
    if matches!(w, Workload::BoundedGetHit | Workload::InsertEvicting) {
        // Bounded caches only, ours first.
        return vec![
            shared::<VerkvBounded<V>, V>(OURS, w, s),
            shared::<MokaBounded<V>, V>("moka", w, s),
            shared::<QuickCache<V>, V>("quick_cache", w, s),
        ];
    }
    let mut list = vec![shared::<Verkv<V>, V>(OURS, w, s)];
    match w {
        Workload::GetHit | Workload::GetMiss | Workload::Update | Workload::UpdateWith => {
            list.extend(bounded_and_twin::<V>(w, s));
            if matches!(w, Workload::GetHit | Workload::GetMiss) {
                // What statistics cost a read: read against the twin's ratio.
                list.push(shared::<VerkvStats<V>, V>("verkv-stats", w, s));
            }
            if w == Workload::UpdateWith {
                list.push(shared::<VerkvRetry<V>, V>("verkv-retry", w, s));
            }
            list.extend([
                shared::<DashMapRaw<V>, V>("dashmap", w, s),
                shared::<DashMapCas<V>, V>("dashmap-cas", w, s),
                shared::<RwLockMap<V>, V>("rwlock-hashmap", w, s),
                shared::<Papaya<V>, V>("papaya", w, s),
                shared::<Moka<V>, V>("moka", w, s),
            ]);
        }
        Workload::UpdateStale => list.extend([
            shared::<Verkv<V>, V>("verkv-get", Workload::GetHit, s),
            shared::<DashMapCas<V>, V>("dashmap-cas", w, s),
            shared::<RwLockMap<V>, V>("rwlock-hashmap", w, s),
            shared::<Papaya<V>, V>("papaya", w, s),
        ]),
        Workload::InsertPresized | Workload::InsertGrowing => list.extend([
            shared::<DashMapRaw<V>, V>("dashmap", w, s),
            shared::<DashMapCas<V>, V>("dashmap-cas", w, s),
            shared::<RwLockMap<V>, V>("rwlock-hashmap", w, s),
            shared::<Papaya<V>, V>("papaya", w, s),
            shared::<Moka<V>, V>("moka", w, s),
        ]),
        Workload::Remove => list.extend([
            shared::<DashMapRaw<V>, V>("dashmap", w, s),
            shared::<DashMapCas<V>, V>("dashmap-cas", w, s),
            shared::<RwLockMap<V>, V>("rwlock-hashmap", w, s),
            shared::<Papaya<V>, V>("papaya", w, s),
        ]),
        Workload::BoundedGetHit | Workload::InsertEvicting => unreachable!("returned above"),
        Workload::ReadMostly | Workload::Churn => list.extend([
            shared::<DashMapCas<V>, V>("dashmap-cas", w, s),
            shared::<RwLockMap<V>, V>("rwlock-hashmap", w, s),
            shared::<Papaya<V>, V>("papaya", w, s),
        ]),
    }
    if s.threads == 1 {
        list.push(local::<Floor<V>, V>("hashmap-floor", w, s));
    }
    list
}

/// Every workload, in report order.
const WORKLOADS: [Workload; 12] = [
    Workload::GetHit,
    Workload::GetMiss,
    Workload::Update,
    Workload::UpdateStale,
    Workload::UpdateWith,
    Workload::InsertPresized,
    Workload::InsertGrowing,
    Workload::Remove,
    Workload::ReadMostly,
    Workload::Churn,
    Workload::BoundedGetHit,
    Workload::InsertEvicting,
];

/// The value sizes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Value {
    Small,
    Large,
}

fn comparison(workload: Workload, scenario: Scenario, value: Value) -> Comparison {
    let (value, contenders) = match value {
        Value::Small => (u64::NAME, contenders::<u64>(workload, scenario)),
        Value::Large => (Bytes256::NAME, contenders::<Bytes256>(workload, scenario)),
    };
    Comparison {
        workload,
        scenario,
        value,
        contenders,
    }
}

/// The scenarios of the default run: the key-count curve for `get` hits and misses
/// (Zipfian keys too at two threads), and for every other workload 1e5 keys at 1 and 2
/// threads, with Zipfian and 256-byte variants where the
/// targets are about them.
fn default_scenarios(workload: Workload) -> Vec<(Scenario, Value)> {
    let at = |keys, dist, threads, value| {
        (
            Scenario {
                keys,
                dist,
                threads,
            },
            value,
        )
    };
    let mut list = Vec::new();
    if matches!(workload, Workload::GetHit | Workload::GetMiss) {
        // The read path's curve: every key count, and at two threads Zipfian keys too
        // (the hot keys whose lock words bounced between cores).
        for keys in [1_000, 100_000, 1_000_000] {
            for threads in [1, 2] {
                list.push(at(keys, Dist::Uniform, threads, Value::Small));
            }
            list.push(at(keys, Dist::Zipf, 2, Value::Small));
        }
    } else {
        for threads in [1, 2] {
            list.push(at(100_000, Dist::Uniform, threads, Value::Small));
        }
    }
    if matches!(
        workload,
        Workload::GetHit
            | Workload::Update
            | Workload::ReadMostly
            | Workload::Churn
            | Workload::BoundedGetHit
    ) {
        list.push(at(100_000, Dist::Zipf, 1, Value::Small));
    }
    if matches!(
        workload,
        Workload::Update | Workload::ReadMostly | Workload::Churn
    ) {
        list.push(at(100_000, Dist::Zipf, 2, Value::Small));
    }
    if matches!(workload, Workload::GetHit | Workload::Update) {
        list.push(at(100_000, Dist::Uniform, 1, Value::Large));
    }
    list
}

/// The scenarios of the long run: every combination, except 256-byte values at 1e7
/// keys (several gigabytes per contender).
fn long_scenarios() -> Vec<(Scenario, Value)> {
    let mut list = Vec::new();
    for keys in [1_000, 100_000, 1_000_000, 10_000_000] {
        for dist in [Dist::Uniform, Dist::Zipf] {
            for threads in [1, 2] {
                for value in [Value::Small, Value::Large] {
                    if keys == 10_000_000 && value == Value::Large {
                        continue;
                    }
                    let scenario = Scenario {
                        keys,
                        dist,
                        threads,
                    };
                    list.push((scenario, value));
                }
            }
        }
    }
    list
}

/// The workloads of the report's plan, in its order.
const REPORT_WORKLOADS: [Workload; 8] = [
    Workload::GetHit,
    Workload::Update,
    Workload::UpdateStale,
    Workload::InsertPresized,
    Workload::Remove,
    Workload::ReadMostly,
    Workload::BoundedGetHit,
    Workload::InsertEvicting,
];

/// The scenarios of the report's plan: 1e3 and 1e6 keys, 1 and 2 threads, uniform keys,
/// 8-byte values.
fn report_scenarios() -> Vec<(Scenario, Value)> {
    let mut list = Vec::new();
    for keys in [1_000, 1_000_000] {
        for threads in [1, 2] {
            let scenario = Scenario {
                keys,
                dist: Dist::Uniform,
                threads,
            };
            list.push((scenario, Value::Small));
        }
    }
    list
}

/// The whole plan: every comparison of `plan`.
pub(crate) fn comparisons(plan: Plan) -> Vec<Comparison> {
    let workloads: &[Workload] = match plan {
        Plan::Report => &REPORT_WORKLOADS,
        Plan::Default | Plan::Long => &WORKLOADS,
    };
    workloads
        .iter()
        .copied()
        .flat_map(|workload| {
            let scenarios = match plan {
                Plan::Long => long_scenarios(),
                Plan::Default => default_scenarios(workload),
                Plan::Report => report_scenarios(),
            };
            scenarios
                .into_iter()
                .map(move |(scenario, value)| comparison(workload, scenario, value))
        })
        .collect()
}

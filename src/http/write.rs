//! A conditional write made under a request's preconditions, re-evaluated when it loses a
//! race: the one loop every handler needs, written once.
//!
//! A handler reads the record, evaluates the preconditions against the version it read,
//! and writes at that version. If another writer gets in between, the store refuses the
//! write, and its refusal says what the record is now. That is not a reason to fail the
//! request: the preconditions are evaluated again against the record as it is now, and
//! the write is tried again if they still hold (`If-Match: *` holds for any record), or
//! the request is answered as they now decide (`412` for an `If-Match` tag that no longer
//! matches, `404` for a record removed meanwhile).

use std::fmt::{self, Display};
use std::future::Future;
use std::ops::ControlFlow;

use http::StatusCode;

use super::preconditions::{Decision, Intent, Preconditions};
use crate::patch::PatchError;
use crate::store::{Error, Rejected, UpdateWithError};

/// An error from a write that may be the store refusing it: what
/// [`Preconditions::modify`] and [`Preconditions::create`] look into to tell a lost race
/// (evaluate again) from any other failure (answer it).
///
/// Implemented for every error a store write returns.
pub trait StoreRefusal<Ver> {
    /// The store's refusal, if that is what this error is.
    fn store_error(&self) -> Option<&Error<Ver>>;
}

impl<Ver> StoreRefusal<Ver> for Error<Ver> {
    fn store_error(&self) -> Option<&Error<Ver>> {
        Some(self)
    }
}

impl<V, Ver> StoreRefusal<Ver> for Rejected<V, Ver> {
    fn store_error(&self) -> Option<&Error<Ver>> {
        Some(&self.error)
    }
}

impl<Ver, E> StoreRefusal<Ver> for UpdateWithError<Ver, E> {
    fn store_error(&self) -> Option<&Error<Ver>> {
        match self {
            UpdateWithError::Store(error) => Some(error),
            UpdateWithError::Closure(_) => None,
        }
    }
}

impl<Ver, E> StoreRefusal<Ver> for PatchError<Ver, E> {
    fn store_error(&self) -> Option<&Error<Ver>> {
        match self {
            PatchError::Store(error) => Some(error),
            PatchError::Patch(_) => None,
        }
    }
}

/// Why a write made under preconditions did not happen. Nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused<Ver, E> {
    /// The preconditions do not hold for the record as it is: answer the decision
    /// (`404`, `409`, `412`, `428`).
    Precondition(Decision<Ver>),
    /// The write failed for another reason: its deadline passed or it was cancelled
    /// (`503`), or its closure or patch refused (`422`).
    Write(E),
}

impl<Ver: Display, E: StoreRefusal<Ver>> Refused<Ver, E> {
    /// The status to answer with: the decision's; `503 Service Unavailable` for a write
    /// that timed out or was cancelled, or whose backend is unavailable (nothing was
    /// written: the request can be repeated, send `Retry-After`, see
    /// [`RETRY_AFTER_SECONDS`](super::RETRY_AFTER_SECONDS)); `500 Internal Server Error`
    /// for a write whose outcome is unknown (it may have been written), for a record the
    /// backend cannot convert to or from the store's types, and for a backend whose
    /// settings do not fit it (faults of the server's data, code or configuration, that
    /// repeating the request does not mend); `413 Content Too Large` for a record too
    /// heavy for a bounded store; `422 Unprocessable Content` for a closure or patch that
    /// refused.
    pub fn status(&self) -> StatusCode {
        match self {
            Refused::Precondition(decision) => decision.status(),
            Refused::Write(error) => match error.store_error() {
                Some(Error::TimedOut(_) | Error::Cancelled | Error::Unavailable(_)) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                Some(Error::OutcomeUnknown(_) | Error::BadRecord(_) | Error::Misconfigured(_)) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                Some(Error::TooHeavy { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
                Some(Error::NotFound | Error::Expired) => StatusCode::NOT_FOUND,
                Some(Error::Stale { .. } | Error::Exists { .. }) => StatusCode::CONFLICT,
                None => StatusCode::UNPROCESSABLE_ENTITY,
            },
        }
    }
}

impl<Ver: Display, E: Display> Display for Refused<Ver, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Precondition(decision) => f.write_str(&decision.message()),
            Refused::Write(error) => error.fmt(f),
        }
    }
}

impl<Ver, E> std::error::Error for Refused<Ver, E>
where
    Ver: fmt::Debug + Display,
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Refused::Precondition(_) => None,
            Refused::Write(error) => Some(error),
        }
    }
}

impl<Ver: Clone + Eq + Display> Preconditions<Ver> {
    /// Modifies a record under these preconditions (`PATCH`, `PUT`, `DELETE`): evaluates
    /// them against `current` (the version read, `None` if there was no record) and, if
    /// they hold, calls `write` with that version, to write at it (`update`, `patch`,
    /// `remove`, through a bounded view or not).
    ///
    /// If the store refuses the write because the record changed (`Stale`) or went away
    /// (`NotFound`), the preconditions are evaluated again against the record as the
    /// refusal describes it, and `write` is called again at its new version if they
    /// still hold. So `If-Match: *` never fails for a record that exists, while a tag the
    /// record has moved past is answered `412`, as it would have been had the change
    /// landed before the request was read.
    ///
    /// # Errors
    ///
    /// [`Refused::Precondition`] with the decision to answer; [`Refused::Write`] with
    /// `write`'s error if it failed otherwise (a timeout, a cancellation, a patch that
    /// refused). Either way nothing was written.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::thread;
    /// use http::{HeaderMap, StatusCode};
    /// use verkv::http::Preconditions;
    /// use verkv::{Counter, Store};
    ///
    /// let store: Store<&str, u32> = Store::new();
    /// store.insert("likes", 0).unwrap();
    /// let mut headers = HeaderMap::new();
    /// headers.insert("if-match", "*".parse().unwrap());
    /// let preconditions = Preconditions::from_headers::<Counter>(&headers).unwrap();
    ///
    /// let read = store.version(&"likes");
    /// store.put("likes", 5); // another writer gets in first
    /// let written = preconditions.modify(read, |version| store.update(&"likes", version, 1));
    /// assert_eq!(written, Ok(3)); // `*` still held: written at the new version
    /// ```
    pub fn modify<T, E: StoreRefusal<Ver>>(
        &self,
        current: Option<Ver>,
        mut write: impl FnMut(&Ver) -> Result<T, E>,
    ) -> Result<T, Refused<Ver, E>> {
        self.write_under(Intent::Modify, current, |version| match version {
            Some(version) => write(version),
            // `evaluate` answers a modification of a missing record with `NotFound`.
            None => unreachable!("a modification only proceeds on a record"),
        })
    }

    /// Creates a record under these preconditions (`POST`, or `PUT` of a new record):
    /// evaluates them against `current` (`None`: no record, as expected) and, if they
    /// hold, calls `write` (an `insert`). A create that finds the record created
    /// meanwhile (`Exists`) is evaluated again: `412` under `If-None-Match: *`, `409`
    /// without it.
    ///
    /// # Errors
    ///
    /// As [`modify`](Preconditions::modify).
    ///
    /// # Examples
    ///
    /// ```
    /// use http::{HeaderMap, StatusCode};
    /// use verkv::http::Preconditions;
    /// use verkv::{Counter, Store};
    ///
    /// let store: Store<&str, &str> = Store::new();
    /// let mut headers = HeaderMap::new();
    /// headers.insert("if-none-match", "*".parse().unwrap());
    /// let preconditions = Preconditions::from_headers::<Counter>(&headers).unwrap();
    ///
    /// assert_eq!(preconditions.create(None, || store.insert("a", "first")), Ok(1));
    /// let again = preconditions.create(None, || store.insert("a", "second")).unwrap_err();
    /// assert_eq!(again.status(), StatusCode::PRECONDITION_FAILED);
    /// assert_eq!(
    ///     again.to_string(),
    ///     "precondition failed: the record already exists (at \"1\") and If-None-Match is *"
    /// );
    /// ```
    pub fn create<T, E: StoreRefusal<Ver>>(
        &self,
        current: Option<Ver>,
        mut write: impl FnMut() -> Result<T, E>,
    ) -> Result<T, Refused<Ver, E>> {
        self.write_under(Intent::Create, current, |_| write())
    }

    /// [`modify`](Preconditions::modify) for an async store: `write` returns a future
    /// (an [`AsyncVersionedStore`](crate::AsyncVersionedStore) write at the version it is
    /// given), awaited; a lost race is evaluated again in the same way.
    ///
    /// Dropping the returned future drops the write it awaits: what that write has done
    /// is what its own store documents for a dropped future (for the in-memory store,
    /// nothing, or all of it).
    ///
    /// # Errors
    ///
    /// As [`modify`](Preconditions::modify).
    ///
    /// # Examples
    ///
    /// ```
    /// use http::HeaderMap;
    /// use verkv::http::Preconditions;
    /// use verkv::{AsyncVersionedStore, Context, Counter, Store};
    ///
    /// # futures_lite::future::block_on(async {
    /// let store: Store<String, u32> = Store::new();
    /// let ctx = Context::background();
    /// let key = "likes".to_string();
    /// AsyncVersionedStore::insert(&store, &ctx, key.clone(), 0).await.unwrap();
    /// let mut headers = HeaderMap::new();
    /// headers.insert("if-match", "\"1\"".parse().unwrap());
    /// let preconditions = Preconditions::from_headers::<Counter>(&headers).unwrap();
    ///
    /// let (store, ctx, key) = (&store, &ctx, &key);
    /// let written = preconditions
    ///     .modify_async(Some(1), |version| async move {
    ///         AsyncVersionedStore::update(store, ctx, key, &version, 7).await
    ///     })
    ///     .await;
    /// assert_eq!(written, Ok(2));
    /// # });
    /// ```
    pub async fn modify_async<T, E, F>(
        &self,
        mut current: Option<Ver>,
        mut write: impl FnMut(Ver) -> F,
    ) -> Result<T, Refused<Ver, E>>
    where
        E: StoreRefusal<Ver>,
        F: Future<Output = Result<T, E>>,
    {
        loop {
            let version = self.proceed(Intent::Modify, current)?;
            // `evaluate` answers a modification of a missing record with `NotFound`.
            let version = version.expect("a modification only proceeds on a record");
            match self.after_refusal(write(version).await) {
                ControlFlow::Continue(now) => current = now,
                ControlFlow::Break(answer) => return answer,
            }
        }
    }

    /// [`create`](Preconditions::create) for an async store: `write` returns a future
    /// (an [`AsyncVersionedStore`](crate::AsyncVersionedStore) `insert`), awaited; a
    /// create that finds the record created meanwhile is evaluated again.
    ///
    /// # Errors
    ///
    /// As [`modify`](Preconditions::modify).
    pub async fn create_async<T, E, F>(
        &self,
        mut current: Option<Ver>,
        mut write: impl FnMut() -> F,
    ) -> Result<T, Refused<Ver, E>>
    where
        E: StoreRefusal<Ver>,
        F: Future<Output = Result<T, E>>,
    {
        loop {
            self.proceed(Intent::Create, current)?;
            match self.after_refusal(write().await) {
                ControlFlow::Continue(now) => current = now,
                ControlFlow::Break(answer) => return answer,
            }
        }
    }

    /// The loop behind [`modify`](Preconditions::modify) and
    /// [`create`](Preconditions::create): evaluate, write, and on a lost race evaluate
    /// again against what the store says the record is now.
    fn write_under<T, E: StoreRefusal<Ver>>(
        &self,
        intent: Intent,
        mut current: Option<Ver>,
        mut write: impl FnMut(Option<&Ver>) -> Result<T, E>,
    ) -> Result<T, Refused<Ver, E>> {
        loop {
            let version = self.proceed(intent, current)?;
            match self.after_refusal(write(version.as_ref())) {
                ControlFlow::Continue(now) => current = now,
                ControlFlow::Break(answer) => return answer,
            }
        }
    }

    /// The first half of each turn of the write loop: the version to write at if the
    /// preconditions hold for the record at `current`, else the decision to answer.
    fn proceed<E>(
        &self,
        intent: Intent,
        current: Option<Ver>,
    ) -> Result<Option<Ver>, Refused<Ver, E>> {
        match self.evaluate(intent, current.as_ref()) {
            Decision::Proceed => Ok(current),
            decision => Err(Refused::Precondition(decision)),
        }
    }

    /// The second half: the answer to give (`Break`: written, or refused for a reason
    /// other than a lost race), or the record's version as the lost race says it now is,
    /// to evaluate again (`Continue`).
    fn after_refusal<T, E: StoreRefusal<Ver>>(
        &self,
        written: Result<T, E>,
    ) -> ControlFlow<Result<T, Refused<Ver, E>>, Option<Ver>> {
        let error = match written {
            Ok(written) => return ControlFlow::Break(Ok(written)),
            Err(error) => error,
        };
        match error.store_error() {
            Some(Error::Stale { current, .. } | Error::Exists { current }) => {
                ControlFlow::Continue(Some(current.clone()))
            }
            Some(Error::NotFound | Error::Expired) => ControlFlow::Continue(None),
            Some(
                Error::TimedOut(_)
                | Error::Cancelled
                | Error::Unavailable(_)
                | Error::OutcomeUnknown(_)
                | Error::BadRecord(_)
                | Error::Misconfigured(_)
                | Error::TooHeavy { .. },
            )
            | None => ControlFlow::Break(Err(Refused::Write(error))),
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::http::Unmet;
    use crate::{Counter, Store};

    fn preconditions(pairs: &[(&'static str, &str)]) -> Preconditions<u64> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        Preconditions::from_headers::<Counter>(&headers).unwrap()
    }

    /// A store with record "a" at version 1, and a write that first lets another
    /// writer `put` (the race), then updates at the version it is given.
    fn race_then_update(
        preconditions: &Preconditions<u64>,
    ) -> Result<u64, Refused<u64, Rejected<u32, u64>>> {
        let store: Store<&str, u32> = Store::new();
        store.insert("a", 0).unwrap();
        let read = store.version(&"a");
        let mut raced = false;
        preconditions.modify(read, |version| {
            if !std::mem::replace(&mut raced, true) {
                store.put("a", 7).unwrap();
            }
            store.update(&"a", version, 1)
        })
    }

    #[test]
    fn if_match_star_survives_a_lost_race() {
        assert_eq!(
            race_then_update(&preconditions(&[("if-match", "*")])),
            Ok(3)
        );
    }

    /// The same race through the async loop, on the store's async face.
    fn race_then_update_async(
        preconditions: &Preconditions<u64>,
    ) -> Result<u64, Refused<u64, Rejected<u32, u64>>> {
        use crate::{AsyncVersionedStore, Context};
        let store: Store<&str, u32> = Store::new();
        store.insert("a", 0).unwrap();
        let read = store.version(&"a");
        let (store, ctx, raced) = (&store, &Context::background(), &std::cell::Cell::new(false));
        futures_lite::future::block_on(preconditions.modify_async(read, |version| async move {
            if !raced.replace(true) {
                store.put("a", 7).unwrap();
            }
            AsyncVersionedStore::update(store, ctx, &"a", &version, 1).await
        }))
    }

    #[test]
    fn the_async_loop_evaluates_a_lost_race_again() {
        assert_eq!(
            race_then_update_async(&preconditions(&[("if-match", "*")])),
            Ok(3)
        );
        let refused = race_then_update_async(&preconditions(&[("if-match", "\"1\"")])).unwrap_err();
        assert_eq!(refused.status(), StatusCode::PRECONDITION_FAILED);
    }

    #[test]
    fn a_tag_the_record_moved_past_is_412_after_a_lost_race() {
        let refused = race_then_update(&preconditions(&[("if-match", "\"1\"")])).unwrap_err();
        assert_eq!(
            refused,
            Refused::Precondition(Decision::PreconditionFailed(Unmet::Changed { current: 2 }))
        );
        assert_eq!(refused.status(), StatusCode::PRECONDITION_FAILED);
    }

    #[test]
    fn an_expected_version_the_record_moved_past_is_409_after_a_lost_race() {
        let refused = race_then_update(&preconditions(&[("x-expected-version", "1")])).unwrap_err();
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        assert_eq!(
            refused.to_string(),
            "stale version: expected 1, current 2; fetch the record again"
        );
    }

    #[test]
    fn a_record_removed_meanwhile_is_404() {
        let store: Store<&str, u32> = Store::new();
        store.insert("a", 0).unwrap();
        let read = store.version(&"a");
        store.remove(&"a", &1).unwrap();
        let refused = preconditions(&[("if-match", "*")])
            .modify(read, |version| store.update(&"a", version, 1))
            .unwrap_err();
        assert_eq!(refused, Refused::Precondition(Decision::NotFound));
    }

    #[test]
    fn failures_other_than_a_lost_race_are_answered_as_they_are() {
        let store: Store<&str, u32> = Store::builder().shards(1).build();
        store.insert("a", 0).unwrap();
        let token = crate::CancelToken::new();
        token.cancel();
        let refused = preconditions(&[("if-match", "*")])
            .modify(store.version(&"a"), |version| {
                store.bounded().with_cancel(&token).update(&"a", version, 1)
            })
            .unwrap_err();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        let invalid = preconditions(&[("if-match", "*")])
            .modify(store.version(&"a"), |version| {
                store.patch(&"a", version, |_: &mut u32| Err("no"))
            })
            .unwrap_err();
        assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(invalid.to_string(), "patch refused: no");
        assert_eq!(store.get(&"a").unwrap().version, 1, "nothing was written");
    }

    #[test]
    fn backend_failures_are_503_only_when_repeating_the_request_can_help() {
        let status = |error: Error<u64>| Refused::<u64, _>::Write(error).status();
        let cause = || crate::Cause::new("why");
        assert_eq!(
            status(Error::Unavailable(cause())),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(Error::OutcomeUnknown(cause())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(Error::BadRecord(cause())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(Error::Misconfigured(cause())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn each_cause_of_a_412_has_its_own_message() {
        let exists = preconditions(&[("if-none-match", "*")]).evaluate(Intent::Create, Some(&3));
        let listed =
            preconditions(&[("if-none-match", "\"3\"")]).evaluate(Intent::Modify, Some(&3));
        let changed = preconditions(&[("if-match", "\"2\"")]).evaluate(Intent::Modify, Some(&3));
        let missing = preconditions(&[("if-match", "\"2\"")]).evaluate(Intent::Create, None);
        let messages: Vec<String> = [exists, listed, changed, missing]
            .iter()
            .map(|decision| {
                assert_eq!(decision.status(), StatusCode::PRECONDITION_FAILED);
                decision.message()
            })
            .collect();
        assert_eq!(
            messages,
            [
                "precondition failed: the record already exists (at \"3\") and If-None-Match is *",
                "precondition failed: the record is at \"3\", which If-None-Match lists",
                "precondition failed: the record changed since the ETag you sent (it is now \"3\"); fetch it again and resubmit",
                "precondition failed: If-Match names a record that does not exist",
            ]
        );
    }
}

//! The movies API: a small JSON web service over a verkv store, with entity tags,
//! conditional requests and a deadline on every request.
//!
//! | request | does | preconditions |
//! |---|---|---|
//! | `POST /movies/{id}` | creates the movie (a JSON object) | `If-None-Match: *` honoured |
//! | `GET /movies/{id}` | returns it with its `ETag` | `If-None-Match` → `304` |
//! | `PATCH /movies/{id}` | applies a JSON merge patch (RFC 7396) | `If-Match` or `X-Expected-Version` required |
//! | `DELETE /movies/{id}` | deletes it | `If-Match` or `X-Expected-Version` required |
//!
//! Every request runs under one deadline; if it passes while the request is queued
//! behind other writers, the answer is `503` with `Retry-After`, and nothing was written.
//!
//! The API is written against the `VersionedStore` trait: it serves the in-memory store,
//! or (the `postgres` feature) a PostgreSQL table that several instances share.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use axum_extra::TypedHeader;
use serde_json::{json, Value};
use verkv::http::{etag, Decision, Intent, Preconditions, RETRY_AFTER_SECONDS};
use verkv::json::MergePatch;
use verkv::{Context, Counter, Error, Patch, Store, UpdateWithError, Versioned, VersionedStore};

/// The in-memory store behind the API: movie id → JSON object.
#[allow(dead_code)] // Not every program that includes this file uses it.
pub(crate) type Movies = Store<String, Value>;

/// A store the API can serve: any backend with counter versions.
pub(crate) trait MovieStore:
    VersionedStore<String, Value, Version = u64> + Send + Sync + 'static
{
}

impl<S: VersionedStore<String, Value, Version = u64> + Send + Sync + 'static> MovieStore for S {}

/// What every handler shares.
pub(crate) struct AppState<S> {
    /// The records.
    pub(crate) movies: Arc<S>,
    /// How long one request may take, queueing included.
    pub(crate) request_timeout: Duration,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            movies: self.movies.clone(),
            request_timeout: self.request_timeout,
        }
    }
}

/// The API's routes.
pub(crate) fn router<S: MovieStore>(state: AppState<S>) -> Router {
    Router::new()
        .route(
            "/movies/{id}",
            post(create::<S>)
                .get(read::<S>)
                .patch(patch::<S>)
                .delete(remove::<S>),
        )
        .with_state(state)
}

/// A JSON error body with `status`.
fn refuse(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let mut response = (status, Json(json!({ "error": message.to_string() }))).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, RETRY_AFTER_SECONDS.into());
    }
    response
}

/// A record with its `ETag`.
fn record(status: StatusCode, record: Versioned<Value, u64>) -> Response {
    (
        status,
        TypedHeader(etag(&record.version)),
        Json(record.value),
    )
        .into_response()
}

/// A store refusal, as the status the request's preconditions call for.
fn refused(preconditions: &Preconditions<u64>, error: &Error<u64>) -> Response {
    refuse(preconditions.status_of(error), error)
}

/// One request: the store, the request's deadline, its preconditions and the record as
/// it was when the request started.
struct Request<'a, S> {
    movies: &'a S,
    ctx: Context<'a>,
    preconditions: Preconditions<u64>,
    id: String,
    found: Option<Versioned<Value, u64>>,
}

impl<S> Request<'_, S> {
    fn evaluate(&self, intent: Intent) -> Decision<u64> {
        let version = self.found.as_ref().map(|found| &found.version);
        self.preconditions.evaluate(intent, version)
    }

    /// The version a modification must be made at, if its preconditions let it proceed;
    /// otherwise the decision to answer with.
    fn version_to_modify(&self) -> Result<u64, Decision<u64>> {
        match (self.evaluate(Intent::Modify), &self.found) {
            (Decision::Proceed, Some(found)) => Ok(found.version),
            (decision, _) => Err(decision),
        }
    }
}

/// Reads the request's preconditions and record, then runs `handle` on a thread where
/// blocking is fine (store calls may wait for a lock, up to the request's deadline).
async fn handle_blocking<S: MovieStore>(
    state: AppState<S>,
    id: String,
    headers: HeaderMap,
    handle: impl FnOnce(Request<'_, S>) -> Response + Send + 'static,
) -> Response {
    let deadline = Instant::now() + state.request_timeout;
    let preconditions = match Preconditions::from_headers::<Counter>(&headers) {
        Ok(preconditions) => preconditions,
        Err(bad) => return refuse(StatusCode::BAD_REQUEST, bad),
    };
    let work = move || {
        let ctx = Context::until(deadline);
        match state.movies.get(&ctx, &id) {
            Ok(found) => handle(Request {
                movies: &*state.movies,
                ctx,
                preconditions,
                id,
                found,
            }),
            Err(error) => refused(&preconditions, &error),
        }
    };
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|panic| refuse(StatusCode::INTERNAL_SERVER_ERROR, panic))
}

/// Checks what a movie must look like after any change: an object with a non-empty
/// string `title`.
fn validate(movie: &Value) -> Result<(), String> {
    match movie.get("title") {
        _ if !movie.is_object() => Err("a movie is a JSON object".into()),
        Some(Value::String(title)) if !title.trim().is_empty() => Ok(()),
        Some(_) => Err("field `title` must be a non-empty string".into()),
        None => Err("field `title` is required".into()),
    }
}

async fn create<S: MovieStore>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(movie): Json<Value>,
) -> Response {
    handle_blocking(state, id, headers, move |request| {
        if let Err(problem) = validate(&movie) {
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, problem);
        }
        let decision = request.evaluate(Intent::Create);
        if decision != Decision::Proceed {
            return refuse(decision.status(), decision.message());
        }
        let written = request
            .movies
            .insert(&request.ctx, request.id.clone(), movie.clone());
        match written {
            Ok(version) => record(
                StatusCode::CREATED,
                Versioned {
                    value: movie,
                    version,
                },
            ),
            Err(rejected) => refused(&request.preconditions, &rejected.error),
        }
    })
    .await
}

async fn read<S: MovieStore>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    handle_blocking(state, id, headers, |request| {
        match (request.evaluate(Intent::Read), request.found) {
            (Decision::Proceed, Some(found)) => record(StatusCode::OK, found),
            (Decision::NotModified, Some(found)) => {
                (StatusCode::NOT_MODIFIED, TypedHeader(etag(&found.version))).into_response()
            }
            (decision, _) => refuse(decision.status(), decision.message()),
        }
    })
    .await
}

/// Why a merge patch was not written.
enum NotWritten {
    /// The patched movie fails validation.
    Invalid(String),
    /// The patch changes nothing: no write, the version stays.
    Unchanged(Value),
}

async fn patch<S: MovieStore>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(merge_patch): Json<Value>,
) -> Response {
    handle_blocking(state, id, headers, move |request| {
        let version = match request.version_to_modify() {
            Ok(version) => version,
            Err(decision) => return refuse(decision.status(), decision.message()),
        };
        // Applied and validated on the record at the version the preconditions passed,
        // and written only if it is still at that version: a patch that fails validation
        // changes nothing, and one that changes nothing keeps the version.
        let mut patched = None;
        let written =
            request
                .movies
                .update_with(&request.ctx, &request.id, &version, |movie: &Value| {
                    let mut draft = movie.clone();
                    MergePatch::new(merge_patch)
                        .apply(&mut draft)
                        .unwrap_or_else(|never| match never {});
                    validate(&draft).map_err(NotWritten::Invalid)?;
                    if draft == *movie {
                        return Err(NotWritten::Unchanged(draft));
                    }
                    patched = Some(draft.clone());
                    Ok(draft)
                });
        match written {
            Ok(version) => record(
                StatusCode::OK,
                Versioned {
                    value: patched.expect("set by the applied patch"),
                    version,
                },
            ),
            Err(UpdateWithError::Closure(NotWritten::Unchanged(value))) => {
                record(StatusCode::OK, Versioned { value, version })
            }
            Err(UpdateWithError::Closure(NotWritten::Invalid(problem))) => {
                refuse(StatusCode::UNPROCESSABLE_ENTITY, problem)
            }
            Err(UpdateWithError::Store(error)) => refused(&request.preconditions, &error),
        }
    })
    .await
}

async fn remove<S: MovieStore>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    handle_blocking(state, id, headers, |request| {
        let version = match request.version_to_modify() {
            Ok(version) => version,
            Err(decision) => return refuse(decision.status(), decision.message()),
        };
        match request.movies.remove(&request.ctx, &request.id, &version) {
            Ok(_) => StatusCode::NO_CONTENT.into_response(),
            Err(error) => refused(&request.preconditions, &error),
        }
    })
    .await
}

//! The movies API: a small JSON web service over a verkv store, with entity tags,
//! conditional requests and a deadline on every request.
//!
//! | request | does | preconditions |
//! |---|---|---|
//! | `POST /movies/{id}` | creates the movie (a JSON object) | `If-None-Match: *` honoured |
//! | `GET /movies/{id}` | returns it with its `ETag` | `If-None-Match` → `304` |
//! | `PATCH /movies/{id}` | applies a JSON merge patch (RFC 7396) or a JSON Patch (RFC 6902), by `Content-Type` | `If-Match` or `X-Expected-Version` required |
//! | `DELETE /movies/{id}` | deletes it | `If-Match` or `X-Expected-Version` required |
//!
//! Every request runs under one deadline; if it passes while the request is queued
//! behind other writers, the answer is `503` with `Retry-After`, and nothing was written.
//! A write that loses a race to another writer is evaluated again against the record as
//! it is now (`If-Match: *` still holds; a tag the record moved past is `412`). A `PATCH`
//! of another media type is `415` with `Accept-Patch` (RFC 5789), which `GET` sends too.
//!
//! The API is written against the `AsyncVersionedStore` trait, and no handler blocks its
//! executor thread: a request queued behind another writer, or waiting on the database,
//! awaits. It serves the in-memory store, or (the `postgres` feature) a PostgreSQL table
//! that several instances share.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use axum_extra::TypedHeader;
use serde_json::{json, Value};
use verkv::http::{
    etag, Decision, Intent, Preconditions, Refused, StoreRefusal, RETRY_AFTER_SECONDS,
};
use verkv::json::{JsonPatch, JsonPatchError, MergePatch};
use verkv::{AsyncVersionedStore, Context, Counter, Patch, Store, UpdateWithError, Versioned};

/// The in-memory store behind the API: movie id → JSON object.
#[allow(dead_code)] // Not every program that includes this file uses it.
pub(crate) type Movies = Store<String, Value>;

/// A store the API can serve: any async backend with counter versions.
pub(crate) trait MovieStore:
    AsyncVersionedStore<String, Value, Version = u64> + Send + Sync + 'static
{
}

impl<S: AsyncVersionedStore<String, Value, Version = u64> + Send + Sync + 'static> MovieStore
    for S
{
}

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

/// A write refused by its preconditions (evaluated again after any lost race) or by the
/// store, as the status that calls for.
fn refused<E: StoreRefusal<u64> + std::fmt::Display>(refused: Refused<u64, E>) -> Response {
    refuse(refused.status(), refused)
}

/// The `Accept-Patch` response header (RFC 5789).
const ACCEPT_PATCH_HEADER: HeaderName = HeaderName::from_static("accept-patch");

/// The patch documents `PATCH` takes, by media type (`Accept-Patch`, RFC 5789).
const ACCEPT_PATCH: &str = "application/merge-patch+json, application/json-patch+json";

/// A patch document read from a request body.
#[derive(Clone)]
enum MoviePatch {
    /// `application/merge-patch+json` (or plain `application/json`).
    Merge(MergePatch),
    /// `application/json-patch+json`.
    Json(JsonPatch),
}

impl MoviePatch {
    /// Reads a body of media type `content_type`; the status and message to answer with
    /// if it cannot.
    fn read(content_type: Option<&HeaderValue>, body: &[u8]) -> Result<Self, (StatusCode, String)> {
        let media_type = content_type
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .map(|media_type| media_type.trim().to_ascii_lowercase());
        let malformed = |problem: String| (StatusCode::BAD_REQUEST, problem);
        let text = std::str::from_utf8(body)
            .map_err(|_| malformed("the body is not UTF-8 text".into()))?;
        match media_type.as_deref() {
            Some("application/merge-patch+json" | "application/json") => text
                .parse()
                .map(MoviePatch::Merge)
                .map_err(|problem| malformed(problem.to_string())),
            Some("application/json-patch+json") => text
                .parse()
                .map(MoviePatch::Json)
                .map_err(|problem| malformed(problem.to_string())),
            other => Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "a PATCH body must be one of {ACCEPT_PATCH}, not {}",
                    other.unwrap_or("untyped")
                ),
            )),
        }
    }
}

/// Tells the client which patch documents `PATCH` takes.
fn with_accept_patch(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(ACCEPT_PATCH_HEADER, HeaderValue::from_static(ACCEPT_PATCH));
    response
}

/// Why a patch was refused: its JSON Patch operation failed, or the patched movie is not
/// valid.
#[derive(Debug)]
enum PatchProblem {
    Operation(JsonPatchError),
    Invalid(String),
}

impl std::fmt::Display for PatchProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatchProblem::Operation(error) => error.fmt(f),
            PatchProblem::Invalid(problem) => f.write_str(problem),
        }
    }
}

impl Patch<Value> for MoviePatch {
    type Error = PatchProblem;

    fn apply(self, movie: &mut Value) -> Result<(), PatchProblem> {
        match self {
            MoviePatch::Merge(merge) => merge.apply(movie).unwrap_or_else(|never| match never {}),
            MoviePatch::Json(patch) => patch.apply(movie).map_err(PatchProblem::Operation)?,
        }
        validate(movie).map_err(PatchProblem::Invalid)
    }
}

/// One request: the store, the request's deadline, its preconditions and the record as
/// it was when the request started.
struct Request<'a, S> {
    movies: &'a S,
    ctx: Context<'static>,
    preconditions: Preconditions<u64>,
    id: String,
    found: Option<Versioned<Value, u64>>,
}

impl<'a, S: MovieStore> Request<'a, S> {
    /// Starts the request's deadline, reads its preconditions and the record; the answer
    /// to give at once if it cannot go on.
    async fn read(
        state: &'a AppState<S>,
        id: String,
        headers: &HeaderMap,
    ) -> Result<Self, Response> {
        let ctx = Context::within(state.request_timeout);
        let preconditions = Preconditions::from_headers::<Counter>(headers)
            .map_err(|bad| refuse(StatusCode::BAD_REQUEST, bad))?;
        match state.movies.get(&ctx, &id).await {
            Ok(found) => Ok(Request {
                movies: &*state.movies,
                ctx,
                preconditions,
                id,
                found,
            }),
            Err(error) => Err(refused(Refused::<u64, _>::Write(error))),
        }
    }

    fn evaluate(&self, intent: Intent) -> Decision<u64> {
        self.preconditions
            .evaluate(intent, self.found_version().as_ref())
    }

    /// The version the request found the record at, if there was one.
    fn found_version(&self) -> Option<u64> {
        self.found.as_ref().map(|found| found.version)
    }
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
    let request = match Request::read(&state, id, &headers).await {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    if let Err(problem) = validate(&movie) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, problem);
    }
    let written = request
        .preconditions
        .create_async(request.found_version(), || {
            request
                .movies
                .insert(&request.ctx, request.id.clone(), movie.clone())
        })
        .await;
    match written {
        Ok(version) => record(
            StatusCode::CREATED,
            Versioned {
                value: movie,
                version,
            },
        ),
        Err(refusal) => refused(refusal),
    }
}

async fn read<S: MovieStore>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let request = match Request::read(&state, id, &headers).await {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    match (request.evaluate(Intent::Read), request.found) {
        (Decision::Proceed, Some(found)) => with_accept_patch(record(StatusCode::OK, found)),
        (Decision::NotModified, Some(found)) => {
            (StatusCode::NOT_MODIFIED, TypedHeader(etag(&found.version))).into_response()
        }
        (decision, _) => refuse(decision.status(), decision.message()),
    }
}

/// Why a patch was not written.
#[derive(Debug)]
enum NotWritten {
    /// The patch refused, or the patched movie is not valid.
    Refused(PatchProblem),
    /// The patch changes nothing: no write, the version stays.
    Unchanged(Value),
}

impl std::fmt::Display for NotWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotWritten::Refused(problem) => problem.fmt(f),
            NotWritten::Unchanged(_) => f.write_str("the patch changes nothing"),
        }
    }
}

async fn patch<S: MovieStore>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let document = match MoviePatch::read(headers.get(header::CONTENT_TYPE), &body) {
        Ok(document) => document,
        Err((status, problem)) if status == StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            return with_accept_patch(refuse(status, problem))
        }
        Err((status, problem)) => return refuse(status, problem),
    };
    let request = match Request::read(&state, id, &headers).await {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    // Applied and validated on the record at the version the preconditions passed, and
    // written only if it is still at that version: a patch that fails validation changes
    // nothing, and one that changes nothing keeps the version. Each attempt says which
    // version it patched and what it wrote, for the answer.
    let attempt = std::sync::Mutex::new((None, None));
    let written = request
        .preconditions
        .modify_async(request.found_version(), |version| {
            let (request, document, attempt) = (&request, document.clone(), &attempt);
            async move {
                *attempt.lock().unwrap() = (Some(version), None);
                request
                    .movies
                    .try_update_with(&request.ctx, &request.id, &version, |movie: &Value| {
                        let mut draft = movie.clone();
                        document.apply(&mut draft).map_err(NotWritten::Refused)?;
                        if draft == *movie {
                            return Err(NotWritten::Unchanged(draft));
                        }
                        attempt.lock().unwrap().1 = Some(draft.clone());
                        Ok(draft)
                    })
                    .await
            }
        })
        .await;
    let (attempted, patched) = attempt.into_inner().unwrap();
    match (written, patched, attempted) {
        (Ok(version), Some(value), _) => record(StatusCode::OK, Versioned { value, version }),
        (
            Err(Refused::Write(UpdateWithError::Closure(NotWritten::Unchanged(value)))),
            _,
            Some(version),
        ) => record(StatusCode::OK, Versioned { value, version }),
        (Err(Refused::Write(UpdateWithError::Closure(NotWritten::Refused(problem)))), ..) => {
            refuse(StatusCode::UNPROCESSABLE_ENTITY, problem)
        }
        (Err(refusal), ..) => refused(refusal),
        (Ok(_), None, _) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "a patch answered without running",
        ),
    }
}

async fn remove<S: MovieStore>(
    State(state): State<AppState<S>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let request = match Request::read(&state, id, &headers).await {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    let removed = request
        .preconditions
        .modify_async(request.found_version(), |version| {
            let request = &request;
            async move {
                request
                    .movies
                    .remove(&request.ctx, &request.id, &version)
                    .await
            }
        })
        .await;
    match removed {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(refusal) => refused(refusal),
    }
}

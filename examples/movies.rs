//! A movie record patched by two clients, one of them working from a stale read: the
//! in-process version of `PATCH /movies/1` with `If-Match`.
//!
//! ```text
//! cargo run --example movies --features serde
//! ```
//!
//! Each request body is JSON, read into a typed patch whose fields tell "not sent" from
//! "sent as null" from a value. Only what a client sends is applied, under the version
//! check, and a patch that fails validation changes nothing, not even the version.

use serde::Deserialize;
use verkv::{Field, Invalid, Patch, PatchError, Store};

#[derive(Debug, Clone, PartialEq)]
struct Movie {
    title: String,
    year: u16,
    /// Minutes; unknown until somebody fills it in.
    runtime: Option<u16>,
    genres: Vec<String>,
}

/// The body of a `PATCH` request: every field may be left out.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct MoviePatch {
    title: Field<String>,
    year: Field<u16>,
    runtime: Field<u16>,
    genres: Field<Vec<String>>,
}

const FIRST_FILM_YEAR: u16 = 1888;
const MAX_GENRES: usize = 5;
/// The longest a movie in the genre "short" may run.
const SHORT_MAX_MINUTES: u16 = 40;

impl Patch<Movie> for MoviePatch {
    type Error = Invalid;

    /// The checks that need only the request: done before the store locks anything.
    fn precheck(&self) -> Result<(), Invalid> {
        let mut invalid = Invalid::new();
        if self
            .title
            .as_value()
            .is_some_and(|title| title.trim().is_empty())
        {
            invalid.push("title", "must not be empty");
        }
        if let Some(&year) = self.year.as_value().filter(|&&y| y < FIRST_FILM_YEAR) {
            invalid.push(
                "year",
                format!("must be {FIRST_FILM_YEAR} or later, got {year}"),
            );
        }
        if self.runtime.as_value() == Some(&0) {
            invalid.push("runtime", "must be at least 1 minute");
        }
        if let Some(genres) = self.genres.as_value() {
            if genres.len() > MAX_GENRES || genres.iter().any(|g| g.is_empty()) {
                invalid.push(
                    "genres",
                    format!("must be at most {MAX_GENRES} non-empty names"),
                );
            }
        }
        invalid.into_result()
    }

    /// Applies what was sent, then checks the rule that spans fields, on the would-be
    /// record.
    fn apply(self, movie: &mut Movie) -> Result<(), Invalid> {
        let mut invalid = Invalid::new();
        invalid.check("title", self.title.apply_to(&mut movie.title));
        invalid.check("year", self.year.apply_to(&mut movie.year));
        self.runtime.apply_to_option(&mut movie.runtime);
        invalid.check("genres", self.genres.apply_to(&mut movie.genres));
        let is_short = movie.genres.iter().any(|genre| genre == "short");
        if let Some(minutes) = movie.runtime.filter(|&m| is_short && m > SHORT_MAX_MINUTES) {
            invalid.push(
                "runtime",
                format!("a short runs at most {SHORT_MAX_MINUTES} minutes, this one {minutes}"),
            );
        }
        invalid.into_result()
    }
}

/// A client of the movie service: it remembers the version it last read.
struct Client {
    name: &'static str,
    version: u64,
}

impl Client {
    fn read(&mut self, store: &Store<u32, Movie>) {
        let read = store.get(&1).expect("movie 1 exists");
        println!(
            "{:>5} reads version {}: {:?}",
            self.name, read.version, read.value
        );
        self.version = read.version;
    }

    /// Sends `body` as a patch based on the version this client read; returns the HTTP
    /// status a web service would answer with.
    fn patch(&mut self, store: &Store<u32, Movie>, body: &str) -> u16 {
        println!(
            "{:>5} sends  If-Match: \"{}\"  {body}",
            self.name, self.version
        );
        let patch: MoviePatch = match serde_json::from_str(body) {
            Ok(patch) => patch,
            Err(error) => {
                println!("      400 Bad Request: {error}");
                return 400;
            }
        };
        match store.patch(&1, &self.version, patch) {
            Ok(version) if version == self.version => {
                println!("      200 OK, nothing changed: still version {version}");
                200
            }
            Ok(version) => {
                println!("      200 OK, now version {version}");
                self.version = version;
                200
            }
            Err(PatchError::Store(error)) => {
                println!("      412 Precondition Failed: {error}");
                412
            }
            Err(PatchError::Patch(invalid)) => {
                let fields: Vec<&str> = invalid.fields().collect();
                println!("      422 Unprocessable Content, fields {fields:?}: {invalid}");
                422
            }
        }
    }
}

fn main() {
    let store: Store<u32, Movie> = Store::new();
    store
        .insert(
            1,
            Movie {
                title: "Alien".into(),
                year: 1979,
                runtime: None,
                genres: vec!["horror".into()],
            },
        )
        .expect("the store starts empty");

    let mut editor = Client {
        name: "Ellen",
        version: 0,
    };
    let mut fan = Client {
        name: "Dallas",
        version: 0,
    };
    editor.read(&store);
    fan.read(&store);

    println!("\nThe editor fills in the runtime and a second genre.");
    assert_eq!(
        editor.patch(
            &store,
            r#"{"runtime": 117, "genres": ["horror", "science fiction"]}"#
        ),
        200
    );

    println!("\nThe fan, still holding the first version, fixes the title: refused.");
    assert_eq!(fan.patch(&store, r#"{"title": "Alien (1979)"}"#), 412);
    println!("The fan re-reads and sends the same patch; the editor's fields stay.");
    fan.read(&store);
    assert_eq!(fan.patch(&store, r#"{"title": "Alien (1979)"}"#), 200);

    println!("\nAn empty title and a zero runtime are values, so validation sees them.");
    assert_eq!(fan.patch(&store, r#"{"title": "", "runtime": 0}"#), 422);
    println!("Null for a field every movie needs is refused.");
    assert_eq!(fan.patch(&store, r#"{"year": null}"#), 422);

    println!("\nThe editor, now stale too, re-reads and tags it a short: the rule spans fields.");
    assert_eq!(editor.patch(&store, r#"{"genres": ["short"]}"#), 412);
    editor.read(&store);
    assert_eq!(editor.patch(&store, r#"{"genres": ["short"]}"#), 422);

    println!("\nSending what is already there changes nothing, and keeps the version.");
    assert_eq!(
        editor.patch(&store, r#"{"year": 1979, "runtime": 117}"#),
        200
    );
    println!("A body of the wrong shape never reaches the store; null clears the runtime.");
    assert_eq!(editor.patch(&store, r#"{"year": "1979"}"#), 400);
    assert_eq!(editor.patch(&store, r#"{"runtime": null}"#), 200);

    println!();
    editor.read(&store);
    assert_eq!(
        store.get(&1).map(|read| read.value),
        Some(Movie {
            title: "Alien (1979)".into(),
            year: 1979,
            runtime: None,
            genres: vec!["horror".into(), "science fiction".into()],
        })
    );
}

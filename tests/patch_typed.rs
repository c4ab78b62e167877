//! Typed patches: `Field` deserialization, `Store::patch` against a model, validation that
//! names fields and changes nothing, and the version of a patch that changes nothing.

use std::convert::Infallible;

use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use verkv::{Error, Field, Invalid, Patch, PatchError, Store, Versioned};

/// A record whose fields cover a required string, a required number, an optional string
/// and a list.
#[derive(Debug, Clone, PartialEq)]
struct Profile {
    name: String,
    age: u32,
    email: Option<String>,
    tags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ProfilePatch {
    name: Field<String>,
    age: Field<u32>,
    email: Field<String>,
    tags: Field<Vec<String>>,
}

const MAX_AGE: u32 = 150;
const MAX_TAGS: usize = 3;

/// The rules every stored profile keeps, checked on the would-be record.
fn validate(profile: &Profile, invalid: &mut Invalid) {
    if profile.name.is_empty() {
        invalid.push("name", "must not be empty");
    }
    if !(1..=MAX_AGE).contains(&profile.age) {
        invalid.push(
            "age",
            format!("must be between 1 and {MAX_AGE}, got {}", profile.age),
        );
    }
    if profile
        .email
        .as_ref()
        .is_some_and(|email| !email.contains('@'))
    {
        invalid.push("email", "must contain @");
    }
    if profile.tags.len() > MAX_TAGS {
        invalid.push("tags", format!("at most {MAX_TAGS} allowed"));
    }
}

impl Patch<Profile> for ProfilePatch {
    type Error = Invalid;

    fn apply(self, profile: &mut Profile) -> Result<(), Invalid> {
        let mut invalid = Invalid::new();
        invalid.check("name", self.name.apply_to(&mut profile.name));
        invalid.check("age", self.age.apply_to(&mut profile.age));
        self.email.apply_to_option(&mut profile.email);
        invalid.check("tags", self.tags.apply_to(&mut profile.tags));
        validate(profile, &mut invalid);
        invalid.into_result()
    }
}

/// What applying `patch` to `record` must give, written field by field: the would-be
/// record, or the names of the refused fields (sorted).
fn model(record: &Profile, patch: &ProfilePatch) -> Result<Profile, Vec<String>> {
    fn required<T: Clone>(old: &T, field: &Field<T>, name: &str, refused: &mut Vec<String>) -> T {
        match field {
            Field::Absent => old.clone(),
            Field::Null => {
                refused.push(name.to_owned());
                old.clone()
            }
            Field::Value(new) => new.clone(),
        }
    }
    let mut refused = Vec::new();
    let would_be = Profile {
        name: required(&record.name, &patch.name, "name", &mut refused),
        age: required(&record.age, &patch.age, "age", &mut refused),
        email: match &patch.email {
            Field::Absent => record.email.clone(),
            Field::Null => None,
            Field::Value(email) => Some(email.clone()),
        },
        tags: required(&record.tags, &patch.tags, "tags", &mut refused),
    };
    if would_be.name.is_empty() {
        refused.push("name".into());
    }
    if would_be.age == 0 || would_be.age > MAX_AGE {
        refused.push("age".into());
    }
    if matches!(&would_be.email, Some(email) if !email.contains('@')) {
        refused.push("email".into());
    }
    if would_be.tags.len() > MAX_TAGS {
        refused.push("tags".into());
    }
    refused.sort();
    if refused.is_empty() {
        Ok(would_be)
    } else {
        Err(refused)
    }
}

/// Every record of the store, sorted by key: what "unchanged" is compared on.
fn snapshot(store: &Store<u32, Profile>) -> Vec<(u32, Versioned<Profile, u64>)> {
    let mut all: Vec<_> = store.iter().collect();
    all.sort_by_key(|(key, _)| *key);
    all
}

fn valid_profile() -> impl Strategy<Value = Profile> {
    (
        "[a-z]{1,6}",
        1..=MAX_AGE,
        proptest::option::of("[a-z]{1,3}@[a-z]{1,3}"),
        proptest::collection::vec("[a-z]{0,3}", 0..=MAX_TAGS),
    )
        .prop_map(|(name, age, email, tags)| Profile {
            name,
            age,
            email,
            tags,
        })
}

fn field<T: std::fmt::Debug + Clone>(
    value: impl Strategy<Value = T>,
) -> impl Strategy<Value = Field<T>> {
    prop_oneof![
        2 => Just(Field::Absent),
        1 => Just(Field::Null),
        3 => value.prop_map(Field::Value),
    ]
}

/// Patches with valid and invalid values alike; `""` and `0` come up often.
fn any_patch() -> impl Strategy<Value = ProfilePatch> {
    (
        field(prop_oneof![Just(String::new()), "[a-z]{1,6}"]),
        field(prop_oneof![Just(0u32), 0..=MAX_AGE + 20]),
        field(prop_oneof![Just(String::new()), "[a-z@]{1,5}"]),
        field(proptest::collection::vec("[a-z]{0,3}", 0..=MAX_TAGS + 2)),
    )
        .prop_map(|(name, age, email, tags)| ProfilePatch {
            name,
            age,
            email,
            tags,
        })
}

/// The JSON body a client sends for `patch`: absent fields are left out.
fn body(patch: &ProfilePatch) -> String {
    fn put<T: serde::Serialize>(object: &mut Map<String, Value>, key: &str, field: &Field<T>) {
        match field {
            Field::Absent => {}
            Field::Null => {
                object.insert(key.into(), Value::Null);
            }
            Field::Value(value) => {
                object.insert(key.into(), json!(value));
            }
        }
    }
    let mut object = Map::new();
    put(&mut object, "name", &patch.name);
    put(&mut object, "age", &patch.age);
    put(&mut object, "email", &patch.email);
    put(&mut object, "tags", &patch.tags);
    Value::Object(object).to_string()
}

/// A store holding `record` at key 0 and `others` at keys 1, 2, …
fn store_with(record: &Profile, others: &[Profile]) -> Store<u32, Profile> {
    let store = Store::new();
    store.insert(0, record.clone()).unwrap();
    for (key, other) in (1..).zip(others) {
        store.insert(key, other.clone()).unwrap();
    }
    store
}

proptest! {
    #[test]
    fn patch_agrees_with_the_model(
        record in valid_profile(),
        others in proptest::collection::vec(valid_profile(), 0..4),
        patch in any_patch(),
    ) {
        let store = store_with(&record, &others);
        let before = snapshot(&store);
        let result = store.patch(&0, &1, patch.clone());
        match model(&record, &patch) {
            Ok(would_be) => {
                // Changed: the next version; unchanged: the same one.
                let expected_version = if would_be == record { 1 } else { 2 };
                prop_assert_eq!(result, Ok(expected_version));
                let mut after = before;
                after[0].1 = Versioned { value: would_be, version: expected_version };
                prop_assert_eq!(snapshot(&store), after);
            }
            Err(refused) => {
                let Err(PatchError::Patch(invalid)) = result else {
                    return Err(TestCaseError::fail(format!("expected refusal, got {result:?}")));
                };
                let mut named: Vec<String> = invalid.fields().map(String::from).collect();
                named.sort();
                prop_assert_eq!(named, refused);
                prop_assert_eq!(snapshot(&store), before);
            }
        }
    }

    #[test]
    fn stale_patch_changes_nothing(
        record in valid_profile(),
        first in any_patch(),
        second in any_patch(),
    ) {
        let store = store_with(&record, &[]);
        let v2 = store.put(0, record.clone()).unwrap();
        let before = snapshot(&store);
        // `first` read version 1, before the blind write made it 2.
        let result = store.patch(&0, &1, first);
        prop_assert_eq!(result, Err(PatchError::Store(Error::Stale { expected: 1, current: v2 })));
        prop_assert_eq!(&snapshot(&store), &before);
        let result = store.patch(&7, &v2, second);
        prop_assert_eq!(result, Err(PatchError::Store(Error::NotFound)));
        prop_assert_eq!(snapshot(&store), before);
    }

    #[test]
    fn body_deserializes_to_absent_null_or_value(patch in any_patch()) {
        let body = body(&patch);
        let read: ProfilePatch = serde_json::from_str(&body)
            .map_err(|e| TestCaseError::fail(format!("{body}: {e}")))?;
        prop_assert_eq!(read, patch);
    }
}

#[test]
fn empty_string_and_zero_are_values_that_reach_validation() {
    let patch: ProfilePatch = serde_json::from_str(r#"{"name": "", "age": 0}"#).unwrap();
    assert_eq!(patch.name, Field::Value(String::new()));
    assert_eq!(patch.age, Field::Value(0));
    assert_eq!(patch.email, Field::Absent);

    let record = Profile {
        name: "ada".into(),
        age: 36,
        email: None,
        tags: vec![],
    };
    let store = store_with(&record, &[]);
    let err = store.patch(&0, &1, patch).unwrap_err();
    assert_eq!(
        err.to_string(),
        "patch refused: invalid name: must not be empty; \
         invalid age: must be between 1 and 150, got 0"
    );
    assert_eq!(
        store.get(&0),
        Some(Versioned {
            value: record,
            version: 1
        })
    );
}

#[test]
fn null_clears_an_optional_field_and_is_refused_for_a_required_one() {
    let record = Profile {
        name: "ada".into(),
        age: 36,
        email: Some("ada@example.org".into()),
        tags: vec!["math".into()],
    };
    let store = store_with(&record, &[]);
    let clear_email: ProfilePatch = serde_json::from_str(r#"{"email": null}"#).unwrap();
    assert_eq!(store.patch(&0, &1, clear_email), Ok(2));
    assert_eq!(store.get(&0).unwrap().value.email, None);

    let null_name: ProfilePatch = serde_json::from_str(r#"{"name": null, "tags": null}"#).unwrap();
    let err = store.patch(&0, &2, null_name).unwrap_err();
    assert_eq!(
        err.to_string(),
        "patch refused: invalid name: must not be null; invalid tags: must not be null"
    );
    assert_eq!(store.version(&0), Some(2));
}

#[test]
fn a_patch_that_changes_nothing_keeps_the_version() {
    let record = Profile {
        name: "ada".into(),
        age: 36,
        email: None,
        tags: vec![],
    };
    let store = store_with(&record, &[]);
    for body in ["{}", r#"{"name": "ada"}"#, r#"{"email": null, "age": 36}"#] {
        let patch: ProfilePatch = serde_json::from_str(body).unwrap();
        assert_eq!(store.patch(&0, &1, patch), Ok(1), "{body}");
    }
    // Version 1 is still current: a client that read it can write.
    let rename: ProfilePatch = serde_json::from_str(r#"{"name": "ada l."}"#).unwrap();
    assert_eq!(store.patch(&0, &1, rename), Ok(2));
}

#[test]
fn a_missing_key_without_serde_default_is_an_error_not_null() {
    #[derive(Debug, Deserialize)]
    struct Forgetful {
        #[allow(dead_code)] // read only through Debug
        email: Field<String>,
    }
    let err = serde_json::from_str::<Forgetful>("{}").unwrap_err();
    assert_eq!(err.to_string(), "missing field `email` at line 1 column 2");
    let null: Forgetful = serde_json::from_str(r#"{"email": null}"#).unwrap();
    assert!(null.email.is_null());
}

#[test]
fn malformed_bodies_are_clear_errors() {
    let cases = [
        (
            r#"{"age": "ten"}"#,
            "invalid type: string \"ten\", expected u32 at line 1 column 13",
        ),
        (
            r#"{"age": -1}"#,
            "invalid value: integer `-1`, expected u32 at line 1 column 10",
        ),
        (
            r#"{"tags": "a"}"#,
            "invalid type: string \"a\", expected a sequence at line 1 column 12",
        ),
        (
            r#"{"nmae": "x"}"#,
            "unknown field `nmae`, expected one of `name`, `age`, `email`, `tags` \
             at line 1 column 7",
        ),
        (
            r#"{"name": "x""#,
            "EOF while parsing an object at line 1 column 12",
        ),
    ];
    for (body, message) in cases {
        let err = serde_json::from_str::<ProfilePatch>(body).unwrap_err();
        assert_eq!(err.to_string(), message, "{body}");
    }
}

#[test]
fn fields_read_from_every_kind_of_json_value() {
    #[derive(Debug, Deserialize, PartialEq)]
    enum Genre {
        Drama,
        Horror,
    }
    #[derive(Debug, Deserialize, PartialEq)]
    struct Nested {
        minutes: u16,
    }
    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Everything {
        flag: Field<bool>,
        negative: Field<i8>,
        float: Field<f64>,
        genre: Field<Genre>,
        nested: Field<Nested>,
        any: Field<Value>,
    }
    let read: Everything = serde_json::from_str(
        r#"{"flag": false, "negative": -3, "float": 1, "genre": "Horror",
            "nested": {"minutes": 90}, "any": [1, "x"]}"#,
    )
    .unwrap();
    assert_eq!(
        read,
        Everything {
            flag: Field::Value(false),
            negative: Field::Value(-3),
            float: Field::Value(1.0),
            genre: Field::Value(Genre::Horror),
            nested: Field::Value(Nested { minutes: 90 }),
            any: Field::Value(json!([1, "x"])),
        }
    );
    // The same through a `Value`, which hands out owned strings.
    let read: Everything = serde_json::from_value(json!({"genre": "Drama", "any": null})).unwrap();
    assert_eq!(read.genre, Field::Value(Genre::Drama));
    assert_eq!(read.any, Field::Null);
    assert!(read.flag.is_absent());
    let err = serde_json::from_str::<Everything>(r#"{"negative": 300}"#).unwrap_err();
    assert!(
        err.to_string().starts_with("invalid value: integer `300`"),
        "{err}"
    );
}

/// A patch that can be refused before the lock.
struct Rename(String);

impl Patch<Profile> for Rename {
    type Error = Invalid;

    fn precheck(&self) -> Result<(), Invalid> {
        let mut invalid = Invalid::new();
        if self.0.is_empty() {
            invalid.push("name", "must not be empty");
        }
        invalid.into_result()
    }

    fn apply(self, profile: &mut Profile) -> Result<(), Invalid> {
        profile.name = self.0;
        Ok(())
    }
}

#[test]
fn precheck_refuses_before_the_version_is_looked_at() {
    let record = Profile {
        name: "ada".into(),
        age: 36,
        email: None,
        tags: vec![],
    };
    let store = store_with(&record, &[]);
    let err = store.patch(&0, &9, Rename(String::new())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "patch refused: invalid name: must not be empty"
    );
    let err = store.patch(&0, &9, Rename("grace".into())).unwrap_err();
    assert_eq!(err.to_string(), "stale version: expected 9, current 1");
    assert_eq!(store.patch(&0, &1, Rename("grace".into())), Ok(2));
}

#[test]
fn closures_are_patches() {
    let store: Store<&str, Vec<u32>> = Store::new();
    let v1 = store.insert("scores", vec![3, 1]).unwrap();
    let v2 = store
        .patch(&"scores", &v1, |scores: &mut Vec<u32>| {
            scores.sort();
            Ok::<_, Infallible>(())
        })
        .unwrap();
    assert_eq!(store.get(&"scores").unwrap().value, [1, 3]);
    // Sorting again changes nothing.
    let sort = |scores: &mut Vec<u32>| {
        scores.sort();
        Ok::<_, Infallible>(())
    };
    assert_eq!(store.patch(&"scores", &v2, sort), Ok(v2));
}

#[test]
fn a_panicking_patch_leaves_the_record() {
    let store: Store<&str, u32> = Store::new();
    let v1 = store.insert("n", 1).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.patch(&"n", &v1, |n: &mut u32| -> Result<(), Infallible> {
            *n = 2;
            panic!("patch bug")
        })
    }));
    assert!(outcome.is_err());
    assert_eq!(
        store.get(&"n"),
        Some(Versioned {
            value: 1,
            version: v1
        })
    );
}

#[test]
fn errors_link_to_their_sources() {
    use std::error::Error as _;

    let mut invalid = Invalid::new();
    invalid.push("name", "must not be empty");
    let refused: PatchError<u64, Invalid> = PatchError::Patch(invalid);
    assert_eq!(
        refused.source().unwrap().to_string(),
        "invalid name: must not be empty"
    );
    let stale: PatchError<u64, Invalid> = Error::Stale {
        expected: 1,
        current: 2,
    }
    .into();
    assert_eq!(stale.to_string(), "stale version: expected 1, current 2");
    assert_eq!(
        stale.source().unwrap().to_string(),
        "stale version: expected 1, current 2"
    );
}

/// `Field<T>` reads a non-null input exactly as `T` reads it: the same inputs are
/// accepted (with the same value) and the same refused.
fn field_agrees_with_its_type<T>(inputs: &[&str])
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    for input in inputs {
        let direct = serde_json::from_str::<T>(input);
        let field = serde_json::from_str::<Field<T>>(input);
        match (direct, field) {
            (Ok(direct), Ok(Field::Value(field))) => assert_eq!(direct, field, "{input}"),
            (Err(_), Err(_)) => {}
            (direct, field) => panic!(
                "{input} as {}: the type gives {direct:?}, the field {field:?}",
                std::any::type_name::<T>()
            ),
        }
    }
}

#[derive(Debug, PartialEq, Deserialize)]
struct Email(String);

#[derive(Debug, PartialEq, Deserialize)]
struct Meters(f64);

#[derive(Debug, PartialEq, Deserialize)]
struct Point {
    x: i32,
    y: Option<Email>,
}

#[derive(Debug, PartialEq, Deserialize)]
enum Shape {
    Dot,
    Circle(u8),
    Pair(u8, u8),
    Rect { w: u8, h: u8 },
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "kind")]
enum Tagged {
    A { n: u8 },
    B,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(untagged)]
enum Loose {
    Number(u32),
    Text(Email),
}

#[derive(Debug, PartialEq, Deserialize)]
struct Unit;

#[test]
fn a_field_accepts_exactly_what_its_type_accepts() {
    let scalars = [
        "5", "-1", "300", "1.5", "1e3", "\"a@x\"", "\"\"", "true", "[1,2]", "{}",
    ];
    field_agrees_with_its_type::<Email>(&scalars);
    field_agrees_with_its_type::<Option<u32>>(&scalars);
    field_agrees_with_its_type::<Option<Email>>(&scalars);
    field_agrees_with_its_type::<Option<Option<u8>>>(&scalars);
    field_agrees_with_its_type::<Box<Email>>(&scalars);
    field_agrees_with_its_type::<Vec<Email>>(&["[\"a\",\"b\"]", "[]", "[1]", "\"a\""]);
    field_agrees_with_its_type::<Meters>(&["5", "2.5", "-0.0", "\"5\""]);
    field_agrees_with_its_type::<u8>(&["255", "256", "-1", "1.0", "\"1\""]);
    field_agrees_with_its_type::<i64>(&["-9223372036854775808", "9223372036854775808"]);
    field_agrees_with_its_type::<u128>(&["18446744073709551615", "-1"]);
    field_agrees_with_its_type::<f32>(&["1", "-7", "3.25", "1e40", "\"x\""]);
    field_agrees_with_its_type::<char>(&["\"x\"", "\"xy\"", "1"]);
    field_agrees_with_its_type::<(u8, Email)>(&["[1,\"a\"]", "[1]", "[1,\"a\",2]", "{}"]);
    field_agrees_with_its_type::<Point>(&[
        "{\"x\":1,\"y\":\"a\"}",
        "{\"x\":1}",
        "{\"x\":1,\"y\":null}",
        "{\"y\":\"a\"}",
        "[1,\"a\"]",
    ]);
    field_agrees_with_its_type::<Shape>(&[
        "\"Dot\"",
        "\"Circle\"",
        "{\"Circle\":3}",
        "{\"Pair\":[1,2]}",
        "{\"Rect\":{\"w\":1,\"h\":2}}",
        "{\"Nope\":1}",
        "5",
    ]);
    field_agrees_with_its_type::<Tagged>(&[
        "{\"kind\":\"A\",\"n\":1}",
        "{\"kind\":\"B\"}",
        "{\"kind\":\"C\"}",
    ]);
    field_agrees_with_its_type::<Loose>(&["5", "\"a\"", "true"]);
    field_agrees_with_its_type::<Unit>(&["5", "{}", "[]"]);
    field_agrees_with_its_type::<()>(&["5", "{}", "[]"]);
}

/// The documented exception: JSON numbers past 64 bits reach a `Field` as what
/// `deserialize_any` makes of them (a float, in serde_json), so a `Field<u128>` refuses
/// them where a `u128` read directly takes them.
#[test]
fn integers_past_64_bits_are_the_one_exception() {
    let big = "340282366920938463463374607431768211455";
    assert!(serde_json::from_str::<u128>(big).is_ok());
    assert!(serde_json::from_str::<Field<u128>>(big).is_err());
}

#[test]
fn null_is_null_whatever_the_type() {
    assert_eq!(
        serde_json::from_str::<Field<Option<u32>>>("null").unwrap(),
        Field::Null
    );
    assert_eq!(
        serde_json::from_str::<Field<Email>>("null").unwrap(),
        Field::Null
    );
}

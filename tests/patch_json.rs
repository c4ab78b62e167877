//! JSON records: RFC 7396 merge patches (the RFC's own examples, as a table), RFC 6902
//! JSON Patches (every operation, and every way one fails), malformed patch documents,
//! and properties: a refused patch changes nothing, a merge patch applied twice changes
//! nothing the second time.

use proptest::prelude::*;
use serde_json::{json, Value};
use verkv::json::{JsonPatch, JsonPatchFailure, MergePatch};
use verkv::{PatchError, Store, Versioned};

/// Every record of the store, sorted by key: what "unchanged" is compared on.
fn snapshot(store: &Store<u32, Value>) -> Vec<(u32, Versioned<Value, u64>)> {
    let mut all: Vec<_> = store.iter().collect();
    all.sort_by_key(|(key, _)| *key);
    all
}

/// A store holding `document` at key 0 (version 1) and a bystander at key 1.
fn store_with(document: Value) -> Store<u32, Value> {
    let store = Store::new();
    store.insert(0, document).unwrap();
    store.insert(1, json!({"bystander": true})).unwrap();
    store
}

/// RFC 7396, Appendix A: original document, merge patch, result.
const RFC_7396_APPENDIX_A: [(&str, &str, &str); 15] = [
    (r#"{"a":"b"}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
    (r#"{"a":"b"}"#, r#"{"b":"c"}"#, r#"{"a":"b","b":"c"}"#),
    (r#"{"a":"b"}"#, r#"{"a":null}"#, r#"{}"#),
    (r#"{"a":"b","b":"c"}"#, r#"{"a":null}"#, r#"{"b":"c"}"#),
    (r#"{"a":["b"]}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
    (r#"{"a":"c"}"#, r#"{"a":["b"]}"#, r#"{"a":["b"]}"#),
    (
        r#"{"a":{"b":"c"}}"#,
        r#"{"a":{"b":"d","c":null}}"#,
        r#"{"a":{"b":"d"}}"#,
    ),
    (r#"{"a":[{"b":"c"}]}"#, r#"{"a":[1]}"#, r#"{"a":[1]}"#),
    (r#"["a","b"]"#, r#"["c","d"]"#, r#"["c","d"]"#),
    (r#"{"a":"b"}"#, r#"["c"]"#, r#"["c"]"#),
    (r#"{"a":"foo"}"#, r#"null"#, r#"null"#),
    (r#"{"a":"foo"}"#, r#""bar""#, r#""bar""#),
    (r#"{"e":null}"#, r#"{"a":1}"#, r#"{"e":null,"a":1}"#),
    (r#"[1,2]"#, r#"{"a":"b","c":null}"#, r#"{"a":"b"}"#),
    (
        r#"{}"#,
        r#"{"a":{"bb":{"ccc":null}}}"#,
        r#"{"a":{"bb":{}}}"#,
    ),
];

#[test]
fn merge_patch_agrees_with_rfc_7396_appendix_a() {
    for (original, patch, result) in RFC_7396_APPENDIX_A {
        let original: Value = serde_json::from_str(original).unwrap();
        let result: Value = serde_json::from_str(result).unwrap();
        let store = store_with(original.clone());
        let version = store.patch(&0, &1, patch.parse::<MergePatch>().unwrap());
        let expected_version = if result == original { 1 } else { 2 };
        assert_eq!(version, Ok(expected_version), "{original} + {patch}");
        assert_eq!(store.get(&0).unwrap().value, result, "{original} + {patch}");
    }
}

#[test]
fn merge_patch_agrees_with_rfc_7396_section_3() {
    let store = store_with(json!({
        "title": "Goodbye!",
        "author": {"givenName": "John", "familyName": "Doe"},
        "tags": ["example", "sample"],
        "content": "This will be unchanged"
    }));
    let patch = MergePatch::new(json!({
        "title": "Hello!",
        "phoneNumber": "+01-123-456-7890",
        "author": {"familyName": null},
        "tags": ["example"]
    }));
    assert_eq!(store.patch(&0, &1, patch), Ok(2));
    assert_eq!(
        store.get(&0).unwrap().value,
        json!({
            "title": "Hello!",
            "author": {"givenName": "John"},
            "tags": ["example"],
            "content": "This will be unchanged",
            "phoneNumber": "+01-123-456-7890"
        })
    );
}

/// JSON Patches that apply: document, patch, result.
const JSON_PATCH_APPLIES: [(&str, &str, &str); 12] = [
    (
        r#"{"foo":"bar"}"#,
        r#"[{"op":"add","path":"/baz","value":"qux"}]"#,
        r#"{"foo":"bar","baz":"qux"}"#,
    ),
    (
        r#"{"foo":["bar","baz"]}"#,
        r#"[{"op":"add","path":"/foo/1","value":"qux"}]"#,
        r#"{"foo":["bar","qux","baz"]}"#,
    ),
    (
        r#"{"foo":["bar"]}"#,
        r#"[{"op":"add","path":"/foo/-","value":["abc","def"]}]"#,
        r#"{"foo":["bar",["abc","def"]]}"#,
    ),
    (
        r#"{"baz":"qux","foo":"bar"}"#,
        r#"[{"op":"remove","path":"/baz"}]"#,
        r#"{"foo":"bar"}"#,
    ),
    (
        r#"{"foo":["bar","qux","baz"]}"#,
        r#"[{"op":"remove","path":"/foo/1"}]"#,
        r#"{"foo":["bar","baz"]}"#,
    ),
    (
        r#"{"baz":"qux","foo":"bar"}"#,
        r#"[{"op":"replace","path":"/baz","value":"boo"}]"#,
        r#"{"baz":"boo","foo":"bar"}"#,
    ),
    (
        r#"{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}"#,
        r#"[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]"#,
        r#"{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}"#,
    ),
    (
        r#"{"foo":["all","grass","cows","eat"]}"#,
        r#"[{"op":"move","from":"/foo/1","path":"/foo/3"}]"#,
        r#"{"foo":["all","cows","eat","grass"]}"#,
    ),
    (
        r#"{"foo":{"a":1}}"#,
        r#"[{"op":"copy","from":"/foo","path":"/bar"}]"#,
        r#"{"foo":{"a":1},"bar":{"a":1}}"#,
    ),
    (
        r#"{"/":9,"~1":10}"#,
        r#"[{"op":"test","path":"/~01","value":10},{"op":"replace","path":"/~1","value":0}]"#,
        r#"{"/":0,"~1":10}"#,
    ),
    (
        r#"{"foo":"bar"}"#,
        r#"[{"op":"add","path":"/child","value":{"grandchild":{}}}]"#,
        r#"{"foo":"bar","child":{"grandchild":{}}}"#,
    ),
    (
        r#"{"foo":"bar"}"#,
        r#"[{"op":"replace","path":"","value":[1]}]"#,
        r#"[1]"#,
    ),
];

#[test]
fn json_patch_operations_apply() {
    for (document, patch, result) in JSON_PATCH_APPLIES {
        let document: Value = serde_json::from_str(document).unwrap();
        let result: Value = serde_json::from_str(result).unwrap();
        let store = store_with(document);
        let version = store.patch(&0, &1, patch.parse::<JsonPatch>().unwrap());
        assert_eq!(version, Ok(2), "{patch}");
        assert_eq!(store.get(&0).unwrap().value, result, "{patch}");
    }
}

#[test]
fn a_json_patch_that_changes_nothing_keeps_the_version() {
    let store = store_with(json!({"a": [1, 2]}));
    for patch in [
        r#"[]"#,
        r#"[{"op":"test","path":"/a/0","value":1}]"#,
        r#"[{"op":"replace","path":"/a/1","value":2}]"#,
        r#"[{"op":"remove","path":"/a"},{"op":"add","path":"/a","value":[1,2]}]"#,
    ] {
        assert_eq!(
            store.patch(&0, &1, patch.parse::<JsonPatch>().unwrap()),
            Ok(1),
            "{patch}"
        );
    }
}

/// JSON Patches that fail on `{"title":"Alien","year":1979,"genres":["horror"]}`: the
/// patch, and what the error says.
const JSON_PATCH_FAILS: [(&str, &str); 8] = [
    (
        r#"[{"op":"replace","path":"/year","value":1986},
            {"op":"test","path":"/title","value":"Aliens"}]"#,
        "json patch operation 1 (test /title) failed: the value differs",
    ),
    (
        r#"[{"op":"test","path":"/runtime","value":117}]"#,
        "json patch operation 0 (test /runtime) failed: \
         the path does not exist or cannot hold a value",
    ),
    (
        r#"[{"op":"add","path":"/genres/-","value":"sf"},{"op":"remove","path":"/runtime"}]"#,
        "json patch operation 1 (remove /runtime) failed: \
         the path does not exist or cannot hold a value",
    ),
    (
        r#"[{"op":"add","path":"/cast/0","value":"Weaver"}]"#,
        "json patch operation 0 (add /cast/0) failed: \
         the path does not exist or cannot hold a value",
    ),
    (
        r#"[{"op":"add","path":"/year/month","value":5}]"#,
        "json patch operation 0 (add /year/month) failed: \
         the path does not exist or cannot hold a value",
    ),
    (
        r#"[{"op":"replace","path":"/genres/3","value":"sf"}]"#,
        "json patch operation 0 (replace /genres/3) failed: \
         the path does not exist or cannot hold a value",
    ),
    (
        r#"[{"op":"copy","from":"/director","path":"/writer"}]"#,
        "json patch operation 0 (copy /writer) failed: from /director does not exist",
    ),
    (
        r#"[{"op":"move","from":"/genres","path":"/genres/0"}]"#,
        "json patch operation 0 (move /genres/0) failed: cannot move a value into itself",
    ),
];

#[test]
fn a_failing_json_patch_changes_nothing_and_names_the_path() {
    for (patch, message) in JSON_PATCH_FAILS {
        let store = store_with(json!({"title": "Alien", "year": 1979, "genres": ["horror"]}));
        let before = snapshot(&store);
        let err = store
            .patch(&0, &1, patch.parse::<JsonPatch>().unwrap())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("patch refused: {message}"),
            "{patch}"
        );
        assert_eq!(snapshot(&store), before, "{patch}");
    }
}

#[test]
fn json_patch_errors_carry_their_parts() {
    let store = store_with(json!({"a": 1}));
    let patch: JsonPatch = r#"[{"op":"move","from":"/b","path":"/c"}]"#.parse().unwrap();
    let Err(PatchError::Patch(err)) = store.patch(&0, &1, patch) else {
        panic!("expected the patch to fail");
    };
    assert_eq!((err.index(), err.op(), err.path()), (0, "move", "/c"));
    assert_eq!(
        err.failure(),
        &JsonPatchFailure::InvalidFrom { from: "/b".into() }
    );
}

#[test]
fn malformed_patch_documents_are_clear_errors() {
    let json_patches = [
        (
            r#"[{"op":"add","path":"/a","value":1}"#,
            "EOF while parsing a list at line 1 column 35",
        ),
        (
            r#"{"op":"add","path":"/a","value":1}"#,
            "invalid type: map, expected a sequence at line 1 column 0",
        ),
        (
            r#"[{"op":"frobnicate","path":"/a"}]"#,
            "unknown variant `frobnicate`, \
             expected one of `add`, `remove`, `replace`, `move`, `copy`, `test` \
             at line 1 column 19",
        ),
        (
            r#"[{"op":"remove"}]"#,
            "missing field `path` at line 1 column 17",
        ),
        (
            r#"[{"op":"add","path":"/a"}]"#,
            "missing field `value` at line 1 column 26",
        ),
        (
            r#"[{"op":"copy","path":"/a"}]"#,
            "missing field `from` at line 1 column 27",
        ),
    ];
    for (text, message) in json_patches {
        let err = text.parse::<JsonPatch>().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("malformed json patch: {message}"),
            "{text}"
        );
    }
    let err = r#"[{"op":"remove","path":"a"}]"#.parse::<JsonPatch>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed json patch: json pointer failed to parse; \
         does not start with a slash ('/') and is not empty at line 1 column 28"
    );
    let err = JsonPatch::from_value(json!([{"op": "test", "path": "/a"}])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed json patch: missing field `value`"
    );
    let err = r#"{"title": }"#.parse::<MergePatch>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed json merge patch: expected value at line 1 column 11"
    );
}

#[test]
fn json_patches_are_refused_when_stale_or_missing() {
    let store = store_with(json!({"a": 1}));
    let v2 = store.put(0, json!({"a": 2})).unwrap();
    let patch: JsonPatch = r#"[{"op":"replace","path":"/a","value":3}]"#.parse().unwrap();
    let err = store.patch(&0, &1, patch.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("stale version: expected 1, current {v2}")
    );
    let err = store.patch(&9, &1, patch).unwrap_err();
    assert_eq!(err.to_string(), "key not found");
    assert_eq!(store.get(&0).unwrap().value, json!({"a": 2}));
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..3).prop_map(Value::from),
        "[a-c]{0,2}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-c]", inner, 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// JSON Pointers over the keys and indexes `any_json` produces, plus a few that miss.
fn any_path() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("a"),
            Just("b"),
            Just("c"),
            Just("0"),
            Just("1"),
            Just("-"),
            Just("z")
        ],
        0..3,
    )
    .prop_map(|segments| segments.iter().map(|s| format!("/{s}")).collect())
}

fn any_operation() -> impl Strategy<Value = Value> {
    prop_oneof![
        (any_path(), any_json())
            .prop_map(|(path, value)| json!({"op": "add", "path": path, "value": value})),
        any_path().prop_map(|path| json!({"op": "remove", "path": path})),
        (any_path(), any_json())
            .prop_map(|(path, value)| json!({"op": "replace", "path": path, "value": value})),
        (any_path(), any_path())
            .prop_map(|(from, path)| json!({"op": "move", "from": from, "path": path})),
        (any_path(), any_path())
            .prop_map(|(from, path)| json!({"op": "copy", "from": from, "path": path})),
        (any_path(), any_json())
            .prop_map(|(path, value)| json!({"op": "test", "path": path, "value": value})),
    ]
}

proptest! {
    #[test]
    fn json_patch_is_all_or_nothing(
        document in any_json(),
        operations in proptest::collection::vec(any_operation(), 0..5),
        end_with_failing_test in any::<bool>(),
    ) {
        let mut operations = operations;
        if end_with_failing_test {
            // No generated document contains a NUL, so this test always fails.
            operations.push(json!({"op": "test", "path": "", "value": "\u{0}"}));
        }
        let store = store_with(document.clone());
        let before = snapshot(&store);
        let patch = JsonPatch::from_value(Value::from(operations)).unwrap();
        match store.patch(&0, &1, patch) {
            Ok(version) => {
                prop_assert!(!end_with_failing_test);
                let after = store.get(&0).unwrap();
                prop_assert_eq!(&after.version, &version);
                prop_assert_eq!(version == 1, after.value == document);
                prop_assert_eq!(&snapshot(&store)[1], &before[1]);
            }
            Err(PatchError::Patch(_)) => prop_assert_eq!(snapshot(&store), before),
            Err(other) => return Err(TestCaseError::fail(format!("store refused: {other}"))),
        }
    }

    #[test]
    fn merge_patch_applied_twice_changes_nothing_the_second_time(
        document in any_json(),
        patch in any_json(),
    ) {
        let store = store_with(document.clone());
        let v = store.patch(&0, &1, MergePatch::new(patch.clone())).unwrap();
        let once = store.get(&0).unwrap().value;
        prop_assert_eq!(v == 1, once == document);
        prop_assert_eq!(store.patch(&0, &v, MergePatch::new(patch)), Ok(v));
        prop_assert_eq!(store.get(&0).unwrap().value, once);
    }

    #[test]
    fn merge_patch_keeps_what_it_does_not_name(
        document in proptest::collection::btree_map("[a-c]", any_json(), 0..4),
        patch in proptest::collection::btree_map("[b-d]", any_json(), 0..4),
    ) {
        let document = Value::Object(document.into_iter().collect());
        let store = store_with(document.clone());
        let patch = Value::Object(patch.into_iter().collect());
        store.patch(&0, &1, MergePatch::new(patch.clone())).unwrap();
        let merged = store.get(&0).unwrap().value;
        for (key, value) in document.as_object().unwrap() {
            if !patch.as_object().unwrap().contains_key(key) {
                prop_assert_eq!(&merged[key], value);
            }
        }
        for (key, value) in patch.as_object().unwrap() {
            match value {
                Value::Null => prop_assert!(merged.get(key).is_none()),
                Value::Object(_) => prop_assert!(merged[key].is_object()),
                other => prop_assert_eq!(&merged[key], other),
            }
        }
    }
}

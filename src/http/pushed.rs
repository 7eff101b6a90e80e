//! What workers push (`clutch:monitor`) as gauges: `clutch_worker_pushed_<name>`, a
//! numeric value's key made a metric name, strings left out.
//!
//! Names are the worker's to choose, so they are bounded: each key becomes its characters
//! outside `[a-zA-Z0-9_]` replaced by `_`; at most [`MAX_NAMES`] distinct names appear in
//! one scrape, the smallest in byte order (so the same ones scrape after scrape), and
//! the number left out is the gauge `clutch_worker_pushed_names_dropped`. Two keys of one
//! worker that sanitize to the same name: the first in key order is shown.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Distinct pushed names shown in one scrape.
pub const MAX_NAMES: usize = 64;

/// The metric name's tail for `key`; `None` for an empty key.
pub(crate) fn sanitize(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    Some(
        key.chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
            .collect(),
    )
}

/// The gauges to show: name → (worker index, value), for at most [`MAX_NAMES`] names,
/// and how many names were left out. `pushed` is each worker's latest push, in the order
/// the caller labels them.
pub(crate) fn select<'a>(
    pushed: impl Iterator<Item = &'a Map<String, Value>>,
) -> (BTreeMap<String, Vec<(usize, f64)>>, usize) {
    let mut by_name: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
    for (worker, data) in pushed.enumerate() {
        for (key, value) in data {
            let (Some(name), Some(v)) = (sanitize(key), value.as_f64()) else {
                continue;
            };
            let series = by_name.entry(name).or_default();
            if series.last().is_none_or(|(w, _)| *w != worker) {
                series.push((worker, v));
            }
        }
    }
    let dropped = by_name.len().saturating_sub(MAX_NAMES);
    if dropped > 0 {
        let keep: Vec<String> = by_name.keys().take(MAX_NAMES).cloned().collect();
        by_name.retain(|k, _| keep.binary_search(k).is_ok());
    }
    (by_name, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_keep_only_metric_characters() {
        assert_eq!(sanitize("qps").as_deref(), Some("qps"));
        assert_eq!(sanitize("http.req-rate/s").as_deref(), Some("http_req_rate_s"));
        assert_eq!(sanitize("é1").as_deref(), Some("_1"));
        assert_eq!(sanitize(""), None);
    }

    #[test]
    fn numbers_are_shown_strings_are_not_and_a_clash_keeps_the_first() {
        let a = obj(json!({"a.b": 1, "a_b": 2, "name": "x", "n": 3.5}));
        let b = obj(json!({"n": -1}));
        let (sel, dropped) = select([&a, &b].into_iter());
        assert_eq!(dropped, 0);
        assert_eq!(sel["a_b"], vec![(0, 1.0)]);
        assert_eq!(sel["n"], vec![(0, 3.5), (1, -1.0)]);
        assert!(!sel.contains_key("name"));
    }

    #[test]
    fn past_the_bound_the_same_names_are_kept_and_the_rest_counted() {
        let a: Map<String, Value> = (0..MAX_NAMES).map(|i| (format!("k{i:03}"), 1.into())).collect();
        let b: Map<String, Value> = (0..10).map(|i| (format!("z{i}"), 1.into())).collect();
        let (sel, dropped) = select([&b, &a].into_iter());
        assert_eq!((sel.len(), dropped), (MAX_NAMES, 10));
        assert!(sel.keys().all(|k| k.starts_with('k')));
    }
}

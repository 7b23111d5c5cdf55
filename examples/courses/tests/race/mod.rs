//! What the race tests share: the `courses` view's rows as a fold of the log, and reads
//! that ride out a busy store.

use std::collections::BTreeMap;
use std::time::Duration;

use courses::events::CourseActivity;
use fairway::Recorded;

/// A course row folded from the log, as the view should hold it.
#[derive(Debug, Default, PartialEq)]
pub struct Row {
    pub capacity: u64,
    pub subscribed: u64,
    pub waiting: Vec<String>,
}

pub fn fold(log: &[Recorded]) -> BTreeMap<String, Row> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for event in log {
        let Some(event) = event.decode::<CourseActivity>() else { continue };
        match event.unwrap() {
            CourseActivity::Defined(e) => rows.entry(e.course_id.into()).or_default().capacity = e.capacity.into(),
            CourseActivity::CapacityChanged(e) => {
                rows.entry(e.course_id.into()).or_default().capacity = e.capacity.into()
            }
            CourseActivity::Subscribed(e) => {
                let row = rows.entry(e.course_id.into()).or_default();
                row.subscribed += 1;
                row.waiting.retain(|s| *s != e.student_id.as_str());
            }
            CourseActivity::Unsubscribed(e) => rows.entry(e.course_id.into()).or_default().subscribed -= 1,
            CourseActivity::Joined(e) => rows.entry(e.course_id.into()).or_default().waiting.push(e.student_id.into()),
        }
    }
    rows
}

/// Reads `url` as JSON; a 503 (the store busy, e.g. FoundationDB's client injecting faults)
/// is asked again after 100 ms, as its `Retry-After` allows. Any other answer but 200 fails,
/// naming its body.
pub async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> T {
    loop {
        let response = http.get(url).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(status, reqwest::StatusCode::OK, "{url}: {text}");
        return serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
    }
}

//! View: every course with its capacity and seats left.

use fairway::dcb::{Query, QueryItem};
use fairway::{Event, Recorded, View, ViewError, ViewTx, view};
use serde::{Deserialize, Serialize};

use crate::events::{CourseCapacityChanged, CourseDefined, StudentSubscribed, StudentUnsubscribed};

/// One course. `GET /views/courses/<course_id>`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CourseRow {
    /// Seats.
    pub capacity: u32,
    /// Students in it.
    pub subscribed: u32,
    /// Seats left.
    pub seats_left: u32,
}

/// The course list.
#[derive(Default)]
pub struct CourseList;

#[view]
impl View for CourseList {
    const NAME: &'static str = "courses";
    const VERSION: u32 = 1;

    fn query(&self) -> Query {
        QueryItem::types([
            CourseDefined::NAME,
            CourseCapacityChanged::NAME,
            StudentSubscribed::NAME,
            StudentUnsubscribed::NAME,
        ])
        .into()
    }

    async fn apply(&self, event: &Recorded, tx: &ViewTx) -> Result<(), ViewError> {
        let (course, capacity, delta): (String, Option<u32>, i64) = if let Some(e) = event.as_event::<CourseDefined>() {
            let e = e?;
            (e.course_id, Some(e.capacity), 0)
        } else if let Some(e) = event.as_event::<CourseCapacityChanged>() {
            let e = e?;
            (e.course_id, Some(e.capacity), 0)
        } else if let Some(e) = event.as_event::<StudentSubscribed>() {
            (e?.course_id, None, 1)
        } else if let Some(e) = event.as_event::<StudentUnsubscribed>() {
            (e?.course_id, None, -1)
        } else {
            return Ok(());
        };
        let mut row = tx.get::<CourseRow>(&course).await?.unwrap_or(CourseRow { capacity: 0, subscribed: 0, seats_left: 0 });
        row.capacity = capacity.unwrap_or(row.capacity);
        row.subscribed = (row.subscribed as i64 + delta).max(0) as u32;
        row.seats_left = row.capacity.saturating_sub(row.subscribed);
        tx.put(&course, &row)
    }
}

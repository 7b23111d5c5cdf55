//! View: every course with its capacity, seats left and waiting list.
//!
//! Version 2 added the waiting list: bumping `VERSION` rebuilt the view from the log while
//! version 1 kept serving.

use fairway::dcb::{Query, QueryItem};
use fairway::{Event, Recorded, View, ViewError, ViewTx, view};
use serde::{Deserialize, Serialize};

use crate::events::{
    CourseCapacityChanged, CourseDefined, StudentJoinedWaitingList, StudentSubscribed, StudentUnsubscribed,
};

/// One course. `GET /views/courses/<course_id>`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CourseRow {
    /// Seats.
    pub capacity: u32,
    /// Students in it.
    pub subscribed: u32,
    /// Seats left.
    pub seats_left: u32,
    /// Students waiting for a seat, first come first.
    #[serde(default)]
    pub waiting: Vec<String>,
}

/// The course list.
#[derive(Default)]
pub struct CourseList;

#[view]
impl View for CourseList {
    const NAME: &'static str = "courses";
    const VERSION: u32 = 2;

    fn query(&self) -> Query {
        QueryItem::types([
            CourseDefined::NAME,
            CourseCapacityChanged::NAME,
            StudentSubscribed::NAME,
            StudentUnsubscribed::NAME,
            StudentJoinedWaitingList::NAME,
        ])
        .into()
    }

    async fn apply(&self, event: &Recorded, tx: &ViewTx) -> Result<(), ViewError> {
        let course = if let Some(e) = event.as_event::<CourseDefined>() {
            e?.course_id
        } else if let Some(e) = event.as_event::<CourseCapacityChanged>() {
            e?.course_id
        } else if let Some(e) = event.as_event::<StudentSubscribed>() {
            e?.course_id
        } else if let Some(e) = event.as_event::<StudentUnsubscribed>() {
            e?.course_id
        } else if let Some(e) = event.as_event::<StudentJoinedWaitingList>() {
            e?.course_id
        } else {
            return Ok(());
        };
        let mut row = tx.get::<CourseRow>(&course).await?.unwrap_or_default();
        if let Some(e) = event.as_event::<CourseDefined>() {
            row.capacity = e?.capacity;
        } else if let Some(e) = event.as_event::<CourseCapacityChanged>() {
            row.capacity = e?.capacity;
        } else if let Some(e) = event.as_event::<StudentSubscribed>() {
            let student = e?.student_id;
            row.subscribed += 1;
            row.waiting.retain(|s| *s != student);
        } else if event.as_event::<StudentUnsubscribed>().is_some() {
            row.subscribed = row.subscribed.saturating_sub(1);
        } else if let Some(e) = event.as_event::<StudentJoinedWaitingList>() {
            row.waiting.push(e?.student_id);
        }
        row.seats_left = row.capacity.saturating_sub(row.subscribed);
        tx.put(&course, &row)
    }
}

//! View: the courses each student is in.

use fairway::dcb::{Query, QueryItem};
use fairway::{Event, Recorded, View, ViewError, ViewTx, view};
use serde::{Deserialize, Serialize};

use crate::events::{StudentSubscribed, StudentUnsubscribed};

/// A student's schedule. `GET /views/schedules/<student_id>`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Schedule {
    /// Course ids, sorted.
    pub courses: Vec<String>,
}

/// Schedules by student.
#[derive(Default)]
pub struct StudentSchedule;

#[view]
impl View for StudentSchedule {
    const NAME: &'static str = "schedules";
    const VERSION: u32 = 1;

    fn query(&self) -> Query {
        QueryItem::types([StudentSubscribed::NAME, StudentUnsubscribed::NAME]).into()
    }

    async fn apply(&self, event: &Recorded, tx: &ViewTx) -> Result<(), ViewError> {
        if let Some(e) = event.as_event::<StudentSubscribed>() {
            let e = e?;
            let mut schedule: Schedule = tx.get(&e.student_id).await?.unwrap_or_default();
            if let Err(at) = schedule.courses.binary_search(&e.course_id) {
                schedule.courses.insert(at, e.course_id);
            }
            tx.put(&e.student_id, &schedule)?;
        } else if let Some(e) = event.as_event::<StudentUnsubscribed>() {
            let e = e?;
            let mut schedule: Schedule = tx.get(&e.student_id).await?.unwrap_or_default();
            schedule.courses.retain(|c| *c != e.course_id);
            tx.put(&e.student_id, &schedule)?;
        }
        Ok(())
    }
}

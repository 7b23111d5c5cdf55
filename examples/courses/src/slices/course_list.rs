//! View: every course with its capacity, seats left and waiting list.
//!
//! Version 2 added the waiting list: bumping `VERSION` rebuilt the view from the log while
//! version 1 kept serving.

use fairway::{Id, prelude::*};

use crate::events::{COURSE, CourseActivity, CourseCapacityChanged, CourseDefined};

/// One course. `GET /views/courses/<course_id>`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CourseRow {
    pub capacity: u32,
    pub subscribed: u32,
    pub seats_left: u32,
    /// Students waiting for a seat, first come first.
    #[serde(default)]
    pub waiting: Vec<Id>,
}

#[derive(Default)]
pub struct CourseList;

#[view]
impl View for CourseList {
    const NAME: &'static str = "courses";
    const VERSION: u32 = 2;
    type Events = CourseActivity;

    async fn apply(&self, event: CourseActivity, tx: &ViewTx) -> Result<(), ViewError> {
        let Some(course) = tx.tag(COURSE) else { return Ok(()) };
        tx.update(course, |row: &mut CourseRow| {
            match event {
                CourseActivity::Defined(CourseDefined { capacity, .. })
                | CourseActivity::CapacityChanged(CourseCapacityChanged { capacity, .. }) => row.capacity = capacity,
                CourseActivity::Subscribed(e) => {
                    row.subscribed += 1;
                    row.waiting.retain(|s| *s != e.student_id);
                }
                CourseActivity::Unsubscribed(_) => row.subscribed = row.subscribed.saturating_sub(1),
                CourseActivity::Joined(e) => row.waiting.push(e.student_id),
            }
            row.seats_left = row.capacity.saturating_sub(row.subscribed);
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use fairway::testkit::ViewTest;

    use super::*;
    use crate::events::given::{defined, resized, subscribed, unsubscribed, waiting};

    #[tokio::test]
    async fn the_course_list_shows_seats_and_the_waiting_list() {
        let given = ViewTest::new().given(defined("go", 1)).given(defined("rust", 3)).given(subscribed("go", "ada"));
        let given = given.given(waiting("go", "bob")).given(waiting("go", "cyd")).given(subscribed("rust", "ada"));
        insta::assert_yaml_snapshot!(given.then(CourseList).await);
    }

    #[tokio::test]
    async fn seats_follow_capacity_and_departures() {
        let given = ViewTest::new().given(defined("go", 1)).given(subscribed("go", "ada")).given(waiting("go", "bob"));
        let given = given.given(resized("go", 3)).given(subscribed("go", "bob")).given(unsubscribed("go", "ada"));
        insta::assert_yaml_snapshot!(given.then(CourseList).await);
    }
}

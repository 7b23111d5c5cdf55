//! View: the courses each student is in.

use std::collections::BTreeSet;

use fairway::{Id, prelude::*};

use crate::events::{Enrolment, STUDENT};

/// A student's schedule. `GET /views/schedules/<student_id>`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Schedule {
    /// Course ids, sorted.
    pub courses: BTreeSet<Id>,
}

#[derive(Default)]
pub struct StudentSchedule;

#[view]
impl View for StudentSchedule {
    const NAME: &'static str = "schedules";
    const VERSION: u32 = 1;
    type Events = Enrolment;

    async fn apply(&self, event: Enrolment, tx: &ViewTx) -> Result<(), ViewError> {
        let Some(student) = tx.tag(STUDENT) else { return Ok(()) };
        tx.update(student, |schedule: &mut Schedule| match event {
            Enrolment::Subscribed(e) => _ = schedule.courses.insert(e.course_id),
            Enrolment::Unsubscribed(e) => _ = schedule.courses.remove(&e.course_id),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use fairway::testkit::ViewTest;

    use super::*;
    use crate::events::given::{subscribed, unsubscribed};

    #[tokio::test]
    async fn a_schedule_lists_the_courses_a_student_is_in() {
        let given = ViewTest::new().given(subscribed("rust", "ada")).given(subscribed("go", "ada"));
        let given = given.given(subscribed("go", "bob")).given(unsubscribed("rust", "ada"));
        insta::assert_yaml_snapshot!(given.then(StudentSchedule).await);
    }
}

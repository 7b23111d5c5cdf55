//! Automation: when a course gains seats (its capacity grows or a student leaves), subscribe
//! waiting students in the order they queued, until the course is full again.
//!
//! Each promotion runs the `subscribe-student` command, so every rule of a subscription
//! holds (a student already in 5 courses is skipped and stays waiting). Running a job twice
//! is harmless: a promoted student is no longer waiting, and a second subscription would be
//! refused by the command's own condition.

use fairway::prelude::*;

use crate::events::{COURSE, CourseCapacityChanged, StudentUnsubscribed, WaitingList};
use crate::slices::subscribe_student::{SubscribeError, SubscribeStudent};

#[derive(Default)]
pub struct PromoteWaitingStudents;

#[derive(EventSet)]
pub enum SeatsFreed {
    Resized(CourseCapacityChanged),
    Left(StudentUnsubscribed),
}

#[automation]
impl Automation for PromoteWaitingStudents {
    type Events = SeatsFreed;

    async fn handle(&self, event: SeatsFreed, ctx: &AutomationContext) -> Result<(), AutomationError> {
        let (SeatsFreed::Resized(CourseCapacityChanged { course_id, .. })
        | SeatsFreed::Left(StudentUnsubscribed { course_id, .. })) = event;
        // Who is waiting, in order: joined and not subscribed since.
        let mut waiting = Vec::new();
        for event in ctx.read(WaitingList::tagged([course_id.tag(COURSE)])).await? {
            match event {
                WaitingList::Joined(joined) => waiting.push(joined.student_id),
                WaitingList::Subscribed(subscribed) => waiting.retain(|s| *s != subscribed.student_id),
            }
        }
        for student_id in waiting {
            match ctx.execute(&SubscribeStudent { course_id: course_id.clone(), student_id }).await {
                Err(CommandError::Rejected(SubscribeError::Full(_))) => break,
                // Already in, or in too many courses (stays waiting): on to the next one.
                Ok(_) | Err(CommandError::Rejected(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use fairway::testkit::AutomationTest;

    use super::*;
    use crate::events::given::{defined, resized, subscribed, unsubscribed, waiting};

    #[tokio::test]
    async fn more_seats_promote_the_first_waiting_students() {
        let given = AutomationTest::new().given(defined("go", 1)).given(subscribed("go", "ada"));
        let given = given.given(waiting("go", "bob")).given(waiting("go", "cyd")).given(waiting("go", "dan"));
        insta::assert_yaml_snapshot!(given.when(resized("go", 3), &PromoteWaitingStudents).await);
    }

    #[tokio::test]
    async fn a_student_leaving_promotes_the_next_one_in_line() {
        let given = AutomationTest::new().given(defined("go", 2)).given(subscribed("go", "ada"));
        let given = given.given(waiting("go", "bob")).given(waiting("go", "cyd")).given(subscribed("go", "bob"));
        let given = given.given(waiting("go", "dan"));
        // bob got in on his own: cyd is next, then the course is full again for dan.
        insta::assert_yaml_snapshot!(given.when(unsubscribed("go", "ada"), &PromoteWaitingStudents).await);
    }
}

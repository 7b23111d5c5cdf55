//! Automation: when a course gains seats (its capacity grows or a student leaves), subscribe
//! waiting students in the order they queued, until the course is full again.
//!
//! Each promotion runs the `subscribe-student` command, so every rule of a subscription
//! holds (a student already in 5 courses is skipped and stays waiting). Running a job twice
//! is harmless: a promoted student is no longer waiting, and a second subscription would be
//! refused by the command's own condition.

use fairway::dcb::limits::MAX_QUERY_ITEMS;
use fairway::{Id, prelude::*};

use crate::events::{
    COURSE, CourseCapacityChanged, STUDENT, StudentJoinedWaitingList, StudentUnsubscribed, WaitingList,
};
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
        // Who is waiting, in order: those who queued (in the order of their last turn), then
        // their own joins and subscriptions (not the course's thousands), 64 students a read.
        let course = course_id.tag(COURSE);
        let mut queued: Vec<Id> = Vec::new();
        for joined in ctx.read::<StudentJoinedWaitingList>(StudentJoinedWaitingList::tagged([course.clone()])).await? {
            queued.retain(|s| *s != joined.student_id);
            queued.push(joined.student_id);
        }
        let mut waiting = Vec::new();
        for students in queued.chunks(MAX_QUERY_ITEMS) {
            let lines = students.iter().map(|s| WaitingList::tagged([course.clone(), s.tag(STUDENT)]));
            for event in ctx.read(Query::from_items(lines)).await? {
                match event {
                    WaitingList::Joined(joined) => waiting.push(joined.student_id),
                    WaitingList::Subscribed(subscribed) => waiting.retain(|s| *s != subscribed.student_id),
                }
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

    #[tokio::test]
    async fn a_queue_longer_than_one_read_keeps_its_order() {
        // 70 queued (more than a query's 64 items), the first 68 got in on their own, and
        // ada rejoined after leaving: w68 and w69 are next in line, then ada.
        let mut given = AutomationTest::new().given(defined("go", 1)).given(subscribed("go", "ada"));
        given = given.given(unsubscribed("go", "ada"));
        for i in 0..70 {
            given = given.given(waiting("go", &format!("w{i}")));
        }
        given = given.given(waiting("go", "ada"));
        for i in 0..68 {
            given = given.given(subscribed("go", &format!("w{i}")));
        }
        insta::assert_yaml_snapshot!(given.when(resized("go", 71), &PromoteWaitingStudents).await);
    }
}

//! Automation: when a course gains seats (its capacity grows or a student leaves), subscribe
//! waiting students in the order they queued, until the course is full again.
//!
//! Each promotion runs the `subscribe-student` command, so every rule of a subscription
//! holds (a student already in 5 courses is skipped and stays waiting). Running a job twice
//! is harmless: a promoted student is no longer waiting, and a second subscription would be
//! refused by the command's own condition.

use fairway::dcb::Query;
use fairway::{Automation, AutomationContext, AutomationError, CommandError, Event, Recorded, automation};

use crate::events::{
    CourseCapacityChanged, StudentJoinedWaitingList, StudentSubscribed, StudentUnsubscribed, waiting_list,
};
use crate::slices::subscribe_student::{SubscribeError, SubscribeStudent};

/// Promotes waiting students when seats free up.
#[derive(Default)]
pub struct PromoteWaitingStudents;

/// The course whose seats changed.
fn course_of(event: &Recorded) -> Result<Option<String>, AutomationError> {
    let course = if let Some(changed) = event.as_event::<CourseCapacityChanged>() {
        changed.map(|e| e.course_id)
    } else if let Some(left) = event.as_event::<StudentUnsubscribed>() {
        left.map(|e| e.course_id)
    } else {
        return Ok(None);
    };
    Ok(Some(course?))
}

#[automation]
impl Automation for PromoteWaitingStudents {
    const NAME: &'static str = "promote-waiting-students";

    fn query(&self) -> Query {
        fairway::dcb::QueryItem::types([CourseCapacityChanged::NAME, StudentUnsubscribed::NAME]).into()
    }

    async fn handle(&self, event: &Recorded, ctx: &AutomationContext) -> Result<(), AutomationError> {
        let Some(course) = course_of(event)? else { return Ok(()) };
        // Who is waiting, in order: joined and not subscribed since.
        let mut waiting: Vec<String> = Vec::new();
        for recorded in ctx.read(Query::from(waiting_list(&course))).await? {
            if let Some(joined) = recorded.as_event::<StudentJoinedWaitingList>() {
                waiting.push(joined?.student_id);
            } else if let Some(subscribed) = recorded.as_event::<StudentSubscribed>() {
                let subscribed = subscribed?;
                waiting.retain(|s| *s != subscribed.student_id);
            }
        }
        for student in waiting {
            let subscribe = SubscribeStudent { course_id: course.as_str().into(), student_id: student.as_str().into() };
            match ctx.execute(&subscribe).await {
                Ok(_) | Err(CommandError::Rejected(SubscribeError::TooManyCourses(_))) => {}
                Err(CommandError::Rejected(SubscribeError::AlreadySubscribed { .. })) => {}
                Err(CommandError::Rejected(SubscribeError::Full(_))) => break,
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    }
}

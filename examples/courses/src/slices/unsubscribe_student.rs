//! Command: a student leaves a course they are in.

use fairway::dcb::Query;
use fairway::{Command, Decision, EventError, Recorded, command};
use serde::Deserialize;

use crate::events::{Id, StudentSubscribed, StudentUnsubscribed, student_subscriptions};

/// `POST /commands/unsubscribe-student {"course_id": "c1", "student_id": "s1"}`
#[derive(Debug, Deserialize)]
pub struct UnsubscribeStudent {
    /// The course.
    pub course_id: Id,
    /// The student.
    pub student_id: Id,
}

/// Why the student cannot leave.
#[derive(Debug, thiserror::Error)]
pub enum UnsubscribeError {
    /// Not in the course.
    #[error("student {student} is not subscribed to {course}")]
    NotSubscribed {
        /// The student.
        student: String,
        /// The course.
        course: String,
    },
}

#[command]
impl Command for UnsubscribeStudent {
    const NAME: &'static str = "unsubscribe-student";
    type State = bool;
    type Error = UnsubscribeError;

    fn query(&self) -> Query {
        student_subscriptions(&self.student_id).into()
    }

    fn evolve(&self, subscribed: &mut bool, event: &Recorded) -> Result<(), EventError> {
        if let Some(e) = event.as_event::<StudentSubscribed>() {
            *subscribed |= e?.course_id == self.course_id;
        } else if let Some(e) = event.as_event::<StudentUnsubscribed>()
            && e?.course_id == self.course_id
        {
            *subscribed = false;
        }
        Ok(())
    }

    fn decide(&self, subscribed: &bool) -> Result<Decision, UnsubscribeError> {
        if !subscribed {
            return Err(UnsubscribeError::NotSubscribed {
                student: self.student_id.to_string(),
                course: self.course_id.to_string(),
            });
        }
        Ok(Decision::event(StudentUnsubscribed {
            course_id: self.course_id.to_string(),
            student_id: self.student_id.to_string(),
        }))
    }
}

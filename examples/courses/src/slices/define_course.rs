//! Command: define a course once.

use fairway::dcb::Query;
use fairway::{Command, Decision, Event, EventError, Recorded, command};
use serde::Deserialize;

use crate::events::{CourseDefined, Id, course_query};

/// `POST /commands/define-course {"course_id": "c1", "capacity": 30}`
#[derive(Debug, Deserialize)]
pub struct DefineCourse {
    /// The course.
    pub course_id: Id,
    /// Seats.
    pub capacity: u32,
}

/// Why a course cannot be defined.
#[derive(Debug, thiserror::Error)]
pub enum DefineCourseError {
    /// Defined before.
    #[error("course {0} already exists")]
    AlreadyExists(String),
}

#[command]
impl Command for DefineCourse {
    const NAME: &'static str = "define-course";
    type State = bool;
    type Error = DefineCourseError;

    fn query(&self) -> Query {
        course_query(&self.course_id)
    }

    fn evolve(&self, exists: &mut bool, event: &Recorded) -> Result<(), EventError> {
        *exists |= event.event_type() == CourseDefined::NAME;
        Ok(())
    }

    fn decide(&self, exists: &bool) -> Result<Decision, DefineCourseError> {
        if *exists {
            return Err(DefineCourseError::AlreadyExists(self.course_id.to_string()));
        }
        Ok(Decision::event(CourseDefined { course_id: self.course_id.to_string(), capacity: self.capacity }))
    }
}

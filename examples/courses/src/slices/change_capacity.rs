//! Command: change a course's capacity (never below the students already in it).

use fairway::dcb::Query;
use fairway::{Command, Decision, EventError, Recorded, command};
use serde::Deserialize;

use crate::events::{CourseCapacityChanged, CourseDefined, Id, StudentSubscribed, StudentUnsubscribed, course_query};

/// `POST /commands/change-capacity {"course_id": "c1", "capacity": 40}`
#[derive(Debug, Deserialize)]
pub struct ChangeCapacity {
    /// The course.
    pub course_id: Id,
    /// The new number of seats.
    pub capacity: u32,
}

/// The course as this decision needs it.
#[derive(Default)]
pub struct Course {
    exists: bool,
    subscribed: u32,
}

/// Why the capacity cannot change.
#[derive(Debug, thiserror::Error)]
pub enum ChangeCapacityError {
    /// No such course.
    #[error("course {0} does not exist")]
    NotFound(String),
    /// More students than seats.
    #[error("course {course} has {subscribed} students; capacity {capacity} is too small")]
    TooSmall {
        /// The course.
        course: String,
        /// Students in it.
        subscribed: u32,
        /// The refused capacity.
        capacity: u32,
    },
}

#[command]
impl Command for ChangeCapacity {
    const NAME: &'static str = "change-capacity";
    type State = Course;
    type Error = ChangeCapacityError;

    fn query(&self) -> Query {
        course_query(&self.course_id)
    }

    fn evolve(&self, course: &mut Course, event: &Recorded) -> Result<(), EventError> {
        if event.as_event::<CourseDefined>().is_some() {
            course.exists = true;
        } else if event.as_event::<StudentSubscribed>().is_some() {
            course.subscribed += 1;
        } else if event.as_event::<StudentUnsubscribed>().is_some() {
            course.subscribed = course.subscribed.saturating_sub(1);
        }
        Ok(())
    }

    fn decide(&self, course: &Course) -> Result<Decision, ChangeCapacityError> {
        if !course.exists {
            return Err(ChangeCapacityError::NotFound(self.course_id.to_string()));
        }
        if self.capacity < course.subscribed {
            return Err(ChangeCapacityError::TooSmall {
                course: self.course_id.to_string(),
                subscribed: course.subscribed,
                capacity: self.capacity,
            });
        }
        Ok(Decision::event(CourseCapacityChanged { course_id: self.course_id.to_string(), capacity: self.capacity }))
    }
}

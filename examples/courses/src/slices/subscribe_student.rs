//! Command: subscribe a student to a course — the course exists and has a seat, the
//! student is not in it yet, and is in at most 5 courses. Two boundaries (the course, the
//! student's subscriptions) guarded by one condition.

use std::collections::BTreeSet;

use fairway::dcb::Query;
use fairway::{Command, Decision, EventError, Recorded, command};
use serde::Deserialize;

use crate::events::{
    CourseCapacityChanged, CourseDefined, Id, StudentSubscribed, StudentUnsubscribed, course_boundary,
    student_subscriptions,
};

/// Most courses per student.
pub const MAX_COURSES_PER_STUDENT: usize = 5;

/// `POST /commands/subscribe-student {"course_id": "c1", "student_id": "s1"}`
#[derive(Debug, Deserialize)]
pub struct SubscribeStudent {
    /// The course.
    pub course_id: Id,
    /// The student.
    pub student_id: Id,
}

/// The decision model.
#[derive(Default)]
pub struct Seats {
    capacity: Option<u32>,
    in_course: BTreeSet<String>,
    student_courses: BTreeSet<String>,
}

/// Why the student cannot subscribe.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// No such course.
    #[error("course {0} does not exist")]
    NoCourse(String),
    /// No seat left.
    #[error("course {0} is full")]
    Full(String),
    /// Already in.
    #[error("student {student} is already subscribed to {course}")]
    AlreadySubscribed {
        /// The student.
        student: String,
        /// The course.
        course: String,
    },
    /// Too many courses.
    #[error("student {0} is already in {MAX_COURSES_PER_STUDENT} courses")]
    TooManyCourses(String),
}

#[command]
impl Command for SubscribeStudent {
    const NAME: &'static str = "subscribe-student";
    type State = Seats;
    type Error = SubscribeError;

    fn query(&self) -> Query {
        Query::from(course_boundary(&self.course_id)).or(student_subscriptions(&self.student_id))
    }

    fn evolve(&self, seats: &mut Seats, event: &Recorded) -> Result<(), EventError> {
        if let Some(defined) = event.as_event::<CourseDefined>() {
            seats.capacity = Some(defined?.capacity);
        } else if let Some(changed) = event.as_event::<CourseCapacityChanged>() {
            seats.capacity = Some(changed?.capacity);
        } else if let Some(subscribed) = event.as_event::<StudentSubscribed>() {
            let subscribed = subscribed?;
            if subscribed.course_id == self.course_id {
                seats.in_course.insert(subscribed.student_id.clone());
            }
            if subscribed.student_id == self.student_id {
                seats.student_courses.insert(subscribed.course_id);
            }
        } else if let Some(left) = event.as_event::<StudentUnsubscribed>() {
            let left = left?;
            if left.course_id == self.course_id {
                seats.in_course.remove(&left.student_id);
            }
            if left.student_id == self.student_id {
                seats.student_courses.remove(&left.course_id);
            }
        }
        Ok(())
    }

    fn decide(&self, seats: &Seats) -> Result<Decision, SubscribeError> {
        let capacity = seats.capacity.ok_or_else(|| SubscribeError::NoCourse(self.course_id.to_string()))?;
        if seats.in_course.contains(&*self.student_id) {
            return Err(SubscribeError::AlreadySubscribed {
                student: self.student_id.to_string(),
                course: self.course_id.to_string(),
            });
        }
        if seats.in_course.len() >= capacity as usize {
            return Err(SubscribeError::Full(self.course_id.to_string()));
        }
        if seats.student_courses.len() >= MAX_COURSES_PER_STUDENT {
            return Err(SubscribeError::TooManyCourses(self.student_id.to_string()));
        }
        Ok(Decision::event(StudentSubscribed {
            course_id: self.course_id.to_string(),
            student_id: self.student_id.to_string(),
        }))
    }
}

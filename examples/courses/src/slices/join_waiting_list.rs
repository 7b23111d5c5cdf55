//! Command: a student queues for a seat in a full course. The `promote-waiting-students`
//! automation subscribes them, in order, when seats free up.

use fairway::dcb::Query;
use fairway::{Command, Decision, EventError, Recorded, command};
use serde::Deserialize;

use crate::events::{
    CourseCapacityChanged, CourseDefined, Id, StudentJoinedWaitingList, StudentSubscribed, StudentUnsubscribed,
    course_boundary, waiting_list,
};

/// `POST /commands/join-waiting-list {"course_id": "c1", "student_id": "s1"}`
#[derive(Debug, Deserialize)]
pub struct JoinWaitingList {
    /// The course.
    pub course_id: Id,
    /// The student.
    pub student_id: Id,
}

/// The course as this decision needs it.
#[derive(Default)]
pub struct Queue {
    capacity: Option<u32>,
    in_course: u32,
    student_in_course: bool,
    student_waiting: bool,
}

/// Why the student cannot queue.
#[derive(Debug, thiserror::Error)]
pub enum JoinWaitingListError {
    /// No such course.
    #[error("course {0} does not exist")]
    NoCourse(String),
    /// Seats are free: subscribe instead.
    #[error("course {0} has free seats; subscribe instead")]
    NotFull(String),
    /// Already in the course.
    #[error("student {student} is already subscribed to {course}")]
    AlreadySubscribed {
        /// The student.
        student: String,
        /// The course.
        course: String,
    },
    /// Already queued.
    #[error("student {student} is already waiting for {course}")]
    AlreadyWaiting {
        /// The student.
        student: String,
        /// The course.
        course: String,
    },
}

#[command]
impl Command for JoinWaitingList {
    const NAME: &'static str = "join-waiting-list";
    type State = Queue;
    type Error = JoinWaitingListError;

    fn query(&self) -> Query {
        Query::from(course_boundary(&self.course_id)).or(waiting_list(&self.course_id))
    }

    fn evolve(&self, queue: &mut Queue, event: &Recorded) -> Result<(), EventError> {
        if let Some(defined) = event.as_event::<CourseDefined>() {
            queue.capacity = Some(defined?.capacity);
        } else if let Some(changed) = event.as_event::<CourseCapacityChanged>() {
            queue.capacity = Some(changed?.capacity);
        } else if let Some(subscribed) = event.as_event::<StudentSubscribed>() {
            queue.in_course += 1;
            if subscribed?.student_id == self.student_id {
                queue.student_in_course = true;
                queue.student_waiting = false;
            }
        } else if let Some(left) = event.as_event::<StudentUnsubscribed>() {
            queue.in_course = queue.in_course.saturating_sub(1);
            queue.student_in_course &= left?.student_id != self.student_id;
        } else if let Some(joined) = event.as_event::<StudentJoinedWaitingList>() {
            queue.student_waiting |= joined?.student_id == self.student_id;
        }
        Ok(())
    }

    fn decide(&self, queue: &Queue) -> Result<Decision, JoinWaitingListError> {
        let (course, student) = (self.course_id.to_string(), self.student_id.to_string());
        let capacity = queue.capacity.ok_or_else(|| JoinWaitingListError::NoCourse(course.clone()))?;
        if queue.student_in_course {
            return Err(JoinWaitingListError::AlreadySubscribed { student, course });
        }
        if queue.student_waiting {
            return Err(JoinWaitingListError::AlreadyWaiting { student, course });
        }
        if queue.in_course < capacity {
            return Err(JoinWaitingListError::NotFull(course));
        }
        Ok(Decision::event(StudentJoinedWaitingList { course_id: course, student_id: student }))
    }
}

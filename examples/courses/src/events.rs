//! The facts of the domain.

use fairway::{Event, EventSet, Id};
use serde::{Deserialize, Serialize};

// ANCHOR: vocabulary
/// Tag key of a course's events: `course:<course_id>`, one course's boundary.
pub const COURSE: &str = "course";
/// Tag key of a student's events: `student:<student_id>`.
pub const STUDENT: &str = "student";
/// Tag key of a registration's email: `email:<email>`, unique across students.
pub const EMAIL: &str = "email";

/// A course was defined.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct CourseDefined {
    #[tag(COURSE)]
    pub course_id: Id,
    pub capacity: u32,
}

/// A course's capacity changed.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct CourseCapacityChanged {
    #[tag(COURSE)]
    pub course_id: Id,
    pub capacity: u32,
}

/// A student registered.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentRegistered {
    #[tag(STUDENT)]
    pub student_id: Id,
    #[tag(EMAIL)]
    pub email: Id,
}

/// A student subscribed to a course.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentSubscribed {
    #[tag(COURSE)]
    pub course_id: Id,
    #[tag(STUDENT)]
    pub student_id: Id,
}

/// A student left a course.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentUnsubscribed {
    #[tag(COURSE)]
    pub course_id: Id,
    #[tag(STUDENT)]
    pub student_id: Id,
}

/// A student asked for a seat in a full course; promoted in order when seats free up.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentJoinedWaitingList {
    #[tag(COURSE)]
    pub course_id: Id,
    #[tag(STUDENT)]
    pub student_id: Id,
}

/// A course's seats: its definition, capacity and who is in it. Tagged with [`COURSE`], one
/// course's boundary; its [`Enrolment`] part tagged with [`STUDENT`], a student's courses.
#[derive(Debug, EventSet)]
pub enum CourseLife {
    Defined(CourseDefined),
    CapacityChanged(CourseCapacityChanged),
    Subscribed(StudentSubscribed),
    Unsubscribed(StudentUnsubscribed),
}

/// A course's seats and its waiting list (tagged with [`COURSE`]).
#[derive(Debug, EventSet)]
pub enum CourseActivity {
    Defined(CourseDefined),
    CapacityChanged(CourseCapacityChanged),
    Subscribed(StudentSubscribed),
    Unsubscribed(StudentUnsubscribed),
    Joined(StudentJoinedWaitingList),
}

/// Who comes and goes: in a course (tagged with [`COURSE`]) or a student's courses (tagged
/// with [`STUDENT`]).
#[derive(Debug, EventSet)]
pub enum Enrolment {
    Subscribed(StudentSubscribed),
    Unsubscribed(StudentUnsubscribed),
}

/// A course's waiting list: who queued, and who got in since.
#[derive(Debug, EventSet)]
pub enum WaitingList {
    Joined(StudentJoinedWaitingList),
    Subscribed(StudentSubscribed),
}

// ANCHOR_END: vocabulary

/// Event constructors for Given/When/Then tests.
#[cfg(test)]
pub mod given {
    use super::*;

    /// `course` defined with `capacity` seats.
    pub fn defined(course: &str, capacity: u32) -> CourseDefined {
        CourseDefined { course_id: course.into(), capacity }
    }

    /// `course` resized to `capacity` seats.
    pub fn resized(course: &str, capacity: u32) -> CourseCapacityChanged {
        CourseCapacityChanged { course_id: course.into(), capacity }
    }

    /// `student` subscribed to `course`.
    pub fn subscribed(course: &str, student: &str) -> StudentSubscribed {
        StudentSubscribed { course_id: course.into(), student_id: student.into() }
    }

    /// `student` left `course`.
    pub fn unsubscribed(course: &str, student: &str) -> StudentUnsubscribed {
        StudentUnsubscribed { course_id: course.into(), student_id: student.into() }
    }

    /// `student` queued for `course`.
    pub fn waiting(course: &str, student: &str) -> StudentJoinedWaitingList {
        StudentJoinedWaitingList { course_id: course.into(), student_id: student.into() }
    }

    /// `student` registered with `email`.
    pub fn registered(student: &str, email: &str) -> StudentRegistered {
        StudentRegistered { student_id: student.into(), email: email.into() }
    }
}

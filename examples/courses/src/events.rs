//! The facts of the domain.

use fairway::dcb::{InvalidInput, NameRule, Tag};
use fairway::{Event, EventSet};
use serde::{Deserialize, Serialize};

// ANCHOR: vocabulary
/// A course was defined.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct CourseDefined {
    /// The course.
    #[tag("course")]
    pub course_id: Id,
    /// Seats.
    pub capacity: u32,
}

/// A course's capacity changed.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct CourseCapacityChanged {
    /// The course.
    #[tag("course")]
    pub course_id: Id,
    /// The new number of seats.
    pub capacity: u32,
}

/// A student registered.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentRegistered {
    /// The student.
    #[tag("student")]
    pub student_id: Id,
    /// Unique across students.
    #[tag("email")]
    pub email: Id,
}

/// A student subscribed to a course.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentSubscribed {
    /// The course.
    #[tag("course")]
    pub course_id: Id,
    /// The student.
    #[tag("student")]
    pub student_id: Id,
}

/// A student left a course.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentUnsubscribed {
    /// The course.
    #[tag("course")]
    pub course_id: Id,
    /// The student.
    #[tag("student")]
    pub student_id: Id,
}

/// A student asked for a seat in a full course; promoted in order when seats free up.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentJoinedWaitingList {
    /// The course.
    #[tag("course")]
    pub course_id: Id,
    /// The student.
    #[tag("student")]
    pub student_id: Id,
}

/// A course's seats: its definition, capacity and who is in it. Tagged with [`course`], one
/// course's boundary; its [`Enrolment`] part tagged with [`student`], a student's courses.
#[derive(Debug, EventSet)]
pub enum CourseLife {
    /// Defined.
    Defined(CourseDefined),
    /// Capacity changed.
    CapacityChanged(CourseCapacityChanged),
    /// A student came in.
    Subscribed(StudentSubscribed),
    /// A student left.
    Unsubscribed(StudentUnsubscribed),
}

/// A course's seats and its waiting list (tagged with [`course`]).
#[derive(Debug, EventSet)]
pub enum CourseActivity {
    /// Defined.
    Defined(CourseDefined),
    /// Capacity changed.
    CapacityChanged(CourseCapacityChanged),
    /// A student came in.
    Subscribed(StudentSubscribed),
    /// A student left.
    Unsubscribed(StudentUnsubscribed),
    /// A student queued.
    Joined(StudentJoinedWaitingList),
}

/// Who comes and goes: in a course (tagged with [`course`]) or a student's courses (tagged
/// with [`student`]).
#[derive(Debug, EventSet)]
pub enum Enrolment {
    /// A student came in.
    Subscribed(StudentSubscribed),
    /// A student left.
    Unsubscribed(StudentUnsubscribed),
}

/// A course's waiting list: who queued, and who got in since.
#[derive(Debug, EventSet)]
pub enum WaitingList {
    /// A student queued.
    Joined(StudentJoinedWaitingList),
    /// A student got in.
    Subscribed(StudentSubscribed),
}

// ANCHOR_END: vocabulary

/// The tag keys ids are used with: `course:`, `student:`, `email:`.
pub const ID_TAG_KEYS: [&str; 3] = ["course", "student", "email"];

/// Longest id, in bytes: whatever the key, `key:id` must fit a tag
/// ([`MAX_TAG_LEN`](fairway::dcb::limits::MAX_TAG_LEN) bytes), so the longest key sets the limit.
pub const MAX_ID_LEN: usize = {
    let (mut longest, mut i) = (0, 0);
    while i < ID_TAG_KEYS.len() {
        if ID_TAG_KEYS[i].len() > longest {
            longest = ID_TAG_KEYS[i].len();
        }
        i += 1;
    }
    fairway::dcb::limits::MAX_TAG_LEN - longest - 1
};

/// An identifier or email taken from a request, checked when the request is decoded: it
/// must be a valid tag value under every key of [`ID_TAG_KEYS`] (non-empty, at most
/// [`MAX_ID_LEN`] bytes, no forbidden character), so a malformed one is a 400 naming the
/// field and the rule (`course_id: is 250 bytes long; the limit is 248 bytes`), never a
/// domain refusal or a panic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

/// Why a text is not an [`Id`]; displays the rule alone, so that with the field name in
/// front it reads `student_id: must not be empty`.
#[derive(Debug, thiserror::Error)]
pub enum BadId {
    /// A length or character rule.
    #[error(transparent)]
    Rule(#[from] NameRule),
    /// Any other refusal of the store.
    #[error(transparent)]
    Store(InvalidInput),
}

impl TryFrom<String> for Id {
    type Error = BadId;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() {
            return Err(NameRule::Empty.into());
        }
        if value.len() > MAX_ID_LEN {
            return Err(NameRule::TooLong { len: value.len(), limit: MAX_ID_LEN }.into());
        }
        for key in ID_TAG_KEYS {
            match Tag::new(key, &value) {
                Ok(_) => {}
                Err(InvalidInput::MalformedTag { rule, .. }) => return Err(rule.into()),
                Err(other) => return Err(BadId::Store(other)),
            }
        }
        Ok(Id(value))
    }
}

impl From<Id> for String {
    fn from(id: Id) -> String {
        id.0
    }
}

impl std::ops::Deref for Id {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<Id> for String {
    fn eq(&self, id: &Id) -> bool {
        *self == id.0
    }
}

impl From<&str> for Id {
    /// For tests and literals; panics on an invalid id.
    fn from(value: &str) -> Self {
        Id::try_from(value.to_owned()).expect("a valid id")
    }
}

/// `course:<id>`.
pub fn course(id: &Id) -> Tag {
    tag("course", id)
}

/// `student:<id>`.
pub fn student(id: &Id) -> Tag {
    tag("student", id)
}

/// `key:value` for a checked id.
pub fn tag(key: &str, id: &str) -> Tag {
    Tag::new(key, id).expect("ids are checked when requests are decoded")
}

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

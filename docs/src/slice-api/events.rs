// Shared code of the examples in ../slice-api.md, which include it with `include!`: the
// imports of a slice file, and the tag keys and the three events of the section "Events".
// (A plain comment: `//!` is refused in an included file.)
use fairway::Id;
use fairway::prelude::*;

/// Tag key of a course's events: `course:<course_id>`.
pub const COURSE: &str = "course";
/// Tag key of a student's events: `student:<student_id>`.
pub const STUDENT: &str = "student";

#[derive(Debug, Serialize, Deserialize, Event)]
pub struct CourseDefined {
    #[tag(COURSE)]
    pub course_id: Id,
    pub capacity: u32,
}

#[derive(Debug, Serialize, Deserialize, Event)]
pub struct StudentSubscribed {
    #[tag(COURSE)]
    pub course_id: Id,
    #[tag(STUDENT)]
    pub student_id: Id,
}

#[derive(Debug, Serialize, Deserialize, Event)]
pub struct StudentUnsubscribed {
    #[tag(COURSE)]
    pub course_id: Id,
    #[tag(STUDENT)]
    pub student_id: Id,
}

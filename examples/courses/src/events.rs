//! The facts of the domain.

use fairway::Event;
use fairway::dcb::{Query, QueryItem, Tag};
use serde::{Deserialize, Serialize};

/// A course was defined.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct CourseDefined {
    /// The course.
    #[tag("course")]
    pub course_id: String,
    /// Seats.
    pub capacity: u32,
}

/// A course's capacity changed.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct CourseCapacityChanged {
    /// The course.
    #[tag("course")]
    pub course_id: String,
    /// The new number of seats.
    pub capacity: u32,
}

/// A student registered.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentRegistered {
    /// The student.
    #[tag("student")]
    pub student_id: String,
    /// Unique across students.
    #[tag("email")]
    pub email: String,
}

/// A student subscribed to a course.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentSubscribed {
    /// The course.
    #[tag("course")]
    pub course_id: String,
    /// The student.
    #[tag("student")]
    pub student_id: String,
}

/// A student left a course.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentUnsubscribed {
    /// The course.
    #[tag("course")]
    pub course_id: String,
    /// The student.
    #[tag("student")]
    pub student_id: String,
}

/// `key:value` for ids taken from requests (malformed ids surface as 400s).
pub fn tag(key: &str, value: &str) -> Tag {
    Tag::new(key, value).unwrap_or_else(|_| Tag::parse("invalid:id").expect("static tag"))
}

/// Every event of a course's life (definition, capacity, subscriptions).
pub fn course_boundary(course_id: &str) -> QueryItem {
    QueryItem::types([
        CourseDefined::NAME,
        CourseCapacityChanged::NAME,
        StudentSubscribed::NAME,
        StudentUnsubscribed::NAME,
    ])
    .with_tags([tag("course", course_id)])
}

/// A student's subscriptions.
pub fn student_subscriptions(student_id: &str) -> QueryItem {
    QueryItem::types([StudentSubscribed::NAME, StudentUnsubscribed::NAME]).with_tags([tag("student", student_id)])
}

/// Everything about one course, as a query.
pub fn course_query(course_id: &str) -> Query {
    course_boundary(course_id).into()
}

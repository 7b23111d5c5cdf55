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

/// A student asked for a seat in a full course; promoted in order when seats free up.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
pub struct StudentJoinedWaitingList {
    /// The course.
    #[tag("course")]
    pub course_id: String,
    /// The student.
    #[tag("student")]
    pub student_id: String,
}

/// A course's waiting list and the events that change who is on it or in the course.
pub fn waiting_list(course_id: &str) -> QueryItem {
    QueryItem::types([StudentJoinedWaitingList::NAME, StudentSubscribed::NAME]).with_tags([tag("course", course_id)])
}

/// An identifier or email taken from a request, checked when the request is decoded: it
/// must be a valid tag value (non-empty, at most the tag length limit, no control
/// characters), so a malformed one is a 400 naming the rule, never a domain refusal.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Id(String);

impl TryFrom<String> for Id {
    type Error = fairway::dcb::InvalidInput;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Tag::new("id", &value)?;
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

/// `key:value` for a checked id.
pub fn tag(key: &str, id: &str) -> Tag {
    Tag::new(key, id).expect("ids are checked when requests are decoded")
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

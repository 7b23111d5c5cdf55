//! Command: subscribe a student to a course — the course exists and has a seat, the
//! student is not in it yet, and is in at most 5 courses. Two boundaries (the course, the
//! student's subscriptions) guarded by one condition.

use std::collections::BTreeSet;

use fairway::{Id, prelude::*};

use crate::events::{COURSE, CourseLife, Enrolment, STUDENT, StudentSubscribed};

/// Most courses per student.
pub const MAX_COURSES_PER_STUDENT: usize = 5;

/// `POST /commands/subscribe-student {"course_id": "c1", "student_id": "s1"}`
#[derive(Debug, Deserialize)]
pub struct SubscribeStudent {
    pub course_id: Id,
    pub student_id: Id,
}

#[derive(Default)]
pub struct Seats {
    capacity: Option<u32>,
    students: BTreeSet<Id>,
    courses: BTreeSet<Id>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("course {0} does not exist")]
    NoCourse(Id),
    #[error("course {0} is full")]
    Full(Id),
    #[error("student {0} is already subscribed to {1}")]
    AlreadySubscribed(Id, Id),
    #[error("student {0} is already in {MAX_COURSES_PER_STUDENT} courses")]
    TooManyCourses(Id),
}

#[command]
impl Command for SubscribeStudent {
    type Events = CourseLife;
    type State = Seats;
    type Error = SubscribeError;

    fn query(&self) -> Query {
        CourseLife::tagged([self.course_id.tag(COURSE)]).or(Enrolment::tagged([self.student_id.tag(STUDENT)]))
    }

    fn evolve(&self, seats: &mut Seats, event: CourseLife) {
        match event {
            CourseLife::Defined(e) => seats.capacity = Some(e.capacity),
            CourseLife::CapacityChanged(e) => seats.capacity = Some(e.capacity),
            CourseLife::Subscribed(e) if e.course_id == self.course_id => _ = seats.students.insert(e.student_id),
            CourseLife::Subscribed(e) if e.student_id == self.student_id => _ = seats.courses.insert(e.course_id),
            CourseLife::Unsubscribed(e) if e.course_id == self.course_id => _ = seats.students.remove(&e.student_id),
            CourseLife::Unsubscribed(e) => _ = seats.courses.remove(&e.course_id),
            CourseLife::Subscribed(_) => {}
        }
    }

    fn decide(&self, seats: &Seats) -> Result<Decision, SubscribeError> {
        let (course, student) = (&self.course_id, &self.student_id);
        let capacity = seats.capacity.ok_or_else(|| SubscribeError::NoCourse(course.clone()))?;
        ensure!(!seats.students.contains(student), SubscribeError::AlreadySubscribed(student.clone(), course.clone()));
        ensure!(seats.students.len() < capacity as usize, SubscribeError::Full(course.clone()));
        ensure!(seats.courses.len() < MAX_COURSES_PER_STUDENT, SubscribeError::TooManyCourses(student.clone()));
        Ok(Decision::event(StudentSubscribed { course_id: course.clone(), student_id: student.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use fairway::testkit::CommandTest;

    use super::*;
    use crate::events::given::{defined, resized, subscribed, unsubscribed};

    fn subscribe(course: &str, student: &str) -> SubscribeStudent {
        SubscribeStudent { course_id: course.into(), student_id: student.into() }
    }

    #[tokio::test]
    async fn a_student_takes_a_free_seat() {
        let given = CommandTest::new().given(defined("go", 1)).given(subscribed("go", "ada"));
        let given = given.given(unsubscribed("go", "ada"));
        insta::assert_yaml_snapshot!(given.when(&subscribe("go", "bob")).await);
    }

    #[tokio::test]
    async fn a_full_course_refuses() {
        let given = CommandTest::new().given(defined("go", 2)).given(subscribed("go", "ada"));
        let given = given.given(resized("go", 1));
        insta::assert_yaml_snapshot!(given.when(&subscribe("go", "bob")).await);
    }

    #[tokio::test]
    async fn a_student_subscribes_once() {
        let given = CommandTest::new().given(defined("go", 2)).given(subscribed("go", "ada"));
        insta::assert_yaml_snapshot!(given.when(&subscribe("go", "ada")).await);
    }

    #[tokio::test]
    async fn a_student_takes_at_most_five_courses() {
        let mut given = CommandTest::new().given(defined("go", 9));
        for course in ["c1", "c2", "c3", "c4", "c5"] {
            given = given.given(defined(course, 9)).given(subscribed(course, "ada"));
        }
        insta::assert_yaml_snapshot!(given.when(&subscribe("go", "ada")).await);
    }

    #[tokio::test]
    async fn an_unknown_course_refuses() {
        insta::assert_yaml_snapshot!(CommandTest::new().when(&subscribe("go", "ada")).await);
    }
}

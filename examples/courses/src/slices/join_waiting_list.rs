//! Command: a student queues for a seat in a full course. The `promote-waiting-students`
//! automation subscribes them, in order, when seats free up.

use fairway::{Id, prelude::*};

use crate::events::{COURSE, CourseActivity, StudentJoinedWaitingList};

/// `POST /commands/join-waiting-list {"course_id": "c1", "student_id": "s1"}`
#[derive(Debug, Deserialize)]
pub struct JoinWaitingList {
    pub course_id: Id,
    pub student_id: Id,
}

#[derive(Default)]
pub struct Queue {
    capacity: Option<u32>,
    in_course: u32,
    student_in_course: bool,
    student_waiting: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum JoinWaitingListError {
    #[error("course {0} does not exist")]
    NoCourse(Id),
    #[error("course {0} has free seats; subscribe instead")]
    NotFull(Id),
    #[error("student {0} is already subscribed to {1}")]
    AlreadySubscribed(Id, Id),
    #[error("student {0} is already waiting for {1}")]
    AlreadyWaiting(Id, Id),
}

#[command]
impl Command for JoinWaitingList {
    type Events = CourseActivity;
    type State = Queue;
    type Error = JoinWaitingListError;

    fn query(&self) -> Query {
        CourseActivity::tagged([self.course_id.tag(COURSE)]).into()
    }

    fn evolve(&self, queue: &mut Queue, event: CourseActivity) {
        let me = &self.student_id;
        match event {
            CourseActivity::Defined(e) => queue.capacity = Some(e.capacity),
            CourseActivity::CapacityChanged(e) => queue.capacity = Some(e.capacity),
            CourseActivity::Subscribed(e) => {
                queue.in_course += 1;
                queue.student_in_course |= e.student_id == *me;
                queue.student_waiting &= e.student_id != *me;
            }
            CourseActivity::Unsubscribed(e) => {
                queue.in_course = queue.in_course.saturating_sub(1);
                queue.student_in_course &= e.student_id != *me;
            }
            CourseActivity::Joined(e) => queue.student_waiting |= e.student_id == *me,
        }
    }

    fn decide(&self, queue: &Queue) -> Result<Decision, JoinWaitingListError> {
        let (course, student) = (self.course_id.clone(), self.student_id.clone());
        let capacity = queue.capacity.ok_or_else(|| JoinWaitingListError::NoCourse(course.clone()))?;
        ensure!(!queue.student_in_course, JoinWaitingListError::AlreadySubscribed(student, course));
        ensure!(!queue.student_waiting, JoinWaitingListError::AlreadyWaiting(student, course));
        ensure!(queue.in_course >= capacity, JoinWaitingListError::NotFull(course));
        Ok(Decision::event(StudentJoinedWaitingList { course_id: course, student_id: student }))
    }
}

#[cfg(test)]
mod tests {
    // ANCHOR: tests
    use fairway::testkit::CommandTest;

    use super::*;
    use crate::events::given::{defined, subscribed, waiting};

    fn join(student: &str) -> JoinWaitingList {
        JoinWaitingList { course_id: "go".into(), student_id: student.into() }
    }

    #[tokio::test]
    async fn a_full_course_queues_the_student() {
        let outcome = CommandTest::new().given(defined("go", 1)).given(subscribed("go", "ada"));
        insta::assert_yaml_snapshot!(outcome.when(&join("bob")).await);
    }

    #[tokio::test]
    async fn a_course_with_free_seats_sends_the_student_to_subscribe() {
        let outcome = CommandTest::new().given(defined("go", 2)).given(subscribed("go", "ada"));
        insta::assert_yaml_snapshot!(outcome.when(&join("bob")).await);
    }

    #[tokio::test]
    async fn a_student_queues_once() {
        let given = CommandTest::new().given(defined("go", 1)).given(subscribed("go", "ada"));
        insta::assert_yaml_snapshot!(given.given(waiting("go", "bob")).when(&join("bob")).await);
    }
    // ANCHOR_END: tests
}

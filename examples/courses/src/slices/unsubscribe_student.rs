//! Command: a student leaves a course they are in.

use fairway::{Id, prelude::*};

use crate::events::{Enrolment, STUDENT, StudentUnsubscribed};

/// `POST /commands/unsubscribe-student {"course_id": "c1", "student_id": "s1"}`
#[derive(Debug, Deserialize)]
pub struct UnsubscribeStudent {
    pub course_id: Id,
    pub student_id: Id,
}

#[derive(Debug, thiserror::Error)]
#[error("student {0} is not subscribed to {1}")]
pub struct NotSubscribed(Id, Id);

#[command]
impl Command for UnsubscribeStudent {
    type Events = Enrolment;
    type State = bool;
    type Error = NotSubscribed;

    fn query(&self) -> Query {
        Enrolment::tagged([self.student_id.tag(STUDENT)]).into()
    }

    fn evolve(&self, subscribed: &mut bool, event: Enrolment) {
        match event {
            Enrolment::Subscribed(e) => *subscribed |= e.course_id == self.course_id,
            Enrolment::Unsubscribed(e) => *subscribed &= e.course_id != self.course_id,
        }
    }

    fn decide(&self, subscribed: &bool) -> Result<Decision, NotSubscribed> {
        let (course_id, student_id) = (self.course_id.clone(), self.student_id.clone());
        ensure!(*subscribed, NotSubscribed(student_id, course_id));
        Ok(Decision::event(StudentUnsubscribed { course_id, student_id }))
    }
}

#[cfg(test)]
mod tests {
    use fairway::testkit::CommandTest;

    use super::*;
    use crate::events::given::{subscribed, unsubscribed};

    fn leave(course: &str) -> UnsubscribeStudent {
        UnsubscribeStudent { course_id: course.into(), student_id: "ada".into() }
    }

    #[tokio::test]
    async fn a_student_leaves_a_course_they_are_in() {
        let outcome = CommandTest::new().given(subscribed("go", "ada")).given(subscribed("rust", "ada"));
        insta::assert_yaml_snapshot!(outcome.when(&leave("go")).await);
    }

    #[tokio::test]
    async fn a_student_cannot_leave_twice() {
        let outcome = CommandTest::new().given(subscribed("go", "ada")).given(unsubscribed("go", "ada"));
        insta::assert_yaml_snapshot!(outcome.when(&leave("go")).await);
    }
}

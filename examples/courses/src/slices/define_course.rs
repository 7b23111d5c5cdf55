//! Command: define a course once.

use fairway::{Id, prelude::*};

use crate::events::{COURSE, CourseDefined};

/// `POST /commands/define-course {"course_id": "c1", "capacity": 30}`
#[derive(Debug, Deserialize)]
pub struct DefineCourse {
    pub course_id: Id,
    pub capacity: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DefineCourseError {
    #[error("course {0} already exists")]
    AlreadyExists(Id),
}

#[command]
impl Command for DefineCourse {
    type Events = CourseDefined;
    type State = bool;
    type Error = DefineCourseError;

    fn query(&self) -> Query {
        CourseDefined::tagged([self.course_id.tag(COURSE)]).into()
    }

    fn evolve(&self, exists: &mut bool, _: CourseDefined) {
        *exists = true;
    }

    fn decide(&self, exists: &bool) -> Result<Decision, DefineCourseError> {
        ensure!(!exists, DefineCourseError::AlreadyExists(self.course_id.clone()));
        Ok(Decision::event(CourseDefined { course_id: self.course_id.clone(), capacity: self.capacity }))
    }
}

#[cfg(test)]
mod tests {
    use fairway::testkit::CommandTest;

    use super::*;
    use crate::events::given::defined;

    #[tokio::test]
    async fn a_new_course_is_defined() {
        let outcome = CommandTest::new().when(&DefineCourse { course_id: "go".into(), capacity: 30 }).await;
        insta::assert_yaml_snapshot!(outcome);
    }

    #[tokio::test]
    async fn a_course_is_defined_once() {
        let outcome = CommandTest::new()
            .given(defined("go", 30))
            .when(&DefineCourse { course_id: "go".into(), capacity: 5 })
            .await;
        insta::assert_yaml_snapshot!(outcome);
    }
}

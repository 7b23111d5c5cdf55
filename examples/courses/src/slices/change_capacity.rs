//! Command: change a course's capacity (never below the students already in it).

use fairway::{Id, prelude::*};

use crate::events::{COURSE, CourseCapacityChanged, CourseLife};

/// `POST /commands/change-capacity {"course_id": "c1", "capacity": 40}`
#[derive(Debug, Deserialize)]
pub struct ChangeCapacity {
    pub course_id: Id,
    pub capacity: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    #[error("course {0} does not exist")]
    NotFound(Id),
    #[error("course {0} has {1} students; capacity {2} is too small")]
    TooSmall(Id, u32, u32),
}

/// The model is a count over the course's whole history, which grows with every student and
/// resize: a command folds from its latest snapshot instead of the course's first event.
impl fairway::SnapshotModel for ChangeCapacity {
    const MODEL_VERSION: u32 = 1;
}

#[command(snapshots)]
impl Command for ChangeCapacity {
    type Events = CourseLife;
    /// Students in the course, once it exists.
    type State = Option<u32>;
    type Error = CapacityError;

    fn query(&self) -> Query {
        CourseLife::tagged([self.course_id.tag(COURSE)]).into()
    }

    fn evolve(&self, students: &mut Option<u32>, event: CourseLife) {
        match event {
            CourseLife::Defined(_) => *students = Some(0),
            CourseLife::Subscribed(_) => *students = students.map(|n| n + 1),
            CourseLife::Unsubscribed(_) => *students = students.map(|n| n.saturating_sub(1)),
            CourseLife::CapacityChanged(_) => {}
        }
    }

    fn decide(&self, students: &Option<u32>) -> Result<Decision, CapacityError> {
        let id = &self.course_id;
        let students = students.ok_or_else(|| CapacityError::NotFound(id.clone()))?;
        ensure!(students <= self.capacity, CapacityError::TooSmall(id.clone(), students, self.capacity));
        Ok(Decision::event(CourseCapacityChanged { course_id: id.clone(), capacity: self.capacity }))
    }
}

#[cfg(test)]
mod tests {
    use fairway::testkit::CommandTest;

    use super::*;
    use crate::events::given::{defined, subscribed, unsubscribed};

    fn resize(capacity: u32) -> ChangeCapacity {
        ChangeCapacity { course_id: "go".into(), capacity }
    }

    #[tokio::test]
    async fn a_course_shrinks_to_the_students_in_it() {
        let given = CommandTest::new().given(defined("go", 3)).given(subscribed("go", "ada"));
        let given = given.given(subscribed("go", "bob")).given(unsubscribed("go", "bob"));
        insta::assert_yaml_snapshot!(given.when(&resize(1)).await);
    }

    #[tokio::test]
    async fn a_course_cannot_shrink_below_its_students() {
        let given = CommandTest::new().given(defined("go", 3)).given(subscribed("go", "ada"));
        insta::assert_yaml_snapshot!(given.given(subscribed("go", "bob")).when(&resize(1)).await);
    }

    #[tokio::test]
    async fn an_unknown_course_has_no_capacity() {
        insta::assert_yaml_snapshot!(CommandTest::new().when(&resize(1)).await);
    }
}

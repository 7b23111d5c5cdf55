// Shared code of the examples in ../slice-api.md, which include it with `include!`: the
// `Subscribe` command of the section "Commands" (with seats.rs) but for its state and its
// registration, which the example of `#[command(snapshots)]` writes anew. The items of its
// `impl Command` are the macro `subscribe_items!`, for that example and
// subscribe_command.rs, which adds the state and the registration.
include!("seats.rs");

/// `POST /commands/subscribe {"course_id": "c1", "student_id": "s1"}`
#[derive(Debug, Deserialize)]
pub struct Subscribe {
    pub course_id: Id,
    pub student_id: Id,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("course {0} does not exist")]
    NoCourse(Id),
    #[error("course {0} is full")]
    Full(Id),
}

/// The items of `impl Command for Subscribe`, for a state `Course` with the fields
/// `capacity` and `students` (what `#[command]` and `#[command(snapshots)]` go on).
macro_rules! subscribe_items {
    () => {
        const NAME: &'static str = "subscribe";
        type Events = Seats;
        type State = Course;
        type Error = SubscribeError;

        fn query(&self) -> Query {
            Seats::tagged([self.course_id.tag(COURSE)]).into()
        }

        fn evolve(&self, course: &mut Course, event: Seats) {
            match event {
                Seats::Defined(e) => course.capacity = Some(e.capacity),
                Seats::Subscribed(e) => _ = course.students.insert(e.student_id),
                Seats::Unsubscribed(e) => _ = course.students.remove(&e.student_id),
            }
        }

        fn decide(&self, course: &Course) -> Result<Decision, SubscribeError> {
            let capacity = course.capacity.ok_or_else(|| SubscribeError::NoCourse(self.course_id.clone()))?;
            if course.students.contains(&self.student_id) {
                return Ok(Decision::none()); // already in: nothing to append
            }
            ensure!(course.students.len() < capacity as usize, SubscribeError::Full(self.course_id.clone()));
            Ok(Decision::event(StudentSubscribed {
                course_id: self.course_id.clone(),
                student_id: self.student_id.clone(),
            }))
        }
    };
}

//! Command: register a student under a globally unique email.

use fairway::dcb::{Query, QueryItem};
use fairway::{Command, Decision, Event, EventError, Recorded, command};
use serde::Deserialize;

use crate::events::{Id, StudentRegistered, tag};

/// `POST /commands/register-student {"student_id": "s1", "email": "ada@example.org"}`
#[derive(Debug, Deserialize)]
pub struct RegisterStudent {
    /// The student.
    pub student_id: Id,
    /// Must be unused.
    pub email: Id,
}

/// Why the student cannot register.
#[derive(Debug, thiserror::Error)]
pub enum RegisterStudentError {
    /// The id is taken.
    #[error("student {0} is already registered")]
    IdTaken(String),
    /// The email is taken.
    #[error("email {0} is already in use")]
    EmailTaken(String),
}

/// What was found: (id taken, email taken).
#[derive(Default)]
pub struct Taken {
    id: bool,
    email: bool,
}

#[command]
impl Command for RegisterStudent {
    const NAME: &'static str = "register-student";
    type State = Taken;
    type Error = RegisterStudentError;

    /// Two boundaries: the id and the email. Uniqueness needs no other lock.
    fn query(&self) -> Query {
        Query::from(QueryItem::types([StudentRegistered::NAME]).with_tags([tag("student", &self.student_id)]))
            .or(QueryItem::types([StudentRegistered::NAME]).with_tags([tag("email", &self.email)]))
    }

    fn evolve(&self, taken: &mut Taken, event: &Recorded) -> Result<(), EventError> {
        if let Some(registered) = event.as_event::<StudentRegistered>() {
            let registered = registered?;
            taken.id |= registered.student_id == self.student_id;
            taken.email |= registered.email == self.email;
        }
        Ok(())
    }

    fn decide(&self, taken: &Taken) -> Result<Decision, RegisterStudentError> {
        if taken.id {
            return Err(RegisterStudentError::IdTaken(self.student_id.to_string()));
        }
        if taken.email {
            return Err(RegisterStudentError::EmailTaken(self.email.to_string()));
        }
        Ok(Decision::event(StudentRegistered {
            student_id: self.student_id.to_string(),
            email: self.email.to_string(),
        }))
    }
}

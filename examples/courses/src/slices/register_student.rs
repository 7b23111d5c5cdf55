//! Command: register a student under a globally unique email.

use fairway::{Id, prelude::*};

use crate::events::{EMAIL, STUDENT, StudentRegistered};

/// `POST /commands/register-student {"student_id": "s1", "email": "ada@example.org"}`
#[derive(Debug, Deserialize)]
pub struct RegisterStudent {
    pub student_id: Id,
    pub email: Id,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterStudentError {
    #[error("student {0} is already registered")]
    IdTaken(Id),
    #[error("email {0} is already in use")]
    EmailTaken(Id),
}

#[derive(Default)]
pub struct Taken {
    id: bool,
    email: bool,
}

#[command]
impl Command for RegisterStudent {
    type Events = StudentRegistered;
    type State = Taken;
    type Error = RegisterStudentError;

    /// Two boundaries: the id and the email. Uniqueness needs no other lock.
    fn query(&self) -> Query {
        StudentRegistered::tagged([self.student_id.tag(STUDENT)]).or(StudentRegistered::tagged([self.email.tag(EMAIL)]))
    }

    fn evolve(&self, taken: &mut Taken, registered: StudentRegistered) {
        taken.id |= registered.student_id == self.student_id;
        taken.email |= registered.email == self.email;
    }

    fn decide(&self, taken: &Taken) -> Result<Decision, RegisterStudentError> {
        ensure!(!taken.id, RegisterStudentError::IdTaken(self.student_id.clone()));
        ensure!(!taken.email, RegisterStudentError::EmailTaken(self.email.clone()));
        Ok(Decision::event(StudentRegistered { student_id: self.student_id.clone(), email: self.email.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use fairway::testkit::CommandTest;

    use super::*;
    use crate::events::given::registered;

    fn register(student: &str, email: &str) -> RegisterStudent {
        RegisterStudent { student_id: student.into(), email: email.into() }
    }

    #[tokio::test]
    async fn a_student_registers() {
        let outcome =
            CommandTest::new().given(registered("bob", "bob@x.org")).when(&register("ada", "ada@x.org")).await;
        insta::assert_yaml_snapshot!(outcome);
    }

    #[tokio::test]
    async fn an_email_is_used_once() {
        let outcome =
            CommandTest::new().given(registered("bob", "ada@x.org")).when(&register("ada", "ada@x.org")).await;
        insta::assert_yaml_snapshot!(outcome);
    }

    #[tokio::test]
    async fn an_id_is_used_once() {
        let outcome = CommandTest::new().given(registered("ada", "a@x.org")).when(&register("ada", "ada@x.org")).await;
        insta::assert_yaml_snapshot!(outcome);
    }
}

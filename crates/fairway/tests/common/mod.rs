//! A small course-subscription domain used by the tests: events and two commands.
#![allow(dead_code)]

use fairway::dcb::{Query, Tag};
use fairway::{Command, Decision, Event, EventSet};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub struct CourseDefined {
    #[tag("course")]
    pub course_id: String,
    pub capacity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "StudentSubscribedToCourse")]
pub struct StudentSubscribed {
    #[tag("course")]
    pub course_id: String,
    #[tag("student")]
    pub student_id: String,
}

/// What the course commands and views read of a course.
#[derive(Debug, EventSet)]
pub enum CourseEvents {
    Defined(CourseDefined),
    Subscribed(StudentSubscribed),
}

fn course(id: &str) -> Tag {
    Tag::new("course", id).expect("course ids are valid tag values")
}

/// Defines a course once.
pub struct DefineCourse {
    pub course_id: String,
    pub capacity: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CourseError {
    #[error("course {0} already exists")]
    AlreadyExists(String),
    #[error("course {0} does not exist")]
    NotFound(String),
    #[error("course {0} is full")]
    Full(String),
    #[error("student {0} is already subscribed")]
    AlreadySubscribed(String),
}

impl Command for DefineCourse {
    const NAME: &'static str = "DefineCourse";
    type Events = CourseDefined;
    type State = bool;
    type Error = CourseError;

    fn query(&self) -> Query {
        CourseDefined::tagged([course(&self.course_id)]).into()
    }

    fn evolve(&self, exists: &mut bool, _: CourseDefined) {
        *exists = true;
    }

    fn decide(&self, exists: &bool) -> Result<Decision, CourseError> {
        if *exists {
            return Err(CourseError::AlreadyExists(self.course_id.clone()));
        }
        Ok(Decision::event(CourseDefined { course_id: self.course_id.clone(), capacity: self.capacity }))
    }
}

/// Subscribes a student to a course that exists and is not full.
pub struct SubscribeStudent {
    pub course_id: String,
    pub student_id: String,
}

#[derive(Default)]
pub struct Seats {
    capacity: Option<u32>,
    taken: u32,
    already: bool,
}

impl Command for SubscribeStudent {
    const NAME: &'static str = "SubscribeStudent";
    type Events = CourseEvents;
    type State = Seats;
    type Error = CourseError;

    fn query(&self) -> Query {
        CourseEvents::tagged([course(&self.course_id)]).into()
    }

    fn evolve(&self, seats: &mut Seats, event: CourseEvents) {
        match event {
            CourseEvents::Defined(defined) => seats.capacity = Some(defined.capacity),
            CourseEvents::Subscribed(subscribed) => {
                seats.taken += 1;
                seats.already |= subscribed.student_id == self.student_id;
            }
        }
    }

    fn decide(&self, seats: &Seats) -> Result<Decision, CourseError> {
        let capacity = seats.capacity.ok_or_else(|| CourseError::NotFound(self.course_id.clone()))?;
        if seats.already {
            return Err(CourseError::AlreadySubscribed(self.student_id.clone()));
        }
        if seats.taken >= capacity {
            return Err(CourseError::Full(self.course_id.clone()));
        }
        Ok(Decision::event(StudentSubscribed {
            course_id: self.course_id.clone(),
            student_id: self.student_id.clone(),
        }))
    }
}

/// Seats a tutor in the `course` just defined; a repeated job finds the tutor already
/// seated and succeeds (automations run at least once).
pub async fn seat_tutor(
    course: CourseDefined,
    ctx: &fairway::AutomationContext,
) -> Result<(), fairway::AutomationError> {
    use fairway::CommandError;
    let subscribe = SubscribeStudent { course_id: course.course_id, student_id: "tutor".into() };
    match ctx.execute(&subscribe).await {
        Ok(_) | Err(CommandError::Rejected(CourseError::AlreadySubscribed(_))) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

/// Opens an embedded store in `dir` with the DCB store under `namespace`.
pub fn open_store(
    dir: &std::path::Path,
    namespace: &str,
) -> (std::sync::Arc<fairway::dcb::EmbeddedEngine>, std::sync::Arc<dyn fairway::runtime::Store>) {
    use fairway::dcb::{DcbStore, EmbeddedEngine, EmbeddedOptions};
    let engine = std::sync::Arc::new(EmbeddedEngine::open(dir, EmbeddedOptions::default()).expect("store opens"));
    let store = DcbStore::new(engine.clone(), namespace).expect("namespace");
    (engine, std::sync::Arc::new(store))
}

/// Closes the store and releases its directory for the next process.
pub fn close_store(
    engine: std::sync::Arc<fairway::dcb::EmbeddedEngine>,
    backend: std::sync::Arc<dyn fairway::runtime::Store>,
) {
    engine.close();
    drop(backend);
    assert_eq!(std::sync::Arc::strong_count(&engine), 1, "nothing else holds the store");
}

// Code of an example in ../slice-api.md, which includes it with `include!`: the
// `DefineCourse` command the `TestApp` of the section "Testing slices" answers, with the
// events of events.rs.
include!("events.rs");

#[derive(Debug, Deserialize)]
pub struct DefineCourse {
    pub course_id: Id,
    pub capacity: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("course {0} exists")]
pub struct Exists(Id);

#[command]
impl Command for DefineCourse {
    const NAME: &'static str = "define-course";
    type Events = CourseDefined;
    type State = bool;
    type Error = Exists;

    fn query(&self) -> Query {
        CourseDefined::tagged([self.course_id.tag(COURSE)]).into()
    }

    fn evolve(&self, defined: &mut bool, _: CourseDefined) {
        *defined = true;
    }

    fn decide(&self, defined: &bool) -> Result<Decision, Exists> {
        ensure!(!defined, Exists(self.course_id.clone()));
        Ok(Decision::event(CourseDefined { course_id: self.course_id.clone(), capacity: self.capacity }))
    }
}

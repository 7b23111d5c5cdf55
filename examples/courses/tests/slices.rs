//! Given/When/Then for the app's slices, snapshotted with insta (`cargo insta review`
//! after a deliberate change).

use courses::events::{CourseCapacityChanged, CourseDefined, StudentJoinedWaitingList, StudentSubscribed};
use courses::slices::course_list::CourseList;
use courses::slices::join_waiting_list::JoinWaitingList;
use courses::slices::promote_waiting_students::PromoteWaitingStudents;
use fairway::testkit::{AutomationTest, CommandTest, ViewTest};

fn defined(course: &str, capacity: u32) -> CourseDefined {
    CourseDefined { course_id: course.into(), capacity }
}

fn subscribed(course: &str, student: &str) -> StudentSubscribed {
    StudentSubscribed { course_id: course.into(), student_id: student.into() }
}

fn waiting(course: &str, student: &str) -> StudentJoinedWaitingList {
    StudentJoinedWaitingList { course_id: course.into(), student_id: student.into() }
}

#[tokio::test]
async fn a_full_course_queues_the_student() {
    let outcome = CommandTest::new()
        .given(defined("go", 1))
        .given(subscribed("go", "ada"))
        .when(&JoinWaitingList { course_id: "go".into(), student_id: "bob".into() })
        .await;
    insta::assert_yaml_snapshot!(outcome);
}

#[tokio::test]
async fn a_course_with_free_seats_sends_the_student_to_subscribe() {
    let outcome = CommandTest::new()
        .given(defined("go", 2))
        .given(subscribed("go", "ada"))
        .when(&JoinWaitingList { course_id: "go".into(), student_id: "bob".into() })
        .await;
    insta::assert_yaml_snapshot!(outcome);
}

#[tokio::test]
async fn the_course_list_shows_seats_and_the_waiting_list() {
    let state = ViewTest::new()
        .given(defined("go", 1))
        .given(defined("rust", 3))
        .given(subscribed("go", "ada"))
        .given(waiting("go", "bob"))
        .given(waiting("go", "cyd"))
        .given(subscribed("rust", "ada"))
        .then(CourseList)
        .await;
    insta::assert_yaml_snapshot!(state);
}

#[tokio::test]
async fn more_seats_promote_the_first_waiting_students() {
    let reaction = AutomationTest::new()
        .given(defined("go", 1))
        .given(subscribed("go", "ada"))
        .given(waiting("go", "bob"))
        .given(waiting("go", "cyd"))
        .given(waiting("go", "dan"))
        .when(CourseCapacityChanged { course_id: "go".into(), capacity: 3 }, &PromoteWaitingStudents)
        .await;
    insta::assert_yaml_snapshot!(reaction);
}

//! Given/When/Then snapshots of commands.

mod common;

use common::{CourseDefined, DefineCourse, StudentSubscribed, SubscribeStudent};
use fairway::testkit::CommandTest;

fn subscribe(student: &str) -> SubscribeStudent {
    SubscribeStudent { course_id: "c1".into(), student_id: student.into() }
}

/// Given course c1 with `capacity` seats and student s1 in it, when s2 subscribes.
async fn second_student_joins(capacity: u32) -> fairway::testkit::CommandOutcome {
    CommandTest::new()
        .given(CourseDefined { course_id: "c1".into(), capacity })
        .given(StudentSubscribed { course_id: "c1".into(), student_id: "s1".into() })
        .when(&subscribe("s2"))
        .await
}

#[tokio::test]
async fn subscribing_to_a_course_with_seats_left() {
    insta::assert_yaml_snapshot!(second_student_joins(2).await);
}

#[tokio::test]
async fn subscribing_to_a_full_course_is_rejected() {
    insta::assert_yaml_snapshot!(second_student_joins(1).await);
}

#[tokio::test]
async fn defining_a_course_twice_is_rejected() {
    let outcome = CommandTest::new()
        .given(CourseDefined { course_id: "c1".into(), capacity: 1 })
        .when(&DefineCourse { course_id: "c1".into(), capacity: 5 })
        .await;
    assert_eq!(outcome.result, "rejected");
    insta::assert_yaml_snapshot!(outcome);
}

//! Two event types sharing a name are refused, naming both.

use fairway::Event;
use serde::{Deserialize, Serialize};

mod billing {
    use super::*;
    #[derive(Serialize, Deserialize, Event)]
    #[event(name = "Created")]
    pub struct InvoiceCreated {
        pub id: String,
    }
}

mod shipping {
    use super::*;
    #[derive(Serialize, Deserialize, Event)]
    #[event(name = "Created")]
    pub struct ShipmentCreated {
        pub id: String,
    }
}

#[test]
fn a_shared_event_name_is_an_error_naming_both_types() {
    let err = fairway::registered_event_types().expect_err("two types named Created");
    assert_eq!(err.name, "Created");
    let both = format!("{} {}", err.first, err.second);
    assert!(both.contains("billing::InvoiceCreated") && both.contains("shipping::ShipmentCreated"), "{err}");
    assert_eq!(billing::InvoiceCreated::NAME, shipping::ShipmentCreated::NAME);
}

//! A command folding an event set: one `match` over the decoded events, a query built
//! from the set, refusals with `ensure!`.

use fairway::prelude::*;

#[derive(Serialize, Deserialize, Event)]
struct TicketOpened {
    #[tag("ticket")]
    ticket: String,
}

#[derive(Serialize, Deserialize, Event)]
#[event(name = "TicketShut")]
struct TicketClosed {
    #[tag("ticket")]
    ticket: String,
}

#[derive(EventSet)]
enum Ticket {
    Opened(TicketOpened),
    Closed(TicketClosed),
}

#[derive(Deserialize)]
struct CloseTicket {
    ticket: String,
}

#[derive(Debug, thiserror::Error)]
#[error("ticket {0} is not open")]
struct NotOpen(String);

#[command]
impl Command for CloseTicket {
    const NAME: &'static str = "close-ticket";
    type Events = Ticket;
    type State = bool;
    type Error = NotOpen;

    fn query(&self) -> Query {
        Ticket::tagged([Tag::new("ticket", &self.ticket).unwrap()]).into()
    }

    fn evolve(&self, open: &mut bool, event: Ticket) {
        match event {
            Ticket::Opened(_) => *open = true,
            Ticket::Closed(_) => *open = false,
        }
    }

    fn decide(&self, open: &bool) -> Result<Decision, NotOpen> {
        ensure!(*open, NotOpen(self.ticket.clone()));
        Ok(Decision::event(TicketClosed { ticket: self.ticket.clone() }))
    }
}

fn main() {
    assert_eq!(Ticket::TYPES, ["TicketOpened", "TicketShut"]);
    let close = CloseTicket { ticket: "t1".into() };
    let mut open = false;
    for stored in [TicketOpened { ticket: "t1".into() }.to_raw().unwrap()] {
        close.evolve(&mut open, Ticket::decode(&stored).unwrap().unwrap());
    }
    assert!(open && close.decide(&open).is_ok());
    close.evolve(&mut open, Ticket::Closed(TicketClosed { ticket: "t1".into() }));
    assert!(close.decide(&open).is_err());
}

//! Query planning: each query item becomes index range scans plus a residual filter.
//!
//! - an item with tags scans the index of its first tag and filters the rest (other tags,
//!   types) on the fetched events; its other tags, and its type when it has one, are
//!   alternatives the read switches to when its first tag's index turns out large and one
//!   of them small (in positions, counted without fetching events) (see `read`);
//! - an item with types only scans the type index of each of its types;
//! - an item with neither (or a query holding such an item) scans the log itself; so does a
//!   forward read whose index scans turn out to match most of the log (see `read`).

use crate::layout::{Layout, PositionedRange};
use crate::model::{Query, QueryItem};

/// Where a scan reads: the log itself, or an index whose keys end in log positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanSource {
    /// The event log.
    Log,
    /// An index pointing into the log.
    Index,
}

/// One range scan of a plan.
#[derive(Clone, Debug)]
pub struct Scan {
    /// The keys scanned.
    pub range: PositionedRange,
    /// What the keys are.
    pub source: ScanSource,
    /// What fetched events must match, when the range alone does not guarantee it.
    pub filter: Option<Query>,
}

/// The scans answering one query item.
#[derive(Clone, Debug)]
pub struct ItemPlan {
    /// The scans whose union (in position order) answers the item.
    pub scans: Vec<Scan>,
    /// Only the item's last matching event counts.
    pub last_only: bool,
    /// Single scans answering the item as well as `scans` (one scan), through another of
    /// its indexes: a read may switch to the smallest.
    pub alternatives: Vec<Scan>,
}

/// Plans every item of `query` (a match-all item makes the whole query one log scan).
pub fn plan_query(layout: &Layout, query: &Query) -> Vec<ItemPlan> {
    if query.is_all() {
        return vec![plan_item(layout, &QueryItem::new())];
    }
    query.items().iter().map(|item| plan_item(layout, item)).collect()
}

/// Plans one item.
pub fn plan_item(layout: &Layout, item: &QueryItem) -> ItemPlan {
    let mut alternatives = Vec::new();
    let scans = if let Some(driver) = item.tags.first() {
        let exact = item.tags.len() == 1 && item.types.is_empty();
        let filtered = |range| Scan { range, source: ScanSource::Index, filter: Some(item.clone().into()) };
        alternatives.extend(item.tags[1..].iter().map(|tag| filtered(layout.tag_index(tag))));
        if let [only_type] = item.types.as_slice() {
            alternatives.push(filtered(layout.type_index(only_type)));
        }
        vec![Scan {
            range: layout.tag_index(driver),
            source: ScanSource::Index,
            filter: (!exact).then(|| item.clone().into()),
        }]
    } else if !item.types.is_empty() {
        item.types
            .iter()
            .map(|t| Scan { range: layout.type_index(t), source: ScanSource::Index, filter: None })
            .collect()
    } else {
        vec![Scan { range: layout.log(), source: ScanSource::Log, filter: None }]
    };
    ItemPlan { scans, last_only: item.last_only, alternatives }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tag;

    #[test]
    fn items_are_planned_onto_the_cheapest_ranges() {
        let layout = Layout::new("ns").unwrap();
        let tag = Tag::parse("c:1").unwrap();
        let plan = plan_item(&layout, &QueryItem::tags([tag.clone()]));
        assert_eq!(plan.scans.len(), 1);
        assert!(plan.scans[0].filter.is_none());
        assert_eq!(plan.scans[0].range, layout.tag_index(&tag));

        let plan = plan_item(&layout, &QueryItem::types(["A", "B"]));
        assert_eq!(plan.scans.len(), 2);
        assert!(plan.scans.iter().all(|s| s.filter.is_none() && s.source == ScanSource::Index));

        let plan = plan_item(&layout, &QueryItem::types(["A"]).with_tags([tag]));
        assert_eq!(plan.scans.len(), 1);
        assert!(plan.scans[0].filter.is_some());

        let plans = plan_query(&layout, &Query::all().or(QueryItem::types(["A"])));
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].scans[0].source, ScanSource::Log);
    }
}

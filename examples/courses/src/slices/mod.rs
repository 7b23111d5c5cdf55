//! Every slice of the app: one file each, included automatically.

fairway::slices!();

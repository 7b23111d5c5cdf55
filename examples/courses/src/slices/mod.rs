//! Every slice of the app: one file each, included automatically.

automod::dir!(pub "src/slices");

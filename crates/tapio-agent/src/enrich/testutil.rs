//! Fixtures shared by the enrichment unit tests.

pub(crate) const FIXTURE: &str = include_str!("../../tests/fixtures/enrich_kubelet_pods.json");

pub(crate) const UID: &str = "8dbc5577-d0e2-4706-8787-57d52c03ddf2";
pub(crate) const UID_: &str = "8dbc5577_d0e2_4706_8787_57d52c03ddf2";
pub(crate) const CID: &str = "14011c7d92a9e513dfd69211da0413dbf319a5e45a02b354ba6e98e10272542d";

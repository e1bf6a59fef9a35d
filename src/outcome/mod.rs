//! What a measured run amounts to, beyond its statistics: the script's assertions evaluated
//! against the summary (`verdict`), what a capacity sweep found (`sweep`) and whether a
//! change between two runs breaks a regression gate (`gate`). Pure functions of the plan and
//! the statistics, used by the run's finish stage, `compare` and rendered by `report`.

pub mod gate;
pub mod sweep;
pub mod verdict;

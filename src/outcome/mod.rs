//! What a measured run amounts to, beyond its statistics: the script's assertions evaluated
//! against the summary (`verdict`) and what a capacity sweep found (`sweep`). Pure functions
//! of the plan and the statistics, used by the run's finish stage and rendered by `report`.

pub mod sweep;
pub mod verdict;

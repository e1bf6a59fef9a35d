//! What a measured run amounts to, beyond its statistics: the script's assertions evaluated
//! against the summary (`verdict`), what a capacity sweep found (`sweep`) and whether a
//! change between two runs breaks a regression gate (`gate`), and how CI reads them (`ci`:
//! JUnit XML, a Markdown summary). Pure functions of the plan and
//! the statistics, used by the run's finish stage, `compare` and rendered by `report`.

pub mod ci;
pub mod gate;
pub mod sweep;
pub mod verdict;

//! Who may do what, and what the server admits: authentication and roles (`auth`), the
//! audit stream (`audit`), per-client rate limits (`ratelimit`), admission control under
//! load (`protect`), input bounds (`bounds`) and the TLS listener (`tls`).

pub mod audit;
pub mod auth;
pub mod bounds;
pub mod protect;
pub mod ratelimit;
pub mod tls;

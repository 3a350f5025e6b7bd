//! The Alibaba Cloud OpenAPI client: signatures (`signing`), where keys come
//! from (`credentials`), which host to call (`endpoint`), typed errors
//! (`error`) and the retrying, rate-limited client (`client`). Knows nothing
//! about DTS response shapes; `dts::api` builds on it.

pub mod budget;
pub mod client;
mod clock;
pub mod credentials;
mod ecs_role;
pub mod endpoint;
pub mod error;
pub mod signing;
pub mod tolerant;

pub use budget::{Budget, Priority};
pub use client::{AliyunClient, ApiCall, ApiFailure, ApiResponse};
pub use credentials::{Credentials, Environment};
pub use error::{ApiError, ErrorClass};

//! Guards that sit in front of one provider account: a rate limiter that keeps us under the
//! provider's request rate, and a circuit breaker that stops dialling an account that keeps
//! failing. Both are shared by every campaign on the account (cheap clones, shared state).

mod breaker;
mod rate_limit;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker, Permit};
pub use rate_limit::{AccountLimiter, InvalidRateLimit, RateLimit, MAX_BURST, MIN_PER_SECOND};

//! The reliability layers, each a `tower::Layer` over the one service shape
//! `Service<ChatRequest, Response = ChatResponse, Error = ChatError>`.
//!
//! Outermost first, as [`Stack`](crate::Stack) assembles them:
//! [`select`], [`timeout`] (total), [`fallback`], [`balance`], [`limit`],
//! [`cooldown`], [`retry`], [`timeout`] (attempt), [`prepend`]. `route` is
//! the candidate engine that fallback and balance share (with [`hedge`]d
//! calls); [`health`] is the read-only view of the breakers that they skip
//! by, as [`UsageView`](limit::UsageView) is of the limits.

pub mod balance;
pub mod cooldown;
pub mod fallback;
pub mod health;
pub mod hedge;
pub mod limit;
pub mod prepend;
pub mod retry;
pub(crate) mod route;
pub mod select;
pub mod timeout;

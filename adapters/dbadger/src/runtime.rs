//! The async runtime openraft runs on: tokio in production. The simulator build (`--cfg
//! madsim`) supplies a madsim-backed runtime instead (dbadger-sim).

#[cfg(not(madsim))]
pub(crate) type Runtime = openraft_rt_tokio::TokioRuntime;

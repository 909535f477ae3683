//! The async runtime openraft runs on: tokio in production, madsim in the simulator build
//! (`--cfg madsim`, see [`crate::simulation`]).

#[cfg(not(madsim))]
pub(crate) type Runtime = openraft_rt_tokio::TokioRuntime;

#[cfg(madsim)]
pub(crate) type Runtime = crate::simulation::SimRuntime;

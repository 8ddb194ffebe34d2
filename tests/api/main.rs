//! Black-box tests over HTTP against the real server, started in-process on port 0, and of the built
//! binary's commands. One test binary (see helpers.rs for spawn_app).

mod cli;
mod helpers;
mod members;
mod passes;

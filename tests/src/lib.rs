//! Integration tests of dbadger over real sockets, real processes and real disks.
//!
//! The tests live in `tests/tests/`; this library holds the helpers they share (temporary data
//! directories, certificate generation, process supervision).
//!
//! Status: the cluster tests land with the cluster issue.

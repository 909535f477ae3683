//! libFuzzer entry point for [`dbadger_fuzz::raft_wire`].

#![no_main]

#[global_allocator]
static ALLOCATOR: dbadger_fuzz::CountingAllocator = dbadger_fuzz::CountingAllocator;

libfuzzer_sys::fuzz_target!(|data: &[u8]| dbadger_fuzz::raft_wire(data));

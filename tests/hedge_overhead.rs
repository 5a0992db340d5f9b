//! What hedging costs on the happy path, in repeatable counts: with a hedge
//! set and the first candidate answering in time, a call allocates one
//! thing more than without (the hedge's timer), whatever the prompt size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tower::ServiceExt;

#[path = "../benches/common/mod.rs"]
mod common;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per request, averaged over `n` sequential requests.
fn measure(svc: common::Svc, prompt_bytes: usize, n: u64) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let req = common::request("azure/gpt-4o-mini", prompt_bytes);
    rt.block_on(async {
        for _ in 0..10 {
            svc.clone().oneshot(req.clone()).await.unwrap();
        }
        ALLOCATIONS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        for _ in 0..n {
            let response = svc.clone().oneshot(req.clone()).await.unwrap();
            assert_eq!(response.attempts().len(), 1, "no hedge was started");
            drop(response);
        }
        COUNTING.store(false, Ordering::SeqCst);
    });
    ALLOCATIONS.load(Ordering::SeqCst) as f64 / n as f64
}

// One test function: the counters are process-wide.
#[test]
fn a_hedged_call_answered_in_time_allocates_only_its_timer_more() {
    let plain = measure(
        common::canonical(common::InstantLeaf::new(), 1),
        1 << 10,
        1000,
    );
    let hedged = measure(
        common::canonical_hedged(common::InstantLeaf::new(), 1),
        1 << 10,
        1000,
    );
    let hedged_big = measure(
        common::canonical_hedged(common::InstantLeaf::new(), 1),
        1 << 20,
        200,
    );
    println!(
        "allocations per request: plain {plain:.1}, hedged {hedged:.1}, hedged 1MB {hedged_big:.1}"
    );
    assert!(
        hedged - plain <= 1.5,
        "hedging adds {} allocations per request",
        hedged - plain
    );
    assert!(
        (hedged_big - hedged).abs() < 0.5,
        "allocations grew with the prompt: {hedged} (1 KB) vs {hedged_big} (1 MB)"
    );
}

//! A regression guard on the hot path, in repeatable counts rather than wall
//! time: heap allocations per request through the canonical stack, on the
//! happy path and with a retry and a fallback taken. A change that adds a deep
//! copy of the prompt, or a lock or a clone per layer, shows up here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tower::ServiceExt;

#[path = "../benches/common/mod.rs"]
mod common;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes per request, averaged over `n` sequential requests.
fn per_request(model: &str, prompt_bytes: usize, n: u64) -> (f64, f64) {
    measure(
        common::canonical(common::InstantLeaf::new(), 1),
        model,
        prompt_bytes,
        n,
    )
}

fn measure(svc: common::Svc, model: &str, prompt_bytes: usize, n: u64) -> (f64, f64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let req = common::request(model, prompt_bytes);
    rt.block_on(async {
        // Warm up: lazily created state (breakers, tracing callsites) is not per request.
        for _ in 0..10 {
            svc.clone().oneshot(req.clone()).await.unwrap();
        }
        ALLOCATIONS.store(0, Ordering::SeqCst);
        BYTES.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        for _ in 0..n {
            let response = svc.clone().oneshot(req.clone()).await.unwrap();
            drop(response);
        }
        COUNTING.store(false, Ordering::SeqCst);
    });
    (
        ALLOCATIONS.load(Ordering::SeqCst) as f64 / n as f64,
        BYTES.load(Ordering::SeqCst) as f64 / n as f64,
    )
}

// One test function: the counters are process-wide, so the cases must not run
// in parallel.
#[test]
fn the_hot_path_allocates_little_and_never_copies_the_prompt() {
    let (leaf, _) = measure(
        common::Svc::new(common::InstantLeaf::new()),
        "azure/gpt-4o-mini",
        1 << 10,
        1000,
    );
    let (happy_small, bytes_small) = per_request("azure/gpt-4o-mini", 1 << 10, 1000);
    let (happy_big, bytes_big) = per_request("azure/gpt-4o-mini", 1 << 20, 200);
    let (failover, _) = per_request("failing/gpt-4o-mini", 1 << 10, 1000);
    println!(
        "allocations per request: leaf alone {leaf:.1}, happy 1KB {happy_small:.1} ({bytes_small:.0} B), \
         happy 1MB {happy_big:.1} ({bytes_big:.0} B), retry+fallback {failover:.1}"
    );
    // What the layers add over the leaf's own answer (a cloned completion).
    let layers = happy_small - leaf;
    assert!(
        layers <= 24.0,
        "the layers add {layers} allocations per request"
    );
    assert!(
        failover - leaf <= 48.0,
        "retry + fallback: {failover} allocations per request"
    );
    // The prompt is never copied: a 1 MB prompt allocates what a 1 KB one
    // does. Not to the last digit: the two runs differ in length, so a rare
    // time-driven allocation (a window rolling over, a sweep of idle state)
    // shows as a fraction; a copy per request would add at least one.
    assert!(
        (happy_big - happy_small).abs() < 0.5,
        "allocations grew with the prompt: {happy_small} (1 KB) vs {happy_big} (1 MB)"
    );
    assert!(
        bytes_big < 16_384.0,
        "{bytes_big} bytes per request with a 1 MB prompt"
    );
}

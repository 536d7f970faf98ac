//! A chain of a million child tokens: asking whether the last is cancelled,
//! waiting on it and dropping the chain walk it without recursion (which
//! overflowed the stack, and aborted the process, before).

use std::time::Duration;
use workpool::CancelToken;

#[test]
fn d11_a_chain_of_a_million_child_tokens_is_walked_without_recursion() {
    let root = CancelToken::new();
    let mut last = root.child();
    for _ in 0..1_000_000 {
        last = last.child();
    }
    assert!(!last.is_cancelled());
    assert!(!last.wait_timeout(Duration::from_millis(1)));
    root.cancel();
    assert!(last.is_cancelled());
    assert!(last.wait_timeout(Duration::from_secs(10)));
    // Dropping the chain frees a million nodes, one after the other.
    drop(root);
    drop(last);
}

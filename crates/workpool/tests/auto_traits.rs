//! Compile-time checks of the auto and derived traits the public types promise:
//! this file fails to build if one of them is lost.

use std::error::Error;
use std::fmt::Debug;
use workpool::{BuildError, LoadBalancing, MultiPool, Pool, PoolBuilder, PoolError, PoolWithFunc};

fn send_sync<T: Send + Sync>() {}
fn handle<T: Send + Sync + Clone + Debug + 'static>() {}
fn error<T: Error + Send + Sync + Clone + PartialEq + 'static>() {}
fn value<T: Debug + Clone + Copy + PartialEq + Eq + std::hash::Hash + Send + Sync>() {}

/// An argument type that is `Send` but not `Sync`.
type NotSync = std::cell::Cell<u32>;

#[test]
fn pool_handles_are_send_sync_clone_and_debug() {
    handle::<Pool>();
    handle::<MultiPool>();
    handle::<PoolWithFunc<u64>>();
    handle::<PoolWithFunc<String>>();
    // Arguments only travel to one worker, so they need not be `Sync`.
    handle::<PoolWithFunc<NotSync>>();
}

#[test]
fn builder_is_send_sync_clone_debug_and_default() {
    fn builder<T: Send + Sync + Clone + Debug + Default + 'static>() {}
    builder::<PoolBuilder>();
    send_sync::<PoolBuilder>();
}

#[test]
fn load_balancing_is_a_plain_value() {
    value::<LoadBalancing>();
    assert_eq!(LoadBalancing::RoundRobin, LoadBalancing::RoundRobin);
    assert_ne!(LoadBalancing::RoundRobin, LoadBalancing::LeastTasks);
    assert_eq!(format!("{:?}", LoadBalancing::LeastTasks), "LeastTasks");
}

#[test]
fn errors_are_send_sync_static_errors() {
    error::<BuildError>();
    error::<PoolError>();
    let boxed: Box<dyn Error + Send + Sync> = Box::new(PoolError::Closed);
    assert_eq!(boxed.to_string(), PoolError::Closed.to_string());
    let boxed: Box<dyn Error + Send + Sync> = Box::new(BuildError::ZeroPools);
    assert_eq!(boxed.to_string(), BuildError::ZeroPools.to_string());
}

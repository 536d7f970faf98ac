//! Compile-time checks of the auto and derived traits the public types promise:
//! this file fails to build if one of them is lost.

use std::error::Error;
use std::fmt::Debug;
use workpool::{
    BatchHandle, BuildError, CancelToken, LoadBalancing, MultiPool, PanicPayload, Pool,
    PoolBuilder, PoolError, PoolWithFunc, Retry, Scope, SpawnAsync, SubmitAsync, TaskError,
    TaskHandle, TrySubmitError,
};

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

fn unpin<T: Unpin>() {}

#[test]
fn results_are_send_and_unpin() {
    fn handle_of<T: Send + Sync + Unpin + Debug + 'static>() {}
    handle_of::<TaskHandle<u64>>();
    handle_of::<TaskHandle<String>>();
    handle_of::<BatchHandle<u64>>();
    // A result that is `Send` but not `Sync` still makes a `Sync` handle:
    // only one thread ever takes it.
    handle_of::<TaskHandle<std::cell::Cell<u8>>>();
    handle::<CancelToken>();
    send_sync::<Retry>();
    fn future_of<F: std::future::Future + Send + Unpin>() {}
    future_of::<TaskHandle<u64>>();
    future_of::<BatchHandle<u64>>();
    future_of::<SubmitAsync<'static>>();
    future_of::<SpawnAsync<'static, u64>>();
    unpin::<CancelToken>();
}

#[test]
fn task_errors_are_send_sync_static_errors() {
    fn task_error<T: Error + Send + Sync + 'static>() {}
    task_error::<TaskError>();
    send_sync::<PanicPayload>();
    // anyhow and `Box<dyn Error + Send + Sync>` take it.
    let boxed: Box<dyn Error + Send + Sync> = Box::new(TaskError::Cancelled);
    assert_eq!(
        boxed.to_string(),
        "the task was cancelled before it started"
    );
    fn try_error<T: Error + Send + Sync + 'static>() {}
    try_error::<TrySubmitError<fn()>>();
}

#[test]
fn a_scope_is_shared_by_its_tasks() {
    fn sync<T: Sync>() {}
    sync::<Scope<'static, 'static>>();
}

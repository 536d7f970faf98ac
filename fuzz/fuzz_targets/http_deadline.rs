//! A request's query string through workpool-http's `Deadline` extractor
//! (`?deadline_ms=`, what every endpoint of its service reads): no input
//! panics; a request gets the budget it asked for, at most
//! `Deadline::MAX`, or a 400 whose text names `deadline_ms`.
//!
//! Input: one flag byte, then the query. Flag bit 0: the router has a
//! `DefaultDeadline`, of the next 8 bytes' milliseconds.

#![no_main]

use axum::extract::FromRequestParts;
use axum::http::{Request, StatusCode, Uri};
use axum::response::IntoResponse;
use libfuzzer_sys::fuzz_target;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use workpool_http::{Deadline, DeadlineRejection, DefaultDeadline};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut query)) = data.split_first() else {
        return;
    };
    let mut default = None;
    if flags & 1 != 0 {
        let Some((ms, rest)) = query.split_first_chunk::<8>() else {
            return;
        };
        default = Some(Duration::from_millis(u64::from_le_bytes(*ms)));
        query = rest;
    }
    let mut uri = b"/basic?".to_vec();
    uri.extend_from_slice(query);
    // What no HTTP request line can carry never reaches the extractor.
    let Ok(uri) = Uri::try_from(uri) else {
        return;
    };
    let mut builder = Request::builder().uri(uri);
    if let Some(d) = default {
        builder = builder.extension(DefaultDeadline(d));
    }
    let (mut parts, ()) = builder.body(()).expect("a valid request").into_parts();

    // The extractor awaits nothing: one poll answers.
    let outcome = {
        let mut extract = pin!(Deadline::from_request_parts(&mut parts, &()));
        match extract
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => panic!("the Deadline extractor waited"),
        }
    };

    // What the query asks, by the form-urlencoded rules (`+` is a space,
    // `%xx` a byte), the one parameter given once.
    let query = parts.uri.query().unwrap_or_default();
    let asked: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "deadline_ms")
        .map(|(_, v)| v.into_owned())
        .collect();
    match outcome {
        Ok(deadline) => {
            assert!(
                deadline.budget() <= Deadline::MAX,
                "{:?}",
                deadline.budget()
            );
            let _ = (deadline.at(), deadline.has_passed());
            match asked.as_slice() {
                [] => {
                    let want = default.map_or(Deadline::DEFAULT, |d| d.min(Deadline::MAX));
                    assert_eq!(deadline.budget(), want);
                }
                [ms] => {
                    let ms: u64 = ms.parse().expect("a budget from a number");
                    assert_eq!(deadline.budget(), Duration::from_millis(ms));
                }
                many => panic!("a budget from {} deadline_ms", many.len()),
            }
        }
        Err(rejection) => {
            let text = rejection.to_string();
            assert!(text.contains("deadline_ms"), "{text}");
            match &rejection {
                DeadlineRejection::TooLong { asked_ms } => {
                    assert!(Duration::from_millis(*asked_ms) > Deadline::MAX);
                    let asked: Vec<u64> = asked.iter().map(|ms| ms.parse().unwrap()).collect();
                    assert_eq!(asked, [*asked_ms]);
                }
                DeadlineRejection::NotANumber { .. } => {
                    // Refused: not one parameter of a u64's digits.
                    let one_number = matches!(asked.as_slice(), [ms] if ms.parse::<u64>().is_ok());
                    assert!(!one_number, "{asked:?} refused: {text}");
                }
                other => panic!("an unknown rejection {other:?}"),
            }
            assert_eq!(rejection.into_response().status(), StatusCode::BAD_REQUEST);
        }
    }
});

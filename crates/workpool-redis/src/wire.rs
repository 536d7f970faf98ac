//! Every Redis command this crate sends (the producer's and the
//! consumer's), each built by a function named after what it does, and the
//! parsing of their replies (by hand from `redis::Value`, so that an entry
//! trimmed from the stream, which comes back with nil fields, is seen
//! rather than failing the read). The Lua scripts are in `lua/*.lua`.

use crate::job::FIELD;
use redis::{Client, Cmd, Connection, RedisResult, Value};
use std::time::Duration;

/// `lua/dead_letter.lua`: acks an entry and copies it to the dead-letter
/// stream, only if that `XACK` took it off the pending list.
const DEAD_LETTER: &str = include_str!("lua/dead_letter.lua");

/// The longest one connect or one round trip may take: a producer's call
/// fails rather than hang, and a shutdown that gives up on Redis is not
/// stuck in a settler's socket call.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection whose connect, reads and writes time out after
/// [`IO_TIMEOUT`].
pub(crate) fn connect(client: &Client) -> RedisResult<Connection> {
    let conn = client.get_connection_with_timeout(IO_TIMEOUT)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(conn)
}

/// `XADD s [MAXLEN ~ n] * job text`: pushes one job (for a query or a
/// pipeline); its reply is the new entry's ID.
pub(crate) fn push(stream: &str, maxlen: Option<usize>, text: &str) -> Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream);
    if let Some(maxlen) = maxlen {
        cmd.arg("MAXLEN").arg("~").arg(maxlen);
    }
    cmd.arg("*").arg(FIELD).arg(text);
    cmd
}

/// `XACK s g id..`: takes the entries off the group's pending list (for a
/// query or a pipeline).
pub(crate) fn ack(stream: &str, group: &str, ids: &[String]) -> Cmd {
    let mut cmd = redis::cmd("XACK");
    cmd.arg(stream).arg(group).arg(ids);
    cmd
}

/// A failed entry's copy in the dead-letter stream: its fields, in order.
#[derive(Debug)]
pub(crate) struct DeadLetter<'a> {
    pub(crate) id: &'a str,
    /// The entry's `job` field, byte for byte as read (empty if it had
    /// none).
    pub(crate) job: &'a [u8],
    pub(crate) error: &'a str,
    pub(crate) deliveries: u64,
    pub(crate) consumer: &'a str,
    pub(crate) failed_at_ms: u64,
}

/// `EVAL lua/dead_letter.lua`: acks `copy.id` and, if that took it off the
/// pending list, adds `copy` to `dead_stream` (for a query or a pipeline;
/// its reply is 1 when copied, 0 when the entry was no longer pending).
pub(crate) fn dead_letter(
    stream: &str,
    dead_stream: &str,
    group: &str,
    copy: &DeadLetter<'_>,
) -> Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(DEAD_LETTER)
        .arg(2)
        .arg(stream)
        .arg(dead_stream)
        .arg(group)
        .arg(copy.id)
        .arg("id")
        .arg(copy.id)
        .arg("job")
        .arg(copy.job)
        .arg("error")
        .arg(copy.error)
        .arg("deliveries")
        .arg(copy.deliveries)
        .arg("consumer")
        .arg(copy.consumer)
        .arg("failed_at_ms")
        .arg(copy.failed_at_ms);
    cmd
}

/// One stream entry as read: its ID and its field-value pairs, as bytes
/// (any client can `XADD` anything; `job.rs` decides what is a job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) id: String,
    /// `None` when the entry was deleted (trimmed) while pending: Redis
    /// answers nil for its fields.
    pub(crate) fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Entry {
    /// The value of the entry's first `job` field, as written.
    pub(crate) fn job_field(&self) -> Option<&[u8]> {
        self.fields
            .as_deref()?
            .iter()
            .find(|(field, _)| field == FIELD.as_bytes())
            .map(|(_, value)| value.as_slice())
    }
}

/// Entries read, with the server's clock when it answered.
#[derive(Debug)]
pub(crate) struct Read {
    pub(crate) entries: Vec<Entry>,
    /// Microseconds since the Unix epoch by the Redis server's clock,
    /// from a `TIME` pipelined right after the read (so run once the read
    /// has its answer, a blocking one included); `None` where the reply
    /// to `TIME` is not one.
    pub(crate) server_us: Option<u64>,
}

fn text(v: &Value) -> Option<String> {
    bytes(v).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.clone().into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.clone().into_bytes()),
        _ => None,
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        _ => &[],
    }
}

/// `[[id, [field, value, ..] | nil], ..]`. An entry whose ID is not text
/// is skipped; a field or value that is not text drops its pair; fields
/// that are neither a list nor nil read as no fields (so no `job`).
pub(crate) fn entries(v: &Value) -> Vec<Entry> {
    items(v)
        .iter()
        .filter_map(|e| {
            let parts = items(e);
            let id = text(parts.first()?)?;
            let fields = match parts.get(1) {
                None | Some(Value::Nil) => None,
                Some(fields) => Some(
                    items(fields)
                        .chunks_exact(2)
                        .filter_map(|kv| Some((bytes(&kv[0])?, bytes(&kv[1])?)))
                        .collect(),
                ),
            };
            Some(Entry { id, fields })
        })
        .collect()
}

/// The reply to `TIME` (`[seconds, microseconds]`) in microseconds.
fn server_us(v: &Value) -> Option<u64> {
    let parts = items(v);
    let number = |i: usize| text(parts.get(i)?)?.parse::<u64>().ok();
    number(0)?.checked_mul(1_000_000)?.checked_add(number(1)?)
}

/// Sends `cmd` and `TIME` in one round trip: `cmd`'s reply and the
/// server's clock once `cmd` had run (a blocked `XREADGROUP` holds the
/// `TIME` behind it until it answers).
fn with_server_time(conn: &mut Connection, cmd: Cmd) -> RedisResult<(Value, Option<u64>)> {
    let mut pipe = redis::pipe();
    pipe.add_command(cmd).cmd("TIME");
    let (reply, time): (Value, Value) = pipe.query(conn)?;
    Ok((reply, server_us(&time)))
}

/// `XREADGROUP GROUP g c COUNT count [BLOCK ms] STREAMS s id`, then
/// `TIME`.
pub(crate) fn read_group(
    conn: &mut Connection,
    stream: &str,
    group: &str,
    consumer: &str,
    count: usize,
    block: Option<Duration>,
    id: &str,
) -> RedisResult<Read> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if let Some(block) = block {
        cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
    }
    cmd.arg("STREAMS").arg(stream).arg(id);
    let (reply, server_us) = with_server_time(conn, cmd)?;
    // [[stream, entries]] (RESP2), or nil when BLOCK timed out.
    let entries = items(&reply)
        .first()
        .map(|s| entries(items(s).get(1).unwrap_or(&Value::Nil)))
        .unwrap_or_default();
    Ok(Read { entries, server_us })
}

/// The greatest entry ID: no entry is pending after it.
const LAST_ID: &str = "18446744073709551615-0";

/// `XREADGROUP GROUP g c COUNT 1 STREAMS s 18446744073709551615-0`: reads
/// nothing (the consumer's own pending entries after the greatest ID) but
/// marks the consumer seen, which `XINFO CONSUMERS` reports as its `idle`.
/// A live consumer sends it every third of the visibility timeout, so that
/// [`remove_idle_consumers`] never takes it for a dead one: before Redis
/// 7.2 a read of new entries (`>`) that finds none leaves `idle` growing
/// (a consumer of a quiet stream would look dead), while a read of its
/// own history resets it, in every version.
pub(crate) fn heartbeat(
    conn: &mut Connection,
    stream: &str,
    group: &str,
    consumer: &str,
) -> RedisResult<()> {
    redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(stream)
        .arg(LAST_ID)
        .query::<Value>(conn)
        .map(drop)
}

/// `XAUTOCLAIM s g c min-idle start COUNT count`, then `TIME`: entries
/// pending longer than `min_idle`, now ours. Returns the next cursor
/// (`0-0` when the scan is complete) and the entries (deleted ones are
/// dropped from the pending list by Redis itself, and not returned here).
pub(crate) fn autoclaim(
    conn: &mut Connection,
    stream: &str,
    group: &str,
    consumer: &str,
    min_idle: Duration,
    start: &str,
    count: usize,
) -> RedisResult<(String, Read)> {
    let mut cmd = redis::cmd("XAUTOCLAIM");
    cmd.arg(stream)
        .arg(group)
        .arg(consumer)
        .arg(min_idle.as_millis() as u64)
        .arg(start)
        .arg("COUNT")
        .arg(count);
    let (reply, server_us) = with_server_time(conn, cmd)?;
    let parts = items(&reply);
    let cursor = parts.first().and_then(text).unwrap_or_else(|| "0-0".into());
    let entries = parts.get(1).map(entries).unwrap_or_default();
    Ok((cursor, Read { entries, server_us }))
}

/// `lua/remove_idle_consumers.lua`: removes the group's consumers that
/// hold no entry and have been idle at least the given time.
const REMOVE_IDLE_CONSUMERS: &str = include_str!("lua/remove_idle_consumers.lua");

/// `EVAL lua/remove_idle_consumers.lua`: `XGROUP DELCONSUMER` of every
/// consumer of the group other than `own` that has no pending entry and
/// whose `idle` in `XINFO CONSUMERS` is at least `min_idle`: a dead
/// consumer, once its entries were reclaimed. Check and removal are one
/// atomic step, so a consumer that reads (or is restarted) meanwhile is
/// not removed with entries it just took. Returns the names removed.
pub(crate) fn remove_idle_consumers(
    conn: &mut Connection,
    stream: &str,
    group: &str,
    own: &str,
    min_idle: Duration,
) -> RedisResult<Vec<String>> {
    let reply: Value = redis::cmd("EVAL")
        .arg(REMOVE_IDLE_CONSUMERS)
        .arg(1)
        .arg(stream)
        .arg(group)
        .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
        .arg(own)
        .query(conn)?;
    Ok(items(&reply).iter().filter_map(text).collect())
}

/// `XCLAIM s g c 0 id..`, then `TIME`: takes the entries (again) for
/// `consumer`, resetting their idle time and adding one to their delivery
/// count.
pub(crate) fn claim(
    conn: &mut Connection,
    stream: &str,
    group: &str,
    consumer: &str,
    ids: &[String],
) -> RedisResult<Read> {
    let mut cmd = redis::cmd("XCLAIM");
    cmd.arg(stream).arg(group).arg(consumer).arg(0).arg(ids);
    let (reply, server_us) = with_server_time(conn, cmd)?;
    Ok(Read {
        entries: entries(&reply),
        server_us,
    })
}

/// `XCLAIM s g c 0 id.. JUSTID`: resets the entries' idle time (a lease
/// renewal) without counting a delivery.
pub(crate) fn touch(
    conn: &mut Connection,
    stream: &str,
    group: &str,
    consumer: &str,
    ids: &[String],
) -> RedisResult<()> {
    redis::cmd("XCLAIM")
        .arg(stream)
        .arg(group)
        .arg(consumer)
        .arg(0)
        .arg(ids)
        .arg("JUSTID")
        .query::<Value>(conn)
        .map(drop)
}

/// The delivery count of each entry, from `XPENDING s g id id 1` (one
/// pipelined command per ID); 1 for an entry no longer pending.
pub(crate) fn deliveries(
    conn: &mut Connection,
    stream: &str,
    group: &str,
    ids: &[&str],
) -> RedisResult<Vec<u64>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("XPENDING")
            .arg(stream)
            .arg(group)
            .arg(id)
            .arg(id)
            .arg(1);
    }
    let replies: Vec<Value> = pipe.query(conn)?;
    Ok(replies
        .iter()
        .map(|r| {
            items(r)
                .first()
                .and_then(|row| match items(row).get(3) {
                    Some(Value::Int(n)) => u64::try_from(*n).ok(),
                    _ => None,
                })
                .unwrap_or(1)
        })
        .collect())
}

/// `XGROUP CREATE s g 0 MKSTREAM`, where the group does not exist yet: it
/// starts at the stream's beginning, so jobs pushed before the first
/// consumer started are run too.
pub(crate) fn ensure_group(conn: &mut Connection, stream: &str, group: &str) -> RedisResult<()> {
    let created: RedisResult<Value> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query(conn);
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{self, redis_or_skip, wait_for};

    fn consumers(conn: &mut Connection) -> Vec<(String, u64, u64)> {
        let reply: Value = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg("s")
            .arg("g")
            .query(conn)
            .unwrap();
        items(&reply)
            .iter()
            .map(|c| {
                let info = items(c);
                let field = |name: &str| {
                    let at = info.iter().position(|v| text(v).as_deref() == Some(name));
                    at.and_then(|i| info.get(i + 1)).cloned().unwrap()
                };
                let int = |v: Value| match v {
                    Value::Int(n) => n as u64,
                    other => panic!("{other:?}"),
                };
                (
                    text(&field("name")).unwrap(),
                    int(field("pending")),
                    int(field("idle")),
                )
            })
            .collect()
    }

    fn read_new(conn: &mut Connection, consumer: &str) -> Read {
        read_group(conn, "s", "g", consumer, 10, None, ">").unwrap()
    }

    /// Only a consumer that is not the caller, holds nothing and has been
    /// idle the threshold is removed; one holding entries, one seen since,
    /// and the caller stay.
    #[test]
    fn remove_idle_consumers_takes_only_the_idle_ones_holding_nothing() {
        let server = redis_or_skip!();
        let mut conn = server.conn();
        ensure_group(&mut conn, "s", "g").unwrap();
        let threshold = Duration::from_millis(300);
        push("s", None, "{}").query::<String>(&mut conn).unwrap();
        assert_eq!(read_new(&mut conn, "holding").entries.len(), 1);
        for name in ["empty", "fresh", "caller"] {
            heartbeat(&mut conn, "s", "g", name).unwrap();
        }
        wait_for(30, "every consumer idle past the threshold", || {
            consumers(&mut conn)
                .iter()
                .all(|&(_, _, idle)| idle >= threshold.as_millis() as u64)
        });
        heartbeat(&mut conn, "s", "g", "fresh").unwrap();
        let removed = remove_idle_consumers(&mut conn, "s", "g", "caller", threshold).unwrap();
        assert_eq!(removed, ["empty"]);
        let mut left: Vec<(String, u64)> = consumers(&mut conn)
            .into_iter()
            .map(|(name, pending, _)| (name, pending))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ("caller".to_owned(), 0),
                ("fresh".to_owned(), 0),
                ("holding".to_owned(), 1)
            ]
        );
    }

    /// The heartbeat lists the consumer and resets its `idle`, and reads
    /// nothing: the entries it holds keep their idle time and delivery
    /// count, so a reclaim still sees them as they were.
    #[test]
    fn a_heartbeat_resets_idle_and_touches_no_entry() {
        let server = redis_or_skip!();
        let mut conn = server.conn();
        ensure_group(&mut conn, "s", "g").unwrap();
        push("s", None, "{}").query::<String>(&mut conn).unwrap();
        let id = read_new(&mut conn, "c").entries[0].id.clone();
        wait_for(30, "c idle 200 ms", || consumers(&mut conn)[0].2 >= 200);
        heartbeat(&mut conn, "s", "g", "c").unwrap();
        let (name, pending, idle) = consumers(&mut conn).remove(0);
        assert_eq!((name.as_str(), pending), ("c", 1));
        assert!(idle < 200, "idle {idle} ms after a heartbeat");
        assert_eq!(deliveries(&mut conn, "s", "g", &[&id]).unwrap(), [1]);
        // Still idle for a reclaim: the entry's own clock was not reset.
        let idle = Duration::from_millis(200);
        let (_, claimed) = autoclaim(&mut conn, "s", "g", "other", idle, "0-0", 10).unwrap();
        assert_eq!(claimed.entries.len(), 1);
    }

    /// `TIME` rides with each read: the server's clock, in microseconds.
    #[test]
    fn a_read_carries_the_server_clock() {
        let server = redis_or_skip!();
        let mut conn = server.conn();
        ensure_group(&mut conn, "s", "g").unwrap();
        let id: String = push("s", None, "{}").query(&mut conn).unwrap();
        let read = read_new(&mut conn, "c");
        let added_ms: u64 = id.split_once('-').unwrap().0.parse().unwrap();
        let server_us = read.server_us.expect("TIME's reply");
        assert!(
            server_us >= added_ms * 1000,
            "{server_us} µs, added at {added_ms} ms"
        );
        assert!(
            server_us - added_ms * 1000 < 60_000_000,
            "{server_us} µs, added at {added_ms} ms"
        );
    }

    #[test]
    fn entries_keep_bytes_and_see_deleted_ones() {
        let bulk = |b: &[u8]| Value::BulkString(b.to_vec());
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk(b"1-0"),
                Value::Array(vec![
                    bulk(b"other"),
                    bulk(b"x"),
                    bulk(b"job"),
                    bulk(b"\xff{"),
                ]),
            ]),
            Value::Array(vec![bulk(b"2-0"), Value::Nil]),
            Value::Array(vec![Value::Int(3), Value::Nil]),
            Value::Array(vec![bulk(b"4-0"), Value::Int(1)]),
        ]);
        let got = entries(&reply);
        assert_eq!(got.len(), 3, "the entry without a text ID is skipped");
        assert_eq!(got[0].job_field(), Some(&b"\xff{"[..]));
        assert_eq!(got[1].fields, None);
        assert_eq!((got[2].id.as_str(), got[2].job_field()), ("4-0", None));
        assert_eq!(
            server_us(&Value::Array(vec![bulk(b"12"), bulk(b"345")])),
            Some(12_000_345)
        );
        assert_eq!(server_us(&Value::Array(vec![bulk(b"x"), bulk(b"1")])), None);
        assert_eq!(
            server_us(&Value::Array(vec![
                bulk(b"18446744073709551615"),
                bulk(b"0")
            ])),
            None
        );
    }
}

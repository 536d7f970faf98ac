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
    /// The job's JSON, as read.
    pub(crate) job: &'a str,
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

/// One stream entry: its ID and its `job` field, `None` when the entry was
/// deleted (trimmed) while pending, or has no such field.
pub(crate) type Entry = (String, Option<String>);

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        _ => &[],
    }
}

/// `[[id, [field, value, ..] | nil], ..]`.
fn entries(v: &Value) -> Vec<Entry> {
    items(v)
        .iter()
        .filter_map(|e| {
            let parts = items(e);
            let id = text(parts.first()?)?;
            let fields = parts.get(1).map(items).unwrap_or(&[]);
            let job = fields
                .chunks(2)
                .find(|kv| kv.first().and_then(text).as_deref() == Some(FIELD))
                .and_then(|kv| kv.get(1).and_then(text));
            Some((id, job))
        })
        .collect()
}

/// `XREADGROUP GROUP g c COUNT count [BLOCK ms] STREAMS s id`.
pub(crate) fn read_group(
    conn: &mut Connection,
    stream: &str,
    group: &str,
    consumer: &str,
    count: usize,
    block: Option<Duration>,
    id: &str,
) -> RedisResult<Vec<Entry>> {
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
    let reply: Value = cmd.query(conn)?;
    // [[stream, entries]] (RESP2), or nil when BLOCK timed out.
    Ok(items(&reply)
        .first()
        .map(|s| entries(items(s).get(1).unwrap_or(&Value::Nil)))
        .unwrap_or_default())
}

/// `XAUTOCLAIM s g c min-idle start COUNT count`: entries pending longer
/// than `min_idle`, now ours. Returns the next cursor (`0-0` when the scan
/// is complete) and the entries (deleted ones are dropped from the pending
/// list by Redis itself, and not returned here).
pub(crate) fn autoclaim(
    conn: &mut Connection,
    stream: &str,
    group: &str,
    consumer: &str,
    min_idle: Duration,
    start: &str,
    count: usize,
) -> RedisResult<(String, Vec<Entry>)> {
    let reply: Value = redis::cmd("XAUTOCLAIM")
        .arg(stream)
        .arg(group)
        .arg(consumer)
        .arg(min_idle.as_millis() as u64)
        .arg(start)
        .arg("COUNT")
        .arg(count)
        .query(conn)?;
    let parts = items(&reply);
    let cursor = parts.first().and_then(text).unwrap_or_else(|| "0-0".into());
    let claimed = parts.get(1).map(entries).unwrap_or_default();
    Ok((cursor, claimed))
}

/// `XCLAIM s g c 0 id..`: takes the entries (again) for `consumer`,
/// resetting their idle time and adding one to their delivery count.
pub(crate) fn claim(
    conn: &mut Connection,
    stream: &str,
    group: &str,
    consumer: &str,
    ids: &[String],
) -> RedisResult<Vec<Entry>> {
    let reply: Value = redis::cmd("XCLAIM")
        .arg(stream)
        .arg(group)
        .arg(consumer)
        .arg(0)
        .arg(ids)
        .query(conn)?;
    Ok(entries(&reply))
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

-- Acks a failed entry and copies it to the dead-letter stream, once: the
-- copy is made only by the call whose XACK took the entry off the pending
-- list, so a batch sent again after its reply was lost (a dropped
-- connection, a restarted server) adds no second copy.
-- KEYS: stream, dead-letter stream; ARGV: group, entry id, the copy's
-- field-value pairs.
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
    redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
    return 1
end
return 0

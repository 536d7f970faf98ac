-- Removes the group's dead consumers: those, other than the caller, that
-- hold no pending entry and have been idle (XINFO CONSUMERS' `idle`, in
-- ms) at least the reclaim threshold. One script, so no command runs
-- between the check and the removal: a consumer that reads meanwhile
-- (a restart under the same name) cannot lose the entries it just took.
-- KEYS: stream; ARGV: group, min idle ms, the caller's name.
-- Returns the names removed.
local removed = {}
local min_idle = tonumber(ARGV[2])
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local info = {}
    for i = 1, #consumer, 2 do
        info[consumer[i]] = consumer[i + 1]
    end
    if info['name'] ~= ARGV[3] and info['pending'] == 0 and info['idle'] >= min_idle then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
        removed[#removed + 1] = info['name']
    end
end
return removed

"""Tenant-fair order on an RQ queue: a job goes after the jobs of other tenants that are no
further down their own tenant's line than it is, so one tenant's backlog delays another
tenant's job by at most one of its jobs (round-robin between tenants, arrival order within
a round).

RQ appends a job to the queue's Redis list; `fair_place` then moves it to its place, in one
Lua script (atomic, O(jobs waiting) on the Redis server). A job taken by a worker meanwhile
is left alone. Which tenant owns each waiting job is kept in a hash beside the list.
"""
from redis import Redis

# KEYS: the queue's list, the owners hash. ARGV: the job id, its owner.
_PLACE = """
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local owners = {}
for first = 1, #ids, 1000 do
  local batch = {}
  for i = first, math.min(first + 999, #ids) do batch[#batch + 1] = ids[i] end
  local found = redis.call('HMGET', KEYS[2], unpack(batch))
  for i = 1, #batch do owners[first + i - 1] = found[i] or ids[first + i - 1] end
end
local ahead_of_mine = 0
for i = 1, #ids do
  if ids[i] ~= ARGV[1] and owners[i] == ARGV[2] then ahead_of_mine = ahead_of_mine + 1 end
end
local turn, seen, pivot = ahead_of_mine + 1, {}, nil
for i = 1, #ids do
  if ids[i] ~= ARGV[1] then
    seen[owners[i]] = (seen[owners[i]] or 0) + 1
    if seen[owners[i]] > turn then pivot = ids[i] break end
  end
end
if redis.call('HLEN', KEYS[2]) > 2 * #ids + 1000 then
  redis.call('DEL', KEYS[2])
  for i = 1, #ids do if owners[i] ~= ids[i] then redis.call('HSET', KEYS[2], ids[i], owners[i]) end end
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
if pivot == nil then return 0 end
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LINSERT', KEYS[1], 'BEFORE', pivot, ARGV[1])
return 1
"""


def owners_key(queue_key: str) -> str:
    return f"sparkexport:fair-owners:{queue_key}"


def fair_place(connection: Redis, queue_key: str, job_id: str, owner: str) -> bool:
    """Move a job just appended to the queue to its tenant-fair place; True if it moved."""
    script = connection.register_script(_PLACE)
    return bool(script(keys=[queue_key, owners_key(queue_key)], args=[job_id, owner]))

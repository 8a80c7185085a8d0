-- wrk script: POST pre-encoded multipart bodies (real MNIST test images as PNG), rotating through them.
-- Usage: wrk ... -s post.lua <url> -- <bodies-dir> <count> <boundary>
-- run.py writes <bodies-dir>/00000.bin ... ; each wrk thread formats every request once in init(), so the
-- per-request cost on the load generator is a table lookup. done() prints one JSON line that run.py parses.

local requests = {}
local next_index = 0
local threads_made = 0

function setup(thread)
  -- Threads start at different offsets so they do not send the same images in lockstep.
  thread:set("offset", threads_made * 97)
  threads_made = threads_made + 1
end

function init(args)
  local dir, count, boundary = args[1], tonumber(args[2]), args[3]
  local headers = { ["Content-Type"] = "multipart/form-data; boundary=" .. boundary }
  for i = 0, count - 1 do
    local file = assert(io.open(string.format("%s/%05d.bin", dir, i), "rb"))
    local body = file:read("*a")
    file:close()
    requests[#requests + 1] = wrk.format("POST", wrk.path, headers, body)
  end
  next_index = (offset or 0) % #requests
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us": %d, "requests": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end

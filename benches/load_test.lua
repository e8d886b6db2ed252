-- wrk script for benches/load_test.sh: image→spectrum searches by random id
-- (k = 10) against POST /v1/collections/gal/search. COUNT (ids 1..COUNT) comes
-- from the environment. done() prints one JSON line with the numbers.
local count = tonumber(os.getenv("COUNT") or "100000")
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(seed * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local id = math.random(1, count)
  local body = string.format('{"id": %d, "from": "image", "to": "spectrum", "k": 10}', id)
  return wrk.format("POST", "/v1/collections/gal/search", nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "qps": %.1f, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, e.connect, e.read, e.write, e.status, e.timeout))
end

-- wrk script of the HTTP rows (bench/load.py runs it): POST BENCH_PATH with BENCH_BODY.
-- One API key per wrk thread (the run uses as many threads as connections), so that each
-- key stays under production's per-key rate limit. Idempotency-Key: a new unique key per
-- request ("unique"), or the same BENCH_IDEMPOTENCY_KEY every time ("fixed", the replay row).
-- done() prints one line "BENCH_RESULT {json}" that load.py parses.

local keys = {}
for key in string.gmatch(os.getenv("BENCH_API_KEYS") or "", "[^,]+") do
  keys[#keys + 1] = key
end
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("api_key", keys[(threads - 1) % #keys + 1])
  thread:set("thread_id", threads)
end

local counter = 0
local path = os.getenv("BENCH_PATH")
local body = os.getenv("BENCH_BODY") or "{}"
local mode = os.getenv("BENCH_IDEMPOTENCY") or "unique"
local fixed_key = os.getenv("BENCH_IDEMPOTENCY_KEY") or "bench-fixed"
local run_id = os.getenv("BENCH_RUN_ID") or "run"

-- Letters, not digits: a long digit run in a header could pass the Luhn check and be
-- refused as card data by the card-data guard.
local function letters(n)
  local s = ""
  repeat
    local d = n % 26
    s = string.char(97 + d) .. s
    n = (n - d) / 26
  until n == 0
  return s
end

function request()
  counter = counter + 1
  local key = fixed_key
  if mode == "unique" then
    key = string.format("bench-%s-%s-%s", run_id, letters(thread_id), letters(counter))
  end
  local headers = {
    ["Authorization"] = "Bearer " .. api_key,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = key,
  }
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end

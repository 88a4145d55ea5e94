-- wrk script for the Stuudium ID benchmarks: POSTs prepared form bodies, one per request.
--
-- wrk <options> -s pool.lua <url> -- <file> <threads> <path> <expect> <once|cycle> [Header: value]...
--     [+body:<text>]...
--
-- <file> holds one request per line: "<form body>" or "<cookie header>\t<form body>". wrk thread
-- k of n takes lines k, k+n, k+2n, ... so no two threads send the same line. In "once" mode each
-- line is sent once (codes and refresh tokens are single-use): a thread that runs out stops and
-- counts the shortfall as "exhausted". In "cycle" mode every thread takes every line and starts
-- over at the end. A response whose status is not
-- <expect> counts as "unexpected" (a failed login answers 200 with the form, a success 303), and
-- so does one whose body lacks any "+body:" text (e.g. +body:"id_token" for a token response).
-- done() prints one line "BENCH_JSON {...}" that the runner parses.

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = args[1]
  local nthreads = tonumber(args[2])
  path = args[3]
  expect = tonumber(args[4])
  cycle = args[5] == "cycle"
  static = {}
  needles = {}
  for i = 6, #args do
    if string.sub(args[i], 1, 6) == "+body:" then
      table.insert(needles, string.sub(args[i], 7))
    else
      local name, value = string.match(args[i], "^([^:]+):%s*(.*)$")
      static[name] = value
    end
  end
  static["Content-Type"] = "application/x-www-form-urlencoded"
  items = {}
  local n = 0
  for line in io.lines(file) do
    if (cycle or n % nthreads == tid) and #line > 0 then
      table.insert(items, line)
    end
    n = n + 1
  end
  pos = 0
  unexpected = 0
  exhausted = 0
end

function request()
  pos = pos + 1
  if pos > #items then
    if cycle and #items > 0 then
      pos = 1
    else
      exhausted = exhausted + 1
      wrk.thread:stop()
      return wrk.format("GET", "/healthz")
    end
  end
  local line = items[pos]
  local headers = {}
  for name, value in pairs(static) do
    headers[name] = value
  end
  local tab = string.find(line, "\t", 1, true)
  local body = line
  if tab then
    headers["Cookie"] = string.sub(line, 1, tab - 1)
    body = string.sub(line, tab + 1)
  end
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status ~= expect then
    unexpected = unexpected + 1
    return
  end
  for _, needle in ipairs(needles) do
    if not string.find(body, needle, 1, true) then
      unexpected = unexpected + 1
      return
    end
  end
end

function done(summary, latency, requests)
  local unexpected_total, exhausted_total = 0, 0
  for _, thread in ipairs(threads) do
    unexpected_total = unexpected_total + thread:get("unexpected")
    exhausted_total = exhausted_total + thread:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "unexpected": %d, "exhausted": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, unexpected_total, exhausted_total, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end

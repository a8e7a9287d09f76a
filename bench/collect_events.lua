-- wrk script: POST event batches (3 events, distinct ids) to the path given after `--`;
-- the second argument tags this run's event ids, so a warm-up and a run never share one.
-- Counts the events the server says it accepted, and prints one JSON line at the end.
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  path = args[1] or "/"
  run = args[2] or "r"
  counter = 0
  accepted = 0
  ok = 0
  refused = 0
end

function request()
  counter = counter + 1
  local base = string.format("%s-w%d-%d", run, tid, counter)
  local body = string.format(
    '{"visitor_id":"bench_%d_%04d","events":[' ..
    '{"type":"page_view","id":"%s-1","url":"https://shop.example/p/1"},' ..
    '{"type":"product_view","id":"%s-2","url":"https://shop.example/p/1",' ..
    '"product":{"id":"sku-1","title":"Mug","price":"12.50","currency":"USD"}},' ..
    '{"type":"add_to_cart","id":"%s-3"}]}',
    tid, counter % 1000, base, base, base)
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 202 or status == 200 then
    ok = ok + 1
    local n = body:match('"accepted":(%d+)')
    accepted = accepted + (tonumber(n) or 0)
  else
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local acc, okc, bad = 0, 0, 0
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    okc = okc + t:get("ok")
    bad = bad + t:get("refused")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_s":%.3f,"socket_errors":%d,"ok":%d,"refused":%d,"accepted":%d,' ..
    '"p50_ms":%.2f,"p90_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout, okc, bad, acc,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end

-- wrk script shared by the HTTP benchmarks: POST /v1/search by a random 64-bit code, k = 10
-- (a fixed seed, so every run sends the same queries), and one summary line at the end.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
math.randomseed(7)
request = function()
  local code = string.format("%08x%08x", math.random(0, 0x7fffffff) * 2 + math.random(0, 1), math.random(0, 0x7fffffff) * 2 + math.random(0, 1))
  return wrk.format(nil, "/v1/search", nil, '{"code": "' .. code .. '", "k": 10}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("requests/s %.0f, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, errors %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    e.connect + e.read + e.write + e.timeout + e.status))
end

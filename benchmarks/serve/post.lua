-- post.lua -- wrk script of benchmarks/serve: POSTs a JSON body to the
-- path given, with a random shopper or query per request.
--   KIND=recommend|search  NUSERS=N  KEY=bearer-key  (environment)
local kind = os.getenv("KIND") or "recommend"
local nusers = tonumber(os.getenv("NUSERS") or "1000")
local key = os.getenv("KEY") or ""
local words = {"waterproof", "boot", "running", "shoe", "lightweight",
	"jacket", "wool", "leather", "yoga", "mat", "cotton", "trail"}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
local path = kind == "search" and "/api/v1/search" or "/api/v1/recommendations"

request = function()
	local body
	if kind == "search" then
		body = string.format('{"query": "%s %s", "count": 10}',
			words[math.random(#words)], words[math.random(#words)])
	else
		body = string.format('{"user_id": "u%04d", "count": 10}',
			math.random(nusers))
	end
	return wrk.format(nil, path, nil, body)
end

-- one summary line the run script reads
done = function(summary, latency, requests)
	local errs = summary.errors.connect + summary.errors.read +
		summary.errors.write + summary.errors.timeout +
		summary.errors.status
	io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p90_ms=%.3f " ..
		"p99_ms=%.3f errors=%d requests=%d\n",
		summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(90) / 1000,
		latency:percentile(99) / 1000, errs, summary.requests))
end

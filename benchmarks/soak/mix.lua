-- mix.lua -- wrk script of benchmarks/soak: a shop's traffic mixed, per
-- request: 50% recommendations, 30% searches, 20% feedback events
-- (POST /api/v1/interactions), random shoppers, items and words.
--   KEY=secret-key NUSERS=N NITEMS=N (environment)
local key = os.getenv("KEY") or ""
local nusers = tonumber(os.getenv("NUSERS") or "1000")
local nitems = tonumber(os.getenv("NITEMS") or "1000")
local words = {"waterproof", "boot", "running", "shoe", "lightweight",
	"jacket", "wool", "leather", "yoga", "mat", "cotton", "trail"}
local types = {"view", "view", "view", "cart", "purchase"}
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

request = function()
	local r = math.random(100)
	local path, body
	if r <= 50 then
		path = "/api/v1/recommendations"
		body = string.format('{"user_id": "u%04d", "count": 10}',
			math.random(nusers))
	elseif r <= 80 then
		path = "/api/v1/search"
		body = string.format('{"query": "%s %s", "count": 10}',
			words[math.random(#words)], words[math.random(#words)])
	else
		path = "/api/v1/interactions"
		body = string.format('{"user_id": "u%04d", "item_id": "i%05d", ' ..
			'"interaction_type": "%s"}', math.random(nusers),
			math.random(nitems), types[math.random(#types)])
	end
	return wrk.format(nil, path, nil, body)
end

-- one line per wrk run, read by run
done = function(summary, latency, requests)
	local errs = summary.errors.connect + summary.errors.read +
		summary.errors.write + summary.errors.timeout +
		summary.errors.status
	io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f " ..
		"max_ms=%.3f errors=%d requests=%d\n",
		summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		latency.max / 1000, errs, summary.requests))
end

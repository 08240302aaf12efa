-- replicas.lua -- wrk script of benchmarks/serve/replicas: POSTs a
-- recommendation request or one feedback event per request, with a
-- random shopper (and item).
--   KIND=recommend|feedback  NUSERS=N  NITEMS=N  KEY=bearer-key
local kind = os.getenv("KIND") or "recommend"
local nusers = tonumber(os.getenv("NUSERS") or "1000")
local nitems = tonumber(os.getenv("NITEMS") or "1000")
local key = os.getenv("KEY") or ""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

request = function()
	if kind == "feedback" then
		return wrk.format(nil, "/api/v1/interactions", nil,
			string.format('{"user_id": "u%04d", "item_id": "i%05d", ' ..
				'"interaction_type": "view"}',
				math.random(nusers), math.random(nitems)))
	end
	return wrk.format(nil, "/api/v1/recommendations", nil,
		string.format('{"user_id": "u%04d", "count": 10}',
			math.random(nusers)))
end

-- one summary line the run script reads
done = function(summary, latency, requests)
	local errs = summary.errors.connect + summary.errors.read +
		summary.errors.write + summary.errors.timeout +
		summary.errors.status
	io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f " ..
		"errors=%d requests=%d\n",
		summary.requests / (summary.duration / 1e6),
		latency:percentile(50) / 1000, latency:percentile(99) / 1000,
		errs, summary.requests))
end

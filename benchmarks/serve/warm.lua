-- warm.lua -- wrk script of benchmarks/serve: asks once for the
-- recommendations of every shopper u0001..uNUSERS (the threads share
-- them out), so that the measured runs meet profiles already loaded,
-- as a shop's returning shoppers do, rather than each shopper's first
-- visit.  Each thread stops after its last shopper.
--   NUSERS=N  KEY=bearer-key  DONE=path-prefix  (environment)
local nusers = tonumber(os.getenv("NUSERS") or "1000")
local key = os.getenv("KEY") or ""
local nthreads = 2
local threads = {}

setup = function(thread)
	thread:set("tid", #threads)
	table.insert(threads, thread)
end

local next_user
init = function(args)
	next_user = tid + 1
	wrk.method = "POST"
	wrk.headers["Content-Type"] = "application/json"
	wrk.headers["Authorization"] = "Bearer " .. key
end

request = function()
	local u = next_user
	next_user = next_user + nthreads
	if u > nusers then
		u = nusers -- past the end: repeats until the thread stops
	end
	return wrk.format(nil, "/api/v1/recommendations", nil,
		string.format('{"user_id": "u%04d", "count": 10}', u))
end

-- wrk runs for its whole duration whatever its threads do, so each
-- thread, past its last shopper, leaves a file DONE.<tid> for the run
-- script, which then ends wrk
local done_written = false
response = function(status, headers, body)
	if next_user > nusers + nthreads and not done_written then
		done_written = true
		local f = io.open(os.getenv("DONE") .. "." .. tid, "w")
		if f then f:close() end
		wrk.thread:stop()
	end
end

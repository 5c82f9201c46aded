-- wrk script for `cargo xtask load`: each request posts one random line of the corpus named by
-- AKI_LOAD_CORPUS to /api/v1/embed; at the end prints one `AKI_RESULT {json}` line.
-- With AKI_LOAD_RATE (requests/s) and AKI_LOAD_CONNECTIONS set, each connection waits a random
-- time (mean connections / rate) between requests, offering about that rate in total.

local corpus = {}
for line in io.lines(os.getenv("AKI_LOAD_CORPUS")) do
  if #line > 0 then
    corpus[#corpus + 1] = line
  end
end

local function json_string(text)
  text = text:gsub("\\", "\\\\"):gsub('"', '\\"')
  text = text:gsub("%c", function(c) return string.format("\\u%04x", c:byte()) end)
  return '"' .. text .. '"'
end

local headers = { ["Content-Type"] = "application/json" }

local rate = tonumber(os.getenv("AKI_LOAD_RATE") or "")
local connections = tonumber(os.getenv("AKI_LOAD_CONNECTIONS") or "")
if rate and connections then
  function delay()
    return math.random() * 2000 * connections / rate
  end
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000)
end

function request()
  local body = '{"texts":[' .. json_string(corpus[math.random(#corpus)]) .. ']}'
  return wrk.format("POST", "/api/v1/embed", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'AKI_RESULT {"requests":%d,"duration_us":%d,"non2xx":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end

-- Replays prepared pushes (one "path<TAB>body" per line of the file given after --) and
-- counts the answers by HTTP status. Optional second argument: a pause in ms before each
-- request of a connection, to hold the load below the maximum.
local prepared = {}
local position = 0
local pause = 0
statuses = {}

function setup(thread)
  threads = threads or {}
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    prepared[#prepared + 1] = wrk.format("POST", line:sub(1, tab - 1),
      { ["Content-Type"] = "text/xml" }, line:sub(tab + 1))
  end
  pause = tonumber(args[2] or "0")
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function delay()
  return pause
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[#counts + 1] = string.format('"%d": %d', status, n)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, errors.connect, errors.read, errors.write, errors.timeout,
    table.concat(counts, ", ")))
end

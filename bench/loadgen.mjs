// The one load generator of bench/side_by_side.py, the same for every target.
//
//   node loadgen.mjs PEER_DIR '<json spec>'    -> one JSON line of results on stdout
//
// autocannon comes from the peer's node_modules (PEER_DIR, after `npm install` there).
// spec.mode "cannon": autocannon on one URL; `bodies` rotate over the requests (pending
//   auth_req_ids for token polls); every response is classified by status and OAuth error;
// spec.mode "cannon" with `rate`: the same requests at `rate` per second in all, evenly spaced
//   (not autocannon's overallRate, which lets each connection send its share of a second in
//   a burst at the start of the second), over at most `connections` keep-alive sockets; each
//   latency is counted from the request's scheduled time, so a request that waited for a free
//   socket counts its wait (no coordinated omission).
// spec.mode "flows": `loops` concurrent loops of bc-authorize -> approve -> token (fetch with
//   keep-alive); a flow counts when the token response is 200 with an access_token.
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';

const [peerDir, raw] = process.argv.slice(2);
const spec = JSON.parse(raw);
const require = createRequire(path.join(path.resolve(peerDir), 'package.json'));

function classify(counts, status, body) {
  let key = String(status);
  if (status >= 400 && body) {
    try { key += ':' + JSON.parse(body).error; } catch { key += ':?'; }
  }
  counts[key] = (counts[key] || 0) + 1;
}

async function cannon() {
  const autocannon = require('autocannon');
  const counts = {};
  const bodies = spec.bodies || [spec.body];
  let next = 0;
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.duration,
    headers: spec.headers,
    method: 'POST',
    requests: [{
      method: 'POST',
      setupRequest(request) {
        request.body = bodies[next++ % bodies.length];
        return request;
      },
      onResponse(status, body) { classify(counts, status, body); },
    }],
  });
  const answered = Object.entries(counts)
    .filter(([k]) => spec.answered.includes(k))
    .reduce((n, [, v]) => n + v, 0);
  return {
    answered_per_s: answered / spec.duration,
    total: result.requests.total,
    p50_ms: result.latency.p50, p99_ms: result.latency.p99,
    errors: result.errors, timeouts: result.timeouts, counts,
  };
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))] : null;
}

async function paced() {
  const counts = {};
  const latencies = [];
  const bodies = spec.bodies || [spec.body];
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
  const total = Math.round(spec.rate * spec.duration);
  const interval = 1000 / spec.rate;
  const start = performance.now();
  await new Promise((finish) => {
    let sent = 0;
    let done = 0;
    const end = () => { if (++done === total) finish(); };
    function fire(i) {
      const scheduled = start + i * interval;
      const body = bodies[i % bodies.length];
      const req = http.request(spec.url, { method: 'POST', agent,
        headers: { ...spec.headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => { text += chunk; });
        res.on('end', () => {
          classify(counts, res.statusCode, text);
          latencies.push(performance.now() - scheduled);
          end();
        });
      });
      req.on('error', () => { counts.error = (counts.error || 0) + 1; end(); });
      req.end(body);
    }
    function tick() {
      while (sent < total && start + sent * interval <= performance.now()) fire(sent++);
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    }
    tick();
  });
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const answered = Object.entries(counts)
    .filter(([k]) => spec.answered.includes(k))
    .reduce((n, [, v]) => n + v, 0);
  return { answered_per_s: answered / spec.duration, total, p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99), counts };
}

async function flows() {
  const counts = {};
  const latencies = [];
  let done = 0;
  const deadline = Date.now() + spec.duration * 1000;
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.loops });
  function post(url, headers, body) {
    return new Promise((resolve, reject) => {
      const req = http.request(url, { method: 'POST', agent,
        headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => { text += chunk; });
        res.on('end', () => { classify(counts, res.statusCode, text); resolve([res.statusCode, text]); });
      });
      req.on('error', reject);
      req.end(body);
    });
  }
  async function approve(authReqId) {
    if (spec.approve.kind === 'peer') {
      return post(spec.approve.url + '/' + encodeURIComponent(authReqId), {}, '');
    }
    return post(spec.approve.url, { ...form, authorization: 'Bearer ' + spec.approve.token },
      new URLSearchParams({ auth_req_id: authReqId, action: 'allow' }).toString());
  }
  async function loop() {
    while (Date.now() < deadline) {
      const t0 = performance.now();
      const [s1, b1] = await post(spec.bc_url, { ...form, authorization: spec.authorization },
        spec.bc_body);
      if (s1 !== 200) continue;
      const { auth_req_id: id } = JSON.parse(b1);
      const [s2] = await approve(id);
      if (s2 !== 200) continue;
      const [s3, b3] = await post(spec.token_url, { ...form, authorization: spec.authorization },
        new URLSearchParams({ grant_type: 'urn:openid:params:grant-type:ciba', auth_req_id: id }).toString());
      if (s3 === 200 && JSON.parse(b3).access_token) {
        done += 1;
        latencies.push(performance.now() - t0);
      }
    }
  }
  const started = performance.now();
  await Promise.all(Array.from({ length: spec.loops }, loop));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { answered_per_s: done / seconds, total: done, p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99), counts };
}

const out = spec.mode === 'flows' ? await flows() : spec.rate ? await paced() : await cannon();
process.stdout.write(JSON.stringify(out) + '\n');

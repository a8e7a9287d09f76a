// node's web-push (the reference implementation) sending N pushes, CONCURRENCY at a time.
// Usage: node bench/node_send.js JOB.json   (written by bench/send_bench.py)
// JOB: {"subscriptions": [{endpoint, keys}], "n", "concurrency", "payload", "vapid": {subject, publicKey, privateKey}}
// Plain http:// endpoints get an http keep-alive agent; for https:// the sink's self-signed
// certificate is trusted through NODE_EXTRA_CA_CERTS.
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');
const webpush = require('web-push');

async function main() {
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  webpush.setVapidDetails(job.vapid.subject, job.vapid.publicKey, job.vapid.privateKey);
  // A keep-alive agent, as a fair reference would configure it.
  const plain = job.subscriptions[0].endpoint.startsWith('http:');
  const agent = new (plain ? http : https).Agent({keepAlive: true, maxSockets: job.concurrency});
  if (plain) {
    // web-push always calls https.request (and accepts only an https.Agent): for the plain-HTTP
    // sink its request goes through http.request with the http keep-alive agent instead.
    https.request = (options, callback) => http.request({...options, agent}, callback);
  }
  let next = 0;
  let failed = 0;
  const started = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  async function lane() {
    while (next < job.n) {
      const i = next++;
      const sub = job.subscriptions[i % job.subscriptions.length];
      try {
        await webpush.sendNotification(sub, job.payload, plain ? {TTL: 3600, urgency: 'normal'} : {TTL: 3600, urgency: 'normal', agent});
      } catch (err) {
        failed++;
        if (failed === 1) console.error(err);
      }
    }
  }
  await Promise.all(Array.from({length: job.concurrency}, lane));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  agent.destroy();
  process.stdout.write(JSON.stringify({n: job.n, failed, seconds, cpu_seconds: (cpu.user + cpu.system) / 1e6, max_rss_kb: process.resourceUsage().maxRSS}) + '\n');
}

main().catch((err) => { console.error(err); process.exit(1); });

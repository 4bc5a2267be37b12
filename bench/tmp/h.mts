import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { closeAll, startTimeServers } from '/work/main/test/helpers/http/servers.js';
const servers = await startTimeServers([{ offset: 0.1 }, { offset: 0.1 }, { offset: 0.1 }]);
const child = spawn('node', ['/work/main/bin/htntp.js', 'http', '--unit', '190', '--dry-run', ...servers.map((s) => s.url)], { env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=1' }, stdio: ['ignore', 'pipe', 'pipe'] });
child.stdout.on('data', (d) => process.stdout.write('OUT ' + d));
child.stderr.on('data', (d) => process.stdout.write('ERR ' + d));
const ticks = () => { const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8'); const x = f.slice(f.lastIndexOf(')') + 2).split(' '); const st = readFileSync(`/proc/${child.pid}/status`, 'utf8'); return [Number(x[11]) + Number(x[12]), st.match(/VmRSS:\s+(\d+)/)?.[1], st.match(/voluntary_ctxt_switches:\s+(\d+)/)?.[1]]; };
for (let i = 0; i < 9; i++) { await delay(10_000); console.log(i * 10 + 10, 's', ticks()); }
child.kill(); await closeAll(servers);

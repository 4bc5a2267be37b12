// Time servers in a process of their own (the benchmark's, so the measuring process's event
// loop is not theirs): `node --import tsx test/helpers/http/serve.ts '<json configs>'` prints one
// line with the URLs, then serves until stdin closes.
import { closeAll, startTimeServers, type TimeServerConfig } from './servers.js';

const configs = JSON.parse(process.argv[2] ?? '[]') as TimeServerConfig[];
const servers = await startTimeServers(configs);
process.stdout.write(`${JSON.stringify(servers.map((server) => server.url))}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void closeAll(servers).then(() => process.exit(0));
});

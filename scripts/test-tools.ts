// Prints every external program the tests and benchmarks declare in test/helpers/tools.ts,
// one per line: name, the path it resolves to here ('-' when missing), and where it must come
// from ('node' for what comes with Node.js, 'debian' otherwise). `.ci/run` checks each against
// the packages it installs and the trees it extracts.
import { toolInventory, toolsWithNode } from '../test/helpers/tools.js';

for (const { name, path } of toolInventory()) {
  process.stdout.write(`${name}\t${path ?? '-'}\t${toolsWithNode.includes(name) ? 'node' : 'debian'}\n`);
}

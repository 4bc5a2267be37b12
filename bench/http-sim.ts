// `npm run bench:http-sim`: the HTTP estimator over thousands of simulated measurements
// (test/sim: seeded servers and paths, no sockets). For each case: how often the published
// bound holds the truth, how often the faulty servers are left out, and |error| against the
// floor of an aim that knew the answer (the simulated twin of `bench:http -- floor`).
// `-- runs=N` scales every case's run count (default 1).
import { evaluate, median, quantile, type Figures } from '../test/sim/evaluate.js';
import { FAULTS, honestScenario, PATHS, type Scenario } from '../test/sim/scenarios.js';

const scale = Number(process.argv.find((argument) => argument.startsWith('runs='))?.slice(5) ?? 1);
const ms = (seconds: number): string => (Number.isFinite(seconds) ? `${(seconds * 1000).toFixed(2)} ms` : '-');
const share = (part: number, whole: number): string => (whole === 0 ? '-' : `${part}/${whole}`);

function row(scenario: Scenario, figures: Figures, started: number): string {
  const cells = [
    scenario.name,
    share(figures.covered, figures.estimates),
    share(figures.estimates, figures.runs),
    share(figures.honestCovered, figures.honestIntervals),
    scenario.name.includes('honest,') ? '' : share(figures.named, figures.runs),
    `${ms(median(figures.errors))} / ${ms(quantile(figures.errors, 0.95))}`,
    ms(median(figures.bounds)),
    figures.floor.length > 0 ? ms(median(figures.floor)) : '',
    `${((performance.now() - started) / figures.runs).toFixed(0)} ms`,
  ];
  return `| ${cells.join(' | ')} |`;
}

console.log(
  `HTTP estimator, simulated (8 probes per server, seeded; plan.ts + posterior.ts + interval.ts, no sockets)`,
);
console.log(
  "| case | bound holds truth | estimates | honest servers' own intervals hold truth | faulty left out | median / " +
    '95 % \\|error\\| | median bound ± | oracle floor (median) | per run |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
let total = 0;
for (const path of Object.keys(PATHS)) {
  for (const count of [1, 3, 10]) {
    const runs = Math.round((count === 1 ? 400 : count === 3 ? 200 : 60) * scale);
    const scenario = honestScenario(count, path);
    const started = performance.now();
    // The oracle's floor is that of symmetric jittery paths (an aim at the tick learns one side only otherwise).
    const figures = evaluate(scenario, runs, { seed: count, withOracle: path.includes('±') });
    total += runs;
    console.log(row(scenario, figures, started));
  }
}
for (const scenario of FAULTS) {
  const runs = Math.round(300 * scale);
  const started = performance.now();
  const figures = evaluate(scenario, runs, { seed: 7 });
  total += runs;
  console.log(row(scenario, figures, started));
}
console.log(`${total} simulated measurements`);

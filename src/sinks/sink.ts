// Where the feeder publishes samples: the SHM segment, SOCK sockets. Sources never see sinks.
import type { Leap } from '../shm.js';
import type { Sample } from '../sample.js';

export interface Sink {
  /** How logs and metrics name it: `shm:2`, `sock:/run/chrony.htntp.sock`. */
  readonly name: string;
  /** Before the source starts (and before a privilege drop). Throws if the sink can never work. */
  open(): void;
  /**
   * Publishes one sample with the leap indicator the feeder settled on. True if it reached
   * the reader's side; false if it was lost to a fault the sink logs and retries (a reader
   * that is down). A sample the sink refuses throws TypeError/RangeError, nothing written.
   */
  publish(sample: Sample, leap: Leap): boolean;
  /** Last act. `keepLastSample`: a one-shot source ended by itself; leave its sample for the reader. */
  close(options: { keepLastSample: boolean }): void;
}

// Errors in Node's own shapes: TypeError/RangeError with Node's codes and wording for bad
// arguments, and Errors with `code` (plus `errno`/`syscall` for system calls), so callers
// handle htntp's errors the way they handle Node's.
import { getSystemErrorName, inspect } from 'node:util';

/** What Node's ERR_INVALID_ARG_TYPE says was received. */
function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'object') return 'an instance of Object';
  if (typeof value === 'function') return `function ${value.name}`;
  return `type ${typeof value} (${inspect(value)})`;
}

/** The argument's name as Node words it: `options.x` is a property, anything else an argument. */
function subject(name: string): string {
  return name.includes('.') ? `"${name}" property` : `"${name}" argument`;
}

/** Node's TypeError for an argument of the wrong type (code ERR_INVALID_ARG_TYPE). */
export function invalidArgType(name: string, expected: string, value: unknown): TypeError {
  return withCode(
    new TypeError(`The ${subject(name)} must be of type ${expected}. Received ${describe(value)}`),
    'ERR_INVALID_ARG_TYPE',
  );
}

/** Node's TypeError for an argument of the right type but an unusable value (code ERR_INVALID_ARG_VALUE). */
export function invalidArgValue(message: string): TypeError {
  return withCode(new TypeError(message), 'ERR_INVALID_ARG_VALUE');
}

/** Node's RangeError for an argument out of range (code ERR_OUT_OF_RANGE). */
export function outOfRange(name: string, expected: string, value: unknown): RangeError {
  return withCode(
    new RangeError(`The value of "${name}" is out of range. It must be ${expected}. Received ${String(value)}`),
    'ERR_OUT_OF_RANGE',
  );
}

/** An Error with a `code` (and any other fields a caller matches on). */
export function codedError<Fields extends object = object>(
  message: string,
  code: string,
  fields?: Fields,
  cause?: unknown,
): Error & Fields & { code: string } {
  const error = new Error(message, cause === undefined ? undefined : { cause });
  return Object.assign(error, fields, { code });
}

/** Adds `code` to an existing error object. */
export function withCode<E extends Error>(error: E, code: string): E & { code: string } {
  return Object.assign(error, { code });
}

/**
 * Completes an errno/syscall error from the addon as Node would: `code` from the errno, and a
 * message that says what to do. Anything else passes through unchanged.
 */
export function explainSystemError(error: unknown, hint: (code: string) => string): unknown {
  if (!(error instanceof Error)) return error;
  const errnoError = error as NodeJS.ErrnoException;
  if (typeof errnoError.errno !== 'number' || typeof errnoError.syscall !== 'string') return error;
  errnoError.code = getSystemErrorName(errnoError.errno);
  errnoError.message = `${errnoError.syscall} ${errnoError.code}: ${hint(errnoError.code)}`;
  return errnoError;
}

/** A failed system call as Node reports one: `code` (e.g. EACCES), negative `errno`, `syscall`. */
export function systemError(syscall: string, errno: number, message: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(errno);
  return Object.assign(new Error(`${syscall} ${code}: ${message}`), { code, errno, syscall });
}

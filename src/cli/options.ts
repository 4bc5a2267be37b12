// Option parsers for commander: a bad value is a clear InvalidArgumentError, never NaN.
import { InvalidArgumentError } from 'commander';

export function integerOption(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const number = Number(value);
    if (value.trim() === '' || !Number.isInteger(number) || number < min || number > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    }
    return number;
  };
}

export function numberOption(name: string, min = -Infinity, max = Infinity): (value: string) => number {
  return (value: string) => {
    const number = Number(value);
    if (value.trim() === '' || !Number.isFinite(number) || number < min || number > max) {
      const range =
        Number.isFinite(min) && Number.isFinite(max)
          ? ` from ${min} to ${max}`
          : Number.isFinite(min)
            ? ` >= ${min}`
            : '';
      throw new InvalidArgumentError(`${name} must be a number${range}`);
    }
    return number;
  };
}

/** Octal permissions such as 0666 or 644. */
export function permOption(value: string): number {
  if (!/^0?[0-7]{3}$/.test(value)) throw new InvalidArgumentError('perm must be octal permissions such as 0666');
  return Number.parseInt(value, 8);
}

/** Repeatable option: --unit 2 --unit 3 */
export function collect<T>(parse: (value: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}

/** The error `action` throws (Node-style fields typed), or a failure if it throws nothing. */
export function caught(action: () => unknown): NodeJS.ErrnoException {
  try {
    action();
  } catch (error) {
    return error as NodeJS.ErrnoException;
  }
  throw new Error('expected a throw');
}

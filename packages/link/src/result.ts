/**
 * The result of parsing bytes that came from the network. Parsers never throw on network
 * input: they say what was wrong, and the layer counts the drop under that reason.
 */
export type ParseResult<T, R extends string = string> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: R };

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

export function fail<R extends string>(reason: R): { readonly ok: false; readonly reason: R } {
  return { ok: false, reason };
}

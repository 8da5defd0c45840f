/**
 * The `z` of the zod schemas that browser-bundled modules use (src/rpc/wire.ts and builtins.ts, src/relay/info.ts
 * and admits.ts), built from named imports so that the bundle carries only those schemas and not all of zod (its
 * locales alone are ~300 KB).
 * scripts/build-browser.ts maps `zod` here; Node never loads this file.
 */
import {
  array,
  boolean,
  enum as enumSchema,
  literal,
  null as nullSchema,
  number,
  object,
  record,
  string,
  union,
  unknown,
} from 'zod/v4'

export const z = {
  array,
  boolean,
  enum: enumSchema,
  literal,
  null: nullSchema,
  number,
  object,
  record,
  string,
  union,
  unknown,
}

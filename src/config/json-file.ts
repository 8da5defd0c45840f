/** Reading a JSON file of the Warren home: a missing file is the caller's case, bad JSON is ERR_CONFIG_PARSE naming the file. */
import { readFile } from 'node:fs/promises'
import { WarrenError } from '../errors.ts'

/** The parsed JSON of `path`, or `undefined` when it does not exist; `hint` says how to mend a file that does not parse. */
export async function readJsonFile(path: string, hint: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new WarrenError('ERR_CONFIG_PARSE', `${path} is not valid JSON: ${(err as Error).message}`, {
      hint,
      details: { path },
    })
  }
}

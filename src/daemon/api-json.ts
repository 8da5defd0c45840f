/**
 * Answers of the local API as JSON text. What a method returns can hold values from other nodes and relays; one
 * that cannot be JSON (a cycle, a BigInt, nesting deep enough to exhaust the stack) becomes an ERR_INTERNAL answer
 * with its id instead of an exception in the daemon, and the connection goes on.
 */
import { WarrenError } from '../errors.ts'
import { RPC_ERRORS, type RpcResponse } from './api-protocol.ts'

/** `body` as JSON text, each answer that cannot be written replaced by an error that says why. */
export function answerJson(body: RpcResponse | RpcResponse[]): string {
  try {
    return JSON.stringify(body)
  } catch {
    return JSON.stringify(Array.isArray(body) ? body.map(writable) : writable(body))
  }
}

function writable(answer: RpcResponse): RpcResponse {
  try {
    JSON.stringify(answer)
    return answer
  } catch (err) {
    const e = new WarrenError('ERR_INTERNAL', `the answer could not be written as JSON: ${(err as Error).message}`)
    return {
      jsonrpc: '2.0',
      id: answer.id,
      error: { code: RPC_ERRORS.application, message: e.message, data: e.toJSON() },
    }
  }
}

/** Every Warren error reaches HTTP and SOCKS clients with a fitting status, never a generic 500 for a known failure. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { WarrenError } from '../../src/errors.ts'
import { httpStatusFor, SocksReply, socksReplyFor } from '../../src/http/error-replies.ts'

describe('error replies of the access port', () => {
  it('a node that cannot be found is "unreachable" in both protocols, whichever way the lookup failed', () => {
    for (const code of ['ERR_NO_ADDRESSES', 'ERR_LOOKUP_FAILED', 'ERR_DIAL_FAILED'] as const) {
      const err = new WarrenError(code, 'x')
      assert.equal(httpStatusFor(err), 502, code)
      assert.equal(socksReplyFor(err), SocksReply.HOST_UNREACHABLE, code)
    }
  })

  it('refusals by the remote node keep their meaning', () => {
    assert.equal(httpStatusFor(new WarrenError('ERR_NOT_AUTHORIZED', 'x')), 403)
    assert.equal(socksReplyFor(new WarrenError('ERR_NOT_AUTHORIZED', 'x')), SocksReply.NOT_ALLOWED)
    assert.equal(httpStatusFor(new WarrenError('ERR_UNKNOWN_SERVICE', 'x')), 404)
  })
})
